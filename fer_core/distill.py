"""Soft targets: train on a distribution over the classes instead of (or beside) one label.

Two sources of soft targets, one loss:

- ``ensemble:<name>+<name>...``: knowledge distillation (Hinton, Vinyals and Dean 2015). The
  committed reference models' averaged probabilities (with test-time flips) for each training
  face, computed once and cached, teach a student, typically a smaller model;
- ``ferplus``: the FER+ annotators' vote distributions (chapter 10), i.e. what ten people
  answered for the face, instead of FER-2013's single label;
- a *consistent* teacher (:func:`with_teacher`): committed models run beside the student on
  the very view of each face the student trains on (the same crop, flip, erasing or mix),
  instead of once on the plain face. Beyer et al. (2022, "Knowledge distillation: a good
  teacher is patient and consistent") found that small students need this consistency, and
  long schedules, to come close to their teachers.

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
        return self._mixed(y_true[:, :CLASSES], y_true[:, CLASSES:], y_pred)

    def _mixed(self, hard, soft, y_pred):
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
class TeacherLoss(SoftTargetLoss):
    """:class:`SoftTargetLoss` for a model made by :func:`with_teacher`: ``y_true`` is the
    one-hot label, ``y_pred`` the student's probabilities followed by the teacher's."""

    def call(self, y_true, y_pred):
        y_pred = keras.ops.cast(y_pred, "float32")
        hard = keras.ops.cast(y_true, "float32")[:, :CLASSES]
        return self._mixed(hard, y_pred[:, CLASSES:], y_pred[:, :CLASSES])


@keras.saving.register_keras_serializable(package="fer_core")
def hard_label_accuracy(y_true, y_pred):
    """Accuracy against the one-hot label in the first 7 columns of ``y_true``, of the
    prediction in the first 7 columns of ``y_pred`` (the student's, beside a teacher)."""
    return keras.ops.cast(keras.ops.equal(keras.ops.argmax(y_true[:, :CLASSES], axis=-1),
                                          keras.ops.argmax(y_pred[:, :CLASSES], axis=-1)),
                          "float32")


def load_teachers(names: str, models_dir=None) -> list[keras.Model]:
    """The committed classifiers ``name+name...`` as frozen teachers.

    Raises
    ------
    FileNotFoundError
        When a named model has no ``.keras`` file; the message says where it was looked for.
    """
    from fer_core import store

    teachers = []
    for index, name in enumerate(filter(None, names.split("+"))):
        path = store.models_dir(models_dir) / f"{name}.keras"
        if not path.is_file():
            raise FileNotFoundError(f"No reference model {name!r} to teach with in "
                                    f"'{store.models_dir(models_dir)}'.")
        loaded = store.load_model_file(path)
        # a new name per teacher: two teachers of one architecture share a model name
        teacher = keras.Model(loaded.inputs, loaded.output, name=f"teacher{index + 1}")
        teacher.trainable = False
        teachers.append(teacher)
    if not teachers:
        raise ValueError("Name at least one teacher: 'MODEL' or 'MODEL+MODEL'.")
    return teachers


class _Inference(keras.layers.Layer):
    """Runs a model in inference mode whatever the mode of the model around it: a functional
    graph hands its own ``training`` flag to nested models, so a teacher called there with
    ``training=False`` would still drop units out while the student trains."""

    def __init__(self, model: keras.Model, **kwargs):
        super().__init__(name=model.name, **kwargs)
        self.model = model

    def call(self, inputs):
        return self.model(inputs, training=False)


def with_teacher(student: keras.Model, teachers: list[keras.Model]) -> keras.Model:
    """A training model: the student's probabilities, then the teachers' averaged
    probabilities for the same augmented view of each face (14 columns; :class:`TeacherLoss`).

    The student's augmentation layers (active only in training) make the view; the teachers
    see it back on the 0..255 scale they were trained on, always in inference mode, and
    learn nothing. The student's layers are shared, so training this model trains the
    student, which is saved alone.
    """
    names = {layer.name for layer in student.layers}
    view_layer = "augment_noise" if "augment_noise" in names else "rescale"
    if view_layer not in names:
        raise ValueError(f"Model {student.name!r} has no 'rescale' layer, so its augmented "
                         "view of a face cannot be shown to a teacher.")
    view = keras.layers.Rescaling(255.0, name="teacher_view")(
        student.get_layer(view_layer).output)
    taught = [_Inference(teacher)(view) for teacher in teachers]
    consensus = keras.layers.Average(name="teacher_average")(taught) if len(taught) > 1 \
        else taught[0]
    outputs = keras.layers.Concatenate(dtype="float32", name="student_and_teacher")(
        [student.output, consensus])
    return keras.Model(student.inputs, outputs, name=f"{student.name}_with_teacher")
