"""The command line gives what the library gives: data, outliers, train and evaluate."""

from __future__ import annotations

import json

import pytest

from fer_core import cli, data, evaluate, outliers, train
from fer_core.config import get_profile


@pytest.fixture
def source(kaggle_zip, monkeypatch, tmp_path):
    """The tiny Kaggle zip as $FER2013_PATH, with run folders outside the test tree."""
    monkeypatch.setenv("FER2013_PATH", str(kaggle_zip))
    monkeypatch.setenv("FER_RUNS_DIR", str(tmp_path / "runs"))
    return kaggle_zip


def test_cli_data_prints_the_library_tables(source, capsys):
    assert cli.main(["data"]) == 0
    printed = capsys.readouterr().out
    splits = data.load_splits(progress=False)
    assert data.summary_statistics(splits).to_string() in printed
    assert data.class_counts(splits).to_string() in printed
    assert data.audit(data.load_fer2013(progress=False)).summary().to_string() in printed


@pytest.mark.slow
def test_cli_outliers_flags_what_the_library_flags(source, tmp_path, capsys):
    output = tmp_path / "outliers.json"
    assert cli.main(["outliers", "--profile", "smoke", "--output", str(output)]) == 0
    splits = data.load_splits(progress=False)
    profile = get_profile("smoke")
    result, _ = outliers.detect_outliers(splits.train.head(profile.train_subset), 98.0, profile)
    written = json.loads(output.read_text())
    assert [row["id"] for row in written["flagged"]] == result.flagged_ids
    assert written["data_checksum"] == splits.train.checksum


@pytest.mark.slow
def test_cli_train_and_evaluate_match_the_library(source, tmp_path, capsys, monkeypatch):
    models_dir = tmp_path / "models"
    arguments = ["train", "baseline", "--profile", "smoke", "--epochs", "1",
                 "--train-subset", "20", "--no-augment", "--models-dir", str(models_dir),
                 "--name", "tiny"]
    assert cli.main(arguments) == 0
    record = json.loads((models_dir / "tiny.json").read_text())
    splits = data.load_splits(progress=False)
    config = train.TrainConfig(**record["config"])
    # the subset is applied in one place, the same for the CLI and the library
    assert record["train_images"] == len(train.prepare_training_data(splits, config).train) == 20
    capsys.readouterr()
    monkeypatch.setenv("FER_MODELS_DIR", str(models_dir))
    assert cli.main(["evaluate", "tiny", "--tta"]) == 0
    printed = capsys.readouterr().out
    metrics, _ = evaluate.evaluate_reference("tiny", splits.test, tta=True, models_dir=models_dir)
    assert evaluate.metrics_table({"tiny": metrics}).to_string() in printed
    assert cli.main(["evaluate", "tiny", "--tta", "shifts"]) == 0
    metrics, _ = evaluate.evaluate_reference("tiny", splits.test, tta="shifts",
                                             models_dir=models_dir)
    assert evaluate.metrics_table({"tiny": metrics}).to_string() in capsys.readouterr().out


def test_cli_train_refuses_a_negative_subset(source, capsys):
    assert cli.main(["train", "baseline", "--profile", "smoke", "--train-subset", "-3"]) == 2
    assert "train_subset must be" in capsys.readouterr().err


def test_cli_train_refit_reaches_the_config(source, tmp_path, monkeypatch):
    seen = []

    class StopError(Exception):
        pass

    def train_model(splits, config, run_dir, verbose):
        seen.append(config)
        raise StopError

    monkeypatch.setattr(train, "train_model", train_model)
    with pytest.raises(StopError):
        cli.main(["train", "baseline", "--profile", "smoke", "--refit",
                  "--models-dir", str(tmp_path / "models")])
    assert seen[0].refit


def test_cli_train_seed_reaches_the_config_and_leaves_the_split_alone(source, tmp_path,
                                                                      monkeypatch):
    seen = []

    class StopError(Exception):
        pass

    def train_model(splits, config, run_dir, verbose):
        seen.append((splits, config))
        raise StopError

    monkeypatch.setattr(train, "train_model", train_model)
    for seed in ([], ["--seed", "2013"]):
        with pytest.raises(StopError):
            cli.main(["train", "baseline", "--profile", "smoke", *seed,
                      "--models-dir", str(tmp_path / "models")])
    (default_splits, default_config), (seeded_splits, seeded_config) = seen
    assert default_config.seed != 2013 and seeded_config.seed == 2013
    # another seed trains other weights on the same faces: validation stays held out
    assert list(seeded_splits.validation.ids) == list(default_splits.validation.ids)
