"""Soft targets: the distillation loss on a hand-checked case, teachers cached, training runs."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core import distill
from fer_core.data import split_data
from fer_core.models import build_model
from fer_core.synthetic import synthetic_dataset
from fer_core.train import TrainConfig, train_model


def _loss(hard, soft, predicted, **options) -> float:
    y_true = np.concatenate([hard, soft])[None].astype(np.float32)
    value = distill.SoftTargetLoss(**options)(y_true, np.asarray(predicted, np.float32)[None])
    return float(value)


def test_soft_target_loss_on_a_hand_checked_case():
    hard = np.eye(7)[0]
    soft = np.array([0.5, 0.5, 0, 0, 0, 0, 0])
    predicted = np.array([0.8, 0.2, 0, 0, 0, 0, 0]) * 0.99 + 0.01 / 7
    # w = 0: plain cross-entropy, -log p0
    assert _loss(hard, soft, predicted, weight=0.0) == pytest.approx(-np.log(predicted[0]),
                                                                    rel=1e-5)
    # w = 1, T = 1: KL(q || p) over the classes q gives mass to
    kl = sum(q * np.log(q / p) for q, p in zip(soft, predicted, strict=True) if q > 0)
    assert _loss(hard, soft, predicted, weight=1.0) == pytest.approx(kl, rel=1e-4)
    # w = 0.5 mixes them
    assert _loss(hard, soft, predicted, weight=0.5) == pytest.approx(
        0.5 * -np.log(predicted[0]) + 0.5 * kl, rel=1e-4)


def test_soft_target_loss_temperature_and_perfect_match():
    soft = np.array([0.6, 0.3, 0.1, 0, 0, 0, 0]) * 0.993 + 0.001
    # a student equal to its teacher has no soft loss at any temperature
    for temperature in (1.0, 4.0):
        assert _loss(np.eye(7)[0], soft, soft, weight=1.0, temperature=temperature) == \
            pytest.approx(0.0, abs=1e-5)
    # at T the divergence is between the softened distributions, scaled by T^2
    predicted = np.array([0.2, 0.6, 0.2, 0, 0, 0, 0]) * 0.993 + 0.001

    def softened(p, t):
        z = np.log(p) / t
        return np.exp(z) / np.exp(z).sum()

    q, p = softened(soft, 3.0), softened(predicted, 3.0)
    expected = 9.0 * float((q * np.log(q / p)).sum())
    assert _loss(np.eye(7)[0], soft, predicted, weight=1.0, temperature=3.0) == \
        pytest.approx(expected, rel=1e-4)


def test_unknown_soft_target_source():
    data = synthetic_dataset(train=14, test=7)
    with pytest.raises(ValueError, match="Unknown soft-target source 'teacher'"):
        distill.soft_target_matrix("teacher", data)


def test_ensemble_targets_are_the_cached_mean_of_the_teachers(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path / "cache"))
    data = synthetic_dataset(train=21, test=7)
    for name, seed in (("a", 1), ("b", 2)):
        import keras

        keras.utils.set_random_seed(seed)
        build_model("compact_cnn").save(tmp_path / f"{name}.keras")
    targets = distill.soft_target_matrix("ensemble:a+b", data, models_dir=tmp_path)
    from fer_core import evaluate

    expected = evaluate.ensemble(list(evaluate.reference_probabilities(
        ["a", "b"], data, tta=True, models_dir=tmp_path).values()))
    np.testing.assert_allclose(targets, expected, atol=1e-6)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, atol=1e-5)
    assert len(list((tmp_path / "cache" / "soft-targets").glob("*.npy"))) == 1
    (tmp_path / "a.keras").unlink()  # the cache answers without the models...
    with pytest.raises(FileNotFoundError, match="No reference model 'a' to distil from"):
        distill.soft_target_matrix("ensemble:a+b", data, models_dir=tmp_path)  # ...but the
    # key includes the model files, so a missing teacher is reported, never guessed


@pytest.mark.slow
def test_a_student_learns_from_soft_targets(tmp_path, monkeypatch):
    splits = split_data(synthetic_dataset(train=875, test=70))
    def teacher(source, faces):  # smoothed truth as the "teacher"
        return np.eye(7)[faces.labels] * 0.7 + 0.3 / 7

    monkeypatch.setattr(distill, "soft_target_matrix", teacher)
    config = TrainConfig("baseline", epochs=6, batch_size=32, learning_rate=2e-3,
                         augment=False, soft_targets="ensemble:stub", soft_weight=0.5,
                         soft_temperature=2.0)
    result = train_model(splits, config, tmp_path / "run", verbose=0)
    history = result.history
    assert "val_accuracy" in history and history.val_accuracy.max() > 0.6
    # validation loss is the training objective, teacher included, on the validation faces
    # (the kept weights are those of the epoch with the best validation accuracy)
    validation = splits.validation
    targets = np.concatenate([np.eye(7)[validation.labels], teacher(None, validation)], axis=1)
    predicted = result.model.predict(validation.model_input(), verbose=0)
    objective = distill.SoftTargetLoss(0.5, 2.0)(targets.astype(np.float32), predicted)
    best_epoch = int(history.val_accuracy.to_numpy().argmax())
    assert float(objective) == pytest.approx(history.val_loss.iloc[best_epoch], rel=1e-3)


def _linear_classifier(augmentation=None, name: str = "linear"):
    """A classifier without batch normalization or dropout: the same weights give the same
    answer in training and inference mode, so only the view of the face can differ."""
    import keras

    from fer_core.models import INPUT_SHAPE, preprocessing

    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = keras.layers.Flatten(name="flatten")(preprocessing(inputs, augmentation))
    outputs = keras.layers.Dense(7, activation="softmax", name="probabilities")(hidden)
    return keras.Model(inputs, outputs, name=name)


def test_teacher_loss_is_the_soft_target_loss_with_the_teacher_beside_the_student():
    hard = np.eye(7, dtype=np.float32)[[2, 5]]
    student = np.array([[.1, .1, .4, .1, .1, .1, .1], [.05, .05, .1, .1, .2, .4, .1]], np.float32)
    teacher = np.array([[.2, .1, .3, .1, .1, .1, .1], [.1, .1, .1, .1, .1, .4, .1]], np.float32)
    options = {"weight": 0.7, "temperature": 3.0, "label_smoothing": 0.1}
    beside = distill.TeacherLoss(**options)(hard, np.concatenate([student, teacher], axis=1))
    fixed = distill.SoftTargetLoss(**options)(np.concatenate([hard, teacher], axis=1), student)
    assert float(beside) == pytest.approx(float(fixed), rel=1e-6)
    accuracy = distill.hard_label_accuracy(hard, np.concatenate([student, teacher], axis=1))
    np.testing.assert_array_equal(np.asarray(accuracy), [1.0, 1.0])


def test_a_consistent_teacher_sees_the_students_augmented_view(tmp_path):
    import keras

    from fer_core.models import Augmentation

    keras.utils.set_random_seed(3)
    augmentation = Augmentation(flip=True, rotation=0.1, translation=0.0, zoom=0.0, crop=4)
    student = _linear_classifier(augmentation, "student")
    twin = _linear_classifier(None, "twin")  # the student's weights, no augmentation
    twin.set_weights(student.get_weights())
    twin.save(tmp_path / "twin.keras")
    teachers = distill.load_teachers("twin", models_dir=tmp_path)
    assert not teachers[0].trainable
    trained = distill.with_teacher(student, teachers)
    faces = synthetic_dataset(train=16, test=7).model_input()[:16]
    augmented = np.asarray(trained(faces, training=True))
    # same weights, same view: the teacher's answer equals the student's on every face...
    np.testing.assert_allclose(augmented[:, :7], augmented[:, 7:], atol=1e-5)
    # ...and that view is not the plain face (the augmentation is on), which the teacher
    # sees in inference mode
    plain = np.asarray(twin(faces, training=False))
    assert np.abs(augmented[:, 7:] - plain).max() > 1e-3
    np.testing.assert_allclose(np.asarray(trained(faces, training=False))[:, 7:], plain,
                               atol=1e-5)
    # training the pair changes the student only
    assert {id(v) for v in trained.trainable_weights} == {
        id(v) for v in student.trainable_weights}


def test_teachers_must_exist_and_be_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="No reference model 'absent' to teach with"):
        distill.load_teachers("absent", models_dir=tmp_path)
    with pytest.raises(ValueError, match=r"Use soft_targets \(fixed.*or teacher"):
        TrainConfig("compact_cnn", teacher="a", soft_targets="ferplus")
    with pytest.raises(ValueError, match="teacher names committed models"):
        TrainConfig("compact_cnn", teacher="+")


@pytest.mark.slow
def test_a_student_learns_from_a_consistent_teacher(tmp_path, monkeypatch):
    import keras

    splits = split_data(synthetic_dataset(train=875, test=70))
    keras.utils.set_random_seed(0)
    teacher = train_model(splits, TrainConfig("baseline", epochs=6, batch_size=32,
                                              learning_rate=2e-3, augment=False),
                          tmp_path / "teacher_run", verbose=0).model
    (tmp_path / "models").mkdir()
    teacher.save(tmp_path / "models" / "teacher.keras")
    monkeypatch.setenv("FER_MODELS_DIR", str(tmp_path / "models"))
    config = TrainConfig("compact_cnn", epochs=6, batch_size=32, learning_rate=3e-3,
                         teacher="teacher", soft_weight=0.8, soft_temperature=2.0)
    result = train_model(splits, config, tmp_path / "run", verbose=0)
    assert result.history.val_accuracy.max() > 0.6
    # what is kept is the student alone: a plain 7-class classifier
    assert result.model.name == "compact_cnn" and result.model.output_shape == (None, 7)
    assert result.model.count_params() == build_model("compact_cnn").count_params()


def test_a_teacher_answers_in_inference_mode_while_the_student_trains(tmp_path):
    import keras

    keras.utils.set_random_seed(4)
    # dropout and batch normalization would change the teacher's answer in training mode
    build_model("compact_cnn", dropout=0.5).save(tmp_path / "noisy.keras")
    trained = distill.with_teacher(build_model("compact_cnn", None),
                                   distill.load_teachers("noisy", models_dir=tmp_path))
    faces = synthetic_dataset(train=16, test=7).model_input()[:16]
    expected = keras.models.load_model(tmp_path / "noisy.keras")(faces, training=False)
    np.testing.assert_allclose(np.asarray(trained(faces, training=True))[:, 7:],
                               np.asarray(expected), atol=1e-5)
