"""Time Keras' ``model.predict`` against :func:`fer_core.models.predict_in_batches` on the
same reference model and faces, alternating the two, and check they give the same numbers.

    python scripts/predict_paths.py [--model vgg_cnn_wide] [--faces 2048] [--rounds 8]

Prints one line per call: milliseconds a face, and CPU time over wall time (about 2 when
both cores work, about 1 when one does). Reads the test faces of $FER2013_PATH.
"""
from __future__ import annotations

import argparse
import os
import resource
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from fer_core import data, store
from fer_core.evaluate import PREDICT_BATCH
from fer_core.models import predict_in_batches


def timed(predict, pixels: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``predict(pixels)``, its milliseconds a face, and its CPU time over wall time."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    outputs = predict(pixels)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return outputs, 1000 * wall / len(pixels), cpu / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_cnn_wide")
    parser.add_argument("--faces", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=8)
    arguments = parser.parse_args()
    pixels = data.load_splits(progress=False).test.model_input()[:arguments.faces]
    model = store.load_reference(arguments.model)[0]
    paths = {"model.predict": lambda faces: model.predict(faces, batch_size=PREDICT_BATCH,
                                                           verbose=0),
             "predict_in_batches": lambda faces: predict_in_batches(model, faces,
                                                                    PREDICT_BATCH)}
    outputs = {path: predict(pixels[:PREDICT_BATCH]) for path, predict in paths.items()}
    for round_ in range(arguments.rounds):
        for path, predict in paths.items():
            outputs[path], per_face, cores = timed(predict, pixels)
            print(f"round {round_ + 1} {path:19s} {per_face:6.2f} ms a face, "
                  f"cpu/wall {cores:.2f}", flush=True)
    difference = np.abs(outputs["model.predict"] - outputs["predict_in_batches"]).max()
    print(f"largest difference between the two paths' probabilities: {difference:.2e}")


if __name__ == "__main__":
    main()
