"""Autoencoder outlier detection and the committed outlier list used to filter training data.

An autoencoder trained on the training faces reconstructs typical faces well and unusual
images (blank, drawn, occluded, non-faces) badly; the images whose reconstruction error is
above a percentile of all training errors are flagged, written once to a versioned JSON file,
and dropped from training on request ("offline filtering").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from fer_core.config import CLASS_NAMES, SEED, Profile, get_profile, models_dir, set_seeds
from fer_core.data import DataError, FerData
from fer_core.models import build_autoencoder, predict_in_batches
from fer_core.store import save_model_file

OUTLIER_FILE = models_dir() / "outliers.json"
AUTOENCODER_FILE = OUTLIER_FILE.with_name("autoencoder.keras")
FORMAT_VERSION = 1
ERRORS_FILE_NAME = "outlier_errors.csv.gz"


@dataclass
class OutlierResult:
    """Reconstruction errors of a set of images and the ones above the threshold."""

    ids: np.ndarray
    labels: np.ndarray
    errors: np.ndarray
    percentile: float
    threshold: float
    config: dict

    @property
    def flagged(self) -> np.ndarray:
        """Boolean mask of images above the threshold."""
        return self.errors > self.threshold

    @property
    def flagged_ids(self) -> list[str]:
        """Ids of the flagged images, most anomalous first."""
        order = np.argsort(-self.errors)
        return [str(self.ids[i]) for i in order if self.flagged[i]]

    def per_class(self) -> pd.DataFrame:
        """Flagged images per class, with the share of the class flagged (in %)."""
        counts = pd.DataFrame({
            "images": np.bincount(self.labels, minlength=len(CLASS_NAMES)),
            "flagged": np.bincount(self.labels[self.flagged], minlength=len(CLASS_NAMES)),
        }, index=list(CLASS_NAMES))
        counts["flagged %"] = (100 * counts.flagged / counts.images.clip(lower=1)).round(2)
        return counts


def check_percentile(percentile: float) -> float:
    """Return ``percentile`` if it lies strictly between 0 and 100, else raise ValueError."""
    if not 0 < percentile < 100:
        raise ValueError(f"The percentile must lie strictly between 0 and 100, got {percentile}.")
    return float(percentile)


def threshold_at(errors: np.ndarray, percentile: float = 98.0) -> float:
    """The ``percentile``-th percentile of the errors: images strictly above it are flagged."""
    return float(np.percentile(errors, check_percentile(percentile)))


def train_autoencoder(data: FerData, profile: Profile | None = None, seed: int = SEED,
                      bottleneck: int = 64, verbose: int | str = "auto") -> keras.Model:
    """Train the outlier autoencoder on ``data`` (the training split) with the profile's budget."""
    profile = profile or get_profile()
    set_seeds(seed)
    model = build_autoencoder(bottleneck)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    pixels = data.model_input()
    model.fit(pixels, pixels / 255.0, epochs=profile.autoencoder_epochs,
              batch_size=profile.batch_size, shuffle=True, verbose=verbose)
    return model


def save_autoencoder(model: keras.Model, checksum: str, path: str | Path = AUTOENCODER_FILE,
                     command: str = "", profile: Profile | None = None) -> Path:
    """Save a trained autoencoder (no optimizer state) with a JSON record next to it.

    The record holds the profile's budget, seed, data checksum and command, so a classifier
    initialized from this encoder can say where its starting weights came from.
    """
    profile = profile or get_profile()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model_file(model, path)
    record = {"model": "autoencoder", "profile": profile.name, "seed": SEED,
              "epochs": profile.autoencoder_epochs, "batch_size": profile.batch_size,
              "train_images": None if profile.train_subset is None else profile.train_subset,
              "parameters": int(model.count_params()), "data_checksum": checksum,
              "command": command}
    path.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return path


def reconstruction_errors(model: keras.Model, data: FerData, batch_size: int = 256) -> np.ndarray:
    """Mean squared reconstruction error per image, on the [0, 1] pixel scale."""
    pixels = data.model_input()
    reconstructed = predict_in_batches(model, pixels, batch_size)
    return ((reconstructed - pixels / 255.0) ** 2).reshape(len(data), -1).mean(axis=1)


def detect_outliers(data: FerData, percentile: float = 98.0, profile: Profile | None = None,
                    seed: int = SEED, bottleneck: int = 64,
                    verbose: int | str = "auto") -> tuple[OutlierResult, keras.Model]:
    """Train the autoencoder on ``data`` and flag images above the error percentile."""
    check_percentile(percentile)
    profile = profile or get_profile()
    model = train_autoencoder(data, profile, seed, bottleneck, verbose)
    errors = reconstruction_errors(model, data)
    config = {"bottleneck": bottleneck, "epochs": profile.autoencoder_epochs,
              "batch_size": profile.batch_size, "profile": profile.name, "seed": seed,
              "architecture": "conv 32-64-128 stride 2, dense code, transposed conv 64-32-16",
              "parameters": int(model.count_params())}
    return OutlierResult(data.ids, data.labels, errors, percentile,
                         threshold_at(errors, percentile), config), model


