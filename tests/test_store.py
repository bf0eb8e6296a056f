"""Reference-model storage: one folder setting, clear errors for bad model files."""

from __future__ import annotations

import json
import zipfile

import keras
import numpy as np
import pytest

from fer_core import cli, config, store
from fer_core.models import build_autoencoder, build_model


@pytest.fixture
def folder(tmp_path):
    """A models folder with one small classifier, its record, and an autoencoder."""
    classifier = build_model("compact_cnn")
    classifier.save(tmp_path / "small.keras")
    (tmp_path / "small.json").write_text(json.dumps({"name": "small", "test": {}}))
    build_autoencoder().save(tmp_path / "autoencoder.keras")
    return tmp_path


def test_models_folder_comes_from_the_environment_or_the_repository(tmp_path, monkeypatch):
    monkeypatch.delenv(config.MODELS_VARIABLE, raising=False)
    assert config.models_dir() == config.REPOSITORY_MODELS
    assert (config.REPOSITORY_MODELS / "outliers.json").is_file()
    monkeypatch.setenv(config.MODELS_VARIABLE, str(tmp_path))
    assert config.models_dir() == tmp_path == store.models_dir()


def test_load_reference_reads_model_and_record_from_the_configured_folder(folder, monkeypatch):
    monkeypatch.setenv(config.MODELS_VARIABLE, str(folder))
    model, record = store.load_reference("small")
    assert model.count_params() == build_model("compact_cnn").count_params()
    assert record["name"] == "small"
    assert store.available() == ["autoencoder", "small"]


def test_a_missing_model_lists_the_available_ones(folder):
    with pytest.raises(FileNotFoundError, match="Available: autoencoder, small"):
        store.load_reference("nope", folder)


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 truncated", b"plain text"])
def test_a_corrupt_model_file_is_reported_as_corrupt_not_missing(folder, damage):
    (folder / "small.keras").write_bytes(damage)
    with pytest.raises(store.ModelFileError, match="not a readable Keras model"):
        store.load_reference("small", folder)


def test_an_autoencoder_is_not_taken_for_a_classifier(folder):
    with pytest.raises(store.ModelFileError, match=r"not an expression classifier.*\(48, 48, 1\)"):
        store.load_reference("autoencoder", folder)
    # but it loads where any model will do (transfer of its encoder)
    assert isinstance(store.load_model_file(folder / "autoencoder.keras", classifier=False),
                      keras.Model)


def test_a_folder_given_as_model_file(folder):
    with pytest.raises(store.ModelFileError, match="is a folder"):
        store.load_model_file(folder)


def test_read_record_names_what_is_there(folder):
    assert store.read_record("small", folder)["name"] == "small"
    with pytest.raises(FileNotFoundError, match="Records there: small"):
        store.read_record("autoencoder", folder)


@pytest.mark.parametrize("command", [["evaluate", "autoencoder"],
                                     ["predict", "x.jpg", "--model", "autoencoder"]])
def test_cli_refuses_the_autoencoder_as_classifier(command, folder, monkeypatch, capsys):
    monkeypatch.setenv(config.MODELS_VARIABLE, str(folder))
    monkeypatch.setenv("FER2013_PATH", str(folder / "unused.zip"))
    if command[0] == "evaluate":  # evaluate loads the data first: give it none to load
        monkeypatch.setattr("fer_core.data.load_splits", lambda path=None: _no_data())
    assert cli.main(command) == 2
    assert "not an expression classifier" in capsys.readouterr().err


def _no_data():
    from fer_core.data import split_data
    from fer_core.synthetic import synthetic_dataset

    return split_data(synthetic_dataset(train=70, test=14))


