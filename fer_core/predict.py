"""Expressions in ordinary photos: find the faces, classify each one.

Two face detectors: MTCNN (``mtcnn``, the default: a small three-stage CNN whose weights ship
inside the ``mtcnn`` wheel) and OpenCV's Haar cascade (``haar``, shipped with OpenCV).
``scripts/compare_detectors.py`` measures both on the same photos (chapter 11): MTCNN found
about twice as many faces with fewer false detections, so it is the default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from fer_core.config import CLASS_NAMES, IMAGE_SIZE
from fer_core.data import DataError
from fer_core.evaluate import predict_probabilities
from fer_core.store import check_classifier, load_reference

# Detection runs on a copy whose longer side is at most this: an 8000x8000 photo took 57 s and
# 4.2 GB at full size and produced dozens of false faces; faces are found as well at 1024.
DETECTION_SIDE = 1024
MIN_FACE_FRACTION = 0.04  # smallest face searched: this share of the photo's shorter side
MIN_FACE_PIXELS = 24
MIN_DETECTION_WEIGHT = 1.0  # Haar cascade confidence below which a detection is dropped
MAX_OVERLAP = 0.3  # intersection over union above which the weaker of two boxes is dropped
MIN_MTCNN_CONFIDENCE = 0.9  # MTCNN's usual cut-off on its last stage's face probability
DETECTORS = ("mtcnn", "haar")
DEFAULT_DETECTOR = "mtcnn"  # chosen by scripts/compare_detectors.py's measurement


@dataclass
class FacePrediction:
    """One detected face: its box in the photo (x, y, width, height) and class probabilities."""

    box: tuple[int, int, int, int]
    probabilities: np.ndarray

    @property
    def expression(self) -> str:
        """The most probable class."""
        return CLASS_NAMES[int(np.argmax(self.probabilities))]

    def describe(self) -> str:
        """One line: box, top expression, all probabilities."""
        ranked = ", ".join(f"{name} {p:.2f}" for name, p in
                           sorted(zip(CLASS_NAMES, self.probabilities, strict=True),
                                  key=lambda item: -item[1]))
        return f"face at x={self.box[0]} y={self.box[1]} w={self.box[2]} h={self.box[3]}: " \
               f"{self.expression} ({ranked})"


def read_photo(path: str | Path) -> np.ndarray:
    """Read a photo as a grayscale ``uint8`` array, with a clear error for bad files.

    16-bit (and 12-bit data stored in 16 bits) and float images are stretched from their actual
    range to 0..255, so a dim high-bit-depth photo does not come out black.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"'{path}' is a folder, not a photo; give the photo files inside it.")
    if not path.is_file():
        raise DataError(f"Photo '{path}' does not exist.")
    raw = np.fromfile(path, np.uint8)
    # OpenCV asserts (cv2.error) on an empty buffer instead of returning None
    image = cv2.imdecode(raw, cv2.IMREAD_UNCHANGED) if raw.size else None
    if image is None:
        raise DataError(f"Cannot read '{path}' as an image (JPEG, PNG, BMP, ... expected).")
    if image.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        image = cv2.cvtColor(image, code)
    if image.dtype != np.uint8:
        image = cv2.normalize(image.astype(np.float32), None, 0, 255, cv2.NORM_MINMAX)
        image = image.astype(np.uint8)
    return image


