"""Evaluation: accuracy overall and per test half, macro F1, per-class report, confusion matrix,
test-time augmentation and soft-voting ensembles (scikit-learn does the metric arithmetic)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from fer_core import (
    models,  # also registers the ViT's custom layer for loading
    store,
)
from fer_core.config import CLASS_NAMES, cache_dir
from fer_core.config import models_dir as configured_models_dir
from fer_core.data import FerData, training_pixels
from fer_core.models import as_model_input, flipped, predict_in_batches, shifted
from fer_core.store import load_reference, read_record

# The folder when this module was imported; the functions read the configured folder
# (store.models_dir) when they are called, so $FER_MODELS_DIR set later still counts.
MODELS_DIR = configured_models_dir()
# The headline numbers every results table shows first (fer_core.book.fit_table cuts to them)
SUMMARY_COLUMNS = ["accuracy", "accuracy_PublicTest", "accuracy_PrivateTest", "macro_f1",
                   "disgust_recall", "fear_recall"]
REFERENCE_COLUMNS = ["training pixels", *SUMMARY_COLUMNS]
# Test-time augmentation: the views of each face whose probabilities are averaged, as (pixels
# down, pixels right, mirrored). "shifts" adds the face moved 3 pixels up, down, left and right
# (training shifts faces by up to 4), each with its mirror image: ten views, like the ten-crop
# test of the strong published models; 3 pixels was chosen over 2 on the validation faces.
SHIFT_PIXELS = 3
TTA_VIEWS = {
    "none": ((0, 0, False),),
    "flip": ((0, 0, False), (0, 0, True)),
    "shifts": tuple((down, right, mirrored)
                    for down, right in ((0, 0), (-SHIFT_PIXELS, 0), (SHIFT_PIXELS, 0),
                                        (0, -SHIFT_PIXELS), (0, SHIFT_PIXELS))
                    for mirrored in (False, True)),
}

# The accuracy campaign's goals (README, "Accuracy targets"): test accuracy in %, except the
# speed goal, faces per second on 2 CPU cores.
CAMPAIGN_TARGETS = {"best single model, no TTA": 68.0, "best ensemble": 71.0,
                    "attention U-Net": 66.0, "at most 60k parameters": 66.0,
                    "best single model, faces/s": 500.0}


@dataclass
class Metrics:
    """Scores of one set of predictions on one labelled set."""

    accuracy: float
    by_half: dict[str, float]
    macro_f1: float
    per_class: pd.DataFrame
    confusion: np.ndarray
    count: int

    def summary(self) -> dict[str, float]:
        """Flat dict of the headline numbers (fractions in [0, 1])."""
        row = {"accuracy": round(self.accuracy, 5), "macro_f1": round(self.macro_f1, 5),
               "images": self.count}
        row.update({f"accuracy_{half}": round(score, 5) for half, score in self.by_half.items()})
        for hard in ("disgust", "fear"):  # the two classes every FER-2013 model finds hardest
            row[f"{hard}_recall"] = round(float(self.per_class.loc[hard, "recall"]), 5)
        return row


def tta_views(tta: bool | str) -> tuple[tuple[int, int, bool], ...]:
    """The views of each face that test-time augmentation averages, as (pixels down, pixels
    right, mirrored): ``False`` or ``"none"`` the face alone, ``True`` or ``"flip"`` the face
    and its mirror image, ``"shifts"`` ten views (:data:`TTA_VIEWS`).

    Raises
    ------
    ValueError
        For any other setting; the message lists the known ones.
    """
    key = {False: "none", True: "flip"}.get(tta, tta) if isinstance(tta, bool) else tta
    if key not in TTA_VIEWS:
        raise ValueError(f"Unknown test-time augmentation {tta!r}: use one of "
                         f"{sorted(TTA_VIEWS)} (or True for 'flip', False for 'none').")
    return TTA_VIEWS[key]


def _view(pixels: np.ndarray, down: int, right: int, mirrored: bool) -> np.ndarray:
    """One test-time view of the faces (see :func:`tta_views`)."""
    if down or right:
        pixels = shifted(pixels, down, right)
    return flipped(pixels) if mirrored else pixels


# Faces per prediction step. On 2 cores a batch of 64 predicted 10-40% faster than 256 (measured
# on an AVX2 EPYC for every reference model; the widest, vgg_cnn_wide, 5.8 against 6.3-10 ms a
# face): the larger batch's activations no longer fit the CPU caches.
PREDICT_BATCH = 64


def predict_probabilities(model: keras.Model, data: FerData | np.ndarray,
                          tta: bool | str = False, batch_size: int = PREDICT_BATCH
                          ) -> np.ndarray:
    """Class probabilities (N, 7); with ``tta`` averaged over several views of each face
    (``True``: the face and its mirror image; ``"shifts"``: ten views, see :func:`tta_views`).

    Arrays are checked against the models' input contract (:func:`fer_core.models.as_model_input`:
    0..255, 48x48, one channel).
    """
    pixels = as_model_input(data.model_input() if isinstance(data, FerData) else data)
    views = tta_views(tta)
    total = None
    for view in views:
        probabilities = predict_in_batches(model, _view(pixels, *view), batch_size)
        total = probabilities if total is None else total + probabilities
    return np.asarray(total / len(views), np.float64)


def ensemble(probabilities: Sequence[np.ndarray], weights: Sequence[float] | None = None
             ) -> np.ndarray:
    """Soft voting: the (weighted) mean of several models' probabilities."""
    stacked = np.stack([np.asarray(p, np.float64) for p in probabilities])
    if weights is None:
        return stacked.mean(axis=0)
    weights = np.asarray(weights, np.float64)
    if weights.shape != (len(stacked),) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError("Give one non-negative weight per model, not all zero.")
    return np.tensordot(weights / weights.sum(), stacked, axes=1)


