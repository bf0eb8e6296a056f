"""Training: one function and one CLI command for every classifier.

Runs are seeded, resumable (a killed run continues from its last finished epoch), keep their
best-on-validation weights, log their history, and end with a self-contained ``.keras`` file and a
JSON record saying how it was made and what it scored.
"""

from __future__ import annotations

import inspect
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

from fer_core import distill
from fer_core.config import CLASS_NAMES, SEED, Profile, get_profile, set_seeds
from fer_core.config import models_dir as configured_models_dir
from fer_core.config import runs_dir as config_runs_dir
from fer_core.data import FerData, Splits

# Imported with the rest, not when a run saves: a long run saves hours after it started, and a
# module edited in between (an editable install) must not fail its save step.
from fer_core.evaluate import evaluate_model
from fer_core.models import (
    MODEL_BUILDERS,
    Augmentation,
    available_models,
    build_model,
    predict_in_batches,
)
from fer_core.store import in_float32, load_model_file, save_model_file, weights_checksum

REPOSITORY = Path(__file__).resolve().parent.parent
MODELS_DIR = configured_models_dir()


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
    optimizer : str
        ``adamw`` (AdamW) or ``sgd`` (SGD with Nesterov momentum 0.9 and the same decoupled
        weight decay); both follow the warm-up + cosine schedule.
    ema : bool
        Keep an exponential moving average of the weights (momentum 0.999) and end with it.
    augmentation : dict
        Changes to :class:`~fer_core.models.Augmentation`'s defaults, e.g. ``{"crop": 4}``.
    soft_targets : str or None
        Train towards soft targets as well as the labels (:mod:`fer_core.distill`):
        ``ensemble:<model>+<model>...`` distils committed models, ``ferplus`` uses the FER+
        annotators' vote distributions. None: labels only.
    teacher : str or None
        ``<model>+<model>...``: committed models that teach *consistently*
        (:func:`fer_core.distill.with_teacher`): they predict each training batch on the very
        augmented view the student sees, instead of once on the plain faces
        (``soft_targets``). Slower (every step runs the teachers too); at most one of the two.
    soft_weight, soft_temperature : float
        Weight ``w`` of the soft term (the label's cross-entropy gets ``1 - w``) and the
        temperature ``T`` both distributions are softened at.
    refit : bool
        Train on the training and validation splits together: the final refit of a recipe
        already chosen on the validation faces (scikit-learn's ``refit``). No faces are left to
        choose an epoch with, so the run ends with its last epoch, and its record has no
        validation curve; the outlier filter still applies to the training split only.
    mixup, cutmix : float
        Batch-level augmentations of the training batches only (0: off; at most one of the
        two): MixUp blends pairs of faces and their labels with a Beta(alpha, alpha) weight
        (``mixup`` is alpha); CutMix pastes a patch of one face into another and mixes the
        labels by area (``cutmix`` is the largest mixing factor). Keras' own layers.
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
    optimizer: str = "adamw"
    ema: bool = False
    augmentation: dict = field(default_factory=dict)
    soft_targets: str | None = None
    teacher: str | None = None
    soft_weight: float = 0.5
    soft_temperature: float = 1.0
    mixup: float = 0.0
    cutmix: float = 0.0
    refit: bool = False

    def __post_init__(self) -> None:
        """Refuse impossible settings at once, naming the option, before any folder is made."""
        if self.model not in MODEL_BUILDERS:
            raise ValueError(f"Unknown model {self.model!r}. Known models: "
                             f"{', '.join(available_models())}.")
        for option, value, smallest in (("epochs", self.epochs, 1),
                                        ("batch_size", self.batch_size, 1),
                                        ("train_subset", self.train_subset, 1)):
            if value is not None and (not isinstance(value, int) or value < smallest):
                raise ValueError(f"{option} must be a whole number of at least {smallest}, "
                                 f"got {value!r}.")
        if min(self.learning_rate, self.weight_decay) < 0:
            raise ValueError("learning_rate and weight_decay must not be negative.")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}.")
        accepted = set(inspect.signature(MODEL_BUILDERS[self.model]).parameters) - {
            "augmentation"}
        unknown = set(self.model_options) - accepted
        if unknown:
            raise ValueError(f"Model {self.model!r} has no option(s) {sorted(unknown)}; its "
                             f"options are {', '.join(sorted(accepted)) or 'none'}.")
        for option, value in self.model_options.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value <= 0 \
                    and option != "dropout":
                raise ValueError(f"Model option {option} must be positive, got {value}.")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"Unknown optimizer {self.optimizer!r}: use {', '.join(OPTIMIZERS)}.")
        if not 0 <= self.soft_weight <= 1 or self.soft_temperature <= 0:
            raise ValueError("soft_weight must be in [0, 1] and soft_temperature positive, got "
                             f"{self.soft_weight} and {self.soft_temperature}.")
        if self.teacher is not None and self.soft_targets:
            raise ValueError("Use soft_targets (fixed, computed once) or teacher (consistent, "
                             "computed on every augmented view), not both.")
        if self.teacher is not None and not self.teacher.strip("+"):
            raise ValueError("teacher names committed models: 'MODEL' or 'MODEL+MODEL'.")
        for option in ("mixup", "cutmix"):
            if not 0 <= getattr(self, option) <= 1:
                raise ValueError(f"{option} must be in [0, 1], got {getattr(self, option)}.")
        if self.mixup and self.cutmix:
            raise ValueError("Use mixup or cutmix, not both: the study changes one thing at a "
                             "time.")
        if (self.mixup or self.cutmix) and self.class_weights:
            raise ValueError("mixup and cutmix mix labels, which class weights (one weight per "
                             "label) cannot follow: use one or the other.")
        unknown = set(self.augmentation) - set(Augmentation.__dataclass_fields__)
        if unknown:
            raise ValueError(f"Unknown augmentation setting(s) {sorted(unknown)}: use "
                             f"{', '.join(Augmentation.__dataclass_fields__)}.")

    def build_augmentation(self) -> Augmentation | None:
        """The augmentation this run trains with (None when switched off)."""
        return Augmentation(**self.augmentation) if self.augment else None

    @classmethod
    def from_profile(cls, model: str, profile: Profile | None = None, **changes) -> TrainConfig:
        """A config whose length and data size come from the budget profile."""
        profile = profile or get_profile()
        settings = {"epochs": profile.epochs, "batch_size": profile.batch_size,
                    "train_subset": profile.train_subset}
        settings.update(changes)
        return cls(model=model, **settings)