def _overlap(first: tuple, second: tuple) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    x1, y1 = max(first[0], second[0]), max(first[1], second[1])
    x2 = min(first[0] + first[2], second[0] + second[2])
    y2 = min(first[1] + first[3], second[1] + second[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / (first[2] * first[3] + second[2] * second[3] - inter)


def detect_faces(gray: np.ndarray, min_size: int | None = None, detector: str | None = None
                 ) -> list[tuple[int, int, int, int]]:
    """Faces in a grayscale photo as (x, y, width, height) boxes, largest first.

    Large photos are searched on a copy scaled to :data:`DETECTION_SIDE`; the smallest face
    searched grows with the photo (:data:`MIN_FACE_FRACTION` of its shorter side, at least
    :data:`MIN_FACE_PIXELS`, or ``min_size`` when given); detections are kept by the detector's
    confidence and, of two overlapping boxes, only the more confident one. Boxes are in the
    original photo's pixels.

    Parameters
    ----------
    gray : np.ndarray
        The photo, ``uint8`` grayscale.
    min_size : int, optional
        Smallest face side searched, in pixels of the (scaled) copy.
    detector : str, optional
        ``mtcnn`` (its boxes, taller than wide, are made square around their centre, as
        FER-2013's crops are) or ``haar`` (OpenCV's frontal-face cascade); by default
        :data:`DEFAULT_DETECTOR`.

    Raises
    ------
    ValueError
        For an unknown detector.
    RuntimeError
        When the chosen detector's files or package are missing.
    """
    detector = detector or DEFAULT_DETECTOR
    if detector not in DETECTORS:
        raise ValueError(f"Unknown face detector {detector!r}; choose one of {DETECTORS}.")
    scale = min(1.0, DETECTION_SIDE / max(gray.shape))
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) \
        if scale < 1 else gray
    smallest = min_size or max(MIN_FACE_PIXELS, round(MIN_FACE_FRACTION * min(small.shape)))
    found = _haar_boxes(small, smallest) if detector == "haar" else _mtcnn_boxes(small, smallest)
    kept: list[tuple[int, int, int, int]] = []
    for _, box in sorted(found, reverse=True):
        if all(_overlap(box, other) <= MAX_OVERLAP for other in kept):
            kept.append(box)
    kept.sort(key=lambda box: -box[2] * box[3])
    return [tuple(round(v / scale) for v in box) for box in kept]


def _haar_boxes(gray: np.ndarray, smallest: int) -> list[tuple[float, tuple]]:
    """(confidence, box) of the Haar cascade's detections at or above its weight cut-off."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's Haar cascade files are missing; install "
                           "opencv-python-headless 4.x, which ships them.")
    boxes, _, weights = cascade.detectMultiScale3(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
        minSize=(smallest, smallest), outputRejectLevels=True)
    return [(float(w), tuple(int(v) for v in b))
            for b, w in zip(boxes, np.ravel(weights), strict=True) if w >= MIN_DETECTION_WEIGHT]


_MTCNN = []  # one detector per process: building its three networks takes a second


def _mtcnn_boxes(gray: np.ndarray, smallest: int) -> list[tuple[float, tuple]]:
    """(confidence, square box) of MTCNN's detections at or above its confidence cut-off."""
    if not _MTCNN:
        try:
            from mtcnn import MTCNN
        except ImportError as error:
            raise RuntimeError("The 'mtcnn' package (a dependency of fer-core) is missing: "
                               "pip install mtcnn, or use the 'haar' detector.") from error
        _MTCNN.append(MTCNN(device="CPU:0"))
    # mtcnn 1.0 finds nothing when given its own min_face_size (its image pyramid then
    # starts at the wrong scale), so small boxes are dropped afterwards instead
    detections = _MTCNN[0].detect_faces(cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB))
    found = []
    for detection in detections:
        x, y, w, h = detection["box"]
        side = max(w, h)
        if detection["confidence"] < MIN_MTCNN_CONFIDENCE or side < smallest:
            continue
        left = int(np.clip(x + w / 2 - side / 2, 0, max(0, gray.shape[1] - side)))
        top = int(np.clip(y + h / 2 - side / 2, 0, max(0, gray.shape[0] - side)))
        found.append((float(detection["confidence"]),
                      (left, top, min(side, gray.shape[1]), min(side, gray.shape[0]))))
    return found


def crop_faces(gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Crop and resize each box to a 48x48 face, as in FER-2013."""
    return np.stack([cv2.resize(gray[y:y + h, x:x + w], (IMAGE_SIZE, IMAGE_SIZE),
                                interpolation=cv2.INTER_AREA) for x, y, w, h in boxes])


def check_annotation_path(annotate: str | Path) -> Path:
    """Refuse, before any work, an annotation file OpenCV could not write."""
    annotate = Path(annotate)
    if not annotate.parent.is_dir():
        raise DataError(f"Cannot write '{annotate}': the folder '{annotate.parent}' does not "
                        "exist. Create it first.")
    if not cv2.haveImageWriter(str(annotate)):
        raise DataError(f"Cannot write '{annotate}': OpenCV has no writer for "
                        f"'{annotate.suffix or '(no extension)'}'. Use .jpg or .png.")
    return annotate


def predict_photo(path: str | Path, model: str | keras.Model = "vgg_cnn",
                  annotate: str | Path | None = None,
                  models_dir: str | Path | None = None,
                  detector: str | None = None) -> list[FacePrediction]:
    """Find the faces in a photo and predict each one's expression.

    Parameters
    ----------
    path : str or Path
        The photo.
    model : str or keras.Model
        A reference model name (loaded from ``models_dir``) or a loaded 7-class classifier.
    annotate : str or Path, optional
        Write a copy of the photo with boxes and labels here (checked before any work).
    detector : str, optional
        ``mtcnn`` or ``haar`` (see :func:`detect_faces`).

    Raises
    ------
    DataError
        When the file is missing or unreadable, no face is found, or ``annotate`` cannot be
        written.
    """
    if annotate:
        annotate = check_annotation_path(annotate)
    gray = read_photo(path)
    boxes = detect_faces(gray, detector=detector)
    if not boxes:
        raise DataError(f"No face found in '{path}'. Use a photo with a frontal, upright face "
                        "at least 24 pixels wide.")
    if isinstance(model, str):
        classifier = load_reference(model, models_dir)[0]
    else:
        check_classifier(model)
        classifier = model
    probabilities = predict_probabilities(classifier, crop_faces(gray, boxes))
    faces = [FacePrediction(box, p) for box, p in zip(boxes, probabilities, strict=True)]
    if annotate:
        canvas = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
        for face in faces:
            x, y, w, h = face.box
            cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 200, 0), 2)
            cv2.putText(canvas, face.expression, (x, max(12, y - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                        0.5, (0, 200, 0), 1)
        if not cv2.imwrite(str(annotate), canvas):
            raise DataError(f"Cannot write the annotated photo to '{annotate}'.")
    return faces
