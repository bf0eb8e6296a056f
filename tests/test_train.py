"""Training: learning the synthetic task, class weights, resuming, reference files, devices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import asdict, replace
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from fer_core import store
from fer_core import train as train_module
from fer_core.config import CLASS_NAMES, get_profile
from fer_core.data import FerData, Splits, split_data
from fer_core.evaluate import evaluate_model, load_reference
from fer_core.models import build_autoencoder, build_model
from fer_core.synthetic import synthetic_dataset
from fer_core.train import (
    TrainConfig,
    balanced_class_weights,
    cpu_has_native_bfloat16,
    distribution_strategy,
    prepare_training_data,
    resolve_precision,
    save_reference,
    train_model,
    training_dataset,
    transfer_weights,
)

REPOSITORY = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def splits() -> Splits:
    """700 train, 175 validation and 70 test synthetic faces."""
    return split_data(synthetic_dataset(train=875, test=70))


@pytest.fixture(scope="module")
def tiny_splits() -> Splits:
    """64 train, 16 validation, 14 test faces: 2 steps per epoch at batch size 32."""
    return split_data(synthetic_dataset(train=80, test=14, seed=11))


@pytest.fixture(scope="module")
def baseline_run(splits, tmp_path_factory):
    """The baseline trained for a few seconds (no augmentation), with its run folder."""
    run_dir = tmp_path_factory.mktemp("baseline_run")
    config = TrainConfig("baseline", epochs=6, batch_size=32, learning_rate=2e-3, augment=False)
    return train_model(splits, config, run_dir, verbose=0), run_dir


def _imbalanced(data: FerData, rare: dict[int, int]) -> FerData:
    """Keep only the first ``rare[k]`` training images of each class k in ``rare``."""
    keep = np.ones(len(data), bool)
    for label, count in rare.items():
        positions = np.flatnonzero((data.labels == label) & (data.usage == "Training"))
        keep[positions[count:]] = False
    return data.select(keep)


# --------------------------------------------------------------------------- learning

def test_baseline_learns_the_synthetic_task(baseline_run, splits):
    result, _ = baseline_run
    chance = 1 / len(CLASS_NAMES)
    assert result.train_size == len(splits.train) == 700
    assert result.history.epoch.tolist() == list(range(6))
    assert result.history.val_accuracy.max() > 0.6
    # the returned model carries the best-on-validation weights
    validation = evaluate_model(result.model, splits.validation)
    assert validation.accuracy == pytest.approx(result.history.val_accuracy.max(), abs=1e-6)
    assert evaluate_model(result.model, splits.test).accuracy > max(0.6, 3 * chance)
    assert result.seconds > 0 and result.seconds_per_epoch > 0
    assert result.train_images_per_second > 0
    # a mixed-precision run must not leak its policy into later code
    assert keras.mixed_precision.global_policy().name == "float32"


@pytest.mark.slow
def test_attention_unet_learns_the_synthetic_task(splits, tmp_path):
    config = TrainConfig("attention_unet", epochs=4, batch_size=32, learning_rate=2e-3,
                         augment=False, train_subset=350, model_options={"width": 8})
    result = train_model(splits, config, tmp_path / "run", verbose=0)
    assert result.train_size == 350
    assert result.model.get_layer("encoder1_conv1").filters == 8
    assert result.history.val_accuracy.max() > 0.6


# --------------------------------------------------------------------------- class weights

def test_balanced_class_weights_are_inverse_frequency():
    labels = np.array([0] * 10 + [3] * 5 + [6] * 1)
    weights = balanced_class_weights(labels)
    assert set(weights) == {0, 3, 6}  # only the classes present
    n, k = len(labels), 3
    for label, count in {0: 10, 3: 5, 6: 1}.items():
        assert weights[label] == pytest.approx(n / (k * count))
    assert weights[6] > weights[3] > weights[0]
    assert balanced_class_weights(np.arange(14) % 7) == pytest.approx(
        dict.fromkeys(range(7), 1.0))


def test_weighted_dataset_scales_the_loss_per_class():
    data = _imbalanced(synthetic_dataset(train=140, test=7, seed=3), {1: 4, 5: 8})
    data = data.select(data.usage == "Training")
    weights = balanced_class_weights(data.labels)
    table = np.array([weights[k] for k in range(len(CLASS_NAMES))], np.float32)
    assert table[1] > table[5] > table[0]

    weighted = training_dataset(data, len(data), seed=5, class_weights=weights)
    plain = training_dataset(data, len(data), seed=5)
    pixels, labels, sample_weights = (t.numpy() for t in next(iter(weighted)))
    plain_pixels, plain_labels = (t.numpy() for t in next(iter(plain)))
    assert pixels.shape == (len(data), 48, 48, 1) and pixels.max() > 1  # raw 0..255 input
    np.testing.assert_allclose(sample_weights, table[labels])
    np.testing.assert_array_equal(plain_labels, labels)  # same shuffle, weights only added
    np.testing.assert_array_equal(plain_pixels, pixels)

    targets = keras.utils.to_categorical(labels, len(CLASS_NAMES))
    probabilities = np.random.default_rng(0).dirichlet(np.ones(len(CLASS_NAMES)), len(labels))
    loss = keras.losses.CategoricalCrossentropy()
    per_image = -np.log(probabilities[np.arange(len(labels)), labels])
    unweighted = float(loss(targets, probabilities))
    weighted_loss = float(loss(targets, probabilities, sample_weight=sample_weights))
    assert unweighted == pytest.approx(per_image.mean(), rel=1e-5)
    assert weighted_loss == pytest.approx((sample_weights * per_image).mean(), rel=1e-5)
    # the rare classes' share of the loss grows by their weight relative to the common ones
    rare = labels == 1
    share = (sample_weights * per_image)[rare].sum() / (sample_weights * per_image).sum()
    assert share > per_image[rare].sum() / per_image.sum()


class _StopBeforeFitError(Exception):
    """Raised by a spy to end train_model before it fits."""


def test_train_model_feeds_balanced_weights(tmp_path, monkeypatch):
    imbalanced = split_data(_imbalanced(synthetic_dataset(train=80, test=14, seed=11), {2: 3}))
    seen = []

    def spy(data, batch_size, seed, class_weights=None, soft_targets=None):
        assert soft_targets is None  # no soft targets asked for
        seen.append((len(data), batch_size, seed, class_weights))
        raise _StopBeforeFitError

    monkeypatch.setattr(train_module, "training_dataset", spy)
    for use_weights in (True, False):
        config = TrainConfig("baseline", epochs=1, batch_size=16, augment=False,
                             class_weights=use_weights, seed=9)
        with pytest.raises(_StopBeforeFitError):
            train_model(imbalanced, config, tmp_path / "run", verbose=0)
    expected = balanced_class_weights(imbalanced.train.labels)
    assert expected[2] > expected[0]  # the rare class counts more
    assert seen == [(len(imbalanced.train), 16, 9, expected),
                    (len(imbalanced.train), 16, 9, None)]


# --------------------------------------------------------------------------- resuming

def test_killed_run_resumes_from_its_last_finished_epoch(tiny_splits, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    config = TrainConfig("baseline", epochs=4, batch_size=32, augment=False)
    original = train_module._EpochTimer.on_epoch_end
    finished: list[int] = []
    kill_after: list[int] = [1]  # zero-based epoch after which the "kill" happens

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        finished.append(epoch)
        if kill_after and epoch == kill_after[0]:
            raise RuntimeError("simulated kill")

    monkeypatch.setattr(train_module._EpochTimer, "on_epoch_end", on_epoch_end)
    with pytest.raises(RuntimeError, match="simulated kill"):
        train_model(tiny_splits, config, run_dir, verbose=0)
    assert finished == [0, 1]
    assert pd.read_csv(run_dir / "history.csv").epoch.tolist() == [0, 1]
    logged = pd.read_csv(run_dir / "epoch_seconds.csv", names=["epoch", "seconds"])
    assert logged.epoch.tolist() == [0, 1]
    (run_dir / "epoch_seconds.csv").write_text("0,500.0\n1,500.0\n")  # as on a slow machine

    kill_after.clear()
    finished.clear()
    result = train_model(tiny_splits, config, run_dir, verbose=0)
    assert finished == [2, 3]  # only the two missing epochs ran
    raw = pd.read_csv(run_dir / "history.csv")
    assert raw.epoch.tolist() == [0, 1, 2, 3]  # every epoch logged exactly once
    assert result.history.epoch.tolist() == [0, 1, 2, 3]
    assert np.isfinite(result.history.loss).all()
    assert not (run_dir / "backup").exists()  # a finished run removes its backup
    assert json.loads((run_dir / "best.json").read_text())["epoch"] in (1, 2, 3, 4)
    # the record's time is the whole run's: the killed process's (long) epochs count too
    logged = pd.read_csv(run_dir / "epoch_seconds.csv", names=["epoch", "seconds"])
    assert logged.epoch.tolist() == [0, 1, 2, 3]
    assert result.seconds >= 1000 + logged.seconds[2:].sum()


def test_run_dir_with_another_config_is_refused(baseline_run, splits):
    result, run_dir = baseline_run
    stored = json.loads((run_dir / "config.json").read_text())
    assert stored == asdict(result.config)
    changed = TrainConfig(**{**asdict(result.config), "learning_rate": 1e-4})
    with pytest.raises(ValueError, match="different configuration"):
        train_model(splits, changed, run_dir, verbose=0)
    assert json.loads((run_dir / "config.json").read_text()) == stored  # left untouched


# --------------------------------------------------------------------------- reference files

def test_save_reference_writes_a_reloadable_model_and_record(baseline_run, splits, tmp_path,
                                                             monkeypatch):
    result, _ = baseline_run
    # the commit is the one read when training started, not when the file is written
    monkeypatch.setattr(train_module, "git_commit", lambda: "written later")
    path = save_reference(result, splits, "tiny_baseline", tmp_path, profile="smoke")
    assert path == tmp_path / "tiny_baseline.keras" and path.is_file()
    record = json.loads((tmp_path / "tiny_baseline.json").read_text())

    expected = evaluate_model(result.model, splits.test)
    assert record["test"]["accuracy"] == pytest.approx(expected.accuracy, abs=1e-5)
    assert record["test"]["images"] == len(splits.test)
    assert {"macro_f1", "accuracy_PublicTest", "disgust_recall"} <= set(record["test"])
    assert record["config"] == asdict(result.config)
    assert record["seed"] == result.config.seed
    assert record["data_checksum"] == splits.train.checksum == "synthetic-1306"
    assert record["git_commit"] == result.git_commit != "written later"
    assert record["profile"] == "smoke" and record["name"] == "tiny_baseline"
    assert isinstance(record["command"], str) and record["command"]
    assert record["seconds_per_epoch"] > 0
    assert record["train_images"] == 700
    assert record["parameters"] == result.model.count_params()
    assert record["weights_sha256"] == store.weights_checksum(path)
    assert {"cpu", "cpu_features", "cores", "tensorflow", "keras", "backend"} <= set(
        record["hardware"])
    assert record["validation_curve"]["epoch"] == list(range(6))
    assert [row["class"] for row in record["per_class"]] == list(CLASS_NAMES)
    # The saved weights' own validation score, so a study can keep the record alone
    validation = evaluate_model(result.model, splits.validation).summary()
    assert record["validation"]["images"] == len(splits.validation)
    assert record["validation"]["accuracy"] == pytest.approx(validation["accuracy"], abs=1e-5)

    inputs = splits.test.model_input()
    trained = result.model.predict(inputs, verbose=0)
    reloaded = keras.models.load_model(path)
    assert getattr(reloaded, "optimizer", None) is None  # saved without optimizer state
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), trained, atol=1e-6)
    model, loaded_record = load_reference("tiny_baseline", tmp_path)
    np.testing.assert_allclose(model.predict(inputs, verbose=0), trained, atol=1e-6)
    assert loaded_record == record

    # A refit trained on the validation faces: scoring them would flatter it
    refit = replace(result, config=replace(result.config, refit=True))
    save_reference(refit, splits, "tiny_refit", tmp_path, profile="smoke")
    assert "validation" not in json.loads((tmp_path / "tiny_refit.json").read_text())


# --------------------------------------------------------------------------- configuration

def test_config_from_profile_takes_budget_and_changes():
    config = TrainConfig.from_profile("baseline", get_profile("smoke"), epochs=5)
    assert (config.epochs, config.batch_size, config.train_subset) == (5, 32, 256)
    assert config.model == "baseline" and config.augment


def test_prepare_training_data_applies_subset_and_denoising(tiny_splits):
    config = TrainConfig("baseline", train_subset=20, denoise=True)
    prepared = prepare_training_data(tiny_splits, config)
    assert len(prepared.train) == 20
    assert set(prepared.train.ids) <= set(tiny_splits.train.ids)
    assert len(prepared.validation) == len(tiny_splits.validation)
    for _, part in prepared.items():
        assert any("denoised" in note for note in part.notes)


def test_refit_trains_on_training_and_validation_faces_and_keeps_its_last_epoch(
        tiny_splits, tmp_path, monkeypatch):
    config = TrainConfig("baseline", epochs=3, batch_size=32, augment=False, refit=True)
    prepared = prepare_training_data(tiny_splits, config)
    expected_ids = set(tiny_splits.train.ids) | set(tiny_splits.validation.ids)
    assert len(prepared.train) == len(expected_ids) == 80
    assert set(prepared.train.ids) == expected_ids  # every face once, no test face
    assert not set(prepared.train.ids) & set(tiny_splits.test.ids)

    weights_after: list[list[np.ndarray]] = []
    original = train_module._EpochTimer.on_epoch_end

    def on_epoch_end(self, epoch, logs=None):
        original(self, epoch, logs)
        assert "val_accuracy" not in (logs or {})  # nothing held out is scored
        weights_after.append([w.copy() for w in self.model.get_weights()])

    monkeypatch.setattr(train_module._EpochTimer, "on_epoch_end", on_epoch_end)
    result = train_model(tiny_splits, config, tmp_path / "refit", verbose=0)
    assert result.train_size == 80
    assert "val_accuracy" not in result.history.columns
    assert not (tmp_path / "refit" / "best.weights.h5").exists()
    assert len(weights_after) == 3
    for kept, last in zip(result.model.get_weights(), weights_after[-1], strict=True):
        np.testing.assert_array_equal(kept, last)
    assert any(not np.array_equal(a, b)  # the last epoch, not an earlier one
               for a, b in zip(weights_after[0], weights_after[-1], strict=True))


def test_refit_with_soft_targets_needs_no_validation_targets(tiny_splits, tmp_path,
                                                             monkeypatch):
    seen = []

    def soft_targets(source, faces, models_dir=None):
        seen.append(len(faces))
        return np.full((len(faces), len(CLASS_NAMES)), 1 / len(CLASS_NAMES))

    monkeypatch.setattr(train_module.distill, "soft_target_matrix", soft_targets)
    config = TrainConfig("compact_cnn", epochs=1, batch_size=32, augment=False, refit=True,
                         soft_targets="ensemble:teacher", soft_weight=0.5)
    result = train_model(tiny_splits, config, tmp_path / "refit", verbose=0)
    assert seen == [80]  # the teacher's targets for the joined faces, and nothing else
    assert np.isfinite(result.history.loss).all()


def test_resolve_precision():
    chosen = resolve_precision("auto")
    assert chosen in ("float32", "mixed_bfloat16")
    assert chosen == ("mixed_bfloat16" if cpu_has_native_bfloat16() else "float32")
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_precision(name) == name
    with pytest.raises(ValueError, match="Unknown precision 'float64'"):
        resolve_precision("float64")


def test_distribution_strategy():
    assert distribution_strategy("none").num_replicas_in_sync == 1
    with pytest.raises(ValueError, match="Unknown distribution strategy 'bogus'") as error:
        distribution_strategy("bogus")
    assert "mirrored" in str(error.value)


_MIRRORED_SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    from fer_core.data import split_data
    from fer_core.synthetic import synthetic_dataset
    from fer_core.train import TrainConfig, distribution_strategy, train_model
    replicas = distribution_strategy("mirrored").num_replicas_in_sync
    splits = split_data(synthetic_dataset(train=80, test=14))
    config = TrainConfig("baseline", epochs=1, batch_size=16, augment=False,
                         distribute="mirrored")
    result = train_model(splits, config, sys.argv[1], verbose=0)
    print(json.dumps({"replicas": replicas, "epochs": result.history.epoch.tolist(),
                      "loss": float(result.history.loss.iloc[-1])}))
""")