OPTIMIZERS = ("adamw", "sgd")


def make_optimizer(config: TrainConfig, schedule) -> keras.optimizers.Optimizer:
    """The run's optimizer on the given learning-rate schedule."""
    common = {"weight_decay": config.weight_decay, "use_ema": config.ema,
              "ema_momentum": 0.999}
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, **common)
    return keras.optimizers.AdamW(schedule, **common)


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
    process_starts: int = 1  # how many processes (sessions) this run took, resumes included


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
                     class_weights: dict[int, float] | None = None,
                     soft_targets: np.ndarray | None = None) -> tf.data.Dataset:
    """Shuffled, repeating, batched dataset of (pixels 0..255, label[, soft target][, weight]).

    A repeating dataset with a fixed ``steps_per_epoch`` and autotuning off avoids the idle
    pauses measured at epoch boundaries on 2-core machines.
    """
    tensors: tuple = (data.model_input(), data.labels.astype(np.int32))
    if soft_targets is not None:
        tensors = (*tensors, np.asarray(soft_targets, np.float32))
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
    """Times each epoch; with a ``log`` file it also appends ``epoch,seconds`` for every
    finished epoch, so a run resumed by a later process still knows what its earlier epochs
    cost (:func:`_logged_seconds`)."""

    def __init__(self, log: Path | None = None):
        super().__init__()
        self.durations: list[float] = []
        self.log = log

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        duration = time.perf_counter() - self._start
        self.durations.append(duration)
        if self.log is not None:
            with self.log.open("a") as log:
                log.write(f"{epoch},{duration:.3f}\n")


