"""Loading, caching, splitting, describing and auditing FER-2013.

Three sources are understood, all giving the same :class:`FerData`:

* the Kaggle archive ``fer2013.zip`` (``train/<class>/*.jpg``, ``test/<class>/*.jpg``),
* the same tree extracted into a folder,
* the original ICML 2013 ``fer2013.csv`` (``emotion,pixels,Usage``).

Images are kept as ``uint8`` arrays of shape (N, 48, 48); each keeps the id of its source
(``Training_10118481``, ``PublicTest_5543497``) so that outlier and duplicate lists name images,
not positions.
"""

from __future__ import annotations

import csv
import hashlib
import re
import warnings
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fer_core.config import (
    CACHE_VARIABLE,
    CLASS_NAMES,
    DATA_VARIABLE,
    ICML_CLASS_ORDER,
    IMAGE_SIZE,
    SEED,
    cache_dir,
    data_path_from_environment,
)

CACHE_FORMAT_VERSION = 3  # 3: with the content checksum
SPLIT_NAMES = ("train", "validation", "test")
# csv label -> index in CLASS_NAMES (the csv uses ICML_CLASS_ORDER)
CSV_LABEL_TO_CLASS = {label: CLASS_NAMES.index(name) for label, name in
                      enumerate(ICML_CLASS_ORDER)}
