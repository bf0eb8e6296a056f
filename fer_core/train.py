"""Training: one function and one CLI command for every classifier.

Runs are seeded, resumable (a killed run continues from its last finished epoch), keep their
best-on-validation weights, log their history, and end with a self-contained ``.keras`` file and a
JSON record saying how it was made and what it scored.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

from fer_core.config import CLASS_NAMES, SEED, Profile, get_profile, set_seeds
from fer_core.data import FerData, Splits
from fer_core.models import Augmentation, build_model

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS_DIR = REPOSITORY / "models"


@dataclass
class TrainConfig:
    """Everything that decides a training run (saved in its JSON record).

    Attributes
    ----------
    model : str
        Registered model name.
    epochs, batch_size : int
        Training length and mini-batch size (from the profile unless given).
    learning_rate, weight_decay : float
        AdamW settings; the rate follows a warm-up then cosine decay to zero.
    label_smoothing : float
        Cross-entropy label smoothing.
    augment : bool
        Use :class:`~fer_core.models.Augmentation` (the study's augmentation).
    class_weights : bool
        Weight the loss by inverse class frequency ("balanced").
    exclude_outliers : bool
        Drop the committed autoencoder outliers from the training split.
    denoise : bool
        Non-local-means denoise every image (train, validation and test) first.
    train_subset : int or None
        Use a seeded subset of this many training images.
    precision : str
        ``float32``, ``mixed_bfloat16`` or ``auto`` (bfloat16 only where the CPU has native
        bfloat16 instructions; elsewhere it is emulated and slower).
    distribute : str
        ``none``, ``mirrored`` (several GPUs or logical devices) or ``multiworker``.
    seed : int
        The seed for weights, shuffling and augmentation.
    model_options : dict
        Extra keyword arguments for the model builder.
    init_from : str or None
        A saved ``.keras`` model whose weights start this run: every layer with the same name
        and weight shapes is copied (a warm restart of the same architecture, or transfer of a
        pretrained encoder into a classifier). None: random initialization.
    """

    model: str
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    augment: bool = True
    class_weights: bool = False
    exclude_outliers: bool = False
    denoise: bool = False
    train_subset: int | None = None
    precision: str = "float32"
    distribute: str = "none"
    seed: int = SEED
    model_options: dict = field(default_factory=dict)
    init_from: str | None = None

    @classmethod
    def from_profile(cls, model: str, profile: Profile | None = None, **changes) -> TrainConfig:
        """A config whose length and data size come from the budget profile."""
        profile = profile or get_profile()
        settings = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                    "train_subset": profile.train_subset}
        settings.update(changes)
        return cls(model=model, **settings)


@dataclass
class TrainResult:
    """What :func:`train_model` returns."""

    model: keras.Model
    history: pd.DataFrame
    config: TrainConfig
    seconds: float
    seconds_per_epoch: float
    train_images_per_second: float
    train_size: int
    git_commit: str = "unknown"  # the code that ran, read when training started


def cpu_has_native_bfloat16() -> bool:
    """True when the CPU advertises AVX-512 BF16 or AMX instructions."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """Turn ``auto`` into the policy worth using on this machine."""
    if precision == "auto":
        return "mixed_bfloat16" if cpu_has_native_bfloat16() else "float32"
    if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
        raise ValueError(f"Unknown precision {precision!r}: use float32, mixed_bfloat16, "
                         "mixed_float16 or auto.")
    return precision


def distribution_strategy(name: str) -> tf.distribute.Strategy:
    """TensorFlow's own engine for more than one device or machine.

    ``none`` is the default single-device strategy; ``mirrored`` copies the model onto every
    visible GPU (or logical CPU device) and averages gradients; ``multiworker`` does the same
    across machines configured by ``TF_CONFIG``.
    """
    strategies = {"none": tf.distribute.get_strategy,
                  "mirrored": tf.distribute.MirroredStrategy,
                  "multiworker": tf.distribute.MultiWorkerMirroredStrategy}
    if name not in strategies:
        raise ValueError(f"Unknown distribution strategy {name!r}: use {', '.join(strategies)}.")
    return strategies[name]()


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights (scikit-learn's "balanced"): rare classes count more."""
    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=labels)
    return {int(k): float(w) for k, w in zip(present, weights, strict=True)}