@pytest.mark.slow
def test_mirrored_training_on_two_logical_cpus(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY),
                                                       os.environ.get("PYTHONPATH")]))}
    completed = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, str(tmp_path / "run")],
                               capture_output=True, text=True, env=env, timeout=300,
                               cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    outcome = json.loads(completed.stdout.strip().splitlines()[-1])
    assert outcome["replicas"] == 2
    assert outcome["epochs"] == [0]
    assert np.isfinite(outcome["loss"])


@pytest.mark.slow
def test_vision_transformer_learns_the_synthetic_task(splits, tmp_path):
    config = TrainConfig("vit", epochs=8, batch_size=32, learning_rate=2e-3, augment=False,
                         model_options={"dim": 32, "depth": 2, "mlp_dim": 64, "dropout": 0.0})
    result = train_model(splits, config, tmp_path / "run", verbose=0)
    assert result.model.get_layer("patch_embedding").filters == 32
    assert result.history.val_accuracy.max() > 0.6


# --------------------------------------------------------------------------- initialization

def test_transfer_copies_matching_layers_only():
    autoencoder = build_autoencoder()
    classifier = build_model("encoder_cnn")
    copied = transfer_weights(autoencoder, classifier)
    assert copied == ["encoder1", "encoder2", "encoder3"]
    for name in copied:
        for mine, theirs in zip(classifier.get_layer(name).get_weights(),
                                autoencoder.get_layer(name).get_weights(), strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_transfer_without_any_match_raises():
    with pytest.raises(ValueError, match="nothing to initialize"):
        transfer_weights(build_autoencoder(), build_model("vit"))


def test_init_from_starts_training_at_the_saved_weights(baseline_run, splits, tmp_path):
    result, _ = baseline_run
    saved = tmp_path / "start.keras"
    result.model.save(saved)
    # a learning rate of zero keeps the copied weights: validation accuracy must match at once
    config = TrainConfig("baseline", epochs=1, batch_size=32, learning_rate=0.0, augment=False,
                         init_from=str(saved))
    warm = train_model(splits, config, tmp_path / "run", verbose=0)
    assert warm.history.val_accuracy.iloc[0] == pytest.approx(
        result.history.val_accuracy.max(), abs=1e-6)


def test_init_from_a_missing_file_says_what_to_do(tiny_splits, tmp_path):
    config = TrainConfig("baseline", epochs=1, batch_size=16, init_from="nowhere.keras")
    with pytest.raises(FileNotFoundError, match="Train it first"):
        train_model(tiny_splits, config, tmp_path / "run", verbose=0)


# --------------------------------------------------------------------------- long runs

def test_long_run_plan_resumes_a_checkpoint_outside_the_tree(tiny_splits, tmp_path, monkeypatch):
    """Cycle 1 killed after one epoch resumes from its folder under $FER_RUNS_DIR."""
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "outside"))
    models_dir = tmp_path / "models"
    plan = train_module.plan_cycle("long", models_dir)
    assert plan.run_dir == tmp_path / "outside" / "long" / "cycle1"
    assert (plan.init_from, plan.cycle, plan.resuming) == (None, 1, False)

    config = TrainConfig("baseline", epochs=3, batch_size=32, augment=False)
    original = train_module._EpochTimer.on_epoch_end

    def killed_after_first_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        raise RuntimeError("session ended")

    monkeypatch.setattr(train_module._EpochTimer, "on_epoch_end", killed_after_first_epoch)
    with pytest.raises(RuntimeError, match="session ended"):
        train_model(tiny_splits, config, plan.run_dir, verbose=0)
    monkeypatch.setattr(train_module._EpochTimer, "on_epoch_end", original)

    again = train_module.plan_cycle("long", models_dir)
    assert again.resuming and again.run_dir == plan.run_dir and again.cycle == 1
    result = train_model(tiny_splits, config, again.run_dir, verbose=0)
    assert result.history.epoch.tolist() == [0, 1, 2]
    assert result.process_starts == 2  # the killed process and the one that finished
    save_reference(result, tiny_splits, "long", models_dir, profile="smoke")
    record = json.loads((models_dir / "long.json").read_text())
    assert record["lineage"]["cycles"] == 1 and record["lineage"]["epochs"] == 3
    assert record["lineage"]["processes"] == 2
    assert record["lineage"]["data_checksums"] == [tiny_splits.train.checksum]


