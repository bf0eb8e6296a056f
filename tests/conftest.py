"""Shared fixtures: an isolated cache per test and tiny FER-2013 sources built from synthetic faces.

Every source (Kaggle folder, Kaggle zip, ICML csv) holds the same images, so the loaders can be
compared with each other and with :func:`expected`, the data in the order the loaders return it
(training first, then by class and id).
"""

from __future__ import annotations

import csv
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from fer_core import synthetic
from fer_core.config import CLASS_NAMES, DATA_VARIABLE
from fer_core.data import CSV_LABEL_TO_CLASS, FerData

# TensorFlow reads this when it is first imported, which may happen while collecting tests.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TINY_TRAIN = 35  # 5 images per class
TINY_TEST = 14  # 2 per class: one PublicTest, one PrivateTest
CLASS_TO_CSV_LABEL = {cls: csv_label for csv_label, cls in CSV_LABEL_TO_CLASS.items()}


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path, monkeypatch):
    """Quiet TensorFlow and give each test its own, empty decoded-array cache."""
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    cache = tmp_path / "cache"
    monkeypatch.setenv("FER_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def cache_folder(_isolated_environment) -> Path:
    """The per-test cache folder ($FER_CACHE_DIR)."""
    return _isolated_environment


def tree_id(image_id: str, usage: str) -> str:
    """The file stem :func:`synthetic.write_kaggle_tree` gives an image (and the loaders read)."""
    if image_id.startswith(("Training", "Public", "Private")):
        return image_id
    return f"{usage}_{image_id}"


def loader_order(data: FerData) -> FerData:
    """``data`` with Kaggle-tree ids, ordered as the loaders order it: train first, class, id."""
    ids = np.array([tree_id(str(i), str(u)) for i, u in zip(data.ids, data.usage, strict=True)])
    order = sorted(range(len(data)),
                   key=lambda k: (data.usage[k] != "Training", int(data.labels[k]), ids[k]))
    order = np.array(order)
    return FerData(data.images[order], data.labels[order], ids[order], data.usage[order])


@pytest.fixture
def tiny_source() -> FerData:
    """35 training and 14 test synthetic faces; half of each test class is PrivateTest."""
    data = synthetic.synthetic_dataset(train=TINY_TRAIN, test=TINY_TEST, seed=7)
    usage = data.usage.astype("U11")  # room for "PrivateTest"
    usage[TINY_TRAIN + len(CLASS_NAMES):] = "PrivateTest"
    return FerData(data.images, data.labels, data.ids, usage, data.checksum)


@pytest.fixture
def expected(tiny_source) -> FerData:
    """What every loader must return for the tiny sources (ids as in the Kaggle tree)."""
    return loader_order(tiny_source)


@pytest.fixture
def kaggle_tree(tiny_source, tmp_path) -> Path:
    """The tiny set as an extracted Kaggle folder ``train|test/<class>/<id>.png``."""
    return synthetic.write_kaggle_tree(tiny_source, tmp_path / "fer2013")


def zip_tree(tree: Path, target: Path, prefix: str = "") -> Path:
    """Zip every file under ``tree`` (member names relative to it, after ``prefix``)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in tree.rglob("*") if p.is_file()):
            archive.write(file, prefix + file.relative_to(tree).as_posix())
    return target


@pytest.fixture(name="zip_tree")
def zip_tree_fixture():
    """:func:`zip_tree`, for tests that build their own archives."""
    return zip_tree


@pytest.fixture
def kaggle_zip(kaggle_tree, tmp_path) -> Path:
    """The tiny Kaggle tree as ``fer2013.zip`` with members ``train/<class>/<id>.png``."""
    return zip_tree(kaggle_tree, tmp_path / "fer2013.zip")


def write_icml_csv(data: FerData, target: Path) -> Path:
    """Write ``data`` as the ICML ``emotion,pixels,Usage`` csv (csv label order)."""
    with target.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for image, label, usage in zip(data.images, data.labels, data.usage, strict=True):
            writer.writerow([CLASS_TO_CSV_LABEL[int(label)],
                             " ".join(str(int(v)) for v in image.ravel()), usage])
    return target


@pytest.fixture(name="write_icml_csv")
def write_icml_csv_fixture():
    """:func:`write_icml_csv`, for tests that build their own csv files."""
    return write_icml_csv


@pytest.fixture
def icml_csv(expected, tmp_path) -> Path:
    """The tiny set as ``fer2013.csv``, rows in the loaders' order."""
    return write_icml_csv(expected, tmp_path / "fer2013.csv")


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real FER-2013 archive at ``$FER2013_PATH``; skips the test when it is not there."""
    value = os.environ.get(DATA_VARIABLE)
    if not value:
        pytest.skip(f"real FER-2013 not available: set {DATA_VARIABLE} to the Kaggle zip, "
                    "its extracted folder or the ICML fer2013.csv")
    path = Path(value).expanduser()
    if not path.exists():
        pytest.skip(f"real FER-2013 not available: {DATA_VARIABLE}={value!r} does not exist")
    return path
