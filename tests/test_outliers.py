"""Autoencoder outliers: planted anomalies rank first, thresholds, the committed outlier file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fer_core.config import CLASS_NAMES, get_profile
from fer_core.data import DataError, FerData
from fer_core.outliers import (
    ERRORS_FILE_NAME,
    OutlierResult,
    check_percentile,
    detect_outliers,
    exclude_outliers,
    load_outlier_result,
    load_outliers,
    reconstruction_errors,
    save_outliers,
    threshold_at,
    train_autoencoder,
)
from fer_core.synthetic import draw_face, synthetic_faces

PERCENTILE = 97.0  # with 306 images: 10 flagged, room for the 6 planted ones


def _planted() -> dict[str, np.ndarray]:
    rows, columns = np.mgrid[:48, :48]
    face = draw_face(3, np.random.default_rng(5))
    return {
        "Planted_black": np.zeros((48, 48), np.uint8),
        "Planted_white": np.full((48, 48), 255, np.uint8),
        "Planted_inverted": (255 - face).astype(np.uint8),
        "Planted_noise": np.random.default_rng(3).integers(0, 256, (48, 48), dtype=np.uint8),
        "Planted_checkerboard": (((rows // 6 + columns // 6) % 2) * 255).astype(np.uint8),
        "Planted_stripes": (((rows // 4) % 2) * 220 + 20).astype(np.uint8),
    }


@pytest.fixture(scope="module")
def training() -> FerData:
    """300 synthetic faces followed by 6 planted non-faces, as one training split."""
    faces = synthetic_faces(300, seed=7)
    planted = _planted()
    return FerData(np.concatenate([faces.images, np.stack(list(planted.values()))]),
                   np.concatenate([faces.labels, np.arange(len(planted)) % len(CLASS_NAMES)]),
                   np.concatenate([faces.ids, list(planted)]),
                   np.array(["Training"] * (len(faces) + len(planted))),
                   checksum="synthetic-outliers")


@pytest.fixture(scope="module")
def detected(training):
    profile = get_profile("smoke", autoencoder_epochs=3, batch_size=32)
    result, model = detect_outliers(training, PERCENTILE, profile, verbose=0)
    return result, model


def test_planted_anomalies_have_the_highest_errors(detected, training):
    result, _ = detected
    planted = set(_planted())
    assert result.errors.shape == (len(training),)
    top = {str(training.ids[i]) for i in np.argsort(-result.errors)[:len(planted)]}
    assert top == planted
    faces = ~np.isin(training.ids, list(planted))
    assert result.errors[~faces].min() > 1.5 * np.percentile(result.errors[faces], 99)


def test_planted_anomalies_are_flagged_at_the_percentile(detected, training):
    result, _ = detected
    assert result.percentile == PERCENTILE
    assert result.threshold == pytest.approx(np.percentile(result.errors, PERCENTILE))
    np.testing.assert_array_equal(result.flagged, result.errors > result.threshold)
    assert set(_planted()) <= set(result.flagged_ids)
    # np.percentile interpolates between ranks: (1 - 0.97) * 305 = 9.15 images lie above it
    assert result.flagged.sum() == 10
    flagged_errors = [result.errors[list(training.ids).index(i)] for i in result.flagged_ids]
    assert flagged_errors == sorted(flagged_errors, reverse=True)  # most anomalous first
    assert result.config["epochs"] == 3 and result.config["profile"] == "smoke"
    assert result.config["parameters"] > 0


def test_per_class_table_counts_the_flags(detected, training):
    table = detected[0].per_class()
    assert list(table.index) == list(CLASS_NAMES)
    assert table.images.sum() == len(training)
    assert table.flagged.sum() == detected[0].flagged.sum()
    assert ((table["flagged %"] >= 0) & (table["flagged %"] <= 100)).all()


def test_reconstruction_errors_are_mean_squared_on_unit_scale(detected, training):
    _, model = detected
    subset = training.select(np.arange(5))
    reconstructed = model.predict(subset.model_input(), verbose=0)
    expected = ((reconstructed - subset.pixels_as_float()) ** 2).mean(axis=(1, 2, 3))
    np.testing.assert_allclose(reconstruction_errors(model, subset), expected, rtol=1e-5)


def test_same_seed_gives_the_same_errors(training):
    small = training.select(np.arange(64))
    profile = get_profile("smoke", autoencoder_epochs=1, batch_size=32)
    first = reconstruction_errors(train_autoencoder(small, profile, seed=4, verbose=0), small)
    second = reconstruction_errors(train_autoencoder(small, profile, seed=4, verbose=0), small)
    np.testing.assert_allclose(first, second, rtol=1e-5)
    assert np.ptp(first) > 0


def test_threshold_at_follows_numpy_percentile():
    errors = np.arange(100, dtype=float)
    threshold = threshold_at(errors, 98)
    assert threshold == pytest.approx(np.percentile(errors, 98)) == pytest.approx(97.02)
    result = OutlierResult(np.array([f"i{k}" for k in range(100)]), np.zeros(100, int), errors,
                           98, threshold, {})
    assert result.flagged.sum() == 2
    assert result.flagged_ids == ["i99", "i98"]
    assert threshold_at(errors, 50) == pytest.approx(49.5)


@pytest.mark.parametrize("percentile", [0, 100, -5, 100.5, 250])
def test_percentile_must_lie_strictly_inside(percentile, training):
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        check_percentile(percentile)
    with pytest.raises(ValueError, match="strictly between 0 and 100"):
        threshold_at(np.arange(10.0), percentile)
    with pytest.raises(ValueError, match="strictly between 0 and 100"):  # before any training
        detect_outliers(training, percentile, get_profile("smoke"), verbose=0)


def test_check_percentile_accepts_inner_values():
    assert check_percentile(98) == 98.0
    assert check_percentile(0.5) == 0.5


def test_saved_outliers_round_trip(detected, training, tmp_path):
    result, _ = detected
    path = save_outliers(result, training.checksum, tmp_path / "nested" / "outliers.json",
                         command="fer-core outliers")
    record = load_outliers(path)
    assert record["data_checksum"] == "synthetic-outliers"
    assert record["flagged_count"] == int(result.flagged.sum())
    assert [entry["id"] for entry in record["flagged"]] == result.flagged_ids
    assert record["percentile"] == PERCENTILE
    assert record["threshold"] == pytest.approx(result.threshold)
    assert record["images_scored"] == len(training)
    assert record["autoencoder"] == result.config
    assert record["command"] == "fer-core outliers"
    assert (path.parent / ERRORS_FILE_NAME).is_file()

    kept = exclude_outliers(training, path)
    assert len(kept) == len(training) - int(result.flagged.sum())
    assert set(kept.ids) == set(training.ids) - set(result.flagged_ids)
    assert not set(_planted()) & set(kept.ids)
    assert kept.checksum == training.checksum

    loaded = load_outlier_result(training, path)
    np.testing.assert_allclose(loaded.errors, result.errors, atol=1e-6)
    np.testing.assert_array_equal(loaded.ids, training.ids)
    assert loaded.threshold == pytest.approx(result.threshold)
    assert loaded.percentile == PERCENTILE
    assert loaded.flagged_ids == result.flagged_ids
    assert loaded.config == result.config


def test_outlier_file_from_other_data_is_refused(detected, training, tmp_path):
    result, _ = detected
    path = save_outliers(result, training.checksum, tmp_path / "outliers.json")
    other = FerData(training.images, training.labels, training.ids, training.usage,
                    checksum="another-download")
    with pytest.raises(DataError, match="checksum"):
        exclude_outliers(other, path)
    with pytest.raises(DataError, match="does not match"):
        load_outlier_result(other, path)


def test_outlier_ids_missing_from_the_split_are_refused(detected, training, tmp_path):
    result, _ = detected
    path = save_outliers(result, training.checksum, tmp_path / "outliers.json")
    missing = result.flagged_ids[0]
    split = training.select(training.ids != missing)
    with pytest.raises(DataError, match="not in this training split") as error:
        exclude_outliers(split, path)
    assert missing in str(error.value)
    bigger = FerData(np.concatenate([training.images, training.images[:1]]),
                     np.concatenate([training.labels, training.labels[:1]]),
                     np.concatenate([training.ids, ["Unseen_1"]]),
                     np.concatenate([training.usage, training.usage[:1]]), training.checksum)
    with pytest.raises(DataError, match="1 ids"):
        load_outlier_result(bigger, path)


def test_missing_outlier_file_says_how_to_make_it(tmp_path, training):
    with pytest.raises(DataError, match="fer-core outliers"):
        load_outliers(tmp_path / "absent.json")
    with pytest.raises(DataError, match="No outlier file"):
        exclude_outliers(training, tmp_path / "absent.json")


def test_saved_file_is_plain_json(detected, training, tmp_path):
    path = save_outliers(detected[0], training.checksum, tmp_path / "outliers.json")
    record = json.loads(path.read_text())
    assert record["format_version"] == 1
    assert set(record["error_quantiles"]) == {"1", "25", "50", "75", "95", "98", "99"}
    assert all(entry["label"] in CLASS_NAMES for entry in record["flagged"])


def test_saved_autoencoder_reloads_with_its_record(tmp_path):
    import keras

    from fer_core.models import build_autoencoder
    from fer_core.outliers import save_autoencoder

    model = build_autoencoder()
    path = save_autoencoder(model, "synthetic-1306", tmp_path / "autoencoder.keras",
                            command="fer-core pretrain", profile=get_profile("smoke"))
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["data_checksum"] == "synthetic-1306" and record["profile"] == "smoke"
    assert record["parameters"] == model.count_params()
    reloaded = keras.models.load_model(path, compile=False)
    np.testing.assert_array_equal(reloaded.get_layer("encoder1").get_weights()[0],
                                  model.get_layer("encoder1").get_weights()[0])


def test_outlier_file_matches_data_by_content_not_by_container(tmp_path):
    """Another zip of the same files (Kaggle's archive compresses differently) has another
    file checksum but the same content: the outlier file applies; other content is refused."""
    from fer_core.data import FerData, content_checksum
    from fer_core.outliers import same_data

    images = np.zeros((2, 48, 48), np.uint8)
    data = FerData(images, np.array([0, 1]), np.array(["a", "b"]),
                   np.array(["Training", "Training"]), checksum="zip-one")
    data.pixels_checksum = content_checksum(data)
    record = {"data_checksum": "zip-two", "pixels_checksum": data.pixels_checksum}
    assert same_data(record, data)
    other = FerData(images + 1, data.labels, data.ids, data.usage, checksum="zip-one")
    other.pixels_checksum = content_checksum(other)
    assert not same_data(record, other)
    assert same_data({"data_checksum": "zip-one"}, other)  # old files: the source checksum
