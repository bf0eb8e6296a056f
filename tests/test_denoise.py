"""Non-local-means denoising: it removes noise, keeps the face, and reports its effect."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.config import CLASS_NAMES
from fer_core.data import split_data
from fer_core.denoise import (
    FACE_DETAIL_REGIONS,
    denoise_data,
    denoise_image,
    denoise_images,
    denoise_splits,
    denoising_effect,
    edge_energy,
    psnr,
)
from fer_core.synthetic import draw_face, synthetic_dataset

MOUTH = FACE_DETAIL_REGIONS["mouth"]


def _clean_and_noisy(label: int, sigma: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    clean = draw_face(label, np.random.default_rng(label), noise=0.0)
    noise = np.random.default_rng(100 + label).normal(0, sigma, clean.shape)
    return clean, np.clip(clean + noise, 0, 255).astype(np.uint8)


def _correlation(first: np.ndarray, second: np.ndarray) -> float:
    return float(np.corrcoef(first.astype(float).ravel(), second.astype(float).ravel())[0, 1])


@pytest.mark.parametrize("label", range(len(CLASS_NAMES)))
def test_denoising_brings_a_noisy_face_closer_to_the_clean_one(label):
    clean, noisy = _clean_and_noisy(label)
    denoised = denoise_image(noisy, strength=15)
    assert denoised.shape == (48, 48) and denoised.dtype == np.uint8
    assert psnr(clean, denoised) > psnr(clean, noisy) + 1.0
    # the mouth, which carries the expression, is kept: closer to the clean mouth than before,
    # and its edges (the mouth curve) survive
    assert _correlation(denoised[MOUTH], clean[MOUTH]) > _correlation(noisy[MOUTH], clean[MOUTH])
    kept = edge_energy(denoised[None], MOUTH)[0] / edge_energy(clean[None], MOUTH)[0]
    assert kept > 0.8


def test_denoising_a_clean_face_changes_little():
    clean, _ = _clean_and_noisy(3)
    assert psnr(clean, denoise_image(clean)) > 40


@pytest.mark.parametrize("strength", [0, -1, -7.5])
def test_strength_must_be_positive(strength):
    with pytest.raises(ValueError, match="must be positive"):
        denoise_image(np.zeros((48, 48), np.uint8), strength)


def test_denoise_images_keeps_shape_and_handles_empty_input():
    images = np.stack([_clean_and_noisy(k)[1] for k in range(3)])
    denoised = denoise_images(images, 10)
    assert denoised.shape == images.shape and denoised.dtype == np.uint8
    np.testing.assert_array_equal(denoised[1], denoise_image(images[1], 10))
    empty = np.zeros((0, 48, 48), np.uint8)
    assert denoise_images(empty).shape == (0, 48, 48)


def test_denoise_data_and_splits_keep_labels_and_note_the_filter():
    splits = split_data(synthetic_dataset(train=40, test=7))
    data = denoise_data(splits.train, 5.0)
    np.testing.assert_array_equal(data.labels, splits.train.labels)
    np.testing.assert_array_equal(data.ids, splits.train.ids)
    assert data.checksum == splits.train.checksum
    assert data.notes[-1] == "non-local-means denoised, h=5.0"
    assert not splits.train.notes  # the original is untouched
    denoised = denoise_splits(splits)
    for (name, part), (_, original) in zip(denoised.items(), splits.items(), strict=True):
        assert len(part) == len(original), name
        assert any("denoised" in note for note in part.notes)
        assert not np.array_equal(part.images, original.images)


def test_edge_energy_sums_squared_sobel_gradients():
    image = np.zeros((48, 48), np.uint8)
    assert edge_energy(image[None])[0] == 0
    image[:, 24:] = 100  # one vertical step edge
    whole = edge_energy(image[None])[0]
    assert whole > 0
    left = (slice(None), slice(0, 20))
    assert edge_energy(image[None], left)[0] == 0  # no edge away from the step
    assert edge_energy(image[None], (slice(None), slice(20, 28)))[0] == pytest.approx(whole)


def test_denoising_effect_table():
    images = np.stack([draw_face(k % len(CLASS_NAMES), np.random.default_rng(k))
                       for k in range(14)])
    strengths = (3, 7, 15, 25)
    table = denoising_effect(images, strengths)
    assert table.index.name == "strength"
    assert list(table.index) == list(strengths)
    assert list(table.columns) == ["PSNR vs original (dB)", "edge energy kept: eyes",
                                   "edge energy kept: mouth", "edge energy kept: whole face"]
    psnrs = table["PSNR vs original (dB)"].to_numpy()
    assert np.all(np.diff(psnrs) < 0)  # a stronger filter changes the faces more
    whole = table["edge energy kept: whole face"].to_numpy()
    assert np.all(np.diff(whole) <= 0)
    assert ((table.iloc[:, 1:] > 0.5) & (table.iloc[:, 1:] <= 1.01)).all().all()