def training_dataset(data: FerData, batch_size: int, seed: int,
                     class_weights: dict[int, float] | None = None) -> tf.data.Dataset:
    """Shuffled, repeating, batched dataset of (pixels 0..255, label[, weight]).

    A repeating dataset with a fixed ``steps_per_epoch`` and autotuning off avoids the idle
    pauses measured at epoch boundaries on 2-core machines.
    """
    tensors: tuple = (data.model_input(), data.labels.astype(np.int32))
    if class_weights is not None:
        table = np.array([class_weights.get(k, 1.0) for k in range(len(CLASS_NAMES))],
                         np.float32)
        tensors = (*tensors, table[data.labels])
    dataset = tf.data.Dataset.from_tensor_slices(tensors)
    dataset = dataset.shuffle(len(data), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    options.deterministic = True
    return dataset.with_options(options)


class _KeepBest(keras.callbacks.Callback):
    """Keep the weights with the best validation accuracy, surviving a resume."""

    def __init__(self, weights_file: Path, state_file: Path):
        super().__init__()
        self.weights_file, self.state_file = weights_file, state_file
        self.best = (json.loads(state_file.read_text())["best"] if state_file.exists()
                     else -np.inf)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        score = (logs or {}).get("val_accuracy")
        if score is not None and score > self.best:
            self.best = float(score)
            self.model.save_weights(self.weights_file)
            self.state_file.write_text(json.dumps({"best": self.best, "epoch": epoch + 1}))


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.durations: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.durations.append(time.perf_counter() - self._start)


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy weights from ``source`` into every ``target`` layer of the same name and shapes.

    Returns
    -------
    list of str
        Names of the layers copied.

    Raises
    ------
    ValueError
        When no layer matches, since a silent no-op would pass off random weights as transfer.
    """
    available = {layer.name: layer for layer in source.layers}
    copied = []
    for layer in target.layers:
        donor = available.get(layer.name)
        weights = layer.get_weights()
        if donor is None or not weights:
            continue
        donated = donor.get_weights()
        if [w.shape for w in donated] == [w.shape for w in weights]:
            layer.set_weights(donated)
            copied.append(layer.name)
    if not copied:
        raise ValueError(f"No layer of '{source.name}' matches a layer of '{target.name}' by name "
                         "and shape: nothing to initialize from.")
    return copied


def prepare_training_data(splits: Splits, config: TrainConfig) -> Splits:
    """Apply the run's data switches: outlier filter, subset, denoising."""
    from fer_core import denoise, outliers  # lazily: OpenCV work only when switched on

    train = splits.train
    if config.exclude_outliers:
        train = outliers.exclude_outliers(train)
    train = train.head(config.train_subset, config.seed)
    prepared = Splits(train, splits.validation, splits.test)
    return denoise.denoise_splits(prepared) if config.denoise else prepared


def train_model(splits: Splits, config: TrainConfig, run_dir: str | Path | None = None,
                verbose: int | str = "auto") -> TrainResult:
    """Train a registered model on ``splits.train``, validating on ``splits.validation``.

    Parameters
    ----------
    splits : Splits
        Data from :func:`fer_core.data.load_splits` (switches in ``config`` are applied here).
    config : TrainConfig
        What to train and how.
    run_dir : str or Path, optional
        Folder for checkpoints and the history log. When it holds an unfinished run of the same
        config, training resumes from its last finished epoch. Default: a new temporary folder.
    verbose : int or "auto"
        Keras progress output.
    """
    commit = git_commit()
    set_seeds(config.seed)
    keras.mixed_precision.set_global_policy(resolve_precision(config.precision))
    data = prepare_training_data(splits, config)
    weights = balanced_class_weights(data.train.labels) if config.class_weights else None
    steps = max(1, len(data.train) // config.batch_size)
    strategy = distribution_strategy(config.distribute)
    with strategy.scope():
        model = build_model(config.model, Augmentation() if config.augment else None,
                            **config.model_options)
        if config.init_from:
            transfer_weights(keras.models.load_model(_resolve(config.init_from), compile=False),
                             model)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, steps * config.epochs - steps),
            warmup_target=config.learning_rate, warmup_steps=steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay),
                      loss=keras.losses.CategoricalCrossentropy(
                          label_smoothing=config.label_smoothing),
                      metrics=["accuracy"])
    one_hot = _OneHot(len(CLASS_NAMES))
    train_data = training_dataset(data.train, config.batch_size, config.seed, weights).map(one_hot)
    validation = (data.validation.model_input(),
                  keras.utils.to_categorical(data.validation.labels, len(CLASS_NAMES)))
    # Without a folder, checkpoints go to a fresh temporary one: nothing to resume, nothing left
    # in the reader's working directory.
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix=f"fer-{config.model}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_config(run_dir, config)
    timer = _EpochTimer()
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        _KeepBest(run_dir / "best.weights.h5", run_dir / "best.json"), timer]
    start = time.perf_counter()
    model.fit(train_data, epochs=config.epochs, steps_per_epoch=steps, validation_data=validation,
              validation_batch_size=256, callbacks=callbacks, verbose=verbose)
    seconds = time.perf_counter() - start
    if (run_dir / "best.weights.h5").exists():
        model.load_weights(run_dir / "best.weights.h5")
    history = pd.read_csv(run_dir / "history.csv").drop_duplicates("epoch", keep="last")
    per_epoch = float(np.median(timer.durations)) if timer.durations else float("nan")
    keras.mixed_precision.set_global_policy("float32")
    return TrainResult(model, history.reset_index(drop=True), config, seconds, per_epoch,
                       steps * config.batch_size / per_epoch, len(data.train), commit)