def test_long_run_plan_warm_restarts_from_the_committed_model(tiny_splits, tmp_path,
                                                             monkeypatch):
    """No checkpoint (a fresh machine): the next cycle starts from models/<name>.keras and the
    record adds up the cycles, epochs and hours of both."""
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "fresh-machine"))
    models_dir = tmp_path / "models"
    first = train_model(tiny_splits, TrainConfig("baseline", epochs=2, batch_size=32,
                                                 augment=False), tmp_path / "gone", verbose=0)
    save_reference(first, tiny_splits, "long", models_dir, profile="smoke")

    plan = train_module.plan_cycle("long", models_dir)
    assert plan.cycle == 2 and not plan.resuming
    assert plan.init_from == str(models_dir / "long.keras")
    assert plan.run_dir == tmp_path / "fresh-machine" / "long" / "cycle2"
    second_config = TrainConfig("baseline", epochs=1, batch_size=32, augment=False,
                                learning_rate=0.0, init_from=plan.init_from)
    second = train_model(tiny_splits, second_config, plan.run_dir, verbose=0)
    # a zero learning rate keeps the committed weights: the warm start really loaded them
    np.testing.assert_allclose(second.model.predict(tiny_splits.test.model_input(), verbose=0),
                               first.model.predict(tiny_splits.test.model_input(), verbose=0),
                               atol=1e-5)
    save_reference(second, tiny_splits, "long", models_dir, profile="smoke")
    record = json.loads((models_dir / "long.json").read_text())
    assert record["lineage"]["cycles"] == 2 and record["lineage"]["epochs"] == 3
    assert record["lineage"]["training_hours"] == pytest.approx(
        (first.seconds + second.seconds) / 3600, abs=2e-3)
    assert train_module.plan_cycle("long", models_dir).cycle == 3


