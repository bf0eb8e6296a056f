"""Add to the records of saved runs the validation scores of their saved weights, so that a
study can keep the records and leave the weights out of the repository.

Records written since ``train.save_reference`` scores the validation split carry these scores
already; older ones (the recipe study's proxy runs) get them here, computed as the book computes
them (float32, ``evaluate.reference_predictions``). The test scores are recomputed the same way
and must match the record's, within a few dozen faces (bfloat16 training runs were scored at save
time in bfloat16), or the script stops; where they differ, the record keeps the float32 ones
and the old ones under ``test_at_save``, so the book's table reads the same either way.

Usage: FER2013_PATH=... python scripts/record_scores.py models/recipes [--check]
"""

import argparse
import json
import time
from pathlib import Path

from fer_core import data, evaluate, store

# bfloat16 and float32 arithmetic move a few faces near a tie (13 of 7,178 for the EMA run's
# averaged weights); other weights than the record's would move hundreds
MOST_FACES_MOVED = 36


def record_scores(folder: Path, splits: data.Splits, check: bool = False) -> None:
    for weights in sorted(folder.glob("*.keras")):
        name = weights.stem
        record = store.read_record(name, folder)
        if record.get("config", {}).get("refit"):
            print(f"{name}: a refit trained on the validation faces; skipped")
            continue
        scores = {split: evaluate.score(evaluate.reference_predictions(
                      name, faces, models_dir=folder), faces).summary()
                  for split, faces in (("validation", splits.validation), ("test", splits.test))}
        moved = round(abs(scores["test"]["accuracy"] - record["test"]["accuracy"])
                      * len(splits.test))
        print(f"{name}: validation {scores['validation']['accuracy']:.4f}, test "
              f"{scores['test']['accuracy']:.4f} (record {record['test']['accuracy']:.4f}, "
              f"{moved} faces apart)")
        if moved > MOST_FACES_MOVED:
            raise SystemExit(f"{name}: its weights score {moved} test faces otherwise than its "
                             "record; they are not the weights the record describes.")
        if check:
            continue
        if scores["test"] != record["test"]:
            record["test_at_save"] = record["test"]
            record["test"] = scores["test"]
        record["validation"] = scores["validation"]
        record["weights_sha256"] = store.weights_checksum(weights)
        record["scores_recorded"] = {"command": "python scripts/record_scores.py " + str(folder),
                                     "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (folder / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="print, write nothing")
    arguments = parser.parse_args()
    faces = data.load_splits()
    for models_folder in arguments.folders:
        record_scores(models_folder, faces, arguments.check)
