"""Compare the face detectors of ``fer-core predict`` on the same photos (issue 14, chapter 11).

No face-detection benchmark with expression labels is at hand offline, so the photos are made:
each of ``--faces`` seeded FER-2013 test faces is enlarged to a random size (64-200 pixels) and
placed at a random spot of a 640x480 scene with a smooth, random background; ``--empty`` more
scenes hold no face. Every detector sees the same scenes. Measured per detector:

- recall: share of faces found (a box overlapping the true one with IoU >= 0.3; detectors draw
  their boxes differently, so the criterion is lenient);
- false detections: boxes matching no face, per scene with a face and on the empty scenes;
- milliseconds per scene (median, 2 cores);
- end-to-end accuracy: the expression model's accuracy on all faces when a missed face counts
  as wrong, as ``predict`` would fail it; next to it the same model on the true boxes.

Caveat: FER-2013's faces were themselves found by a face detector and cropped tightly, which may
favour detectors like the one used then (OpenCV's Haar cascades are the likely candidate).

Usage: ``FER2013_PATH=... python scripts/compare_detectors.py --json models/detectors.json``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fer_core import data, evaluate, predict, store, train
from fer_core.config import IMAGE_SIZE

SCENE_SHAPE = (480, 640)
FACE_SIDES = (64, 200)
MATCH_IOU = 0.3


def scene_background(rng: np.random.Generator) -> np.ndarray:
    """A smooth random grayscale background: blurred noise over a brightness gradient."""
    width = SCENE_SHAPE[1]
    texture = cv2.GaussianBlur(rng.normal(0, 1, SCENE_SHAPE), (0, 0), rng.uniform(4, 16))
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-9)
    gradient = np.linspace(rng.uniform(0, 1), rng.uniform(0, 1), width)[None, :]
    mixed = 0.6 * texture + 0.4 * np.broadcast_to(gradient, SCENE_SHAPE)
    low, high = sorted(rng.uniform(20, 235, 2))
    return (low + mixed * (high - low)).astype(np.uint8)


def face_scene(face: np.ndarray, rng: np.random.Generator
               ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``face`` enlarged to a random size at a random spot of a background, and its box."""
    side = int(rng.integers(FACE_SIDES[0], FACE_SIDES[1] + 1))
    scene = scene_background(rng)
    top = int(rng.integers(0, SCENE_SHAPE[0] - side + 1))
    left = int(rng.integers(0, SCENE_SHAPE[1] - side + 1))
    scene[top:top + side, left:left + side] = cv2.resize(face, (side, side),
                                                         interpolation=cv2.INTER_CUBIC)
    return scene, (left, top, side, side)


def match(boxes: list[tuple], truth: tuple | None) -> tuple[tuple | None, int]:
    """The detected box that best overlaps ``truth`` (if IoU >= MATCH_IOU) and the number of
    the other, false, detections."""
    if truth is None or not boxes:
        return None, len(boxes)
    overlaps = [predict._overlap(box, truth) for box in boxes]
    best = int(np.argmax(overlaps))
    if overlaps[best] < MATCH_IOU:
        return None, len(boxes)
    return boxes[best], len(boxes) - 1


def compare(faces: data.FerData, detectors: list[str], empty: int, model: str, seed: int
            ) -> dict:
    """Run every detector on the same scenes and score it (see the module's docstring)."""
    rng = np.random.default_rng(seed)
    scenes = [face_scene(image, rng) for image in faces.images]
    scenes += [(scene_background(rng), None) for _ in range(empty)]
    classifier = store.load_reference(model)[0]

    def accuracy_on(crops: list[np.ndarray | None]) -> float:
        found = [index for index, crop in enumerate(crops) if crop is not None]
        correct = 0
        if found:
            batch = np.stack([crops[index] for index in found])
            predicted = evaluate.predict_probabilities(classifier, batch).argmax(axis=1)
            correct = int((predicted == faces.labels[found]).sum())
        return correct / len(faces)

    results = {"true boxes": {"end-to-end accuracy": accuracy_on(
        [predict.crop_faces(scene, [box])[0] for scene, box in scenes[:len(faces)]])}}
    for detector in detectors:
        predict.detect_faces(scenes[0][0], detector=detector)  # load the detector once
        crops, found, false_with, false_empty, times = [], 0, 0, 0, []
        for scene, truth in scenes:
            start = time.perf_counter()
            boxes = predict.detect_faces(scene, detector=detector)
            times.append(time.perf_counter() - start)
            hit, false = match(boxes, truth)
            if truth is None:
                false_empty += false
                continue
            found += hit is not None
            false_with += false
            crops.append(None if hit is None else predict.crop_faces(scene, [hit])[0])
        results[detector] = {
            "recall": found / len(faces),
            "false detections per face scene": false_with / len(faces),
            "false detections per empty scene": false_empty / max(empty, 1),
            "ms per scene": 1000 * float(np.median(times)),
            "end-to-end accuracy": accuracy_on(crops)}
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=500, help="test faces placed in scenes")
    parser.add_argument("--empty", type=int, default=100, help="scenes without a face")
    parser.add_argument("--detectors", nargs="+", default=list(predict.DETECTORS))
    parser.add_argument("--model", default="vgg_cnn", help="expression model (reference name)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    arguments = parser.parse_args(argv)
    faces = data.load_splits().test.head(arguments.faces, seed=arguments.seed)
    started = time.perf_counter()
    results = compare(faces, arguments.detectors, arguments.empty, arguments.model,
                      arguments.seed)
    record = {"results": results, "faces": arguments.faces, "empty scenes": arguments.empty,
              "scene": f"{SCENE_SHAPE[1]}x{SCENE_SHAPE[0]}, faces {FACE_SIDES[0]}-"
                       f"{FACE_SIDES[1]} px (from {IMAGE_SIZE} px)",
              "model": arguments.model, "seed": arguments.seed,
              "command": "python scripts/compare_detectors.py " + " ".join(sys.argv[1:]),
              "hardware": train.hardware_description(),
              "seconds": round(time.perf_counter() - started)}
    evaluate.publish_measurement(record, arguments.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
