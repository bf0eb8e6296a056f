"""Soft targets: train on a distribution over the classes instead of (or beside) one label.

Two sources of soft targets, one loss:

- ``ensemble:<name>+<name>...``: knowledge distillation (Hinton, Vinyals and Dean 2015). The
  committed reference models' averaged probabilities (with test-time flips) for each training
  face, computed once and cached, teach a student, typically a smaller model;
- ``ferplus``: the FER+ annotators' vote distributions (chapter 10), i.e. what ten people
  answered for the face, instead of FER-2013's single label.

:class:`SoftTargetLoss` mixes the usual cross-entropy on the hard label with the
Kullback-Leibler divergence from the soft target, both softened at temperature ``T``.
"""

from __future__ import annotations

import hashlib

import keras
import numpy as np

from fer_core.config import CLASS_NAMES, cache_dir
from fer_core.data import FerData

CLASSES = len(CLASS_NAMES)
PROBABILITY_FLOOR = 1e-7


def soft_target_matrix(source: str, train: FerData, models_dir=None) -> np.ndarray:
    """Soft targets (N, 7) for the faces of ``train``, rows summing to 1.

    Parameters
    ----------
    source : str
        ``ferplus`` or ``ensemble:<name>+<name>...`` (committed reference models).
    train : FerData
        The training faces (after outlier removal and subsetting).

    Notes
    -----
    A face without FER+ votes keeps its one-hot FER-2013 label. Ensemble targets are cached
    under the cache folder, keyed by the model files' contents and the faces' ids.

    Raises
    ------
    ValueError
        For an unknown source.
    """
    hard = np.eye(CLASSES)[train.labels]
    if source == "ferplus":
        from fer_core import ferplus

        soft = ferplus.soft_labels(ferplus.load_votes(train))
        missing = np.isnan(soft).any(axis=1)
        return np.where(missing[:, None], hard, soft)
    if source.startswith("ensemble:") and source[len("ensemble:"):]:
        return _ensemble_targets(source[len("ensemble:"):].split("+"), train, models_dir)
    raise ValueError(f"Unknown soft-target source {source!r}: use 'ferplus' or "
                     "'ensemble:<model>+<model>...' (committed reference models).")


def _ensemble_targets(names: list[str], train: FerData, models_dir=None) -> np.ndarray:
    from fer_core import evaluate, store

    digest = hashlib.sha256("\n".join(train.ids.tolist()).encode())
    for name in names:
        path = store.models_dir(models_dir) / f"{name}.keras"
        if not path.is_file():
            raise FileNotFoundError(f"No reference model {name!r} to distil from in "
                                    f"'{store.models_dir(models_dir)}'.")
        digest.update(path.read_bytes())
    cached = cache_dir() / "soft-targets" / f"{digest.hexdigest()[:24]}.npy"
    if cached.is_file():
        return np.load(cached)
    probabilities = evaluate.reference_probabilities(names, train, tta=True,
                                                     models_dir=models_dir)
    targets = evaluate.ensemble(list(probabilities.values()))
    cached.parent.mkdir(parents=True, exist_ok=True)
    np.save(cached, targets)
    return targets


def soften(probabilities, temperature: float):
    """``softmax(log(p) / T)``: a distribution made flatter (T > 1) or sharper (T < 1)."""
    logits = keras.ops.log(keras.ops.maximum(probabilities, PROBABILITY_FLOOR))
    return keras.ops.softmax(logits / temperature, axis=-1)


@keras.saving.register_keras_serializable(package="fer_core")
class SoftTargetLoss(keras.losses.Loss):
    """``(1 - w) * CE(hard, p) + w * T^2 * KL(soften(q, T) || soften(p, T))``.

    ``y_true`` holds 14 columns: the one-hot label, then the soft target ``q``; ``y_pred`` the
    model's probabilities ``p``. The ``T^2`` factor keeps the soft term's gradients on the
    same scale for any temperature (Hinton et al. 2015). ``label_smoothing`` applies to the
    hard label as in ``CategoricalCrossentropy``.
    """

    def __init__(self, weight: float = 0.5, temperature: float = 1.0,
                 label_smoothing: float = 0.0, name: str = "soft_target_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.weight, self.temperature = float(weight), float(temperature)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        y_true = keras.ops.cast(y_true, "float32")
        hard, soft = y_true[:, :CLASSES], y_true[:, CLASSES:]
        hard = hard * (1.0 - self.label_smoothing) + self.label_smoothing / CLASSES
        log_p = keras.ops.log(keras.ops.maximum(y_pred, PROBABILITY_FLOOR))
        cross_entropy = -keras.ops.sum(hard * log_p, axis=-1)
        teacher = soften(soft, self.temperature)
        student = soften(y_pred, self.temperature)
        divergence = keras.ops.sum(teacher * (
            keras.ops.log(keras.ops.maximum(teacher, PROBABILITY_FLOOR))
            - keras.ops.log(keras.ops.maximum(student, PROBABILITY_FLOOR))), axis=-1)
        return ((1.0 - self.weight) * cross_entropy
                + self.weight * self.temperature ** 2 * divergence)

    def get_config(self) -> dict:
        return {**super().get_config(), "weight": self.weight,
                "temperature": self.temperature, "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="fer_core")
def hard_label_accuracy(y_true, y_pred):
    """Accuracy against the one-hot label in the first 7 columns of soft-target ``y_true``."""
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, :CLASSES], axis=-1),
                                          keras.ops.argmax(y_pred, axis=-1)), "float32")