CSV_USAGES = {"Training": "train", "PublicTest": "test", "PrivateTest": "test"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
_MEMBER_PATTERN = re.compile(r"^(?:.*/)?(train|test)/([^/]+)/([^/]+)$")

WHERE_TO_GET_DATA = (
    "Download the Kaggle archive of FER-2013 (https://www.kaggle.com/datasets/msambare/fer2013, "
    "file 'archive.zip'; rename it fer2013.zip if you like) or the original ICML 'fer2013.csv', "
    "then either pass its path (load_fer2013('path/to/fer2013.zip')) or set the environment "
    f"variable {DATA_VARIABLE}, e.g. `export {DATA_VARIABLE}=$HOME/data/fer2013.zip`. "
    "On Colab, upload kaggle.json and run `!kaggle datasets download -d msambare/fer2013`, then "
    f"set os.environ['{DATA_VARIABLE}'] = 'fer2013.zip'."
)

# Archives this project has met, by SHA-256. Both hold the same files, labels and splits and
# identical test images; the first project runs learned from a copy whose training images had
# been rebuilt from degraded sources (a speckle in bright regions on a few thousand faces).
KNOWN_ARCHIVES: dict[str, str] = {
    # SHA-256 of the zip files
    "0afe447b52cc567d69af082f71d6b273fec41314643698586ff88296c86f8d0e": "original",
    "257838e743199826d11046977b69a9e5abd39d78d45c56635741de7b895285b9": "rebuilt",
    # their decoded content (FerData.pixels_checksum), the same for any zip of the same files
    "8994b91f653b07501607cfd3cda8d38fb8bf3f4b66df2f03df0b5dbf6870e229": "original",
    "b416bd6b5eb238f6931bf3925dc152ef17029dfe865355ead29515d395017396": "rebuilt",
}


def training_pixels(checksum: str | None) -> str:
    """Which training pixels a run learned from, by its record's data checksum (of the zip,
    or of the decoded content).

    Returns ``original`` (the FER-2013 pixels, as in Kaggle's archive), ``rebuilt`` (the
    superseded copy with degraded training images), ``synthetic`` for generated data, or
    ``other`` for an archive this project has not met.
    """
    if checksum and checksum.startswith("synthetic"):
        return "synthetic"
    return KNOWN_ARCHIVES.get(checksum or "", "other")


class DataError(ValueError):
    """Raised when FER-2013 cannot be found or read; the message says what to do."""


@dataclass
class FerData:
    """A set of FER-2013 images with their labels and provenance.

    Attributes
    ----------
    images : numpy.ndarray
        ``uint8`` array of shape (N, 48, 48).
    labels : numpy.ndarray
        ``int64`` class indices into :data:`fer_core.config.CLASS_NAMES`.
    ids : numpy.ndarray
        Source ids such as ``Training_10118481`` (str).
    usage : numpy.ndarray
        ``Training``, ``PublicTest`` or ``PrivateTest`` for each image (str).
    checksum : str
        SHA-256 of the source file (or folder), so derived files can say which data they came
        from.
    notes : list of str
        Conversions applied while loading (resized or colour images).
    pixels_checksum : str
        SHA-256 of the decoded content of the whole loaded dataset (ids, labels, pixels): the
        same for a zip and its extracted folder, and for another zip of the same files (the
        archive Kaggle serves compresses differently from the project's copy). Derived files
        match data by it; empty for generated data.
    """

    images: np.ndarray
    labels: np.ndarray
    ids: np.ndarray
    usage: np.ndarray
    checksum: str = ""
    notes: list[str] = field(default_factory=list)
    pixels_checksum: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index: np.ndarray) -> FerData:
        """Return the images at ``index`` (a boolean mask or integer positions)."""
        return FerData(self.images[index], self.labels[index], self.ids[index],
                       self.usage[index], self.checksum, list(self.notes), self.pixels_checksum)

    def joined(self, other: FerData) -> FerData:
        """These images followed by ``other``'s, e.g. the training split and the validation split
        for a final refit.

        Raises
        ------
        ValueError
            When the two come from different datasets (checksums) or share an image id, since a
            face counted twice would weigh double in training.
        """
        if (other.checksum, other.pixels_checksum) != (self.checksum, self.pixels_checksum):
            raise ValueError("Cannot join images of two different datasets (their checksums "
                             "differ): load both from the same archive.")
        shared = set(self.ids.tolist()) & set(other.ids.tolist())
        if shared:
            raise ValueError(f"{len(shared)} image ids are in both sets (e.g. "
                             f"{sorted(shared)[:3]}): join disjoint sets only.")
        notes = list(dict.fromkeys(self.notes + other.notes))
        return FerData(*(np.concatenate([getattr(self, part), getattr(other, part)])
                         for part in ("images", "labels", "ids", "usage")),
                       self.checksum, notes, self.pixels_checksum)

    def head(self, count: int | None, seed: int = SEED) -> FerData:
        """Return a seeded random subset of ``count`` images (all of them when None).

        The Kaggle archive is sorted by class, so a plain slice would hold one class only.
        """
        if count is None or count >= len(self):
            return self
        order = np.random.default_rng(seed).permutation(len(self))[:count]
        return self.select(np.sort(order))

    def by_ids(self, ids: Iterable[str]) -> FerData:
        """The images with these ids, in the given order (KeyError names a missing id)."""
        position = {image_id: i for i, image_id in enumerate(self.ids.tolist())}
        return self.select(np.array([position[i] for i in ids], dtype=np.int64))

    def pixels_as_float(self) -> np.ndarray:
        """Images as float32 (N, 48, 48, 1) scaled to [0, 1], for statistics and plots.

        Not a model input: every model takes 0..255 (:meth:`model_input`) and rescales inside.
        """
        return (self.images.astype(np.float32) / 255.0)[..., None]

    def model_input(self) -> np.ndarray:
        """Images as float32 (N, 48, 48, 1) in 0..255, the input every model takes."""
        return self.images.astype(np.float32)[..., None]


@dataclass
class Splits:
    """The seeded train/validation split of the training images, plus the test set."""

    train: FerData
    validation: FerData
    test: FerData

    def items(self) -> Iterator[tuple[str, FerData]]:
        """Yield ``(name, data)`` for train, validation and test."""
        yield from (("train", self.train), ("validation", self.validation), ("test", self.test))


# --------------------------------------------------------------------------- loading

