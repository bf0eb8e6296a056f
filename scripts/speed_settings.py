"""Which settings make training fast on this machine: batch size, XLA (``jit_compile``),
precision, intra-op threads and the Keras backend, one change at a time from a base.

Each setting is measured in a child process (threads, backend and oneDNN can only be chosen
before TensorFlow or PyTorch starts): a freshly built model with its training augmentation
runs ``fit`` on training faces, and the rate is taken from the time between batch ends after a
few warm-up steps, so the pauses at epoch boundaries and graph tracing do not count. This is the
whole training step as the reference runs pay it (augmentation, forward, backward, update),
without the validation pass. The CPU is recorded with every table: the same setting can be
fast on one machine and slow on another (bfloat16 is native on CPUs with AVX-512 BF16 or AMX
and emulated, about 3x slower, elsewhere).

Usage::

    python scripts/speed_settings.py --model vgg_cnn --json models/speed_settings.json
    python scripts/speed_settings.py --model attention_unet --option width=16 --settings base bf16
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# One change at a time from the base; "best" combines the changes that helped (filled in later).
SETTINGS: dict[str, dict] = {
    "base": {},
    "batch 128": {"batch_size": 128},
    "batch 256": {"batch_size": 256},
    "jit_compile": {"jit_compile": True},
    "bf16": {"precision": "mixed_bfloat16"},
    "1 thread": {"threads": 1},
    "torch backend": {"backend": "torch"},
}
BASE = {"batch_size": 64, "jit_compile": False, "precision": "float32", "threads": 0,
        "backend": "tensorflow"}
WARM_UP_STEPS = 4


def measure(model_name: str, options: dict, setting: dict, images: int) -> dict:
    """Run in the child: training images per second of one setting."""
    import keras
    import numpy as np

    from fer_core.config import CLASS_NAMES, SEED, data_path_from_environment
    from fer_core.models import Augmentation, build_model

    keras.utils.set_random_seed(SEED)
    keras.mixed_precision.set_global_policy(setting["precision"])
    if data_path_from_environment() is not None:
        from fer_core.data import load_splits

        pixels = load_splits(progress=False).train.head(images).model_input()
    else:  # speed does not depend on pixel values
        pixels = np.random.default_rng(SEED).integers(0, 256, (images, 48, 48, 1)).astype(
            np.float32)
    labels = keras.utils.to_categorical(np.arange(len(pixels)) % len(CLASS_NAMES),
                                        len(CLASS_NAMES))
    model = build_model(model_name, Augmentation.crop_and_erase(), **options)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=1e-4),
                  loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.1),
                  jit_compile=setting["jit_compile"])
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: ends.append(time.perf_counter()))
    model.fit(pixels, labels, batch_size=setting["batch_size"], epochs=1, shuffle=True,
              verbose=0, callbacks=[timer])
    timed = ends[WARM_UP_STEPS:]
    if len(timed) < 3:
        raise ValueError(f"too few images ({images}) for batch {setting['batch_size']}")
    seconds = timed[-1] - timed[0]
    return {"train images/s": (len(timed) - 1) * setting["batch_size"] / seconds,
            "ms/step": 1000 * seconds / (len(timed) - 1), "parameters": model.count_params()}


def run_child(model_name: str, options: dict, setting: dict, images: int) -> dict:
    """Measure one setting in a fresh process with its threads and backend."""
    environment = {**os.environ, "KERAS_BACKEND": setting["backend"],
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
    if setting["threads"]:
        for variable in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
            environment[variable] = str(setting["threads"])
    command = [sys.executable, __file__, "--child", json.dumps(
        {"model": model_name, "options": options, "setting": setting, "images": images})]
    finished = subprocess.run(command, capture_output=True, text=True, env=environment)
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        return {"error": (finished.stderr.strip().splitlines() or ["no output"])[-1][:200]}
    return json.loads(lines[-1])


def _child(payload: str) -> None:
    request = json.loads(payload)
    setting = request["setting"]
    if setting["threads"] and setting["backend"] == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(setting["threads"])
    elif setting["threads"] and setting["backend"] == "torch":
        import torch

        torch.set_num_threads(setting["threads"])
    print(json.dumps(measure(request["model"], request["options"], setting, request["images"])))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vgg_cnn", help="registered model name")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="model builder option (numbers only), e.g. width=16")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS,
                        help="which settings to measure (default: all)")
    parser.add_argument("--images", type=int, default=3072,
                        help="training images per measurement (default 3072)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the table as JSON")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.child:
        _child(arguments.child)
        return
    import pandas as pd

    from fer_core.train import hardware_description

    options = {}
    for pair in arguments.option:
        key, _, value = pair.partition("=")
        options[key] = float(value) if "." in value else int(value)
    hardware = hardware_description()
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    hardware["bfloat16"] = ("native (AVX-512 BF16 or AMX)" if "avx512_bf16" in flags
                            or "amx_bf16" in flags else "emulated")
    print("Machine:", ", ".join(f"{key} {value}" for key, value in hardware.items()))
    rows = []
    for name in arguments.settings:
        setting = {**BASE, **SETTINGS[name]}
        print(f"measuring {name} ...", file=sys.stderr)
        rows.append({"setting": name, **run_child(arguments.model, options, setting,
                                                  arguments.images)})
    table = pd.DataFrame(rows).set_index("setting")
    if "train images/s" in table:
        table["speed-up"] = table["train images/s"] / table.loc["base", "train images/s"] \
            if "base" in table.index else float("nan")
    print(table.round(2).to_string())
    if arguments.json:
        arguments.json.parent.mkdir(parents=True, exist_ok=True)
        arguments.json.write_text(json.dumps(
            {"model": arguments.model, "options": options, "hardware": hardware,
             "images": arguments.images, "base": BASE, "settings": SETTINGS,
             "results": json.loads(table.round(3).reset_index().to_json(orient="records"))},
            indent=2) + "\n")
        print(f"Wrote {arguments.json}")


if __name__ == "__main__":
    main()