def test_unknown_optimizer_and_augmentation_settings_are_refused():
    with pytest.raises(ValueError, match="Unknown optimizer 'lion'"):
        TrainConfig("baseline", optimizer="lion")
    with pytest.raises(ValueError, match="frobnicate"):
        TrainConfig("baseline", augmentation={"frobnicate": 1})


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_each_optimizer_and_ema_train(optimizer, tiny_splits, tmp_path):
    config = TrainConfig("compact_cnn", epochs=1, batch_size=32, optimizer=optimizer, ema=True,
                         augmentation={"crop": 4, "erasing": 0.5, "zoom": 0.0})
    result = train_model(tiny_splits, config, tmp_path / optimizer, verbose=0)
    assert np.isfinite(result.history.loss).all()
    kind = "SGD" if optimizer == "sgd" else "AdamW"
    assert type(result.model.optimizer).__name__ == kind and result.model.optimizer.use_ema



@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "epochs must be a whole number of at least 1"),
    ({"epochs": -3}, "epochs must be"),
    ({"train_subset": 0}, "train_subset must be"),
    ({"train_subset": -5}, "train_subset must be"),
    ({"model_options": {"frobnicate": 3}}, r"no option\(s\) \['frobnicate'\]"),
    ({"model_options": {"width": 0}}, "width must be positive"),
    ({"label_smoothing": 1.5}, "label_smoothing"),
    ({"model": "resnet"}, "Unknown model 'resnet'"),
])
def test_impossible_configs_are_refused_naming_the_option(changes, message):
    settings = {"model": "attention_unet", **changes}
    with pytest.raises(ValueError, match=message):
        TrainConfig(**settings)