def resolve_data_path(path: str | Path | None = None) -> Path:
    """Return the dataset location from ``path`` or ``$FER2013_PATH``.

    Raises
    ------
    DataError
        When neither is given or the location does not exist; the message says where to get
        the data.
    """
    chosen = Path(path).expanduser() if path is not None else data_path_from_environment()
    if chosen is None:
        raise DataError(f"No FER-2013 location given. {WHERE_TO_GET_DATA}")
    if not chosen.exists():
        raise DataError(f"FER-2013 not found at '{chosen}'. {WHERE_TO_GET_DATA}")
    return chosen


def load_fer2013(path: str | Path | None = None, *, use_cache: bool = True,
                 progress: bool = True) -> FerData:
    """Load all 35,887 FER-2013 images from a Kaggle zip, an extracted folder or the ICML csv.

    The first load decodes every image (a few seconds) and caches the arrays, keyed by the
    source's checksum, under :func:`fer_core.config.cache_dir`; later loads read the cache.

    Parameters
    ----------
    path : str or Path, optional
        The zip, folder or csv. Defaults to ``$FER2013_PATH``.
    use_cache : bool
        Read and write the decoded-array cache.
    progress : bool
        Show a progress bar while decoding.

    Returns
    -------
    FerData
        Training images first, then test images, in the source's order.
    """
    source = resolve_data_path(path)
    checksum = source_checksum(source)
    cache_file = cache_dir() / f"fer2013-{checksum[:20]}-v{CACHE_FORMAT_VERSION}.npz"
    if use_cache and cache_file.exists():
        try:
            return _read_cache(cache_file, checksum)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            cache_file.unlink(missing_ok=True)  # a broken cache is rebuilt, never trusted
    if source.is_dir():
        data = _load_folder(source, progress)
    elif source.suffix.lower() == ".csv":
        data = _load_csv(source, progress)
    else:
        data = _load_zip(source, progress)
    data.checksum = checksum
    data.pixels_checksum = content_checksum(data)
    is_training = data.usage == "Training"
    for name, present in (("training", is_training.any()), ("test", (~is_training).any())):
        if not present:
            raise DataError(f"The source '{source}' holds no {name} images; expected both a "
                            f"train and a test part. {WHERE_TO_GET_DATA}")
    if data.notes:
        warnings.warn("; ".join(data.notes), stacklevel=2)
    if use_cache:
        try:
            _write_cache(cache_file, data)
        except OSError as error:  # a read-only home must not stop the load
            warnings.warn(f"Could not write the decoded-image cache in '{cache_file.parent}' "
                          f"({error}); loading will decode again next time. Set "
                          f"{CACHE_VARIABLE} to a writable folder to keep it.", stacklevel=2)
    _warn_missing_classes(data, source)
    return data


def _warn_missing_classes(data: FerData, source: Path) -> None:
    """A Kaggle tree without one class folder would load silently with 0 images of it."""
    for usage, name in (("Training", "train"), ("test", "test")):
        part = data.labels[(data.usage == "Training") == (usage == "Training")]
        missing = [CLASS_NAMES[k] for k in range(len(CLASS_NAMES)) if not (part == k).any()]
        if missing:
            warnings.warn(f"'{source}' has no {name} images of class(es) {', '.join(missing)}: "
                          f"models will never learn or be tested on them. Is a "
                          f"'{name}/<class>' folder missing?", stacklevel=3)


def content_checksum(data: FerData) -> str:
    """SHA-256 of ids, labels and pixels, in the loaded order (see ``FerData.pixels_checksum``)."""
    digest = hashlib.sha256()
    digest.update("\n".join(data.ids.tolist()).encode())
    digest.update(np.ascontiguousarray(data.labels, np.int64).tobytes())
    digest.update(np.ascontiguousarray(data.images, np.uint8).tobytes())
    return digest.hexdigest()


