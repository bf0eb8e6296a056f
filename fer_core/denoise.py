"""Non-local-means denoising (OpenCV) and measurements of what it does to a face."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd

from fer_core.config import FACE_REGION_BOXES
from fer_core.data import FerData, Splits

DEFAULT_STRENGTH = 7.0  # OpenCV's h: higher removes more noise and more detail
# Eyes and mouth of an aligned 48x48 FER face (rows, columns), from the one definition.
FACE_DETAIL_REGIONS = {name: (slice(box[0], box[1]), slice(box[2], box[3]))
                       for name, box in FACE_REGION_BOXES.items() if name in ("eyes", "mouth")}


def denoise_image(image: np.ndarray, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Denoise one 48x48 ``uint8`` image with ``cv2.fastNlMeansDenoising``.

    The 7x7 template and 21x21 search windows are OpenCV's recommended values; at 48x48 the
    search window already covers almost half the face, where similar patches live.
    """
    if strength <= 0:
        raise ValueError(f"The filter strength must be positive, got {strength}.")
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return cv2.fastNlMeansDenoising(image, None, h=float(strength), templateWindowSize=7,
                                    searchWindowSize=21)


def denoise_images(images: np.ndarray, strength: float = DEFAULT_STRENGTH) -> np.ndarray:
    """Denoise every image of an (N, 48, 48) ``uint8`` array."""
    return np.stack([denoise_image(image, strength) for image in images]) if len(images) else images


def denoise_data(data: FerData, strength: float = DEFAULT_STRENGTH) -> FerData:
    """A copy of ``data`` with denoised images."""
    return FerData(denoise_images(data.images, strength), data.labels, data.ids, data.usage,
                   data.checksum, [*data.notes, f"non-local-means denoised, h={strength}"])


def denoise_splits(splits: Splits, strength: float = DEFAULT_STRENGTH) -> Splits:
    """Denoise train, validation and test alike, so evaluation sees what training saw."""
    return Splits(*(denoise_data(part, strength) for _, part in splits.items()))


def psnr(reference: np.ndarray, other: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (or stacks)."""
    return float(cv2.PSNR(np.ascontiguousarray(reference, np.uint8),
                          np.ascontiguousarray(other, np.uint8)))


def edge_energy(images: np.ndarray, region: tuple[slice, slice] | None = None) -> np.ndarray:
    """Sum of squared Sobel gradients per image, optionally inside a (rows, columns) region."""
    energies = []
    for image in np.asarray(images, np.float32):
        gx = cv2.Sobel(image, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(image, cv2.CV_32F, 0, 1, ksize=3)
        energy = gx ** 2 + gy ** 2
        energies.append(float(energy[region].sum() if region else energy.sum()))
    return np.array(energies)


def denoising_effect(images: np.ndarray, strengths: tuple[float, ...] = (3, 5, 7, 10, 15, 20)
                     ) -> pd.DataFrame:
    """How much each filter strength changes the images and how much facial detail survives.

    Columns: PSNR of the denoised image against the original (higher: changed less), and the
    fraction of edge energy kept in the eyes and mouth regions and over the whole face.
    """
    rows = []
    for strength in strengths:
        denoised = denoise_images(images, strength)
        row = {"strength": strength, "PSNR vs original (dB)": round(psnr(images, denoised), 2)}
        for name, region in {**FACE_DETAIL_REGIONS, "whole face": None}.items():
            kept = edge_energy(denoised, region).sum() / edge_energy(images, region).sum()
            row[f"edge energy kept: {name}"] = round(float(kept), 3)
        rows.append(row)
    return pd.DataFrame(rows).set_index("strength")


def comparison_rows(images: np.ndarray, strength: float = DEFAULT_STRENGTH
                    ) -> dict[str, np.ndarray]:
    """Original, denoised and the absolute difference (x4, to make it visible) for a figure."""
    denoised = denoise_images(images, strength)
    difference = np.abs(images.astype(np.int16) - denoised.astype(np.int16)) * 4
    return {"original": images, f"denoised (h={strength:g})": denoised,
            "difference x4": np.clip(difference, 0, 255).astype(np.uint8)}


def noise_removal(images: np.ndarray, noise_sigma: float = 15.0,
                  strengths: tuple[float, ...] = (3, 5, 7, 10, 15, 20),
                  seed: int = 0) -> pd.DataFrame:
    """Add Gaussian noise of known size to clean faces, denoise, and measure PSNR to them.

    The honest test of a denoiser: only here is the noise-free answer known.
    """
    rng = np.random.default_rng(seed)
    noisy = np.clip(images + rng.normal(0, noise_sigma, images.shape), 0, 255).astype(np.uint8)
    rows = [{"strength": 0, "PSNR to clean (dB)": round(psnr(images, noisy), 2)}]
    rows += [{"strength": s, "PSNR to clean (dB)": round(psnr(images, denoise_images(noisy, s)), 2)}
             for s in strengths]
    return pd.DataFrame(rows).set_index("strength")
