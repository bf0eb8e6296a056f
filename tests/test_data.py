"""Loading, caching, splitting, describing and auditing (fer_core.data) on tiny sources."""

from __future__ import annotations

import re
import shutil
import zipfile

import cv2
import numpy as np
import pytest

from fer_core import data as fer_data
from fer_core import synthetic
from fer_core.config import CLASS_NAMES
from fer_core.data import (
    DataError,
    FerData,
    Splits,
    audit,
    class_counts,
    class_label_map,
    example_batch,
    load_fer2013,
    read_image_file,
    split_data,
    summary_statistics,
)


def load(path, **options):
    return load_fer2013(path, progress=False, **options)


def assert_same_data(actual: FerData, expected: FerData, *, ids: bool = True) -> None:
    assert actual.images.dtype == np.uint8
    assert actual.images.shape == expected.images.shape
    np.testing.assert_array_equal(actual.images, expected.images)
    np.testing.assert_array_equal(actual.labels, expected.labels)
    assert actual.labels.dtype == np.int64
    np.testing.assert_array_equal(actual.usage, expected.usage)
    if ids:
        np.testing.assert_array_equal(actual.ids, expected.ids)


def cache_files(folder):
    return sorted(folder.glob("fer2013-*.npz")) if folder.exists() else []


# --------------------------------------------------------------------------- loaders


def test_folder_loader_reads_images_labels_ids_and_usage(kaggle_tree, expected):
    loaded = load(kaggle_tree)
    assert_same_data(loaded, expected)
    assert len(loaded) == 49
    assert loaded.ids[0] == "Training_Synthetic_7_0"  # class angry, first id
    assert set(loaded.usage) == {"Training", "PublicTest", "PrivateTest"}
    assert (loaded.usage == "Training").sum() == 35
    assert (loaded.usage == "PublicTest").sum() == 7
    assert (loaded.usage == "PrivateTest").sum() == 7
    assert loaded.notes == []
    assert len(loaded.checksum) == 64


def test_zip_loader_matches_folder(kaggle_zip, kaggle_tree, expected):
    from_zip, from_folder = load(kaggle_zip), load(kaggle_tree)
    assert_same_data(from_zip, expected)
    assert_same_data(from_zip, from_folder)
    assert from_zip.checksum != from_folder.checksum  # different sources, different caches


def test_csv_loader_matches_zip_and_keeps_usage(icml_csv, kaggle_zip, expected):
    from_csv, from_zip = load(icml_csv), load(kaggle_zip)
    assert_same_data(from_csv, from_zip, ids=False)
    assert_same_data(from_csv, expected, ids=False)
    # The csv has no file names: ids are <Usage>_<row index>.
    assert list(from_csv.ids[:2]) == ["Training_0", "Training_1"]
    assert from_csv.ids[35] == f"{from_csv.usage[35]}_35"
    assert all(i.startswith(f"{u}_") for i, u in zip(from_csv.ids, from_csv.usage, strict=True))


def test_csv_label_order_is_translated(tmp_path):
    # csv emotion 4 is sad, 5 surprise, 6 neutral; the library's classes are alphabetical.
    image = np.arange(2304, dtype=np.int64).reshape(48, 48) % 256
    rows = [(emotion, "Training") for emotion in range(7)] + [(6, "PublicTest")]
    path = tmp_path / "labels.csv"
    with path.open("w") as handle:
        handle.write("emotion,pixels,Usage\n")
        for emotion, usage in rows:
            handle.write(f"{emotion},{' '.join(map(str, image.ravel()))},{usage}\n")
    loaded = load(path)
    names = [CLASS_NAMES[i] for i in loaded.labels]
    assert names == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "neutral"]
    np.testing.assert_array_equal(loaded.images[0], image.astype(np.uint8))


