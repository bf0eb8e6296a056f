"""Expressions in ordinary photos: find faces with OpenCV's Haar cascade, classify each one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import keras
import numpy as np

from fer_core.config import CLASS_NAMES, IMAGE_SIZE
from fer_core.data import DataError
from fer_core.evaluate import MODELS_DIR, load_reference


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
    """Read a photo as a grayscale ``uint8`` array, with a clear error for bad files."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Photo '{path}' does not exist.")
    raw = np.fromfile(path, np.uint8)
    # OpenCV asserts (cv2.error) on an empty buffer instead of returning None
    image = cv2.imdecode(raw, cv2.IMREAD_GRAYSCALE) if raw.size else None
    if image is None:
        raise DataError(f"Cannot read '{path}' as an image (JPEG, PNG, BMP, ... expected).")
    return image


def detect_faces(gray: np.ndarray, min_size: int = 24) -> list[tuple[int, int, int, int]]:
    """Frontal faces found by OpenCV's bundled Haar cascade, largest first."""
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    if cascade.empty():
        raise RuntimeError("OpenCV's Haar cascade files are missing; install "
                           "opencv-python-headless 4.x, which ships them.")
    boxes = cascade.detectMultiScale(cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
                                     minSize=(min_size, min_size))
    return sorted((tuple(int(v) for v in box) for box in boxes), key=lambda b: -b[2] * b[3])


def crop_faces(gray: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    """Crop and resize each box to a 48x48 face, as in FER-2013."""
    return np.stack([cv2.resize(gray[y:y + h, x:x + w], (IMAGE_SIZE, IMAGE_SIZE),
                                interpolation=cv2.INTER_AREA) for x, y, w, h in boxes])


def predict_photo(path: str | Path, model: str | keras.Model = "attention_unet",
                  annotate: str | Path | None = None,
                  models_dir: str | Path = MODELS_DIR) -> list[FacePrediction]:
    """Find the faces in a photo and predict each one's expression.

    Parameters
    ----------
    path : str or Path
        The photo.
    model : str or keras.Model
        A reference model name (loaded from ``models_dir``) or a loaded model.
    annotate : str or Path, optional
        Write a copy of the photo with boxes and labels here.

    Raises
    ------
    DataError
        When the file is missing or unreadable, or no face is found.
    """
    gray = read_photo(path)
    boxes = detect_faces(gray)
    if not boxes:
        raise DataError(f"No face found in '{path}'. Use a photo with a frontal, upright face "
                        "at least 24 pixels wide.")
    classifier = load_reference(model, models_dir)[0] if isinstance(model, str) else model
    probabilities = classifier.predict(crop_faces(gray, boxes)[..., None].astype(np.float32),
                                       verbose=0)
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
