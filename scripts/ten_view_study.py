"""Measure ten-view test-time augmentation for chapter 9's ensemble, and record it.

Flip TTA (the face and its mirror image) costs two predictions a face; ten views (the face
moved 3 pixels up, down, left and right, and each mirrored) cost ten. For chapter 9's ensemble,
chosen on validation with flips among :data:`fer_core.evaluate.ENSEMBLE_CANDIDATES`, that is 8
more predictions of 12,919 faces by every member: about half an hour on a 2-core AVX2 CPU, more
than the CI book build can spend on one table. So this script measures it
(:func:`fer_core.evaluate.ten_view_study`) and writes the record chapter 9 shows. The record
also keeps the validation accuracy (with flips) of every combination of the candidates, the
side of the choice chapter 9 does not predict again, and every candidate's weight checksum: the
chapter refuses a record made with other weights. It says how many views this run predicted
and how many it read from the prediction cache, which makes a rerun take seconds. It also
chooses a weighted vote among the candidates on the validation faces (ensemble selection,
:func:`fer_core.evaluate.weighted_selection`) and scores it the same way.

Usage: ``FER2013_PATH=... python scripts/ten_view_study.py --json models/ten_view_study.json``
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from fer_core import config, data, evaluate, store, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", nargs="+", default=list(evaluate.ENSEMBLE_CANDIDATES),
                        help="reference models the ensemble is chosen among")
    parser.add_argument("--json", type=Path, help="write the record here")
    arguments = parser.parse_args(argv)
    splits = data.load_splits()
    predictions = config.cache_dir() / "predictions"
    cached_before = set(predictions.rglob("*.npy")) if predictions.is_dir() else set()
    started = time.perf_counter()
    study = evaluate.ten_view_study(arguments.candidates, splits.validation, splits.test)
    seconds = round(time.perf_counter() - started)
    # a run that found every view already predicted takes seconds, not the best part of an hour
    computed = len(set(predictions.rglob("*.npy")) - cached_before)
    record = {**study, "candidates": arguments.candidates,
              # every candidate (the record holds the validation accuracy of every ensemble),
              # and the refits reported in the chosen members' place
              "weights_sha256": {name: store.weights_checksum(
                  store.models_dir() / f"{name}.keras") for name in
                  dict.fromkeys([*arguments.candidates, *study["final"]["members"],
                                 *study["weighted"]["final"]["members"]])},
              "data_checksum": splits.train.checksum,
              "faces": {"validation": len(splits.validation), "test": len(splits.test)},
              "command": "python scripts/ten_view_study.py " + " ".join(sys.argv[1:]),
              "hardware": train.hardware_description(),
              "measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "seconds": seconds, "views_predicted_in_this_run": computed,
              "views_read_from_the_cache": _views_used(study, arguments.candidates) - computed}
    evaluate.publish_measurement(record, arguments.json)
    return 0


def _views_used(study: dict, candidates: list[str]) -> int:
    """How many (model, split, view) predictions the study used: two views of every candidate
    and ten of every member, on the validation and the test faces, and ten of every refit
    reported in a member's place, on the test faces."""
    refits = set(study["final"]["members"]) - set(study["top"]["members"])
    # the weighted vote's members as reported, where they are not already counted above
    weighted = (set(study["weighted"]["final"]["members"]) - set(study["members"])
                - set(study["final"]["members"]))
    return (2 * (2 * len(candidates) + 8 * len(study["members"]))
            + 10 * (len(refits) + len(weighted)))


if __name__ == "__main__":
    raise SystemExit(main())