def test_zip_with_top_level_folder_loads(kaggle_tree, tmp_path, expected, zip_tree):
    archive = zip_tree(kaggle_tree, tmp_path / "archive.zip", prefix="fer2013/")
    with zipfile.ZipFile(archive) as handle:
        assert all(name.startswith("fer2013/") for name in handle.namelist())
    assert_same_data(load(archive), expected)


def test_folder_with_one_nested_level_loads(kaggle_tree, expected):
    # The folder loader also accepts the folder *above* the extracted tree.
    assert (kaggle_tree / "train").is_dir()
    assert not (kaggle_tree.parent / "train").exists()
    assert_same_data(load(kaggle_tree.parent), expected)


def test_path_from_environment_variable(kaggle_zip, expected, monkeypatch):
    monkeypatch.setenv("FER2013_PATH", str(kaggle_zip))
    assert_same_data(load_fer2013(progress=False), expected)


# --------------------------------------------------------------------------- cache


def test_cache_is_written_and_read_back(kaggle_zip, expected, cache_folder, monkeypatch):
    assert cache_files(cache_folder) == []
    first = load(kaggle_zip)
    files = cache_files(cache_folder)
    assert len(files) == 1
    assert first.checksum[:20] in files[0].name

    def must_not_decode(*args, **kwargs):
        raise AssertionError("the second load decoded the zip instead of reading the cache")

    monkeypatch.setattr(fer_data, "_load_zip", must_not_decode)
    second = load(kaggle_zip)
    assert_same_data(second, first)
    assert_same_data(second, expected)
    assert second.checksum == first.checksum