def source_checksum(source: Path) -> str:
    """SHA-256 of a zip or csv; for a folder, of its file names, sizes and contents' hashes."""
    digest = hashlib.sha256()
    if source.is_dir():
        for file in sorted(p for p in source.rglob("*") if p.is_file()):
            digest.update(str(file.relative_to(source)).encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
        return digest.hexdigest()
    with source.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _progress(items: Iterable, total: int, enabled: bool, what: str) -> Iterable:
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, total=total, desc=f"Decoding {what}", unit="img", mininterval=1.0)


def _usage_from_name(split: str, file_name: str) -> str:
    if split == "train":
        return "Training"
    return "PrivateTest" if file_name.startswith("PrivateTest") else "PublicTest"


def _class_index(folder: str, where: str) -> int:
    if folder not in CLASS_NAMES:
        raise DataError(f"Unknown class folder '{folder}' in {where}. FER-2013 class folders are "
                        f"{', '.join(CLASS_NAMES)}; rename or remove the folder.")
    return CLASS_NAMES.index(folder)


def decode_image(raw: bytes, name: str, notes: list[str] | None = None) -> np.ndarray:
    """Decode image bytes to a 48x48 ``uint8`` grayscale array.

    Colour or wrongly sized images are converted (and a note is appended to ``notes``);
    undecodable bytes raise :class:`DataError` naming the file.
    """
    image = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED) if raw else None
    if image is None:
        raise DataError(f"Cannot decode image '{name}': the file is empty or not an image. "
                        "Replace it with the original from the Kaggle archive or delete it.")
    return to_face_array(image, name, notes)