def _logged_seconds(log: Path) -> float:
    """Seconds of the epochs an :class:`_EpochTimer` logged (0 without a log)."""
    if not log.is_file():
        return 0.0
    return sum(float(line.split(",")[1]) for line in log.read_text().splitlines() if line)


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
    """Apply the run's data switches: outlier filter, refit, subset, denoising."""
    from fer_core import denoise, outliers  # lazily: OpenCV work only when switched on

    train = splits.train
    if config.exclude_outliers:
        train = outliers.exclude_outliers(train)
    if config.refit:
        train = train.joined(splits.validation)
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
    soft = (distill.soft_target_matrix(config.soft_targets, data.train)
            if config.soft_targets else None)
    steps = max(1, len(data.train) // config.batch_size)
    strategy = distribution_strategy(config.distribute)
    with strategy.scope():
        model = build_model(config.model, config.build_augmentation(), **config.model_options)
        if config.init_from:
            # an autoencoder may start a classifier (transfer), so no classifier check here
            transfer_weights(load_model_file(_resolve(config.init_from), classifier=False),
                             model)
        schedule = keras.optimizers.schedules.CosineDecay(
            0.0, decay_steps=max(1, steps * config.epochs - steps),
            warmup_target=config.learning_rate, warmup_steps=steps)
        # the model fit trains: the student itself, or the student beside its teachers
        trained = model
        if config.teacher:
            trained = distill.with_teacher(model, distill.load_teachers(config.teacher))
            loss = distill.TeacherLoss(config.soft_weight, config.soft_temperature,
                                       config.label_smoothing)
        elif soft is None:
            loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
        else:
            loss = distill.SoftTargetLoss(config.soft_weight, config.soft_temperature,
                                          config.label_smoothing)
        metric = ("accuracy" if trained is model and soft is None else
                  keras.metrics.MeanMetricWrapper(distill.hard_label_accuracy, name="accuracy"))
        trained.compile(optimizer=make_optimizer(config, schedule), loss=loss, metrics=[metric])
    one_hot = _OneHot(len(CLASS_NAMES), soft=soft is not None)
    train_data = training_dataset(data.train, config.batch_size, config.seed, weights,
                                  soft).map(one_hot)
    mixing = batch_mixing(config)
    if mixing is not None:  # training batches only: validation faces are never mixed
        train_data = train_data.map(mixing)
    validation_targets = keras.utils.to_categorical(data.validation.labels, len(CLASS_NAMES))
    if soft is not None and not config.refit:
        # The teacher's view of the validation faces too, so that validation loss is the
        # training objective (with the label repeated, a softened student is scored against a
        # one-hot target and the two loss curves land on different scales). Checkpoints are
        # still chosen by accuracy on the labels alone.
        validation_targets = np.concatenate(
            [validation_targets,
             distill.soft_target_matrix(config.soft_targets, data.validation)], axis=1)
    # A refit trains on the validation faces, so scoring them would only repeat training accuracy
    validation = None if config.refit else (data.validation.model_input(), validation_targets)
    # Without a folder, checkpoints go to a fresh temporary one: nothing to resume, nothing left
    # in the reader's working directory.
    run_dir = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix=f"fer-{config.model}-"))
    run_dir.mkdir(parents=True, exist_ok=True)
    _check_same_config(run_dir, config)
    starts = _count_process_start(run_dir)
    # Epochs finished by earlier processes of this run (a resume): their time counts too, so
    # the record says what the whole run cost, not only its last process.
    epoch_log = run_dir / "epoch_seconds.csv"
    earlier_seconds = _logged_seconds(epoch_log)
    timer = _EpochTimer(epoch_log)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        keras.callbacks.CSVLogger(str(run_dir / "history.csv"), append=True),
        _KeepBest(run_dir / "best.weights.h5", run_dir / "best.json"), timer]
    start = time.perf_counter()
    trained.fit(train_data, epochs=config.epochs, steps_per_epoch=steps,
                validation_data=validation, validation_batch_size=256, callbacks=callbacks,
                verbose=verbose)
    seconds = earlier_seconds + time.perf_counter() - start
    # With EMA the averaged weights (swapped in by fit at its end) are the result; otherwise the
    # best epoch on validation (a refit has none, so it keeps its last epoch).
    if (run_dir / "best.weights.h5").exists() and not config.ema:
        trained.load_weights(run_dir / "best.weights.h5")
    history = pd.read_csv(run_dir / "history.csv").drop_duplicates("epoch", keep="last")
    # Keras' CSV log adds empty val_ columns to a run without validation data
    history = history.dropna(axis=1, how="all")
    per_epoch = float(np.median(timer.durations)) if timer.durations else float("nan")
    keras.mixed_precision.set_global_policy("float32")
    return TrainResult(model, history.reset_index(drop=True), config, seconds, per_epoch,
                       steps * config.batch_size / per_epoch, len(data.train), commit, starts)