def test_no_cache_written_when_disabled(kaggle_zip, cache_folder):
    load(kaggle_zip, use_cache=False)
    assert cache_files(cache_folder) == []


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty", "other_checksum"])
def test_corrupted_cache_is_rebuilt_not_trusted(damage, kaggle_zip, expected, cache_folder):
    first = load(kaggle_zip)
    (cache_file,) = cache_files(cache_folder)
    if damage == "garbage":
        cache_file.write_bytes(b"definitely not an npz file" * 10)
    elif damage == "truncated":
        raw = cache_file.read_bytes()
        cache_file.write_bytes(raw[: len(raw) // 2])
    elif damage == "empty":  # a zero-byte file raised EOFError and broke every later load
        cache_file.write_bytes(b"")
    else:  # a well-formed cache that belongs to another source
        wrong = FerData(255 - first.images, (first.labels + 1) % 7, first.ids, first.usage,
                        checksum="0" * 64)
        fer_data._write_cache(cache_file, wrong)
    again = load(kaggle_zip)
    assert_same_data(again, expected)
    # The cache was rewritten with the right content.
    with np.load(cache_file) as stored:
        assert str(stored["checksum"]) == first.checksum
        np.testing.assert_array_equal(stored["images"], expected.images)


# --------------------------------------------------------------------------- splitting


@pytest.mark.parametrize("train_count", [73, 350, 701])
def test_split_sizes_and_no_overlap(train_count):
    data = synthetic.synthetic_dataset(train=train_count, test=21, seed=3)
    splits = split_data(data)
    assert len(splits.validation) == train_count // 5  # floor(0.2 * n)
    assert len(splits.train) == train_count - train_count // 5
    assert len(splits.test) == 21
    train_ids, validation_ids = set(splits.train.ids), set(splits.validation.ids)
    assert not train_ids & validation_ids
    assert train_ids | validation_ids == set(data.ids[data.usage == "Training"])
    assert set(splits.test.ids) == set(data.ids[data.usage != "Training"])
    assert set(splits.train.usage) == set(splits.validation.usage) == {"Training"}
    assert "Training" not in set(splits.test.usage)
    # Each split keeps images with their labels.
    lookup = {i: (img, lab) for img, lab, i in zip(data.images, data.labels, data.ids,
                                                   strict=True)}
    for part in (splits.train, splits.validation, splits.test):
        for image, label, image_id in zip(part.images, part.labels, part.ids, strict=True):
            assert label == lookup[image_id][1]
            np.testing.assert_array_equal(image, lookup[image_id][0])


def test_split_is_stratified():
    # Unbalanced classes: class k gets 10 + 6k training images.
    base = synthetic.synthetic_faces(7 * 40, seed=11)
    keep = np.concatenate([np.flatnonzero(base.labels == k)[: 10 + 6 * k] for k in range(7)])
    training = base.select(np.sort(keep))
    test = synthetic.synthetic_faces(14, seed=12, usage="PublicTest")
    data = FerData(np.concatenate([training.images, test.images]),
                   np.concatenate([training.labels, test.labels]),
                   np.concatenate([training.ids, test.ids]),
                   np.concatenate([training.usage, test.usage]))
    splits = split_data(data, seed=5)
    n_train = len(training)
    validation_size = len(splits.validation)
    assert validation_size == n_train // 5
    totals = np.bincount(training.labels, minlength=7)
    in_validation = np.bincount(splits.validation.labels, minlength=7)
    wanted = validation_size * totals / n_train
    assert np.all(np.abs(in_validation - wanted) <= 1.0), (in_validation, wanted)
    np.testing.assert_array_equal(np.bincount(splits.train.labels, minlength=7),
                                  totals - in_validation)


def test_split_is_deterministic_per_seed():
    data = synthetic.synthetic_dataset(train=140, test=14, seed=2)
    first, again = split_data(data, seed=42), split_data(data, seed=42)
    other = split_data(data, seed=43)
    np.testing.assert_array_equal(first.validation.ids, again.validation.ids)
    np.testing.assert_array_equal(first.train.ids, again.train.ids)
    assert set(first.validation.ids) != set(other.validation.ids)
    assert len(other.validation) == len(first.validation) == 28


def test_split_works_when_a_class_has_one_image():
    data = synthetic.synthetic_dataset(train=20, test=7, seed=4)  # class 6: positions 6, 13
    keep = ~((data.usage == "Training") & (data.labels == 6) & (data.ids != data.ids[6]))
    data = data.select(keep)  # class 6 now has one training image
    assert np.bincount(data.labels[data.usage == "Training"]).min() == 1
    splits = split_data(data)
    assert len(splits.validation) == 19 // 5
    assert len(splits.train) + len(splits.validation) == 19


def test_split_refuses_empty_parts():
    data = synthetic.synthetic_dataset(train=4, test=7, seed=4)
    with pytest.raises(DataError, match=r"Cannot split 4 training and 7 test images"):
        split_data(data)
    only_train = synthetic.synthetic_faces(20, seed=4)
    with pytest.raises(DataError, match=r"Cannot split 20 training and 0 test images"):
        split_data(only_train)


# --------------------------------------------------------------------------- description


def constant_images(*values: int) -> np.ndarray:
    return np.stack([np.full((48, 48), v, np.uint8) for v in values])


def hand_made_splits() -> Splits:
    half = np.zeros((48, 48), np.uint8)
    half[24:] = 255

    def part(images, labels, usage):
        n = len(images)
        return FerData(images, np.array(labels, np.int64),
                       np.array([f"{usage}_{i}" for i in range(n)]), np.array([usage] * n))
    return Splits(
        train=part(constant_images(0, 255), [3, 3], "Training"),
        validation=part(constant_images(51), [0], "Training"),
        test=part(np.stack([half, constant_images(102)[0]]), [1, 6], "PublicTest"),
    )


def test_summary_statistics_hand_computed():
    table = summary_statistics(hand_made_splits())
    assert list(table.index) == ["train", "validation", "test"]
    assert list(table.columns) == ["images", "pixels", "missing pixels", "dtype", "mean", "std",
                                   "min", "max"]
    assert list(table["images"]) == [2, 1, 2]
    assert list(table["pixels"]) == [2 * 2304, 2304, 2 * 2304]
    assert list(table["missing pixels"]) == [0, 0, 0]
    assert set(table["dtype"]) == {"float32"}
    # train: one black and one white image
    assert table.loc["train", "mean"] == pytest.approx(0.5)
    assert table.loc["train", "std"] == pytest.approx(0.5)
    assert (table.loc["train", "min"], table.loc["train", "max"]) == (0.0, 1.0)
    # validation: one image of 51 = 0.2 * 255
    assert table.loc["validation", "mean"] == pytest.approx(0.2)
    assert table.loc["validation", "std"] == 0.0
    assert table.loc["validation", "min"] == pytest.approx(0.2)
    assert table.loc["validation", "max"] == pytest.approx(0.2)
    # test: half 0 / half 1, and 0.4 everywhere -> mean 0.45, var = 0.1275
    assert table.loc["test", "mean"] == pytest.approx(0.45)
    assert table.loc["test", "std"] == pytest.approx(0.3571)
    assert (table.loc["test", "min"], table.loc["test", "max"]) == (0.0, 1.0)


def test_summary_statistics_on_a_split_synthetic_set():
    data = synthetic.synthetic_dataset(train=70, test=14, seed=9)
    splits = split_data(data)
    table = summary_statistics(splits)
    assert list(table["images"]) == [56, 14, 14]
    assert list(table["pixels"]) == [56 * 2304, 14 * 2304, 14 * 2304]
    assert list(table["missing pixels"]) == [0, 0, 0]
    scaled = splits.test.images / 255.0
    assert table.loc["test", "mean"] == pytest.approx(scaled.mean(), abs=1e-4)
    assert table.loc["test", "min"] == pytest.approx(scaled.min())
    assert table.loc["test", "max"] == pytest.approx(scaled.max())
    assert 0.0 <= table.loc["train", "min"] < table.loc["train", "max"] <= 1.0


def test_class_counts_hand_computed():
    table = class_counts(hand_made_splits())
    assert list(table.columns) == ["train", "validation", "test", "all"]
    assert list(table.index) == [*CLASS_NAMES, "total"]
    assert table.loc["happy"].tolist() == [2, 0, 0, 2]
    assert table.loc["angry"].tolist() == [0, 1, 0, 1]
    assert table.loc["disgust"].tolist() == [0, 0, 1, 1]
    assert table.loc["surprise"].tolist() == [0, 0, 1, 1]
    assert table.loc["fear"].tolist() == [0, 0, 0, 0]
    assert table.loc["total"].tolist() == [2, 1, 2, 5]


def test_class_counts_on_loaded_tiny_set(kaggle_zip):
    table = class_counts(split_data(load(kaggle_zip)))
    assert table.loc["total"].tolist() == [28, 7, 14, 49]
    assert table["all"].drop("total").tolist() == [7] * 7  # 5 train + 2 test per class
    assert table["test"].drop("total").tolist() == [2] * 7


def test_example_batch():
    data = synthetic.synthetic_dataset(train=70, test=14, seed=9)
    batch = example_batch(data)
    assert batch.shape == (32, 48, 48, 1)
    assert batch.dtype == np.float32
    assert batch.min() >= 0.0
    assert batch.max() <= 1.0
    assert batch.max() > 0.5  # really scaled images, not zeros
    # Every image of the batch is one of the data's images divided by 255.
    flat = {image.tobytes() for image in data.images}
    restored = np.round(batch[..., 0] * 255).astype(np.uint8)
    assert all(image.tobytes() in flat for image in restored)
    assert len({image.tobytes() for image in restored}) == 32
    np.testing.assert_array_equal(batch, example_batch(data))  # seeded
    assert example_batch(data.head(10)).shape == (10, 48, 48, 1)


def test_class_label_map():
    assert class_label_map() == {0: "angry", 1: "disgust", 2: "fear", 3: "happy", 4: "neutral",
                                 5: "sad", 6: "surprise"}


# --------------------------------------------------------------------------- audit


def test_audit_finds_planted_problems():
    data = synthetic.synthetic_dataset(train=70, test=28, seed=5, noise=20)
    images = data.images.copy()
    blank_at, original_at, copy_at, lookalike_at = 3, 10, 20, 30
    test_at = 70 + 5
    images[blank_at] = 117
    images[copy_at] = images[original_at]  # labels 3 (happy) and 6 (surprise): they disagree
    brighter = np.clip(images[test_at].astype(np.int16) + 6, 0, 255).astype(np.uint8)
    assert not np.array_equal(brighter, images[test_at])
    images[lookalike_at] = brighter
    planted = FerData(images, data.labels, data.ids, data.usage)
    ids = planted.ids

    found = audit(planted)
    assert list(found.blank.id) == [ids[blank_at]]
    assert found.blank["pixel std"].iloc[0] == 0.0
    assert found.blank.usage.iloc[0] == "Training"
    assert list(found.duplicates.id) == [ids[original_at], ids[copy_at]]
    assert found.duplicates.group.nunique() == 1
    pairs = set(zip(found.cross_split.train_id, found.cross_split.test_id, strict=True))
    assert (ids[lookalike_at], ids[test_at]) in pairs
    excluded = found.exclusion_ids()
    assert {ids[blank_at], ids[copy_at], ids[lookalike_at]} <= excluded
    assert not {str(i) for i in ids[70:]} & excluded  # test images are never excluded

    # With a stricter threshold only the planted look-alike remains, at correlation ~1.
    strict = audit(planted, min_correlation=0.995)
    assert list(strict.cross_split.train_id) == [ids[lookalike_at]]
    assert list(strict.cross_split.test_id) == [ids[test_at]]
    assert strict.cross_split.correlation.iloc[0] > 0.999
    assert strict.exclusion_ids() == {ids[blank_at], ids[copy_at], ids[lookalike_at]}
    assert ids[original_at] not in strict.exclusion_ids()  # the first copy is kept
    counts = strict.summary()["count"]
    assert counts["blank or near-constant images (pixel std < 1)"] == 1
    assert counts["exact-duplicate groups within train"] == 1
    assert counts["images in those groups"] == 2
    assert counts["redundant copies (could be removed)"] == 1
    assert counts["groups whose copies disagree on the label"] == 1
    assert counts["train-test near-duplicate pairs"] == 1


def test_audit_of_clean_noisy_set_finds_no_blanks_or_duplicates():
    found = audit(synthetic.synthetic_dataset(train=70, test=14, seed=5, noise=20),
                  min_correlation=0.995)
    assert len(found.blank) == 0
    assert len(found.duplicates) == 0
    assert len(found.cross_split) == 0
    assert found.exclusion_ids() == set()


# --------------------------------------------------------------------------- bad inputs


def test_no_path_and_no_environment_variable(monkeypatch):
    monkeypatch.delenv("FER2013_PATH", raising=False)
    with pytest.raises(DataError, match="No FER-2013 location given") as error:
        load_fer2013(progress=False)
    assert "FER2013_PATH" in str(error.value)
    assert "Kaggle" in str(error.value)


def test_missing_path(tmp_path):
    missing = tmp_path / "nowhere" / "fer2013.zip"
    with pytest.raises(DataError, match=re.escape(f"FER-2013 not found at '{missing}'")):
        load(missing)


def test_truncated_zip(kaggle_zip, tmp_path):
    raw = kaggle_zip.read_bytes()
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataError, match=r"not a readable zip archive.*truncated"):
        load(truncated)


def test_zip_with_corrupted_member(kaggle_tree, tmp_path):
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for file in sorted(p for p in kaggle_tree.rglob("*.png")):
            handle.write(file, file.relative_to(kaggle_tree).as_posix())
    with zipfile.ZipFile(archive) as handle:
        info = handle.infolist()[0]
    raw = bytearray(archive.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + 100: start + 110] = bytes(10)  # the stored data no longer matches its CRC
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"is corrupt .*Download it again"):
        load(archive)


