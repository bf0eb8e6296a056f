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
