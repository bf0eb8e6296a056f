"""Synthetic faces (fer_core.synthetic): shapes, balance, determinism and where classes differ."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.config import CLASS_NAMES
from fer_core.synthetic import (
    EYES_BOX,
    MOUTH_BOX,
    draw_face,
    synthetic_dataset,
    synthetic_faces,
    write_kaggle_tree,
)

HAPPY, NEUTRAL, SAD = (CLASS_NAMES.index(name) for name in ("happy", "neutral", "sad"))


def region(images: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = box
    return images[..., top:bottom, left:right].astype(np.float64)


def class_means(data, box) -> np.ndarray:
    """Mean region image per class, shape (7, h, w)."""
    return np.stack([region(data.images[data.labels == k], box).mean(axis=0)
                     for k in range(len(CLASS_NAMES))])


def test_shapes_dtypes_and_ids():
    faces = synthetic_faces(70, seed=3)
    assert faces.images.shape == (70, 48, 48)
    assert faces.images.dtype == np.uint8
    assert faces.labels.shape == (70,)
    assert faces.labels.dtype == np.int64
    assert faces.ids[0] == "Synthetic_3_0"
    assert len(set(faces.ids)) == 70
    assert set(faces.usage) == {"Training"}
    assert faces.images.std() > 20  # real pictures, not a constant fill


def test_labels_are_balanced():
    np.testing.assert_array_equal(np.bincount(synthetic_faces(70).labels), [10] * 7)
    counts = np.bincount(synthetic_faces(75).labels, minlength=7)
    assert counts.sum() == 75
    assert counts.max() - counts.min() <= 1


def test_same_seed_same_faces_other_seed_other_faces():
    first, again, other = synthetic_faces(21, seed=8), synthetic_faces(21, seed=8), \
        synthetic_faces(21, seed=9)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.labels, again.labels)
    assert not np.array_equal(first.images, other.images)
    np.testing.assert_array_equal(first.labels, other.labels)


def test_noise_level():
    clean = synthetic_faces(7, seed=1, noise=0.0)
    # Without noise the background is exactly the fill value 40.
    assert set(np.unique(clean.images[:, 0, :])) == {40}
    noisy = synthetic_faces(7, seed=1, noise=8.0)
    spread = (noisy.images[:, 0, :].astype(float) - 40).std()
    assert 5 < spread < 11


def test_dataset_has_train_then_test():
    data = synthetic_dataset(train=14, test=7, seed=5)
    assert len(data) == 21
    assert list(data.usage) == ["Training"] * 14 + ["PublicTest"] * 7
    assert len(set(data.ids)) == 21
    assert data.ids[14] == "Synthetic_6_0"  # test faces use seed + 1
    assert data.checksum == "synthetic-5"
    np.testing.assert_array_equal(data.images[:14], synthetic_faces(14, seed=5).images)


def test_classes_differ_in_the_mouth_region():
    first, second = synthetic_faces(700, seed=21), synthetic_faces(700, seed=22)
    means, means_again = class_means(first, MOUTH_BOX), class_means(second, MOUTH_BOX)
    happy_vs_sad = np.abs(means[HAPPY] - means[SAD]).mean()
    happy_vs_happy = np.abs(means[HAPPY] - means_again[HAPPY]).mean()  # noise level
    assert happy_vs_sad > 20
    assert happy_vs_sad > 5 * happy_vs_happy
    # Every pair of classes differs in the mouth region.
    for a in range(7):
        for b in range(a + 1, 7):
            assert np.abs(means[a] - means[b]).mean() > 2 * happy_vs_happy, (a, b)


def test_mouth_only_keeps_the_eyes_region_the_same_across_classes():
    both = {mouth_only: class_means(synthetic_faces(700, seed=21, mouth_only=mouth_only),
                                    EYES_BOX).mean(axis=(1, 2))
            for mouth_only in (False, True)}
    # With all features, the eye region differs between classes (eye opening, brows) ...
    assert np.ptp(both[False]) > 12
    # ... with mouth_only its mean is the same for every class, up to noise.
    assert np.ptp(both[True]) < 6
    # The mouth still differs.
    mouth = class_means(synthetic_faces(700, seed=21, mouth_only=True), MOUTH_BOX)
    assert np.abs(mouth[HAPPY] - mouth[SAD]).mean() > 20


@pytest.mark.parametrize("label", range(7))
def test_mouth_only_changes_nothing_but_the_mouth(label):
    # Same random draws for every class: the eye region is then pixel-identical.
    reference = draw_face(NEUTRAL, np.random.default_rng(4), mouth_only=True)
    face = draw_face(label, np.random.default_rng(4), mouth_only=True)
    np.testing.assert_array_equal(region(face, EYES_BOX), region(reference, EYES_BOX))
    full = draw_face(label, np.random.default_rng(4))
    if CLASS_NAMES[label] in ("happy", "neutral"):  # relaxed brows and normal eyes already
        np.testing.assert_array_equal(full, face)
    else:
        assert not np.array_equal(region(full, EYES_BOX), region(reference, EYES_BOX))
    if label != NEUTRAL:
        assert not np.array_equal(region(face, MOUTH_BOX), region(reference, MOUTH_BOX))


def test_write_kaggle_tree_is_lossless(tmp_path):
    data = synthetic_dataset(train=14, test=7, seed=2)
    root = write_kaggle_tree(data, tmp_path / "tree")
    files = sorted(root.rglob("*.png"))
    assert len(files) == 21
    happy_file = root / "train" / "happy" / "Training_Synthetic_2_3.png"
    assert happy_file in files
    np.testing.assert_array_equal(cv2.imread(str(happy_file), cv2.IMREAD_UNCHANGED),
                                  data.images[3])
    assert (root / "test" / "angry" / "PublicTest_Synthetic_3_0.png").is_file()