def _resolve(path: str) -> Path:
    """A model path as given, or relative to the repository (records store it that way)."""
    candidate = Path(path)
    if not candidate.exists() and (REPOSITORY / candidate).exists():
        candidate = REPOSITORY / candidate
    if not candidate.exists():
        raise FileNotFoundError(f"Cannot initialize from '{path}': no such model file. Train it "
                                "first or give the path of a saved .keras model.")
    return candidate


class _OneHot:
    """Map labels to one-hot vectors (label smoothing needs categorical targets)."""

    def __init__(self, classes: int):
        self.classes = classes

    def __call__(self, pixels, labels, *weights):
        return (pixels, tf.one_hot(labels, self.classes), *weights)


def _check_same_config(run_dir: Path, config: TrainConfig) -> None:
    stored = run_dir / "config.json"
    current = asdict(config)
    if stored.exists() and json.loads(stored.read_text()) != current:
        raise ValueError(f"'{run_dir}' holds a run with a different configuration; resume it "
                         "with the same settings, or choose another run folder (--run-dir).")
    stored.write_text(json.dumps(current, indent=2))


def hardware_description() -> dict:
    """CPU model, core count and library versions, for JSON records."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(),
            "gpus": len(tf.config.list_physical_devices("GPU")),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "keras": keras.__version__, "backend": keras.backend.backend()}


def git_commit() -> str:
    """The repository's current commit (with ``+dirty`` for uncommitted changes), or ``unknown``."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPOSITORY, text=True,
                                capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPOSITORY, text=True, capture_output=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def save_reference(result: TrainResult, splits: Splits, name: str | None = None,
                   models_dir: str | Path = MODELS_DIR, profile: str = "full") -> Path:
    """Save ``<name>.keras`` (weights and graph, no optimizer) and ``<name>.json``.

    The record holds the test metrics, the validation curve, the config, the exact command,
    seed, data checksum, git commit, training time and hardware.
    """
    from fer_core.evaluate import evaluate_model

    name = name or result.config.model
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    test = prepare_training_data(splits, result.config).test
    metrics = evaluate_model(result.model, test)
    inference_start = time.perf_counter()
    result.model.predict(test.model_input()[:2048], batch_size=256, verbose=0)
    inference_rate = min(2048, len(test)) / (time.perf_counter() - inference_start)
    # A fresh functional wrapper is uncompiled, so the file holds no optimizer state.
    keras.Model(result.model.inputs, result.model.outputs, name=result.model.name).save(
        models_dir / f"{name}.keras")
    record = {
        "name": name, "model": result.config.model, "profile": profile,
        "test": metrics.summary(),
        "per_class": metrics.per_class.round(4).reset_index(names="class").to_dict("records"),
        "validation_curve": result.history.round(5).to_dict("list"),
        "config": asdict(result.config), "command": " ".join(["fer-core", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("fer-core", "__main__.py") else " ".join(sys.argv),
        "seed": result.config.seed, "data_checksum": splits.train.checksum,
        "train_images": result.train_size, "parameters": int(result.model.count_params()),
        "git_commit": result.git_commit, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
        "training_seconds": round(result.seconds, 1),
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "train_images_per_second": round(result.train_images_per_second, 1),
        "inference_images_per_second": round(inference_rate, 1),
        "hardware": hardware_description(),
    }
    (models_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return models_dir / f"{name}.keras"