def to_face_array(image: np.ndarray, name: str = "image",
                  notes: list[str] | None = None) -> np.ndarray:
    """Convert any decoded image to 48x48 ``uint8`` grayscale, noting what was changed."""
    changes = []
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code) if image.shape[2] in (3, 4) else image[..., 0]
        changes.append("converted to grayscale")
    if image.dtype != np.uint8:
        image = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        changes.append("rescaled to 8 bits")
    if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
        changes.append(f"resized from {image.shape[1]}x{image.shape[0]} to 48x48")
        image = cv2.resize(image, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
    if changes and notes is not None:
        notes.append(f"'{name}' {' and '.join(changes)}")
    return image


def _assemble(records: list[tuple[np.ndarray, int, str, str]], notes: list[str]) -> FerData:
    summary = notes[:3] + ([f"... and {len(notes) - 3} more"] if len(notes) > 3 else [])
    images = np.stack([r[0] for r in records]).astype(np.uint8)
    ids = [r[2] for r in records]
    # The Kaggle archive has two file names in two class folders each; "@class" keeps ids unique.
    repeated = {i for i, n in Counter(ids).items() if n > 1}
    ids = [f"{i}@{CLASS_NAMES[r[1]]}" if i in repeated else i for i, r in zip(ids, records,
                                                                               strict=True)]
    return FerData(images, np.array([r[1] for r in records], dtype=np.int64),
                   np.array(ids), np.array([r[3] for r in records]),
                   notes=[f"{len(notes)} images were not 48x48 grayscale and were converted: "
                          + "; ".join(summary)] if notes else [])


def _sorted_records(records: list) -> list:
    # Training before test, then by class and name, whatever order the source listed them in.
    return sorted(records, key=lambda r: (r[3] != "Training", r[1], r[2]))


def _is_metadata(member: str) -> bool:
    """macOS re-zips add ``__MACOSX/`` folders and ``._name`` resource forks: not images."""
    parts = member.replace("\\", "/").split("/")
    return "__MACOSX" in parts or parts[-1].startswith("._")


def _load_zip(source: Path, progress: bool) -> FerData:
    if not zipfile.is_zipfile(source):
        raise DataError(f"'{source}' is not a readable zip archive (corrupt or truncated "
                        f"download?). Download it again and check its size. {WHERE_TO_GET_DATA}")
    records, notes = [], []
    try:
        with zipfile.ZipFile(source) as archive:
            members = [m for m in archive.infolist() if not m.is_dir()
                       and m.filename.lower().endswith(_IMAGE_SUFFIXES)
                       and not _is_metadata(m.filename)]
            matched = [(m, _MEMBER_PATTERN.match(m.filename)) for m in members]
            matched = [(m, hit) for m, hit in matched if hit]
            if not matched:
                raise DataError(f"'{source}' does not have the Kaggle layout train/<class>/*.jpg "
                                f"and test/<class>/*.jpg. {WHERE_TO_GET_DATA}")
            for member, hit in _progress(matched, len(matched), progress, source.name):
                split, folder, file_name = hit.groups()
                label = _class_index(folder, f"'{source}' ({member.filename})")
                image = decode_image(archive.read(member), member.filename, notes)
                records.append((image, label, Path(file_name).stem,
                                _usage_from_name(split, file_name)))
    except (zipfile.BadZipFile, zlib.error, EOFError) as error:
        raise DataError(f"'{source}' is corrupt ({error}). Download it again. "
                        f"{WHERE_TO_GET_DATA}") from error
    return _assemble(_sorted_records(records), notes)


def _load_folder(source: Path, progress: bool) -> FerData:
    roots = [p for p in (source, *source.iterdir()) if (p / "train").is_dir() or
             (p / "test").is_dir()] if source.is_dir() else []
    if not roots:
        raise DataError(f"The folder '{source}' does not have the Kaggle layout: expected "
                        f"'train/<class>/*.jpg' and 'test/<class>/*.jpg' inside it. "
                        f"{WHERE_TO_GET_DATA}")
    root = roots[0]
    files = [p for split in ("train", "test") if (root / split).is_dir()
             for p in sorted((root / split).rglob("*"))
             if p.is_file() and p.suffix.lower() in _IMAGE_SUFFIXES
             and not _is_metadata(str(p.relative_to(root)))]
    records, notes = [], []
    for file in _progress(files, len(files), progress, source.name):
        split, folder = file.relative_to(root).parts[:2]
        label = _class_index(folder, f"'{root / split}'")
        image = decode_image(file.read_bytes(), str(file), notes)
        records.append((image, label, file.stem, _usage_from_name(split, file.name)))
    if not records:
        raise DataError(f"No images found under '{root}'. {WHERE_TO_GET_DATA}")
    return _assemble(_sorted_records(records), notes)


def _load_csv(source: Path, progress: bool) -> FerData:
    try:
        with source.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"'{source}' lacks the column(s) {sorted(missing)}; the ICML "
                                f"fer2013.csv has the header 'emotion,pixels,Usage'. "
                                f"{WHERE_TO_GET_DATA}")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"'{source}' is not a text CSV file ({error}); is it the ICML "
                        f"fer2013.csv? {WHERE_TO_GET_DATA}") from error
    records = []
    for row_number, row in enumerate(_progress(rows, len(rows), progress, source.name), start=2):
        where = f"'{source}' line {row_number}"
        if row.get("pixels") is None or row.get("Usage") is None:
            raise DataError(f"{where} has fewer than the three fields emotion,pixels,Usage. "
                            "Fix or remove that line.")
        values = row["pixels"].split()
        if len(values) != IMAGE_SIZE * IMAGE_SIZE:
            raise DataError(f"{where} has {len(values)} pixel values; each FER-2013 image has "
                            f"48*48 = 2304. Fix or remove that line.")
        try:
            pixels = np.array(values, dtype=np.int64)
            emotion = int(row["emotion"])
        except ValueError as error:
            raise DataError(f"{where} holds a non-integer value ({error}).") from error
        if emotion not in CSV_LABEL_TO_CLASS or pixels.min() < 0 or pixels.max() > 255:
            raise DataError(f"{where}: emotion must be 0..6 and pixels 0..255.")
        if row["Usage"] not in CSV_USAGES:
            raise DataError(f"{where}: Usage '{row['Usage']}' is not one of {list(CSV_USAGES)}.")
        records.append((pixels.reshape(IMAGE_SIZE, IMAGE_SIZE).astype(np.uint8),
                        CSV_LABEL_TO_CLASS[emotion], f"{row['Usage']}_{row_number - 2}",
                        row["Usage"]))
    if not records:
        raise DataError(f"'{source}' holds no images. {WHERE_TO_GET_DATA}")
    return _assemble(records, [])