def test_not_a_zip_file(tmp_path):
    fake = tmp_path / "fer2013.zip"
    fake.write_text("<html>Kaggle login page</html>\n" * 50)
    with pytest.raises(DataError, match=re.escape(f"'{fake}' is not a readable zip archive")):
        load(fake)


def test_zip_with_wrong_layout(tmp_path):
    archive = tmp_path / "faces.zip"
    png = cv2.imencode(".png", np.full((48, 48), 99, np.uint8))[1].tobytes()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("faces/happy_1.png", png)
        handle.writestr("train/2.png", png)
        handle.writestr("README.txt", "hello")
    with pytest.raises(DataError, match="does not have the Kaggle layout train/<class>"):
        load(archive)


def test_unknown_class_folder_in_zip(kaggle_tree, tmp_path, zip_tree):
    folder = kaggle_tree / "train" / "contempt"
    folder.mkdir()
    cv2.imwrite(str(folder / "Training_x.png"), np.full((48, 48), 80, np.uint8))
    with pytest.raises(DataError, match="Unknown class folder 'contempt'"):
        load(zip_tree(kaggle_tree, tmp_path / "extra_class.zip"))


def test_unknown_class_folder_in_tree(kaggle_tree):
    folder = kaggle_tree / "test" / "Happy "
    folder.mkdir()
    cv2.imwrite(str(folder / "PublicTest_x.png"), np.full((48, 48), 80, np.uint8))
    with pytest.raises(DataError, match=r"Unknown class folder 'Happy '.*angry, disgust"):
        load(kaggle_tree)


