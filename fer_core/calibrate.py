"""Calibration: how far a model's confidence can be trusted, and temperature scaling to fix it.

The models output softmax probabilities, not logits, so temperature scaling works on
log-probabilities: ``softmax(log(p) / T)``. That is exactly the usual logit scaling, because
``log(softmax(z)) = z - logsumexp(z)`` differs from the logits ``z`` by a constant per image,
which the softmax removes. ``T > 1`` softens over-confident predictions, ``T < 1`` sharpens
under-confident ones, and no ``T`` changes which class is predicted (accuracy stays the same).

Every function checks its inputs the same way: ``probabilities`` is an (N, K) array of
non-negative values whose rows sum to 1 within 1e-3 (float32 softmax and averaged ensembles do;
they are renormalized exactly), ``labels`` are N integers in ``0..K-1``. Anything else, such as
scores or logits that do not sum to 1, raises ``ValueError`` rather than being silently rescaled.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar

PROBABILITY_FLOOR = 1e-12
SUM_TOLERANCE = 1e-3
TEMPERATURE_BOUNDS = (0.05, 20.0)


def _checked(probabilities: np.ndarray, labels: np.ndarray | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Probabilities as float64 with rows summing to exactly 1, labels as int64 (or ValueError)."""
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] == 0 or probabilities.shape[1] < 2:
        raise ValueError(f"Expected probabilities of shape (images, classes) with at least one "
                         f"image and two classes, got shape {probabilities.shape}.")
    if not np.isfinite(probabilities).all() or (probabilities < 0).any():
        raise ValueError("Probabilities must be finite and non-negative; pass the model's softmax "
                         "output (e.g. fer_core.evaluate.predict_probabilities), not logits.")
    sums = probabilities.sum(axis=1)
    worst = int(np.abs(sums - 1).argmax())
    if abs(sums[worst] - 1) > SUM_TOLERANCE:
        raise ValueError(f"Each row of probabilities must sum to 1 (row {worst} sums to "
                         f"{sums[worst]:.4g}); pass softmax outputs, not logits or scores.")
    probabilities = probabilities / sums[:, None]
    if labels is None:
        return probabilities, None
    labels = np.asarray(labels)
    if labels.shape != (len(probabilities),):
        raise ValueError(f"Expected one label per image: {len(probabilities)} rows of "
                         f"probabilities but labels of shape {labels.shape}.")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 \
            or labels.max() >= probabilities.shape[1]:
        raise ValueError(f"Labels must be integer class indices 0..{probabilities.shape[1] - 1}.")
    return probabilities, labels.astype(np.int64)


def negative_log_likelihood(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-probability of the true class (the cross-entropy loss).

    Probabilities are clipped at 1e-12 so one confidently wrong image gives a large but finite
    penalty (27.6) instead of infinity.
    """
    probabilities, labels = _checked(probabilities, labels)
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.maximum(true_class, PROBABILITY_FLOOR)).mean())


def reliability_table(probabilities: np.ndarray, labels: np.ndarray,
                      bins: int = 15) -> pd.DataFrame:
    """Accuracy against confidence in equal-width bins of the top-class probability.

    Bins are ``(bin_low, bin_high]``, as in Guo et al. 2017 (the first one includes 0).

    Returns
    -------
    pandas.DataFrame
        One row per non-empty bin: ``bin_low``, ``bin_high``, ``confidence`` (mean top-class
        probability), ``accuracy`` (fraction whose top class is the label), ``count``.
    """
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}.")
    probabilities, labels = _checked(probabilities, labels)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, int(bins) + 1)
    # Counting the inner edges strictly below a confidence puts a value equal to an edge into the
    # bin that edge closes, i.e. (low, high].
    which = np.searchsorted(edges[1:-1], confidence, side="left")
    count = np.bincount(which, minlength=bins)
    filled = count > 0
    mean_confidence = np.bincount(which, confidence, minlength=bins)[filled] / count[filled]
    accuracy = np.bincount(which, correct.astype(np.float64), minlength=bins)[filled] \
        / count[filled]
    return pd.DataFrame({"bin_low": edges[:-1][filled], "bin_high": edges[1:][filled],
                         "confidence": mean_confidence, "accuracy": accuracy,
                         "count": count[filled]})


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray,
                               bins: int = 15) -> float:
    """Expected calibration error (a fraction): the count-weighted mean of
    ``|accuracy - confidence|`` over the bins of :func:`reliability_table`."""
    return calibration_error_of_table(reliability_table(probabilities, labels, bins))


def calibration_error_of_table(table: pd.DataFrame) -> float:
    """ECE from a :func:`reliability_table`: the one place its formula is written."""
    gap = (table.accuracy - table.confidence).abs()
    return float((gap * table["count"]).sum() / table["count"].sum())


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Rescaled probabilities ``softmax(log(p) / T)``; ``T = 1`` returns ``p`` unchanged."""
    if not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"The temperature must be a positive number, got {temperature!r}.")
    probabilities, _ = _checked(probabilities)
    scaled = np.log(np.maximum(probabilities, PROBABILITY_FLOOR)) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)  # avoids overflow in exp for small T
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def fit_temperature(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimizes the negative log-likelihood of ``labels``.

    Fit it on validation data, never on the test images it will be judged on. The search is
    bounded to 0.05..20 and runs over ``log T``, where the likelihood is better conditioned.
    """
    probabilities, labels = _checked(probabilities, labels)
    low, high = np.log(TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(apply_temperature(probabilities, np.exp(log_t)),
                                              labels),
        bounds=(low, high), method="bounded", options={"xatol": 1e-5})
    return float(np.exp(result.x))


def calibration_summary(validation: dict[str, np.ndarray], validation_labels: np.ndarray,
                        test: dict[str, np.ndarray], test_labels: np.ndarray,
                        bins: int = 15) -> pd.DataFrame:
    """Temperature scaling for several models: fitted on validation, judged on test.

    Parameters
    ----------
    validation, test : dict
        ``{name: (N, 7) probabilities}`` on the validation and the test images (same names).
    validation_labels, test_labels : numpy.ndarray
        The true classes of those images.
    bins : int
        Bins of the expected calibration error.

    Returns
    -------
    pandas.DataFrame
        One row per model: ``temperature``, ``test accuracy %`` (the same before and after),
        ``test NLL before``, ``test NLL after``, ``test ECE % before``, ``test ECE % after``.
    """
    if set(validation) != set(test):
        raise ValueError("Give validation and test probabilities for the same models; got "
                         f"{sorted(validation)} and {sorted(test)}.")
    probabilities_by_model = {name: (validation[name], validation_labels, test[name],
                                     test_labels) for name in test}
    rows = {}
    for name, (val_probs, val_labels, test_probs, test_labels) in probabilities_by_model.items():
        temperature = fit_temperature(val_probs, val_labels)
        scaled = apply_temperature(test_probs, temperature)
        test_probs, test_labels = _checked(test_probs, test_labels)
        rows[name] = {
            "temperature": round(temperature, 3),
            "test accuracy %": round(100 * float((test_probs.argmax(1) == test_labels).mean()),
                                     2),
            "test NLL before": round(negative_log_likelihood(test_probs, test_labels), 4),
            "test NLL after": round(negative_log_likelihood(scaled, test_labels), 4),
            "test ECE % before": round(
                100 * expected_calibration_error(test_probs, test_labels, bins), 2),
            "test ECE % after": round(
                100 * expected_calibration_error(scaled, test_labels, bins), 2),
        }
    return pd.DataFrame.from_dict(rows, orient="index")