def _write_cache(cache_file: Path, data: FerData) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_file.with_suffix(".tmp.npz")
    np.savez(temporary, images=data.images, labels=data.labels, ids=data.ids, usage=data.usage,
             checksum=np.array(data.checksum), notes=np.array(data.notes, dtype=str),
             pixels_checksum=np.array(data.pixels_checksum))
    temporary.replace(cache_file)  # atomic, so a killed run never leaves half a cache


def _read_cache(cache_file: Path, checksum: str) -> FerData:
    with np.load(cache_file, allow_pickle=False) as stored:
        if str(stored["checksum"]) != checksum:
            raise ValueError("cache checksum mismatch")
        return FerData(stored["images"], stored["labels"], stored["ids"], stored["usage"],
                       checksum, [str(n) for n in stored["notes"]],
                       str(stored["pixels_checksum"]))


# --------------------------------------------------------------------------- splitting

def split_data(data: FerData, seed: int = SEED, validation_fraction: float = 0.2) -> Splits:
    """Seeded, stratified split of the training images into train and validation.

    With the full dataset this gives exactly 22,968 train / 5,741 validation / 7,178 test
    images (the validation size is ``floor(0.2 * 28,709)``), identical for the same seed on
    any machine.

    Raises
    ------
    DataError
        When a split would be empty.
    """
    is_train = data.usage == "Training"
    train_positions = np.flatnonzero(is_train)
    test = data.select(~is_train)
    validation_size = int(validation_fraction * len(train_positions))
    if validation_size == 0 or len(test) == 0 or validation_size == len(train_positions):
        raise DataError(f"Cannot split {len(train_positions)} training and {len(test)} test "
                        "images into non-empty train, validation and test sets.")
    stratify = data.labels[train_positions]
    classes = np.unique(stratify)
    if np.bincount(stratify)[classes].min() < 2 or validation_size < len(classes):
        stratify = None  # tiny sets: too few images per class to stratify
    fit_positions, validation_positions = train_test_split(
        train_positions, test_size=validation_size, random_state=seed, stratify=stratify)
    return Splits(data.select(np.sort(fit_positions)), data.select(np.sort(validation_positions)),
                  test)


def load_splits(path: str | Path | None = None, seed: int = SEED, **load_options) -> Splits:
    """Load FER-2013 and split it: the usual first line of every chapter."""
    return split_data(load_fer2013(path, **load_options), seed=seed)


# --------------------------------------------------------------------------- description

def class_label_map() -> dict[int, str]:
    """``{0: 'angry', 1: 'disgust', ..., 6: 'surprise'}``."""
    return dict(enumerate(CLASS_NAMES))


def example_batch(data: FerData, batch_size: int = 32, seed: int = SEED) -> np.ndarray:
    """A float32 batch (batch_size, 48, 48, 1) scaled to [0, 1], as the models see it *after*
    their own ``Rescaling`` layer. Feed models :meth:`FerData.model_input` (0..255) instead."""
    return data.head(batch_size, seed).pixels_as_float()


def summary_statistics(splits: Splits) -> pd.DataFrame:
    """Per-split statistics of the study's Table 1, after scaling pixels to [0, 1].

    Columns: images, pixels, missing pixels, dtype, mean, std, min, max.
    """
    rows = {}
    for name, part in splits.items():
        scaled = part.images.astype(np.float32) / 255.0
        rows[name] = {
            "images": len(part), "pixels": int(scaled.size),
            "missing pixels": int(np.isnan(scaled).sum()), "dtype": str(scaled.dtype),
            "mean": round(float(scaled.mean()), 4), "std": round(float(scaled.std()), 4),
            "min": float(scaled.min()), "max": float(scaled.max()),
        }
    return pd.DataFrame(rows).T