def test_csv_with_missing_column(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels\n3," + " ".join(["0"] * 2304) + "\n")
    with pytest.raises(DataError, match=re.escape("lacks the column(s) ['Usage']")):
        load(path)


def test_csv_with_wrong_pixel_count(expected, tmp_path, write_icml_csv):
    path = write_icml_csv(expected.select(np.arange(4)), tmp_path / "fer2013.csv")
    lines = path.read_text().splitlines()
    emotion, pixels, usage = lines[2].split(",")
    lines[2] = ",".join([emotion, " ".join(pixels.split()[:-1]), usage])  # 2303 values
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"line 3 has 2303 pixel values.*2304"):
        load(path)


def test_csv_with_bad_values(expected, tmp_path, write_icml_csv):
    path = write_icml_csv(expected.select(np.arange(3)), tmp_path / "fer2013.csv")
    text = path.read_text().replace(",Training", ",Validation", 1)
    path.write_text(text)
    with pytest.raises(DataError, match="line 2: Usage 'Validation' is not one of"):
        load(path)


def test_undecodable_image_in_tree(kaggle_tree):
    broken = kaggle_tree / "train" / "happy" / "Training_broken.png"
    broken.write_bytes(b"\x89PNG but then nothing useful")
    with pytest.raises(DataError, match=re.escape(f"Cannot decode image '{broken}'")):
        load(kaggle_tree)