def test_cli_train_refuses_bad_options_without_leaving_a_run_folder(tmp_path, monkeypatch,
                                                                   capsys):
    from fer_core import cli

    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    for arguments in (["--epochs", "0"], ["--train-subset", "0"], ["--option", "frobnicate=3"],
                      ["--width", "0"]):
        code = cli.main(["train", "attention_unet", "--profile", "smoke", *arguments])
        assert code == 2
        assert capsys.readouterr().err.startswith("fer-core: error: ")
    assert not (tmp_path / "runs").exists()


def test_init_from_a_corrupt_file_says_it_is_corrupt(tiny_splits, tmp_path):
    from fer_core.store import ModelFileError

    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    config = TrainConfig("baseline", epochs=1, batch_size=32, init_from=str(broken))
    with pytest.raises(ModelFileError, match="not a readable Keras model"):
        train_model(tiny_splits, config, tmp_path / "run", verbose=0)


@pytest.mark.parametrize("option", ["mixup", "cutmix"])
def test_batch_mixing_mixes_training_batches_and_keeps_targets_distributions(option):
    from fer_core.train import batch_mixing

    config = TrainConfig("baseline", **{option: 1.0})
    rng = np.random.default_rng(0)
    pixels = tf.constant(rng.uniform(0, 255, (16, 48, 48, 1)), tf.float32)
    targets = tf.one_hot(np.arange(16) % 7, 7)
    # soft-target training carries 14 columns: the label, then its soft target
    paired = tf.concat([targets, targets], axis=-1)
    mixed_pixels, mixed = batch_mixing(config)(pixels, paired)
    mixed = mixed.numpy()
    assert mixed_pixels.shape == pixels.shape
    assert not np.allclose(mixed_pixels.numpy(), pixels.numpy())  # faces were mixed
    np.testing.assert_allclose(mixed[:, :7].sum(axis=1), 1, atol=1e-5)
    np.testing.assert_allclose(mixed[:, :7], mixed[:, 7:], atol=1e-6)  # halves stay paired
    assert ((mixed[:, :7] > 0.01).sum(axis=1) > 1).any()  # some targets are now blends