def class_counts(splits: Splits) -> pd.DataFrame:
    """Images per class (rows) and split (columns), with totals."""
    table = pd.DataFrame({name: np.bincount(part.labels, minlength=len(CLASS_NAMES))
                          for name, part in splits.items()}, index=list(CLASS_NAMES))
    table["all"] = table.sum(axis=1)
    table.loc["total"] = table.sum(axis=0)
    return table


# --------------------------------------------------------------------------- audit

@dataclass
class Audit:
    """What is wrong with the data: blank images and duplicates, by id."""

    blank: pd.DataFrame
    duplicates: pd.DataFrame
    cross_split: pd.DataFrame

    def summary(self) -> pd.DataFrame:
        """One row per finding with its count."""
        within = self.duplicates
        return pd.DataFrame({"count": {
            "blank or near-constant images (pixel std < 1)": len(self.blank),
            "exact-duplicate groups within train": int(within.group.nunique()),
            "images in those groups": len(within),
            "redundant copies (could be removed)": len(within) - int(within.group.nunique()),
            "groups whose copies disagree on the label": int(
                (within.groupby("group").label.nunique() > 1).sum()),
            "train-test near-duplicate pairs": len(self.cross_split),
        }})

    def exclusion_ids(self) -> set[str]:
        """Training ids a chapter may drop: blanks, every copy after the first, test look-alikes."""
        later_copies = self.duplicates[self.duplicates.duplicated("group")].id
        return set(self.blank.id) | set(later_copies) | set(self.cross_split.train_id)


def find_blank_images(data: FerData, std_threshold: float = 1.0) -> pd.DataFrame:
    """Images whose pixel standard deviation (0..255 scale) is below ``std_threshold``."""
    spread = data.images.reshape(len(data), -1).std(axis=1)
    hits = np.flatnonzero(spread < std_threshold)
    return pd.DataFrame({"id": data.ids[hits], "usage": data.usage[hits],
                         "label": [CLASS_NAMES[i] for i in data.labels[hits]],
                         "pixel std": spread[hits].round(3), "position": hits})


def find_exact_duplicates(data: FerData) -> pd.DataFrame:
    """Groups of byte-identical images: one row per image, with a group number."""
    keys = [hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in data.images]
    frame = pd.DataFrame({"key": keys, "position": np.arange(len(data))})
    frame = frame[frame.duplicated("key", keep=False)]
    frame["group"] = frame.groupby("key", sort=False).ngroup()
    positions = frame.position.to_numpy()
    return pd.DataFrame({"group": frame.group.to_numpy(), "id": data.ids[positions],
                         "usage": data.usage[positions],
                         "label": [CLASS_NAMES[i] for i in data.labels[positions]],
                         "position": positions}).sort_values(["group", "id"],
                                                             ignore_index=True)


def _thumbnails(images: np.ndarray, size: int = 16) -> np.ndarray:
    small = np.stack([cv2.resize(i, (size, size), interpolation=cv2.INTER_AREA)
                      for i in images]).reshape(len(images), -1).astype(np.float32)
    small -= small.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(small, axis=1, keepdims=True)
    return small / np.maximum(norms, 1e-6)