def test_empty_image_file_in_zip(kaggle_tree, tmp_path, zip_tree):
    (kaggle_tree / "test" / "sad" / "PublicTest_empty.jpg").write_bytes(b"")
    archive = zip_tree(kaggle_tree, tmp_path / "empty_member.zip")
    with pytest.raises(DataError, match=re.escape("'test/sad/PublicTest_empty.jpg'")):
        load(archive)


def test_only_train_split_present(tiny_source, tmp_path):
    tree = synthetic.write_kaggle_tree(tiny_source.select(tiny_source.usage == "Training"),
                                       tmp_path / "train_only")
    assert not (tree / "test").exists()
    with pytest.raises(DataError, match="holds no test images"):
        load(tree)


def test_colour_64px_image_is_converted_with_a_warning(kaggle_tree, expected):
    rng = np.random.default_rng(0)
    colour = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    cv2.imwrite(str(kaggle_tree / "train" / "happy" / "Training_colour.png"), colour)
    with pytest.warns(UserWarning, match="converted to grayscale and resized from 64x64 to 48x48"):
        loaded = load(kaggle_tree)
    assert len(loaded) == len(expected) + 1
    assert loaded.images.shape[1:] == (48, 48)
    (position,) = np.flatnonzero(loaded.ids == "Training_colour")
    assert CLASS_NAMES[loaded.labels[position]] == "happy"
    wanted = cv2.resize(cv2.cvtColor(colour, cv2.COLOR_BGR2GRAY), (48, 48),
                        interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(loaded.images[position], wanted)
    assert loaded.notes and loaded.notes[0].startswith("1 images were not 48x48 grayscale")


def test_read_image_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image_file(tmp_path / "missing.png")
    image = np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1))
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), image)
    np.testing.assert_array_equal(read_image_file(path), image)
    bad = tmp_path / "bad.png"
    bad.write_text("no")
    with pytest.raises(DataError, match="Cannot decode image"):
        read_image_file(bad)