def test_batch_mixing_is_off_by_default_and_validated():
    from fer_core.train import batch_mixing

    assert batch_mixing(TrainConfig("baseline")) is None
    with pytest.raises(ValueError, match="not both"):
        TrainConfig("baseline", mixup=0.2, cutmix=0.5)
    with pytest.raises(ValueError, match="class weights"):
        TrainConfig("baseline", mixup=0.2, class_weights=True)
    with pytest.raises(ValueError, match=r"mixup must be in \[0, 1\]"):
        TrainConfig("baseline", mixup=2.0)


def test_mixup_trains_and_validation_stays_unmixed(tiny_splits, tmp_path):
    config = TrainConfig("compact_cnn", epochs=1, batch_size=32, mixup=0.4)
    result = train_model(tiny_splits, config, tmp_path / "mixup", verbose=0)
    assert np.isfinite(result.history.loss).all()
    # validation accuracy is judged on the faces' own labels: a fraction of whole faces
    correct = result.history.val_accuracy * len(tiny_splits.validation)
    assert np.allclose(correct, correct.round(), atol=1e-3)


def test_hardware_description_names_the_cpu_and_the_instruction_sets_that_set_its_pace(
        tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\n"
                       "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 avx512vl\n\n"
                       "processor\t: 1\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2\n")
    described = train_module.hardware_description(cpuinfo)
    assert described["cpu"] == "AMD EPYC"
    assert described["cpu_features"] == ["avx2", "avx512f", "avx512_bf16"]
    cpuinfo.write_text("model name\t: Intel(R) Xeon(R)\nflags\t\t: fpu sse2 avx2\n")
    assert train_module.hardware_description(cpuinfo)["cpu_features"] == ["avx2"]
    # no /proc/cpuinfo (macOS, Windows): still a record, without features
    assert train_module.hardware_description(tmp_path / "missing")["cpu_features"] == []