def _count_process_start(run_dir: Path) -> int:
    """Note that one more process works on this run; return how many have."""
    log = run_dir / "process_starts.json"
    starts = json.loads(log.read_text()) if log.exists() else []
    starts.append(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    log.write_text(json.dumps(starts))
    return len(starts)


@dataclass(frozen=True)
class CyclePlan:
    """Where a long, multi-session run continues: see :func:`plan_cycle`."""

    run_dir: Path
    init_from: str | None
    cycle: int
    resuming: bool


def plan_cycle(name: str, models_dir: str | Path | None = None,
               runs_root: str | Path | None = None) -> CyclePlan:
    """Decide how the long run ``name`` continues, so that one command resumes it anywhere.

    A long run is a chain of learning-rate cycles, each saved as ``models/<name>.keras`` when it
    ends (its record counts the cycles). Cycle ``k`` checkpoints every epoch to
    ``<runs_root>/<name>/cycle<k>``, outside the work tree, so it survives between sessions on
    the same machine:

    - a checkpoint of the current cycle exists: resume it where it stopped;
    - no checkpoint, but a committed model: start the next cycle from its weights (a warm
      restart with a new learning-rate cycle, as in snapshot ensembles), which is also how a
      fresh machine continues;
    - neither: start cycle 1 from random weights.
    """
    models_dir = Path(models_dir) if models_dir else configured_models_dir()
    runs_root = Path(runs_root) if runs_root else config_runs_dir()
    committed = models_dir / f"{name}.keras"
    record_file = committed.with_suffix(".json")
    cycles_done = 0
    if committed.exists():
        record = json.loads(record_file.read_text()) if record_file.exists() else {}
        cycles_done = int(record.get("lineage", {}).get("cycles", 1))
    run_dir = runs_root / name / f"cycle{cycles_done + 1}"
    resuming = (run_dir / "backup").exists()
    if resuming:
        stored = json.loads((run_dir / "config.json").read_text())
        return CyclePlan(run_dir, stored.get("init_from"), cycles_done + 1, True)
    start = None
    if committed.exists():  # records keep a repository-relative path where there is one
        start = str(committed.relative_to(REPOSITORY) if committed.is_relative_to(REPOSITORY)
                    else committed)
    return CyclePlan(run_dir, start, cycles_done + 1, False)


def lineage(result: TrainResult) -> dict:
    """Totals over every cycle that made this model: cycles, epochs, hours, processes.

    A run started from a saved model (``init_from``) whose record has a lineage adds to it, so
    a model trained over several sessions says what it cost in all.
    """
    previous = {"cycles": 0, "epochs": 0, "training_hours": 0.0, "processes": 0,
                "data_checksums": []}
    if result.config.init_from:
        record_file = _resolve(result.config.init_from).with_suffix(".json")
        if record_file.exists():
            record = json.loads(record_file.read_text())
            previous = record.get("lineage") or {
                "cycles": 1, "epochs": record.get("config", {}).get("epochs", 0),
                "training_hours": record.get("training_seconds", 0) / 3600,
                "processes": 1, "data_checksums": [record.get("data_checksum")]}
    return {"cycles": previous["cycles"] + 1,
            "epochs": previous["epochs"] + result.config.epochs,
            "training_hours": round(previous["training_hours"] + result.seconds / 3600, 3),
            "processes": previous["processes"] + result.process_starts,
            "data_checksums": list(previous["data_checksums"])}


def _resolve(path: str) -> Path:
    """A model path as given, or relative to the repository (records store it that way)."""
    candidate = Path(path)
    if not candidate.exists() and (REPOSITORY / candidate).exists():
        candidate = REPOSITORY / candidate
    if not candidate.exists():
        raise FileNotFoundError(f"Cannot initialize from '{path}': no such model file. Train it "
                                "first or give the path of a saved .keras model.")
    return candidate


def batch_mixing(config: TrainConfig):
    """The MixUp or CutMix step for training batches of (pixels, one-hot targets), or None.

    Targets may be the 14 columns of soft-target training: both halves are mixed with the same
    weights, so the label and its soft target stay paired.
    """
    # float32 whatever the global policy: under bfloat16 Keras' MixUp multiplies bfloat16
    # images by a float32 weight and fails; the pipeline's pixels are float32 anyway.
    if config.mixup:
        layer = keras.layers.MixUp(alpha=config.mixup, seed=config.seed, dtype="float32")
    elif config.cutmix:
        layer = keras.layers.CutMix(factor=config.cutmix, seed=config.seed, dtype="float32")
    else:
        return None

    def mix(pixels, targets):
        mixed = layer({"images": pixels, "labels": targets}, training=True)
        return mixed["images"], mixed["labels"]

    return mix


class _OneHot:
    """Map labels to one-hot vectors (label smoothing needs categorical targets); with soft
    targets, to the one-hot label followed by the soft target (:class:`SoftTargetLoss`)."""

    def __init__(self, classes: int, soft: bool = False):
        self.classes, self.soft = classes, soft

    def __call__(self, pixels, labels, *rest):
        hard = tf.one_hot(labels, self.classes)
        if self.soft:
            return (pixels, tf.concat([hard, tf.cast(rest[0], hard.dtype)], axis=-1), *rest[1:])
        return (pixels, hard, *rest)


def _check_same_config(run_dir: Path, config: TrainConfig) -> None:
    stored = run_dir / "config.json"
    current = asdict(config)
    if stored.exists() and json.loads(stored.read_text()) != current:
        raise ValueError(f"'{run_dir}' holds a run with a different configuration; resume it "
                         "with the same settings, or choose another run folder (--run-dir).")
    stored.write_text(json.dumps(current, indent=2))


# The instruction sets that set a CPU's pace here: the same model name ("AMD EPYC") covers
# machines with and without AVX-512 and native bfloat16, 3-6x apart in speed.
CPU_FEATURES = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def hardware_description(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """CPU model, the :data:`CPU_FEATURES` it has, core count and library versions, for JSON
    records."""
    fields: dict[str, str] = {}
    try:
        for line in Path(cpuinfo).read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first core speaks for all
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor() or platform.machine()
    flags = set(fields.get("flags", "").split())
    return {"cpu": cpu, "cpu_features": [f for f in CPU_FEATURES if f in flags],
            "cores": os.cpu_count(),
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
                   models_dir: str | Path | None = None, profile: str = "full") -> Path:
    """Save ``<name>.keras`` (weights and graph, no optimizer) and ``<name>.json``.

    The record holds the test and validation metrics, the validation curve, the config, the
    exact command, seed, data checksum, git commit, training time and hardware.
    """
    name = name or result.config.model
    models_dir = Path(models_dir) if models_dir is not None else configured_models_dir()
    models_dir.mkdir(parents=True, exist_ok=True)
    prepared = prepare_training_data(splits, result.config)
    test = prepared.test
    # Scored and timed as the book predicts with it: computing in float32 (store.in_float32)
    predictor = in_float32(result.model)
    metrics = evaluate_model(predictor, test)
    # The saved weights' own validation score (not the last epoch's: an EMA run saves averaged
    # weights), so a study can keep the record and leave the weights out; a refit trained on
    # these faces, so it has none.
    validation = (None if result.config.refit
                  else evaluate_model(predictor, prepared.validation).summary())
    timed = test.model_input()[:2048]
    predict_in_batches(predictor, timed[:256], 256)  # the first call traces the graph
    inference_start = time.perf_counter()
    predict_in_batches(predictor, timed, 256)
    inference_rate = min(2048, len(test)) / (time.perf_counter() - inference_start)
    path = save_model_file(result.model, models_dir / f"{name}.keras")
    record = {
        "name": name, "model": result.config.model, "profile": profile,
        "test": metrics.summary(),
        **({"validation": validation} if validation else {}),
        "per_class": metrics.per_class.round(4).reset_index(names="class").to_dict("records"),
        "validation_curve": result.history.round(5).to_dict("list"),
        "config": asdict(result.config), "command": " ".join(["fer-core", *sys.argv[1:]])
        if Path(sys.argv[0]).name in ("fer-core", "__main__.py") else " ".join(sys.argv),
        "seed": result.config.seed, "data_checksum": splits.train.checksum,
        "pixels_checksum": splits.train.pixels_checksum,
        "weights_sha256": weights_checksum(path),
        "train_images": result.train_size, "parameters": int(result.model.count_params()),
        "git_commit": result.git_commit, "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                 time.gmtime()),
        "training_seconds": round(result.seconds, 1),
        "seconds_per_epoch": round(result.seconds_per_epoch, 2),
        "train_images_per_second": round(result.train_images_per_second, 1),
        "inference_images_per_second": round(inference_rate, 1),
        "hardware": hardware_description(),
        "lineage": lineage(result),
    }
    if splits.train.checksum not in record["lineage"]["data_checksums"]:
        record["lineage"]["data_checksums"].append(splits.train.checksum)
    (models_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return path