def find_near_duplicates(first: FerData, second: FerData,
                         min_correlation: float = 0.95) -> pd.DataFrame:
    """Pairs (one image from each set) whose 16x16 thumbnails correlate above the threshold.

    Correlation of mean-centred thumbnails ignores brightness and contrast changes and small
    pixel noise, so it finds the same photo even when one copy was re-encoded or rebuilt.
    Blank images (no structure to compare) are skipped.
    """
    keep_first = first.images.reshape(len(first), -1).std(axis=1) >= 1
    keep_second = second.images.reshape(len(second), -1).std(axis=1) >= 1
    a_positions, b_positions = np.flatnonzero(keep_first), np.flatnonzero(keep_second)
    a, b = _thumbnails(first.images[a_positions]), _thumbnails(second.images[b_positions])
    pairs = []
    for start in range(0, len(a), 4096):
        similarity = a[start:start + 4096] @ b.T
        rows, cols = np.nonzero(similarity >= min_correlation)
        pairs.extend(zip(a_positions[rows + start], b_positions[cols],
                         similarity[rows, cols], strict=True))
    return pd.DataFrame({
        "train_id": [first.ids[i] for i, _, _ in pairs],
        "test_id": [second.ids[j] for _, j, _ in pairs],
        "train_label": [CLASS_NAMES[first.labels[i]] for i, _, _ in pairs],
        "test_label": [CLASS_NAMES[second.labels[j]] for _, j, _ in pairs],
        "correlation": [round(float(s), 4) for _, _, s in pairs],
    })


def audit(data: FerData, std_threshold: float = 1.0, min_correlation: float = 0.95) -> Audit:
    """Blank images, exact duplicates within training, and train-test near-duplicates.

    Parameters
    ----------
    data : FerData
        All images (training and test), as returned by :func:`load_fer2013`.
    """
    is_train = data.usage == "Training"
    training, test = data.select(is_train), data.select(~is_train)
    return Audit(find_blank_images(data, std_threshold), find_exact_duplicates(training),
                 find_near_duplicates(training, test, min_correlation))


def read_image_file(path: str | Path) -> np.ndarray:
    """Read any image file from disk as 48x48 ``uint8`` grayscale (clear error if unreadable)."""
    file = Path(path)
    if not file.is_file():
        raise DataError(f"Image file '{file}' does not exist.")
    return decode_image(file.read_bytes(), str(file))


def load_labelled_folder(folder: str | Path, class_map: dict[str, str] | None = None
                         ) -> tuple[FerData, list[str]]:
    """Faces from any folder laid out ``<class>/*.png|jpg`` (e.g. another dataset's test set),
    as FER-2013 data to score models on.

    Images of other sizes or in colour are converted to 48x48 grayscale (with a warning).
    Folder names are FER-2013 class names, or are mapped to them with ``class_map`` (e.g.
    ``{"anger": "angry", "happiness": "happy"}``); a folder that is neither is refused, never
    guessed.

    Returns
    -------
    FerData
        The faces, usage ``External``.
    list of str
        FER-2013 classes the folder has no images of (so their recall cannot be measured).

    Raises
    ------
    DataError
        For a missing folder, an unknown class folder, or no images at all.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"'{root}' is not a folder of <class>/<image> files.")
    class_map = dict(class_map or {})
    unknown_targets = sorted(set(class_map.values()) - set(CLASS_NAMES))
    if unknown_targets:
        raise DataError(f"The class map names {unknown_targets}, which are not FER-2013 classes "
                        f"({', '.join(CLASS_NAMES)}).")
    records, notes = [], []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not _is_metadata(p.name)):
        name = class_map.get(sub.name, sub.name)
        if name not in CLASS_NAMES:
            raise DataError(f"Folder '{sub.name}' in '{root}' is not a FER-2013 class "
                            f"({', '.join(CLASS_NAMES)}); map it, e.g. --class-map "
                            f"{sub.name}=<class>, or remove it.")
        for file in sorted(sub.iterdir()):
            if file.suffix.lower() in _IMAGE_SUFFIXES and not _is_metadata(file.name):
                image = decode_image(file.read_bytes(), str(file), notes)
                records.append((image, CLASS_NAMES.index(name), f"{sub.name}/{file.stem}",
                                "External"))
    if not records:
        raise DataError(f"No images found in the class folders of '{root}'.")
    loaded = _assemble(records, notes)
    if loaded.notes:
        warnings.warn("; ".join(loaded.notes), stacklevel=2)
    present = set(loaded.labels.tolist())
    return loaded, [name for k, name in enumerate(CLASS_NAMES) if k not in present]
