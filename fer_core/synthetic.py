"""Synthetic 48x48 faces whose expression encodes the class, for fast and meaningful tests.

Each class has its own mouth curve, brow slant and eye opening, so a model that learns the
task must look at facial structure; ``mouth_only=True`` keeps every feature but the mouth fixed,
so an explanation method must point at the mouth.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fer_core.config import CLASS_NAMES, IMAGE_SIZE, SEED
from fer_core.data import FerData

# (mouth curvature: + smile / - frown, mouth opening, brow slant, eye height) per class
_EXPRESSIONS = {
    "angry": (-0.6, 0, -1.0, 2),
    "disgust": (-0.3, 2, -0.5, 1),
    "fear": (-0.2, 5, 0.8, 4),
    "happy": (1.0, 1, 0.0, 2),
    "neutral": (0.0, 0, 0.0, 2),
    "sad": (-1.0, 0, 0.7, 2),
    "surprise": (0.0, 8, 1.0, 4),
}
MOUTH_BOX = (30, 44, 12, 36)  # rows, columns of the mouth region in a synthetic face
EYES_BOX = (13, 24, 8, 40)


def draw_face(label: int, rng: np.random.Generator, noise: float = 8.0,
              mouth_only: bool = False) -> np.ndarray:
    """Draw one face of class ``label`` as a 48x48 ``uint8`` image."""
    curve, opening, brow, eye = _EXPRESSIONS[CLASS_NAMES[label]]
    if mouth_only:
        brow, eye = 0.0, 2
    image = np.full((IMAGE_SIZE, IMAGE_SIZE), 40, np.uint8)
    jitter = rng.integers(-1, 2, size=2)
    center = (24 + int(jitter[0]), 25 + int(jitter[1]))
    cv2.ellipse(image, center, (17, 22), 0, 0, 360, int(rng.integers(150, 200)), -1)
    for side in (-1, 1):
        eye_x = center[0] + side * 8
        cv2.ellipse(image, (eye_x, center[1] - 6), (3, eye), 0, 0, 360, 30, -1)
        inner, outer = (eye_x - side * 4, center[1] - 12), (eye_x + side * 4, center[1] - 12)
        # brow < 0 pulls the inner ends down (a frown), brow > 0 raises them
        inner = (inner[0], inner[1] - round(brow * 2))
        outer = (outer[0], outer[1] + round(brow * 2))
        cv2.line(image, inner, outer, 20, 2)
    mouth_y = center[1] + 10
    xs = np.arange(-8, 9)
    ys = mouth_y + curve * 4 * (1 - (xs / 8.0) ** 2)
    points = np.stack([xs + center[0], ys], axis=1).round().astype(np.int32)
    cv2.polylines(image, [points], False, 25, 2)
    if opening:
        cv2.ellipse(image, (center[0], mouth_y + 1), (5, max(1, opening // 2)), 0, 0, 360, 15, -1)
    noisy = image.astype(np.float32) + rng.normal(0, noise, image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def synthetic_faces(count: int = 700, seed: int = SEED, noise: float = 8.0,
                    mouth_only: bool = False, usage: str = "Training") -> FerData:
    """A balanced set of ``count`` synthetic faces with ids ``Synthetic_<n>``.

    Parameters
    ----------
    count : int
        Number of faces (classes cycle, so the set is balanced).
    seed : int
        Random seed: the same seed gives the same faces.
    noise : float
        Standard deviation of added Gaussian pixel noise (0..255 scale).
    mouth_only : bool
        Only the mouth differs between classes.
    usage : str
        ``Training``, ``PublicTest`` or ``PrivateTest``.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(CLASS_NAMES)
    images = np.stack([draw_face(int(k), rng, noise, mouth_only) for k in labels])
    return FerData(images, labels.astype(np.int64),
                   np.array([f"Synthetic_{seed}_{i}" for i in range(count)]),
                   np.array([usage] * count, dtype="<U11"))


def synthetic_dataset(train: int = 700, test: int = 140, seed: int = SEED,
                      **options) -> FerData:
    """Training and test synthetic faces in one :class:`FerData`, ready for ``split_data``."""
    first = synthetic_faces(train, seed, usage="Training", **options)
    second = synthetic_faces(test, seed + 1, usage="PublicTest", **options)
    return FerData(np.concatenate([first.images, second.images]),
                   np.concatenate([first.labels, second.labels]),
                   np.concatenate([first.ids, second.ids]),
                   np.concatenate([first.usage, second.usage]), checksum=f"synthetic-{seed}")


def write_kaggle_tree(data: FerData, root: str | Path) -> Path:
    """Write images in the Kaggle layout (``train|test/<class>/<id>.png``, lossless)."""
    root = Path(root)
    for image, label, image_id, usage in zip(data.images, data.labels, data.ids, data.usage,
                                             strict=True):
        split = "train" if usage == "Training" else "test"
        prefix = "" if str(image_id).startswith(("Training", "Public", "Private")) else (
            "Training_" if split == "train" else f"{usage}_")
        folder = root / split / CLASS_NAMES[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"{prefix}{image_id}.png"), image)
    return root