def greedy_ensemble(probabilities: Mapping[str, np.ndarray], labels: np.ndarray,
                    rounds: int = 30) -> dict[str, int]:
    """Ensemble selection with replacement (Caruana et al. 2004) on held-out faces.

    Start from an empty vote; each round adds one model, any of them and again if it helps,
    the one whose addition gives the soft vote the highest accuracy on ``labels`` (ties: the
    lower log loss, then the earlier name). After ``rounds`` rounds the round with the highest
    accuracy is kept, the earliest (smallest) if several tie. How many times a model was
    added is its weight in :func:`ensemble`: a weighted vote, where the exhaustive search of
    :func:`ensemble_table` only weighs members equally.

    Parameters
    ----------
    probabilities : mapping
        Each candidate's probabilities (N, 7) on the faces that choose: validation, never test.
    labels : numpy.ndarray
        Those faces' labels (N,).
    rounds : int
        How many models the vote may hold, counting repeats.

    Returns
    -------
    dict
        Member name to weight (a positive count), in the order members were first added.
    """
    if not probabilities:
        raise ValueError("Give the probabilities of at least one model.")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, got {rounds}.")
    labels = np.asarray(labels)
    names = list(probabilities)
    stacked = {name: np.asarray(probabilities[name], np.float64) for name in names}
    rows = np.arange(len(labels))
    total = np.zeros_like(stacked[names[0]])
    counts: dict[str, int] = {}
    best_accuracy, best_counts = -1.0, {}

    def merit(vote: np.ndarray) -> tuple[float, float]:
        """Accuracy, then minus the log loss: larger is better on both."""
        log_loss = float(-np.mean(np.log(np.clip(vote[rows, labels], 1e-12, None))))
        return float(np.mean(vote.argmax(axis=1) == labels)), -log_loss

    for round_number in range(1, rounds + 1):
        merits = {name: merit((total + stacked[name]) / round_number) for name in names}
        chosen = max(names, key=merits.get)  # max keeps the first of equals: the earlier name
        total += stacked[chosen]
        counts[chosen] = counts.get(chosen, 0) + 1
        accuracy = float(np.mean(total.argmax(axis=1) == labels))
        if accuracy > best_accuracy:
            best_accuracy, best_counts = accuracy, dict(counts)
    return best_counts


