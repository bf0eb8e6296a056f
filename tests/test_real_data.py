"""The real FER-2013 archive ($FER2013_PATH): sizes, split and class counts of the study."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.config import CLASS_NAMES
from fer_core.data import FerData, Splits, class_counts, load_fer2013, split_data

pytestmark = [pytest.mark.real_data, pytest.mark.slow]

TEST_COUNTS = {"angry": 958, "disgust": 111, "fear": 1024, "happy": 1774, "neutral": 1233,
               "sad": 1247, "surprise": 831}


@pytest.fixture(scope="module")
def fer2013(real_data) -> FerData:
    """All of FER-2013, decoded once for this module (no cache: the test cache is per test)."""
    return load_fer2013(real_data, use_cache=False, progress=False)


@pytest.fixture(scope="module")
def splits(fer2013) -> Splits:
    return split_data(fer2013)


def test_all_images_load(fer2013):
    assert len(fer2013) == 35_887
    assert fer2013.images.shape == (35_887, 48, 48)
    assert fer2013.images.dtype == np.uint8
    assert (fer2013.usage == "Training").sum() == 28_709
    assert set(fer2013.usage) == {"Training", "PublicTest", "PrivateTest"}


def test_split_sizes(splits):
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (22_968, 5_741, 7_178)
    assert not set(splits.train.ids) & set(splits.validation.ids)


def test_test_class_counts(splits):
    counts = dict(zip(CLASS_NAMES, np.bincount(splits.test.labels, minlength=7).tolist(),
                      strict=True))
    assert counts == TEST_COUNTS
    table = class_counts(splits)
    assert table.loc["total"].tolist() == [22_968, 5_741, 7_178, 35_887]
    assert table["test"].drop("total").to_dict() == TEST_COUNTS


def test_test_halves(splits):
    usage = splits.test.usage
    assert (usage == "PublicTest").sum() == 3_589
    assert (usage == "PrivateTest").sum() == 3_589