def save_outliers(result: OutlierResult, checksum: str, path: str | Path = OUTLIER_FILE,
                  command: str = "", pixels_checksum: str = "") -> Path:
    """Write the flagged ids with seed, threshold, autoencoder config and the data's checksums
    (of the source file, and of its decoded content: see ``FerData.pixels_checksum``)."""
    flagged = result.flagged
    record = {
        "format_version": FORMAT_VERSION, "data_checksum": checksum,
        "pixels_checksum": pixels_checksum,
        "percentile": result.percentile, "threshold": result.threshold,
        "images_scored": len(result.errors), "flagged_count": int(flagged.sum()),
        "autoencoder": result.config, "command": command,
        "error_quantiles": {q: float(np.quantile(result.errors, q / 100))
                            for q in (1, 25, 50, 75, 95, 98, 99)},
        "flagged": [{"id": image_id, "label": CLASS_NAMES[int(label)],
                     "error": round(float(error), 6)}
                    for image_id, label, error in sorted(
                        zip(result.ids[flagged], result.labels[flagged], result.errors[flagged],
                            strict=True), key=lambda item: -item[2])],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    pd.DataFrame({"id": result.ids, "error": result.errors.round(7)}).to_csv(
        path.with_name(ERRORS_FILE_NAME), index=False)
    return path


def load_outliers(path: str | Path = OUTLIER_FILE) -> dict:
    """Read a committed outlier file (raises a clear error when it is missing)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"No outlier file at '{path}'. Create it with "
                        "`fer-core outliers --profile full` (about 5 minutes on 2 cores).")
    return json.loads(path.read_text())


def same_data(record: dict, data: FerData) -> bool:
    """Whether a derived file's record was made from ``data``: the same decoded content
    (any archive or folder of the same files), or the same source file."""
    stored = record.get("pixels_checksum")
    if stored and data.pixels_checksum:
        return stored == data.pixels_checksum
    return record.get("data_checksum") == data.checksum


def exclude_outliers(train: FerData, path: str | Path = OUTLIER_FILE) -> FerData:
    """Drop the committed outliers from a training split.

    Raises
    ------
    DataError
        When the file was made from different data (checksum) or names ids that are not in
        ``train`` (e.g. a different split seed): nothing is dropped silently.
    """
    record = load_outliers(path)
    if not same_data(record, train):
        raise DataError(f"The outlier file '{path}' was made from other data (checksum "
                        f"{record['data_checksum'][:12]}..., content "
                        f"{record.get('pixels_checksum', '?')[:12]}...; the loaded data has "
                        f"{train.checksum[:12]}... and {train.pixels_checksum[:12] or '?'}...). "
                        "Recompute it with `fer-core outliers --profile full` for this data.")
    flagged = {entry["id"] for entry in record["flagged"]}
    unknown = flagged - set(train.ids.tolist())
    if unknown:
        raise DataError(f"{len(unknown)} outlier ids in '{path}' are not in this training split "
                        f"(e.g. {sorted(unknown)[:3]}); was the split made with another seed?")
    return train.select(~np.isin(train.ids, list(flagged)))


def load_outlier_result(data: FerData, path: str | Path = OUTLIER_FILE) -> OutlierResult:
    """The committed full-profile result for ``data`` (the training split), with every error."""
    record = load_outliers(path)
    errors_file = Path(path).with_name(ERRORS_FILE_NAME)
    stored = pd.read_csv(errors_file).set_index("id")["error"]
    missing = set(data.ids.tolist()) - set(stored.index)
    if not same_data(record, data) or missing:
        raise DataError(f"'{errors_file}' does not match this training split ({len(missing)} ids "
                        "missing or another data checksum); recompute with `fer-core outliers`.")
    return OutlierResult(data.ids, data.labels, stored.loc[data.ids].to_numpy(),
                         record["percentile"], record["threshold"], record["autoencoder"])


def overlap_with_audit(result: OutlierResult, findings) -> pd.DataFrame:
    """How many of the audit's problem images (``fer_core.data.Audit``) the autoencoder flagged.

    Only images that were scored (the training split) count.
    """
    scored, flagged = set(result.ids.tolist()), set(result.flagged_ids)
    groups = {
        "blank images": set(findings.blank.id),
        "exact duplicates (all copies)": set(findings.duplicates.id),
        "training copies of test faces": set(findings.cross_split.train_id),
    }
    rows = {}
    for name, ids in groups.items():
        present = ids & scored
        rows[name] = {"in this split": len(present), "flagged": len(present & flagged),
                      "flagged %": round(100 * len(present & flagged) / max(1, len(present)), 1)}
    return pd.DataFrame.from_dict(rows, orient="index")
