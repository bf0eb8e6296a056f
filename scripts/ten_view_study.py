"""Measure ten-view test-time augmentation for chapter 9's ensemble, and record it.

Flip TTA (the face and its mirror image) costs two predictions a face; ten views (the face
moved 3 pixels up, down, left and right, and each mirrored) cost ten. For chapter 9's ensemble,
chosen on validation with flips among :data:`fer_core.evaluate.ENSEMBLE_CANDIDATES`, that is 8
more predictions of 12,919 faces by every member: about half an hour on a 2-core AVX2 CPU, more
than the CI book build can spend on one table. So this script measures it
(:func:`fer_core.evaluate.ten_view_study`) and writes the record chapter 9 shows, with the
members' weight checksums: the chapter refuses a record made with other weights.

Usage: ``FER2013_PATH=... python scripts/ten_view_study.py --json models/ten_view_study.json``
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from fer_core import data, evaluate, store, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(evaluate.ENSEMBLE_CANDIDATES),
                        help="reference models the ensemble is chosen among")
    parser.add_argument("--json", type=Path, help="write the record here")
    arguments = parser.parse_args(argv)
    splits = data.load_splits()
    started = time.perf_counter()
    study = evaluate.ten_view_study(arguments.candidates, splits.validation, splits.test)
    record = {**study, "candidates": arguments.candidates,
              "weights_sha256": {name: store.weights_checksum(
                  store.models_dir() / f"{name}.keras") for name in study["members"]},
              "data_checksum": splits.train.checksum,
              "faces": {"validation": len(splits.validation), "test": len(splits.test)},
              "command": "python scripts/ten_view_study.py " + " ".join(sys.argv[1:]),
              "hardware": train.hardware_description(),
              "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "seconds": round(time.perf_counter() - started)}
    evaluate.publish_measurement(record, arguments.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
