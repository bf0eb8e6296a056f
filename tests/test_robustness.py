"""Perturbations, the robustness table and occlusion maps, checked on probes with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.config import FACE_REGION_BOXES
from fer_core.data import FerData
from fer_core.robustness import (
    PERTURBATIONS,
    averaged,
    first_correct,
    occlusion_map,
    occlusion_maps,
    paired_changes,
    perturb,
    robustness_table,
)

IDENTITY = {"gaussian noise (sigma)": 0, "brightness (gray levels)": 0, "contrast (factor)": 1.0,
            "blur (sigma, pixels)": 0, "shift (pixels)": 0, "rotation (degrees)": 0}


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return np.random.default_rng(0).integers(30, 220, (6, 48, 48)).astype(np.uint8)


@pytest.mark.parametrize("kind", list(PERTURBATIONS))
def test_every_perturbation_keeps_shape_and_type_and_changes_faces(kind, faces):
    for severity in PERTURBATIONS[kind][1]:
        changed = perturb(faces, kind, severity)
        assert changed.shape == faces.shape and changed.dtype == np.uint8
        assert not np.array_equal(changed, faces)
        np.testing.assert_array_equal(perturb(faces, kind, severity), changed)  # seeded


@pytest.mark.parametrize("kind, identity", list(IDENTITY.items()))
def test_identity_severity_leaves_faces_unchanged(kind, identity, faces):
    np.testing.assert_array_equal(perturb(faces, kind, identity), faces)


def test_occlusion_blacks_out_exactly_the_region(faces):
    covered = perturb(faces, "occlusion (region)", "mouth")
    row0, row1, col0, col1 = FACE_REGION_BOXES["mouth"]
    assert (covered[:, row0:row1, col0:col1] == 0).all()
    outside = np.ones((48, 48), bool)
    outside[row0:row1, col0:col1] = False
    np.testing.assert_array_equal(covered[:, outside], faces[:, outside])


def test_noise_has_the_requested_spread():
    flat = np.full((20, 48, 48), 128, np.uint8)
    noisy = perturb(flat, "gaussian noise (sigma)", 10).astype(float)
    assert noisy.std() == pytest.approx(10, rel=0.05)


def test_bad_requests_are_refused(faces):
    with pytest.raises(ValueError, match="Unknown perturbation 'fog'"):
        perturb(faces, "fog", 1)
    with pytest.raises(ValueError, match="uint8 faces of shape"):
        perturb(faces.astype(np.float32), "blur (sigma, pixels)", 1)
    with pytest.raises(ValueError, match="Unknown face region 'ears'"):
        perturb(faces, "occlusion (region)", "ears")


def _brightness_probe(images: np.ndarray) -> np.ndarray:
    """Class 0 for dark faces (mean < 100), class 3 for bright ones."""
    bright = images.reshape(len(images), -1).mean(axis=1) >= 100
    probabilities = np.zeros((len(images), 7))
    probabilities[~bright, 0] = 1
    probabilities[bright, 3] = 1
    return probabilities


def test_robustness_table_scores_accuracy_and_flips():
    images = np.concatenate([np.full((5, 48, 48), 60, np.uint8),
                             np.full((5, 48, 48), 140, np.uint8)])
    data = FerData(images, np.array([0] * 5 + [3] * 5), np.arange(10).astype(str),
                   np.array(["PublicTest"] * 10))
    table = robustness_table({"probe": _brightness_probe}, data,
                             kinds=["brightness (gray levels)"]).set_index("severity")
    assert table.loc["", "accuracy"] == 100.0
    # +60 turns the 5 dark faces bright: half the predictions flip, accuracy falls to 50%
    assert table.loc["60", ["accuracy", "change", "flipped"]].tolist() == [50.0, -50.0, 50.0]
    assert table.loc["30", "flipped"] == 0.0  # 60 + 30 = 90 < 100: nothing flips


def test_paired_changes_subtracts_the_twins_loss():
    images = np.concatenate([np.full((5, 48, 48), 60, np.uint8),
                             np.full((5, 48, 48), 140, np.uint8)])
    data = FerData(images, np.array([0] * 5 + [3] * 5), np.arange(10).astype(str),
                   np.array(["PublicTest"] * 10))

    def steady(faces: np.ndarray) -> np.ndarray:  # always class 0: brightness cannot move it
        return np.tile(np.eye(7)[0], (len(faces), 1))

    kind = "brightness (gray levels)"
    table = robustness_table({"probe": _brightness_probe, "steady": steady}, data, kinds=[kind])
    pairs = paired_changes(table, {"probe": "steady"}, kind).set_index("severity")
    assert list(pairs.index) == [str(level) for level in PERTURBATIONS[kind][1]]
    assert pairs.loc["60", ["clean", "twin clean"]].tolist() == [100.0, 50.0]
    assert pairs.loc["60", ["change", "twin change", "difference"]].tolist() == [-50.0, 0.0, -50.0]
    with pytest.raises(ValueError, match="run robustness_table on every model"):
        paired_changes(table, {"probe": "absent"}, kind)


def test_averaged_is_the_mean_of_the_members(faces):
    first = averaged({"probe": _brightness_probe})
    assert np.array_equal(first(faces), _brightness_probe(faces))
    mixed = averaged({"probe": _brightness_probe, "uniform": lambda x: np.full((len(x), 7), 1 / 7)})
    assert np.allclose(mixed(faces), (_brightness_probe(faces) + 1 / 7) / 2)
    assert np.allclose(mixed(faces).sum(axis=1), 1)
    with pytest.raises(ValueError, match="at least one"):
        averaged({})


def test_occlusion_map_finds_the_region_the_model_uses():
    row0, row1, col0, col1 = FACE_REGION_BOXES["mouth"]

    def mouth_probe(images: np.ndarray) -> np.ndarray:
        """Probability of class 5 = mean brightness of the mouth box."""
        share = images[:, row0:row1, col0:col1].mean(axis=(1, 2)) / 255
        probabilities = np.zeros((len(images), 7))
        probabilities[:, 5] = share
        probabilities[:, 0] = 1 - share
        return probabilities

    face = np.full((48, 48), 200, np.uint8)
    sensitivity = occlusion_map(mouth_probe, face, label=5)
    inside = np.zeros((48, 48), bool)
    inside[row0:row1, col0:col1] = True
    assert sensitivity[inside].min() > 0  # covering any part of the mouth lowers class 5
    assert np.abs(sensitivity[:row0 - 8]).max() == 0  # far above it, nothing changes
    assert np.unravel_index(sensitivity.argmax(), sensitivity.shape)[0] in range(row0, row1)


def test_occlusion_maps_are_scaled_to_unit_range_and_first_correct_finds_faces():
    images = np.concatenate([np.full((2, 48, 48), 60, np.uint8),
                             np.full((2, 48, 48), 140, np.uint8)])
    data = FerData(images, np.array([3, 0, 0, 3]), np.arange(4).astype(str),
                   np.array(["PublicTest"] * 4))
    assert first_correct(_brightness_probe, data, [0, 3]).tolist() == [1, 3]
    with pytest.raises(ValueError, match="No correctly classified face of class 5"):
        first_correct(_brightness_probe, data, [5])

    def soft_probe(faces: np.ndarray) -> np.ndarray:
        share = faces.reshape(len(faces), -1).mean(axis=1) / 255
        probabilities = np.zeros((len(faces), 7))
        probabilities[:, 3], probabilities[:, 0] = share, 1 - share
        return probabilities

    maps = occlusion_maps(soft_probe, data.select(np.array([3])))
    assert maps.shape == (1, 48, 48)
    assert maps.max() == pytest.approx(1.0) and maps.min() >= 0