def score(probabilities: np.ndarray, data: FerData) -> Metrics:
    """Metrics of predicted probabilities (or predicted labels) against ``data.labels``.

    Every number is read off scikit-learn's confusion matrix (the same values as its
    ``precision_recall_fscore_support`` with ``zero_division=0``, ``accuracy_score`` and
    macro ``f1_score``), in one pass: chapter 9 scores thousands of ensembles.
    """
    predicted = probabilities.argmax(axis=1) if np.ndim(probabilities) == 2 else probabilities
    predicted = np.asarray(predicted)
    counts = confusion_matrix(data.labels, predicted, labels=list(range(len(CLASS_NAMES))))
    right, support, claimed = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(claimed > 0, right / claimed, 0.0)
        recall = np.where(support > 0, right / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
        normalized = np.nan_to_num(counts / support[:, None])
    per_class = pd.DataFrame({"precision": precision, "recall": recall, "f1": f1,
                              "support": support}, index=list(CLASS_NAMES))
    correct = predicted == data.labels
    by_half = {half: float(correct[data.usage == half].mean())
               for half in ("PublicTest", "PrivateTest") if (data.usage == half).any()}
    return Metrics(float(correct.mean()), by_half, float(f1.mean()), per_class, normalized,
                   len(data))


def paired_comparison(first: np.ndarray, second: np.ndarray, data: FerData) -> dict[str, float]:
    """Is ``first`` more accurate than ``second`` on the same faces beyond chance?

    McNemar's exact test: only the faces exactly one of the two gets right carry information,
    and if neither were better each such face would be a fair coin toss between them. Pairing
    makes this far more sensitive than comparing two accuracies with their separate standard
    errors, because both models see the same hard and easy faces.

    Parameters
    ----------
    first, second : np.ndarray
        Class probabilities (N, 7) or predicted labels (N,) for ``data``'s faces.
    data : FerData
        The faces and their labels.

    Returns
    -------
    dict
        ``difference`` (accuracy points, first minus second), ``first_only`` and
        ``second_only`` (faces only that model gets right) and ``p_value`` (two-sided).
    """
    from scipy.stats import binomtest

    right = [(np.asarray(p).argmax(axis=1) if np.ndim(p) == 2 else np.asarray(p)) == data.labels
             for p in (first, second)]
    first_only, second_only = int((right[0] & ~right[1]).sum()), int((right[1] & ~right[0]).sum())
    discordant = first_only + second_only
    p_value = binomtest(first_only, discordant).pvalue if discordant else 1.0
    return {"difference": 100 * (first_only - second_only) / len(data.labels),
            "first_only": first_only, "second_only": second_only, "p_value": float(p_value)}


def evaluate_model(model: keras.Model, data: FerData, tta: bool | str = False) -> Metrics:
    """Predict and score in one call."""
    return score(predict_probabilities(model, data, tta=tta), data)


def metrics_table(results: dict[str, Metrics]) -> pd.DataFrame:
    """One row per model: accuracy (all, PublicTest, PrivateTest), macro F1, disgust recall (%)."""
    rows = {name: {key: value * 100 for key, value in metrics.summary().items()
                   if key != "images"} for name, metrics in results.items()}
    return pd.DataFrame(rows).T.round(1)


def evaluate_reference(name: str, test: FerData, tta: bool | str = False,
                       models_dir: str | Path | None = None) -> tuple[Metrics, dict]:
    """Recompute a saved reference model's test metrics from its weights.

    Data switches recorded in its JSON (denoising) are applied to ``test`` first.
    """
    probabilities = reference_probabilities([name], test, tta, models_dir)[name]
    return score(probabilities, test), _record_if_any(name, models_dir)


def reference_table(names: Sequence[str], test: FerData, tta: bool | str = False,
                    models_dir: str | Path | None = None) -> pd.DataFrame:
    """Test scores recomputed from each reference model's weights, next to what its record says.

    A run kept as a record only (a study run whose weights are left out of the repository to
    keep it small) is read from the test scores its weights got in float32 when they were saved
    or scored (``scripts/record_scores.py``); the ``scored from`` column says which.

    Columns: the training pixels (``original`` or the superseded ``rebuilt`` copy, see
    :func:`fer_core.data.training_pixels`) and the data switches of the run; in %, accuracy
    (all, PublicTest, PrivateTest), macro F1, disgust recall, the recorded accuracy and the best
    validation accuracy; parameters and training seconds per epoch; what the scores came from.

    Raises
    ------
    ValueError
        When a record-only run is asked for test-time augmentation its record cannot give, or
        its record scored other faces than ``test``.
    """
    rows = {}
    for name in names:
        if (store.models_dir(models_dir) / f"{name}.keras").is_file():
            metrics, record = evaluate_reference(name, test, tta, models_dir)
            summary, scored_from = metrics.summary(), "weights"
        else:
            record = read_record(name, models_dir)
            if tta:
                raise ValueError(f"'{name}' keeps only its record, which holds scores without "
                                 "test-time augmentation: call with tta=False, or retrain it.")
            summary, scored_from = _recorded_scores(record, "test", test, name), "record"
        config = record.get("config", {})
        row = {"training pixels": training_pixels(record.get("pixels_checksum")
                                                  or record.get("data_checksum"))}
        row.update({label: bool(config.get(key)) for key, label in (
            ("augment", "augmentation"), ("class_weights", "class weights"),
            ("exclude_outliers", "outliers removed"), ("denoise", "denoised"))})
        row.update({key: round(value * 100, 1) for key, value in summary.items()
                    if key != "images"})
        curve = record.get("validation_curve", {})
        row["recorded accuracy"] = round(record.get("test", {}).get("accuracy", np.nan) * 100, 1)
        row["best validation accuracy"] = round(max(curve.get("val_accuracy", [np.nan])) * 100, 1)
        row["parameters"] = record.get("parameters")
        row["seconds per epoch"] = record.get("seconds_per_epoch")
        row["scored from"] = scored_from
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def recorded_speeds(names: Sequence[str], models_dir: str | Path | None = None) -> pd.DataFrame:
    """Parameters, training time and speeds as each reference run recorded them."""
    rows = {}
    for name in names:
        record = read_record(name, models_dir)
        rows[name] = {"parameters": record.get("parameters"),
                      "epochs": record.get("config", {}).get("epochs"),
                      "training minutes": round(record.get("training_seconds", np.nan) / 60, 1),
                      "seconds per epoch": record.get("seconds_per_epoch"),
                      "train images/s": record.get("train_images_per_second"),
                      "inference images/s": record.get("inference_images_per_second")}
    return pd.DataFrame.from_dict(rows, orient="index")


def recorded_benchmark(path: str | Path | None = None) -> pd.DataFrame:
    """The speeds ``scripts/benchmark.py --json`` measured, one row per model.

    Raises
    ------
    FileNotFoundError
        When there is no benchmark file; the message gives the command that writes one.
    """
    stored = _measurement_file(path, "benchmark.json", "scripts/benchmark.py")
    return pd.DataFrame(stored["results"]).set_index("model")


def benchmarked_inference(name: str, path: str | Path | None = None) -> dict:
    """How fast ``scripts/benchmark.py`` measured reference model ``name`` predicting.

    Returns
    -------
    dict
        ``faces/s``: the faster of its float32 and bfloat16 rates (bfloat16 is timed only on
        CPUs with native bfloat16), ``precision``: which one that was, ``float32 faces/s``,
        ``answers changed``: of the timed faces, how many bfloat16 classifies otherwise than
        float32 (0 when float32 is the faster), ``faces timed``, ``cpu`` and ``cpu features``
        (the instruction sets of :data:`fer_core.train.CPU_FEATURES` it has).

    Raises
    ------
    KeyError
        When the benchmark has no row for ``name``; the message gives the command.
    """
    stored = _measurement_file(path, "benchmark.json", "scripts/benchmark.py")
    rows = {row["model"]: row for row in stored["results"]}
    if name not in rows:
        raise KeyError(f"scripts/benchmark.py has not measured '{name}' (it has "
                       f"{', '.join(rows)}): run python scripts/benchmark.py --json "
                       "models/benchmark.json.")
    row = rows[name]
    float32 = row["inference images/s"]
    bfloat16 = row.get("bfloat16 inference images/s") or 0.0
    faster = bfloat16 > float32
    return {"faces/s": max(float32, bfloat16), "precision": "bfloat16" if faster else "float32",
            "float32 faces/s": float32,
            "answers changed": row.get("bfloat16 answers changed", 0) if faster else 0,
            "faces timed": stored.get("inference_images"),
            "cpu": stored["hardware"].get("cpu"),
            "cpu features": stored["hardware"].get("cpu_features", [])}


def recorded_detector_comparison(path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """What ``scripts/compare_detectors.py --json`` measured: one row per face detector (and
    one for the true boxes), shares in %, and the run's settings (faces, scenes, hardware).

    Raises
    ------
    FileNotFoundError
        When there is no comparison file; the message gives the command that writes one.
    """
    stored = _measurement_file(path, "detectors.json", "scripts/compare_detectors.py")
    table = pd.DataFrame(stored["results"]).T
    for share in ("recall", "end-to-end accuracy"):
        table[f"{share} %"] = 100 * table.pop(share)
    table = table[["recall %", "false detections per face scene",
                   "false detections per empty scene", "ms per scene", "end-to-end accuracy %"]]
    return table.round(2), {key: value for key, value in stored.items() if key != "results"}


def publish_measurement(record: dict, path: str | Path | None = None) -> None:
    """Print a measuring script's record as JSON and, given ``path``, write it there: the file
    the ``recorded_*`` readers of this module load."""
    text = json.dumps(record, indent=2)
    print(text)
    if path is not None:
        Path(path).write_text(text + "\n")


def _measurement_file(path: str | Path | None, default_name: str, script: str) -> dict:
    """A JSON file a measuring script wrote (default: in the models folder), or an error that
    names the command that writes it."""
    path = Path(path) if path is not None else store.models_dir() / default_name
    if not path.is_file():
        raise FileNotFoundError(f"No measurements at {path}. Write them with: python {script} "
                                f"--json {path}")
    return json.loads(path.read_text())


def recorded_histories(names: Sequence[str], models_dir: str | Path | None = None
                       ) -> dict[str, dict[str, list[float]]]:
    """The per-epoch training history stored in each reference model's JSON record."""
    return {name: read_record(name, models_dir)["validation_curve"] for name in names}


def right_and_wrong(model: keras.Model, data: FerData, count: int | None = None
                    ) -> tuple[FerData, FerData]:
    """The faces a model classifies correctly and wrongly (at most ``count`` of each)."""
    correct = predict_probabilities(model, data).argmax(axis=1) == data.labels
    return data.select(correct).head(count), data.select(~correct).head(count)


def prediction_titles(model: keras.Model, data: FerData) -> list[str]:
    """``true -> predicted`` class names for each face, for figure titles."""
    predicted = predict_probabilities(model, data).argmax(axis=1)
    return [f"{CLASS_NAMES[t]} -> {CLASS_NAMES[p]}" for t, p in
            zip(data.labels, predicted, strict=True)]


def reference_probabilities(names: Sequence[str], data: FerData, tta: bool | str = False,
                            models_dir: str | Path | None = None) -> dict[str, np.ndarray]:
    """Each saved reference model's class probabilities on ``data`` (recorded denoising applied).

    Computed once per model, they feed ensembles, per-class analysis and calibration without
    predicting again. With ``tta`` each face's probabilities are averaged over the views
    :func:`tta_views` names (``True``: the face and its mirror image), as
    :func:`predict_probabilities` does.
    """
    views = tta_views(tta)
    probabilities = {}
    for name in names:
        total = None
        for down, right, mirrored in views:
            view = reference_predictions(name, data, mirrored=mirrored, shift=(down, right),
                                         models_dir=models_dir)
            total = view if total is None else total + view
        probabilities[name] = np.asarray(total / len(views), np.float64)
    return probabilities


def reference_predictions(name: str, data: FerData, mirrored: bool = False,
                          models_dir: str | Path | None = None,
                          shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A saved reference model's raw class probabilities (N, 7) on ``data``'s faces, on
    their mirror images with ``mirrored``, or on the faces moved by ``shift`` (pixels down,
    right; :func:`fer_core.models.shifted`) (recorded denoising applied).

    The result is cached under the cache folder (:func:`fer_core.config.cache_dir`), keyed by
    the model file, its record and the faces' pixels, so a chapter executed twice (the tests'
    notebook run, then the book build) predicts each face once per model. A retrained model or
    other faces make a new key; an unreadable cache file is recomputed.

    Raises
    ------
    FileNotFoundError
        When the model is not there (the message lists those that are).
    """
    view = f"mirrored={mirrored}"
    if any(shift):  # unshifted views keep the keys they had before shifts existed
        view += f" shift={tuple(int(pixels) for pixels in shift)}"

    def predict() -> np.ndarray:
        model, _, inputs = _model_and_its_inputs(name, data, models_dir)
        pixels = as_model_input(inputs.model_input())
        return predict_in_batches(model, _view(pixels, *shift, mirrored), PREDICT_BATCH)

    return cached_probabilities(name, data.images, view, predict, models_dir)


def cached_probabilities(name: str, images: np.ndarray, view: str,
                         predict: Callable[[], np.ndarray],
                         models_dir: str | Path | None = None) -> np.ndarray:
    """``predict()``'s class probabilities (N, 7) for reference model ``name`` on ``images``,
    kept under the cache folder and reused while the model file, its record, the images and
    ``view`` (how the images are shown to the model) stay the same.

    Writes are atomic, and an unreadable cache file is recomputed, never trusted. A model
    without a file in ``models_dir`` is predicted every time.
    """
    cached = _predictions_cache_file(name, images, view, models_dir)
    if cached is not None and cached.is_file():
        try:
            return np.load(cached)
        except (OSError, ValueError):
            cached.unlink(missing_ok=True)
    probabilities = np.asarray(predict(), np.float32)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, probabilities)
        partial.replace(cached)  # atomic: a reader never sees half a file
    return probabilities


def _record_if_any(name: str, models_dir: str | Path | None) -> dict:
    """A reference model's record, or an empty dict for a model saved without one."""
    record_file = store.models_dir(models_dir) / f"{name}.json"
    return json.loads(record_file.read_text()) if record_file.is_file() else {}


def _predictions_cache_file(name: str, images: np.ndarray, view: str,
                            models_dir: str | Path | None) -> Path | None:
    """Where :func:`cached_probabilities` keeps one model's probabilities on some faces;
    ``None`` when there is no model file to key them by."""
    model_file = store.models_dir(models_dir) / f"{name}.keras"
    if not model_file.is_file():
        return None
    digest = hashlib.sha256(b"reference-predictions v2 float32")
    digest.update(model_file.read_bytes())
    record_file = model_file.with_suffix(".json")
    if record_file.is_file():
        digest.update(record_file.read_bytes())
    images = np.ascontiguousarray(images)
    digest.update(f"{images.shape} {images.dtype} {view}".encode())
    digest.update(images.tobytes())
    return cache_dir() / "predictions" / f"{name}-{digest.hexdigest()[:24]}.npy"


def _model_and_its_inputs(name: str, data: FerData, models_dir: str | Path | None
                          ) -> tuple[keras.Model, dict, FerData]:
    """A reference model, its record, and ``data`` as it expects it (denoised if its record
    says the model was trained on denoised faces)."""
    model, record = load_reference(name, models_dir)
    if record.get("config", {}).get("denoise"):
        from fer_core.denoise import denoise_data

        return model, record, denoise_data(data)
    return model, record, data


def reference_scores(names: Sequence[str], data: FerData,
                     models_dir: str | Path | None = None) -> dict[str, Metrics]:
    """Each saved reference model scored alone (key ``name``) and with test-time flips (key
    ``"name, flips"``), predicting each face and its mirror image once."""
    scores = {}
    for name in names:
        alone = reference_predictions(name, data, models_dir=models_dir)
        mirrored = reference_predictions(name, data, mirrored=True, models_dir=models_dir)
        scores[name] = score(alone, data)
        scores[f"{name}, flips"] = score((alone + mirrored) / 2, data)
    return scores


def ensemble_combinations(names: Sequence[str], smallest: int = 1) -> list[tuple[str, ...]]:
    """Every combination of at least ``smallest`` of ``names``, smallest first, in the order
    :func:`itertools.combinations` gives: the order :func:`ensemble_table` scores them in and
    a record lists their validation accuracies in."""
    from itertools import combinations

    return [members for size in range(max(1, smallest), len(names) + 1)
            for members in combinations(names, size)]


def ensemble_table(probabilities: dict[str, np.ndarray], data: FerData,
                   smallest: int = 1,
                   validation: tuple[dict[str, np.ndarray], FerData] | Mapping[str, float]
                   | None = None) -> pd.DataFrame:
    """Score every combination of at least ``smallest`` models by soft voting.

    Parameters
    ----------
    probabilities : dict
        Each model's probabilities on ``data`` (the faces reported on, e.g. the test set).
    data : FerData
        Their labels.
    smallest : int
        The fewest members of a combination.
    validation : (dict, FerData) or mapping, optional
        The same models' probabilities on the validation split, and its faces; or each
        combination's validation accuracy (%) as measured before, keyed by its members joined
        by `` + `` (a record's, see :func:`recorded_ten_view_study`). Given, every combination
        also gets its ``validation accuracy`` and the table is ranked by it, so choosing the
        first row never looks at the test labels.

    Returns
    -------
    pandas.DataFrame
        One row per combination (members joined by ``+``), with the number of models and, in %,
        accuracy (all, PublicTest, PrivateTest), macro F1 and disgust recall; best first (by
        validation accuracy when ``validation`` is given, else by accuracy on ``data``).
    """
    names = list(probabilities)
    if not names:
        raise ValueError("Give the probabilities of at least one model.")
    combinations = ensemble_combinations(names, smallest)
    measured = isinstance(validation, Mapping)
    if measured:
        missing = [" + ".join(m) for m in combinations if " + ".join(m) not in validation]
        if missing:
            raise ValueError(f"No validation accuracy for {len(missing)} of the "
                             f"{len(combinations)} combinations (first: {missing[0]!r}): they "
                             "were measured among other models; measure them again.")
    elif validation is not None and set(validation[0]) != set(names):
        raise ValueError("The validation probabilities must be of the same models: got "
                         f"{sorted(validation[0])} for {sorted(names)}.")
    rows = {}
    for members in combinations:
        label = " + ".join(members)
        metrics = score(ensemble([probabilities[name] for name in members]), data)
        row = {"models": len(members)}
        if measured:
            row["validation accuracy"] = round(float(validation[label]), 1)
        elif validation is not None:
            voted = ensemble([validation[0][name] for name in members]).argmax(axis=1)
            row["validation accuracy"] = round(100 * float(np.mean(
                voted == validation[1].labels)), 1)
        row.update({key: round(value * 100, 1) for key, value in metrics.summary().items()
                    if key != "images"})
        rows[label] = row
    ranking = "validation accuracy" if validation is not None else "accuracy"
    return pd.DataFrame.from_dict(rows, orient="index").sort_values(
        [ranking, "models"], ascending=[False, True])


# The reference models chapter 9 combines: every committed classifier the book had when the
# ten-view record was measured, refits aside. Later side runs (chapter 8's vit_conv_stem) are
# not candidates: each one doubles the combinations chapter 9 scores and voids that record.
ENSEMBLE_CANDIDATES = (
    "baseline", "attention_unet", "attention_unet_long", "attention_unet_long2", "compact_cnn",
    "vit", "snapshots/vgg_cnn_cycle1", "vgg_cnn", "vgg_cnn_wide", "vgg_cnn_distilled",
    "vgg_cnn_wide_distilled", "attention_unet_distilled", "vgg_cnn_seed2013")
TEN_VIEW_SCRIPT = "scripts/ten_view_study.py"


def ten_view_study(candidates: Sequence[str], validation: FerData, test: FerData,
                   models_dir: str | Path | None = None) -> dict:
    """Ten views against the face and its mirror image, for the ensemble flips choose.

    Among ``candidates`` the ensemble with the best validation accuracy under flip TTA is
    chosen (:func:`ensemble_table`); its members are then shown ten views of every face
    (``tta="shifts"``), every subset of them is scored again, ranked on validation, and each
    member and the whole ensemble is compared, face by face, with its flip-TTA self
    (:func:`paired_comparison`, ten views minus flips).

    Returns
    -------
    dict
        ``members`` (the flip-chosen ensemble), ``flip_chosen`` (its validation and test
        accuracy, %), ``flip_validation_accuracy`` (the validation accuracy, %, of every
        combination of ``candidates`` with flips, in :func:`ensemble_combinations` order: what
        the choice was made from), ``ensembles`` (the ten-view table, best on validation
        first, rows keyed by members joined by `` + ``), ``gains`` (paired comparisons keyed
        likewise), ``top`` (the ten-view top row's test summary and members) and ``final``
        (the top row's ensemble as reported: each member replaced by its refit when one was
        trained, :func:`final_model`, scored with ten views on the test faces; the top row
        itself when none was) and ``weighted`` (:func:`weighted_selection`), all JSON-ready.
    """
    splits = {"validation": validation, "test": test}
    flips = {key: reference_probabilities(candidates, split, tta=True, models_dir=models_dir)
             for key, split in splits.items()}
    by_flips = ensemble_table(flips["test"], test, validation=(flips["validation"], validation))
    members = by_flips.index[0].split(" + ")
    views = {key: reference_probabilities(members, split, tta="shifts", models_dir=models_dir)
             for key, split in splits.items()}
    shifts = ensemble_table(views["test"], test, validation=(views["validation"], validation))
    groups = {" + ".join(members): members, **{name: [name] for name in members}}
    gains = {label: paired_comparison(ensemble([views["test"][m] for m in group]),
                                      ensemble([flips["test"][m] for m in group]), test)
             for label, group in groups.items()}
    top = shifts.index[0].split(" + ")
    summary = score(ensemble([views["test"][m] for m in top]), test).summary()
    finals = [final_model(name, models_dir) for name in top]
    final = {"members": top, **summary}
    if finals != top:  # refits saw the validation faces: they only stand in once chosen
        refits = reference_probabilities(finals, test, tta="shifts", models_dir=models_dir)
        final = {"members": finals,
                 **score(ensemble([refits[m] for m in finals]), test).summary()}
    chosen_on = by_flips["validation accuracy"]
    return {"weighted": weighted_selection(flips, validation, test, final, models_dir),
            "members": members,
            "flip_chosen": by_flips.iloc[0][["validation accuracy", "accuracy"]].to_dict(),
            "flip_validation_accuracy": [float(chosen_on[" + ".join(combination)]) for
                                         combination in ensemble_combinations(candidates)],
            "ensembles": json.loads(shifts.to_json(orient="index")),
            "gains": gains, "top": {"members": top, **summary}, "final": final}


def weighted_selection(flips: Mapping[str, Mapping[str, np.ndarray]], validation: FerData,
                       test: FerData, equal: Mapping, models_dir: str | Path | None = None,
                       rounds: int = 30) -> dict:
    """The weighted vote :func:`greedy_ensemble` chooses on the validation faces (flips), as
    reported: members replaced by their refits (:func:`final_model`), ten views of the test
    faces, compared face by face with the equal-weight ensemble ``equal`` reports.

    Parameters
    ----------
    flips : mapping
        ``{"validation": ..., "test": ...}``, each candidate's flip-TTA probabilities.
    equal : mapping
        The equal-weight ensemble as reported (``members`` and their ten-view scores): the
        ``final`` entry of :func:`ten_view_study`.

    Returns
    -------
    dict
        ``weights`` (member to count), ``validation accuracy`` and ``equal validation
        accuracy`` (% with flips, unrounded: the weighted vote against the best equal-weight
        combination, the comparison that decides which one is reported), ``flip accuracy``
        (% on the test faces), ``final`` (members as reported, their ``weights``, and the
        ten-view test summary) and ``versus_equal`` (:func:`paired_comparison`, weighted minus
        equal), all JSON-ready.
    """
    weights = greedy_ensemble(flips["validation"], validation.labels, rounds)
    names = list(weights)

    def vote(probabilities: Mapping[str, np.ndarray], members: Sequence[str]) -> np.ndarray:
        return ensemble([probabilities[name] for name in members],
                        [weights[name] for name in names])

    def accuracy(probabilities: np.ndarray, faces: FerData) -> float:
        return 100 * float(np.mean(probabilities.argmax(axis=1) == faces.labels))

    best_equal = max(accuracy(ensemble([flips["validation"][m] for m in members]), validation)
                     for members in ensemble_combinations(list(flips["validation"])))
    finals = [final_model(name, models_dir) for name in names]
    views = reference_probabilities(finals, test, tta="shifts", models_dir=models_dir)
    weighted = vote(views, finals)
    equal_views = reference_probabilities(equal["members"], test, tta="shifts",
                                          models_dir=models_dir)
    equal_vote = ensemble([equal_views[name] for name in equal["members"]])
    return {"weights": weights, "rounds": rounds,
            "validation accuracy": accuracy(vote(flips["validation"], names), validation),
            "equal validation accuracy": best_equal,
            "flip accuracy": accuracy(vote(flips["test"], names), test),
            "final": {"members": finals, "weights": [weights[name] for name in names],
                      **score(weighted, test).summary()},
            "versus_equal": paired_comparison(weighted, equal_vote, test)}


def reported_ensemble(run: Mapping) -> dict:
    """The ensemble the campaign reports, from a ten-view record (:func:`ten_view_study`).

    Two selections compete, both on the validation faces with flips: the best equal-weight
    combination of the candidates (then narrowed with ten views, the record's ``final``) and
    the weighted vote of :func:`weighted_selection`. The one with the higher validation
    accuracy is reported (equal weights on a tie: fewer choices made on the same faces), a
    rule fixed before either was scored on the test faces.

    Returns
    -------
    dict
        The chosen ``final`` entry (``members``, test summary; ``weights`` for the weighted
        vote) with ``selection`` (``"equal weights"`` or ``"weighted"``).
    """
    weighted = run.get("weighted")
    if weighted and weighted["validation accuracy"] > weighted["equal validation accuracy"]:
        return {**weighted["final"], "selection": "weighted"}
    return {**run["final"], "selection": "equal weights"}


def recorded_ten_view_study(path: str | Path | None = None,
                            models_dir: str | Path | None = None,
                            data_checksum: str | None = None
                            ) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """What :data:`TEN_VIEW_SCRIPT` measured (:func:`ten_view_study`): the ten-view ensemble
    table, the paired gains over flips, and the rest of the record (members, top row, the
    ``final`` ensemble reported for it, command, hardware, time). Its ``flip_validation``
    maps every combination of the candidates (members joined by `` + ``) to its validation
    accuracy with flips, ready for
    :func:`ensemble_table`'s ``validation``: the choice among the candidates, without
    predicting the validation faces again.

    Raises
    ------
    FileNotFoundError
        When there is no record; the message gives the command that writes one.
    ValueError
        When a candidate's weights changed since the record was made, when a refit of a
        top-row member was trained or removed since (:func:`final_model`), or (given
        ``data_checksum``, the archive's :attr:`FerData.checksum`) it was measured on another
        archive: it would describe models or faces that are gone, so it must be measured again.
    """
    stored = _measurement_file(path, "ten_view_study.json", TEN_VIEW_SCRIPT)
    if data_checksum is not None and stored.get("data_checksum") != data_checksum:
        raise ValueError(f"The ten-view study was measured on another archive than the one "
                         f"loaded: measure it again with `python {TEN_VIEW_SCRIPT} --json "
                         "models/ten_view_study.json`.")
    # a record made before any refit of its top row's members reports that row itself
    stored.setdefault("final", stored["top"])
    refits_now = [final_model(name, models_dir) for name in stored["top"]["members"]]
    weighted = stored.get("weighted")
    weighted_now = ([final_model(name, models_dir) for name in weighted["weights"]]
                    if weighted else [])
    if stored["final"]["members"] != refits_now or (
            weighted and weighted["final"]["members"] != weighted_now):
        reported = [*stored["final"]["members"], *(weighted["final"]["members"]
                                                    if weighted else [])]
        raise ValueError(f"The ten-view study reports {reported}, but the chosen members "
                         f"are now reported as {[*refits_now, *weighted_now]} (a refit was "
                         f"trained or removed): measure it again with `python "
                         f"{TEN_VIEW_SCRIPT} --json models/ten_view_study.json`.")
    unchecked = ((set(stored["candidates"]) | set(refits_now) | set(weighted_now))
                 - set(stored["weights_sha256"]))
    if unchecked:
        raise ValueError(f"The ten-view record has no weight checksum for {sorted(unchecked)}: "
                         f"measure it again with `python {TEN_VIEW_SCRIPT} --json "
                         "models/ten_view_study.json`.")
    for name, checksum in stored["weights_sha256"].items():
        model_file = store.models_dir(models_dir) / f"{name}.keras"
        if not model_file.is_file() or store.weights_checksum(model_file) != checksum:
            raise ValueError(f"The ten-view study was measured on another '{name}' than the one "
                             f"in {store.models_dir(models_dir)}: measure it again with "
                             f"`python {TEN_VIEW_SCRIPT} --json models/ten_view_study.json`.")
    ensembles = pd.DataFrame.from_dict(stored["ensembles"], orient="index")
    gains = pd.DataFrame.from_dict(stored["gains"], orient="index")
    combinations = ensemble_combinations(stored["candidates"])
    accuracies = stored.pop("flip_validation_accuracy")
    if len(accuracies) != len(combinations):
        raise ValueError(f"The ten-view record lists {len(accuracies)} validation accuracies "
                         f"for {len(combinations)} combinations of its candidates: measure it "
                         f"again with `python {TEN_VIEW_SCRIPT} --json "
                         "models/ten_view_study.json`.")
    run = {key: value for key, value in stored.items() if key not in ("ensembles", "gains")}
    run["flip_validation"] = {" + ".join(members): accuracy for members, accuracy in
                              zip(combinations, accuracies, strict=True)}
    return ensembles, gains, run


def most_confused_pairs(confusion: np.ndarray, top: int = 5) -> pd.DataFrame:
    """The largest off-diagonal entries of a row-normalized confusion matrix.

    Returns
    -------
    pandas.DataFrame
        Columns ``true``, ``predicted`` and ``share of true class (%)``, largest first.
    """
    matrix = np.asarray(confusion, np.float64)
    if matrix.shape != (len(CLASS_NAMES), len(CLASS_NAMES)):
        raise ValueError(f"Expected a {len(CLASS_NAMES)}x{len(CLASS_NAMES)} confusion matrix, "
                         f"got shape {matrix.shape}.")
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, -np.inf)
    order = np.argsort(off_diagonal, axis=None)[::-1][:top]
    rows = [{"true": CLASS_NAMES[i], "predicted": CLASS_NAMES[j],
             "share of true class (%)": round(100 * matrix[i, j], 1)}
            for i, j in zip(*np.unravel_index(order, matrix.shape), strict=True)]
    return pd.DataFrame(rows)


def confused_examples(probabilities: np.ndarray, data: FerData, true: str, predicted: str,
                      count: int = 8) -> FerData:
    """Faces of class ``true`` predicted as ``predicted``, the most confident mistakes first."""
    for name in (true, predicted):
        if name not in CLASS_NAMES:
            raise ValueError(f"Unknown class {name!r}; classes are {', '.join(CLASS_NAMES)}.")
    wanted, guessed = CLASS_NAMES.index(true), CLASS_NAMES.index(predicted)
    mask = (data.labels == wanted) & (probabilities.argmax(axis=1) == guessed)
    positions = np.flatnonzero(mask)
    positions = positions[np.argsort(-probabilities[positions, guessed])][:count]
    return data.select(positions)


def size_study_table(models_dir: str | Path, test: FerData,
                     extra: Sequence[str] = (), extra_dir: str | Path | None = None
                     ) -> pd.DataFrame:
    """Test accuracy against the number of training images.

    Every run recorded in ``models_dir`` (e.g. the learning-curve or transfer runs) plus the
    named ``extra`` reference models from ``extra_dir``; the JSON records give each model's
    architecture, training-set size and whether it started from pretrained weights. A run
    whose weights are kept is scored from them; a run kept as a record only is read from the
    test metrics its training command computed from the same weights when it saved them (the
    ``scored from`` column says which).

    Raises
    ------
    ValueError
        When a record-only run was scored on other faces than ``test``.
    """
    sources = [(path.stem, Path(models_dir)) for path in sorted(Path(models_dir).glob("*.json"))]
    sources += [(name, store.models_dir(extra_dir)) for name in extra]
    rows = []
    for name, folder in sources:
        if (Path(folder) / f"{name}.keras").exists():
            metrics, record = evaluate_reference(name, test, models_dir=folder)
            accuracy, macro_f1, scored_from = metrics.accuracy, metrics.macro_f1, "weights"
        else:
            record = read_record(name, folder)
            recorded = _recorded_scores(record, "test", test, name)
            accuracy, macro_f1 = recorded["accuracy"], recorded["macro_f1"]
            scored_from = "record"
        config = record.get("config", {})
        rows.append({"run": name, "model": record.get("model", name),
                     "train images": record.get("train_images"),
                     "initialized from": Path(config["init_from"]).stem
                     if config.get("init_from") else "random",
                     "epochs": config.get("epochs"),
                     "accuracy": round(accuracy * 100, 1),
                     "macro_f1": round(macro_f1 * 100, 1),
                     "parameters": record.get("parameters"),
                     "seconds per epoch": record.get("seconds_per_epoch"),
                     "scored from": scored_from})
    return pd.DataFrame(rows).sort_values(["model", "train images"]).reset_index(drop=True)


def config_changes(config: dict, base: dict) -> str:
    """What a training configuration changes from a base configuration, in words.

    Model options (e.g. ``width``) and the effective augmentation (the study's defaults
    overridden by the run's ``augmentation`` entries; none when ``augment`` is off) are compared
    field by field; the run's name and seed are not. ``"(base)"`` when nothing differs.
    """
    def flat(settings: dict) -> dict:
        flattened = {key: value for key, value in settings.items()
                     if key not in ("model_options", "augmentation", "augment", "seed")}
        flattened.update(settings.get("model_options") or {})
        augmentation = (models.Augmentation(**(settings.get("augmentation") or {}))
                        if settings.get("augment", True) else models.Augmentation.none())
        flattened.update({f"augment {key}": value
                          for key, value in vars(augmentation).items()})
        return flattened

    run, reference = flat(config), flat(base)
    changes = [f"{key} {reference.get(key)}\u2192{run.get(key)}"
               for key in sorted(set(run) | set(reference))
               if run.get(key) != reference.get(key)]
    return ", ".join(changes) or "(base)"


def recipe_study_table(models_dir: str | Path, validation: FerData, test: FerData,
                       base: str = "base") -> pd.DataFrame:
    """Short proxy runs that each change one thing from a base run, scored from their weights.

    Every run recorded in ``models_dir`` is evaluated on the validation split (which chooses
    the recipe) and on the test set (which only reports it), both from the final weights, so a
    run that ends on averaged weights (EMA) is judged by what it saved. A run kept as a record
    only (its weights left out of the repository to keep it small) is read from the validation
    and test metrics computed from the same weights when they were saved; the ``scored from``
    column says which.

    Returns
    -------
    pandas.DataFrame
        Indexed by run: what it changes from ``base`` (:func:`config_changes`), validation and
        test accuracy and macro F1 in %, the differences from the base run in points, the
        training minutes and what the scores were read from; the base first, then by
        validation accuracy.

    Raises
    ------
    FileNotFoundError
        When ``models_dir`` has no record named ``base``.
    ValueError
        When a record-only run has no validation scores, or was scored on other faces.
    """
    base_record = read_record(base, models_dir)
    rows = {}
    for path in sorted(Path(models_dir).glob("*.json")):
        record = read_record(path.stem, models_dir)
        if path.with_suffix(".keras").is_file():
            scored_validation, scored_test = (
                score(reference_predictions(path.stem, faces, models_dir=models_dir),
                      faces).summary() for faces in (validation, test))
            scored_from = "weights"
        else:
            scored_validation, scored_test = (
                _recorded_scores(record, split, faces, path.stem)
                for split, faces in (("validation", validation), ("test", test)))
            scored_from = "record"
        rows[path.stem] = {
            "change": config_changes(record.get("config", {}), base_record.get("config", {})),
            "validation accuracy": round(scored_validation["accuracy"] * 100, 1),
            "test accuracy": round(scored_test["accuracy"] * 100, 1),
            "test macro_f1": round(scored_test["macro_f1"] * 100, 1),
            "minutes": round(record.get("training_seconds", np.nan) / 60, 1),
            "scored from": scored_from}
    table = pd.DataFrame.from_dict(rows, orient="index")
    for column in ("validation accuracy", "test accuracy"):
        table[f"{column.split()[0]} \u0394"] = (table[column] - table.loc[base, column]).round(1)
    others = table.drop(index=base).sort_values("validation accuracy", ascending=False)
    order = [base, *others.index]
    return table.loc[order]


def _recorded_scores(record: dict, split: str, faces: FerData, name: str) -> dict:
    """The metrics a record-only run's training command computed on ``split`` from its saved
    weights, after checking that they were computed on as many faces as ``faces``."""
    scores = record.get(split)
    if not scores:
        raise ValueError(f"'{name}' keeps only its record, which has no {split} scores: "
                         f"restore its weights, or add them with scripts/record_scores.py.")
    if scores.get("images") != len(faces):
        raise ValueError(f"'{name}' keeps only its record, which scored "
                         f"{scores.get('images')} {split} faces, not these {len(faces)}: "
                         "pass the whole split, or retrain it.")
    return scores


def recorded_speed_settings(path: str | Path | None = None) -> tuple[pd.DataFrame, dict]:
    """The table ``scripts/speed_settings.py --json`` measured (training images/s per setting,
    speed-up over the base) and the hardware it was measured on.

    Raises
    ------
    FileNotFoundError
        When there is no such file; the message gives the command that writes one.
    """
    stored = _measurement_file(path, "speed_settings.json", "scripts/speed_settings.py")
    return pd.DataFrame(stored["results"]).set_index("setting"), stored["hardware"]


def results_table(names: Sequence[str], models_dir: str | Path | None = None) -> pd.DataFrame:
    """The headline numbers of reference models as their records give them (no recomputation,
    no test-time augmentation): for the README, which cannot run models."""
    rows = {}
    for name in names:
        record = read_record(name, models_dir)
        test = record["test"]
        lineage = record.get("lineage") or {}
        rows[name] = {
            "model": record["model"], "training pixels": training_pixels(record.get(
                "data_checksum")),
            "test accuracy %": round(100 * test["accuracy"], 1),
            "PublicTest %": round(100 * test["accuracy_PublicTest"], 1),
            "PrivateTest %": round(100 * test["accuracy_PrivateTest"], 1),
            "macro F1 %": round(100 * test["macro_f1"], 1),
            "parameters": f"{record['parameters']:,}",
            "epochs": lineage.get("epochs", record.get("config", {}).get("epochs")),
            "s/epoch": record.get("seconds_per_epoch"),
            "CPU": record.get("hardware", {}).get("cpu", "?")}
    return pd.DataFrame.from_dict(rows, orient="index")


def chosen_by_validation(names: Sequence[str], models_dir: str | Path | None = None) -> str:
    """The model whose record holds the highest validation accuracy of its training run.

    The choice a reader could make before ever seeing a test label: each record keeps the
    validation curve its run's checkpoint was chosen on.

    Raises
    ------
    ValueError
        When ``names`` is empty or a record has no validation curve.
    """
    if not names:
        raise ValueError("chosen_by_validation needs at least one model name.")
    best = {}
    for name in names:
        record = read_record(name, models_dir)
        curve = record.get("validation_curve") or {}
        if record.get("config", {}).get("refit"):
            raise ValueError(f"'{name}' is a refit: it trained on the validation faces, so they "
                             "cannot choose it. Choose among the runs that held them out, then "
                             "refit the chosen recipe.")
        if not curve.get("val_accuracy"):
            raise ValueError(f"The record of '{name}' has no validation curve; retrain it with "
                             "fer-core train, which records one.")
        best[name] = max(curve["val_accuracy"])
    return max(best, key=best.get)


def final_model(name: str, models_dir: str | Path | None = None) -> str:
    """The model to report for ``name``, chosen on validation: its refit if one was trained.

    A refit (``fer-core train ... --refit``) learns the chosen model's recipe, or continues
    it, on the training and validation faces together, so the validation faces can no longer
    choose or tune it. The rule is fixed before any test score is seen: once the validation
    faces have chosen ``name``, a record ``<name>_refit`` made with ``--refit`` replaces it,
    whatever its test accuracy.

    Raises
    ------
    ValueError
        When ``<name>_refit`` exists but was not trained with ``--refit``.
    """
    refit = f"{name}_refit"
    try:
        record = read_record(refit, models_dir)
    except FileNotFoundError:
        return name
    if not record.get("config", {}).get("refit"):
        raise ValueError(f"'{refit}' is named as the refit of '{name}' but was not trained "
                         "with --refit; rename it or retrain it with --refit.")
    return refit


def target_table(measured: dict[str, tuple[str, float]]) -> pd.DataFrame:
    """Each campaign target (:data:`CAMPAIGN_TARGETS`) next to what was measured for it.

    Parameters
    ----------
    measured : dict
        Target name -> (what reached it, measured value in the target's unit).

    Returns
    -------
    pd.DataFrame
        One row per target: ``goal``, ``measured``, ``margin`` (measured minus goal; both
        to two decimals), ``met`` and ``by`` (what was measured).

    Raises
    ------
    ValueError
        For a target name that is not a campaign target.
    """
    unknown = sorted(set(measured) - set(CAMPAIGN_TARGETS))
    if unknown:
        raise ValueError(f"Unknown target(s) {unknown}; the campaign's targets are "
                         f"{list(CAMPAIGN_TARGETS)}.")
    # two decimals: a margin of a few faces (0.014 points each of 7,178) must not round to 0
    rows = {target: {"goal": CAMPAIGN_TARGETS[target], "measured": round(value, 2),
                     "margin": round(value - CAMPAIGN_TARGETS[target], 2),
                     "met": bool(value >= CAMPAIGN_TARGETS[target]), "by": by}
            for target, (by, value) in measured.items()}
    return pd.DataFrame.from_dict(rows, orient="index")