def test_cli_corrupt_model_is_one_line_and_debug_shows_the_traceback(folder, monkeypatch,
                                                                     capsys):
    monkeypatch.setenv(config.MODELS_VARIABLE, str(folder))
    (folder / "small.keras").write_bytes(b"garbage")
    assert cli.main(["predict", "x.jpg", "--model", "small"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("fer-core: error: ") and error.count("\n") == 1
    with pytest.raises(store.ModelFileError):
        cli.main(["--debug", "predict", "x.jpg", "--model", "small"])


def test_models_input_contract():
    from fer_core.models import InputContractWarning, as_model_input

    faces = np.random.default_rng(0).integers(0, 256, (2, 48, 48)).astype(np.uint8)
    assert as_model_input(faces).shape == (2, 48, 48, 1)
    colour = np.repeat(faces[..., None], 3, axis=3)
    np.testing.assert_allclose(as_model_input(colour), as_model_input(faces), atol=0.01)
    with pytest.raises(ValueError, match=r"shape \(N, 48, 48, 1\).*got \(2, 96, 96, 1\)"):
        as_model_input(np.zeros((2, 96, 96, 1)))
    with pytest.warns(InputContractWarning, match="look scaled to \\[0, 1\\]"):
        as_model_input(faces / 255.0)


def _face_folder(root, classes=("anger", "happiness")):
    import cv2

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for index in range(3):
            cv2.imwrite(str(root / name / f"{index}.png"),
                        rng.integers(0, 256, (64, 64)).astype(np.uint8))
    return root


def test_cli_evaluate_on_a_folder_matches_the_library_and_reports_absent_classes(
        folder, tmp_path, monkeypatch, capsys):
    from fer_core import data, evaluate

    record = json.loads((folder / "small.json").read_text())
    (folder / "small.json").write_text(json.dumps({**record, "config": {"denoise": True}}))
    monkeypatch.setenv(config.MODELS_VARIABLE, str(folder))
    faces_dir = _face_folder(tmp_path / "other")
    with pytest.warns(UserWarning, match="resized from 64x64"):
        code = cli.main(["evaluate", "small", "--dataset", str(faces_dir),
                         "--class-map", "anger=angry", "--class-map", "happiness=happy"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "absent" in printed and "disgust, fear, neutral, sad, surprise" in printed
    with pytest.warns(UserWarning):
        faces, _ = data.load_labelled_folder(faces_dir, {"anger": "angry",
                                                         "happiness": "happy"})
    library = evaluate.metrics_table({"small": evaluate.evaluate_reference("small", faces)[0]})
    assert library.to_string() in printed  # the same call, denoising included


def test_a_folder_class_that_is_not_mapped_is_refused(tmp_path):
    from fer_core import data

    with pytest.raises(data.DataError, match=r"Folder 'anger' .* --class-map anger=<class>"):
        data.load_labelled_folder(_face_folder(tmp_path / "other", ("anger",)))


def test_saved_model_files_are_deflated_and_read_back_exactly(tmp_path):
    model = build_model("compact_cnn")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    plain = tmp_path / "plain.keras"
    model.save(plain)
    path = store.save_model_file(model, tmp_path / "deflated.keras")
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_DEFLATED}
        weights = archive.read("model.weights.h5")
    assert path.stat().st_size < plain.stat().st_size
    faces = np.random.default_rng(0).uniform(0, 255, (4, 48, 48, 1)).astype("float32")
    loaded = store.load_model_file(path)
    assert getattr(loaded, "optimizer", None) is None  # no optimizer state saved
    np.testing.assert_array_equal(loaded.predict(faces, verbose=0), model.predict(faces, verbose=0))
    store.deflate_model_file(path)  # deflating again changes no byte of any member
    with zipfile.ZipFile(path) as archive:
        assert archive.read("model.weights.h5") == weights
    assert not list(tmp_path.glob("*.partial"))


def test_weights_checksum_follows_the_weights_not_the_file(tmp_path):
    model = build_model("compact_cnn")
    first = store.save_model_file(model, tmp_path / "first.keras")
    model.save(tmp_path / "stored.keras")  # another name, date and compression
    assert store.weights_checksum(first) == store.weights_checksum(tmp_path / "stored.keras")
    weights = model.get_weights()
    weights[0] = weights[0] + 1e-3
    model.set_weights(weights)
    changed = store.save_model_file(model, tmp_path / "changed.keras")
    assert store.weights_checksum(changed) != store.weights_checksum(first)


@pytest.mark.parametrize("architecture", ["vgg_cnn", "vit"])
def test_a_model_trained_in_bfloat16_is_read_back_computing_in_float32(architecture, tmp_path):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        keras.utils.set_random_seed(0)
        trained = build_model(architecture)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert trained.layers[2].dtype_policy.name == "mixed_bfloat16"
    trained.save(tmp_path / "mixed.keras")
    model, _ = store.load_reference("mixed", tmp_path)
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}
    for ours, theirs in zip(model.get_weights(), trained.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    faces = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype("float32")
    in_bfloat16, in_float32 = trained.predict(faces, verbose=0), model.predict(faces, verbose=0)
    assert not np.array_equal(in_float32, in_bfloat16)  # it really computes otherwise
    np.testing.assert_allclose(in_float32, in_bfloat16, atol=0.05)
    assert store.in_float32(model) is model  # already float32: nothing to rebuild
    store.check_classifier(model)

    # and back: the bfloat16 twin computes as the training run did, from the same weights
    twin = store.in_bfloat16(model)
    assert twin.layers[2].dtype_policy.name == "mixed_bfloat16"
    assert twin.layers[-1].dtype_policy.name == "float32"  # probabilities in float32
    np.testing.assert_allclose(twin.predict(faces, verbose=0), in_bfloat16, atol=1e-6)


def _cycle(folder, name, init_from=None, refit=False):
    config_ = {"init_from": init_from, "refit": refit}
    (folder / f"{name}.json").write_text(json.dumps({"name": name, "config": config_}))


def test_restart_chain_follows_the_records_back_to_the_first_cycle(tmp_path):
    _cycle(tmp_path, "first")
    _cycle(tmp_path, "second", init_from="models/compact/first.keras")
    _cycle(tmp_path, "third", init_from="/anywhere/second.keras")
    _cycle(tmp_path, "third_refit", init_from="models/compact/third.keras", refit=True)
    assert store.restart_chain("third", tmp_path) == ["first", "second", "third"]
    assert store.restart_chain("first", tmp_path) == ["first"]
    with pytest.raises(ValueError, match="refit"):
        store.restart_chain("third_refit", tmp_path)


def test_restart_chain_stops_at_a_model_from_another_folder_and_refuses_a_loop(tmp_path):
    _cycle(tmp_path, "student", init_from="models/transfer/encoder.keras")
    assert store.restart_chain("student", tmp_path) == ["student"]
    _cycle(tmp_path, "a", init_from="b.keras")
    _cycle(tmp_path, "b", init_from="a.keras")
    with pytest.raises(ValueError, match="loop"):
        store.restart_chain("a", tmp_path)
    with pytest.raises(FileNotFoundError, match="Records there"):
        store.restart_chain("missing", tmp_path)