# --------------------------------------------------------------------------- hardening

def test_unwritable_cache_folder_warns_and_loads(kaggle_zip, expected, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be created inside a file")
    monkeypatch.setenv("FER_CACHE_DIR", str(blocker / "cache"))
    with pytest.warns(UserWarning, match="Could not write the decoded-image cache"):
        loaded = load(kaggle_zip)
    assert_same_data(loaded, expected)


def test_csv_row_with_only_a_label(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n3\n")
    with pytest.raises(DataError, match="line 2 has fewer than the three fields"):
        load(path)


def test_binary_file_named_csv_names_the_file(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(bytes(range(256)) * 40)
    with pytest.raises(DataError, match=r"fer2013.csv' is not a text CSV file"):
        load(path)


def test_macos_rezip_metadata_is_skipped(kaggle_tree, expected, tmp_path, zip_tree):
    archive = zip_tree(kaggle_tree, tmp_path / "mac.zip")
    with zipfile.ZipFile(archive, "a") as handle:
        handle.writestr("__MACOSX/train/happy/._Training_1.jpg", b"\x00\x05\x16\x07 fork")
        handle.writestr("train/happy/._Training_2.jpg", b"\x00\x05\x16\x07 fork")
    assert_same_data(load(archive), expected)
    (kaggle_tree / "train" / "happy" / "._Training_3.jpg").write_bytes(b"\x00\x05 fork")
    assert_same_data(load(kaggle_tree), expected)


def test_a_missing_class_folder_warns(kaggle_tree):
    shutil.rmtree(kaggle_tree / "train" / "disgust")
    with pytest.warns(UserWarning, match="no train images of class\\(es\\) disgust"):
        loaded = load(kaggle_tree)
    assert not (loaded.labels[loaded.usage == "Training"] == 1).any()


def test_repeated_ids_get_their_class_with_a_linear_count():
    records = [(np.zeros((48, 48), np.uint8), label, name, "Training")
               for label, name in ((0, "a"), (3, "a"), (3, "b"))]
    assembled = fer_data._assemble(records, [])
    assert assembled.ids.tolist() == ["a@angry", "a@happy", "b"]


def test_joined_appends_disjoint_sets_of_one_dataset_and_refuses_others():
    splits = split_data(synthetic.synthetic_dataset(train=40, test=7, seed=3))
    joined = splits.train.joined(splits.validation)
    assert len(joined) == len(splits.train) + len(splits.validation)
    np.testing.assert_array_equal(joined.images[len(splits.train):], splits.validation.images)
    np.testing.assert_array_equal(joined.labels[:len(splits.train)], splits.train.labels)
    assert joined.checksum == splits.train.checksum
    assert joined.pixels_checksum == splits.train.pixels_checksum
    with pytest.raises(ValueError, match="in both sets"):
        splits.train.joined(splits.train.select(np.arange(2)))
    other = splits.validation.select(np.arange(len(splits.validation)))
    other.checksum = "another archive"
    with pytest.raises(ValueError, match="different datasets"):
        splits.train.joined(other)
