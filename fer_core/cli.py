"""``fer-core``: the command line over the same functions the book calls.

    fer-core data                         summary, split sizes and audit of the dataset
    fer-core outliers --profile full      train the autoencoder, write models/outliers.json
    fer-core pretrain --profile full      autoencoder for in-domain transfer
    fer-core train attention_unet --profile full
    fer-core evaluate baseline attention_unet [--tta [shifts]]
    fer-core predict photo.jpg [--annotate out.jpg]
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="FER-2013 zip, folder or csv (default: $FER2013_PATH)")
    parser.add_argument("--debug", action="store_true",
                        help="show the full traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("data", help="dataset summary, split sizes and audit")

    outliers = commands.add_parser("outliers", help="autoencoder outlier detection")
    outliers.add_argument("--profile", default=None, help="smoke, ci or full")
    outliers.add_argument("--percentile", type=float, default=98.0)
    outliers.add_argument("--output", default=None,
                          help="outlier file (default models/outliers.json)")

    train = commands.add_parser("train", help="train a model and save it with its JSON record")
    train.add_argument("model", help="registered model name (e.g. baseline, attention_unet)")
    train.add_argument("--profile", default=None, help="smoke, ci or full")
    train.add_argument("--name", help="file name of the saved model (default: the model name)")
    train.add_argument("--epochs", type=int)
    train.add_argument("--learning-rate", type=float)
    train.add_argument("--label-smoothing", type=float)
    train.add_argument("--no-augment", action="store_true", help="switch augmentation off")
    train.add_argument("--class-weights", action="store_true", help="balanced class weights")
    train.add_argument("--exclude-outliers", action="store_true",
                       help="drop the committed autoencoder outliers from training")
    train.add_argument("--denoise", action="store_true", help="non-local-means denoise first")
    train.add_argument("--precision", default="float32", help="float32, mixed_bfloat16 or auto")
    train.add_argument("--distribute", default="none", help="none, mirrored or multiworker")
    train.add_argument("--width", type=int, help="channel width (attention_unet)")
    train.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                       help="model builder option, e.g. --option depth=4 (repeatable)")
    train.add_argument("--train-subset", type=int,
                       help="train on a seeded random subset of this many images")
    train.add_argument("--init-from", help="start from the weights of this saved .keras model "
                       "(layers matched by name and shape)")
    train.add_argument("--batch-size", type=int)
    train.add_argument("--seed", type=int,
                       help="seed for weights, shuffling and augmentation (default: the project's "
                            "seed); the train/validation split never changes with it")
    train.add_argument("--weight-decay", type=float)
    train.add_argument("--optimizer", default="adamw", help="adamw or sgd (Nesterov momentum)")
    train.add_argument("--ema", action="store_true",
                       help="end with an exponential moving average of the weights")
    train.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE",
                       help="augmentation setting, e.g. --augment crop=4 --augment erasing=0.5 "
                       "--augment zoom=0 (repeatable)")
    train.add_argument("--soft-targets", metavar="SOURCE",
                       help="also learn soft targets: 'ensemble:MODEL+MODEL' (distillation from "
                       "committed models) or 'ferplus' (the FER+ annotators' votes)")
    train.add_argument("--teacher", metavar="MODEL[+MODEL]",
                       help="committed models that teach consistently: they predict every "
                       "augmented view the student trains on (slower than --soft-targets)")
    train.add_argument("--soft-weight", type=float, help="weight of the soft term (default 0.5)")
    train.add_argument("--mixup", type=float, metavar="ALPHA",
                       help="MixUp on training batches with Beta(ALPHA, ALPHA) weights")
    train.add_argument("--cutmix", type=float, metavar="FACTOR",
                       help="CutMix on training batches, mixing factor up to FACTOR")
    train.add_argument("--soft-temperature", type=float,
                       help="temperature of both distributions (default 1)")
    train.add_argument("--refit", action="store_true",
                       help="train on the training and validation faces together and keep the "
                       "last epoch: the final run of a recipe chosen on validation")
    train.add_argument("--run-dir", help="checkpoint folder (default: <name> under $FER_RUNS_DIR "
                       "or ~/.cache/fer_core/runs, outside the work tree); resumes")
    train.add_argument("--long-run", action="store_true",
                       help="one step of a run that spans sessions: resume the current cycle's "
                       "checkpoint, else warm-restart a new cycle from models/<name>.keras, "
                       "else start; each finished cycle overwrites models/<name>.keras")
    train.add_argument("--models-dir", default=None, help="where to save (default models/)")

    pretrain = commands.add_parser(
        "pretrain", help="train the autoencoder on the training faces and save it, so a "
        "classifier can start from its encoder (--init-from models/autoencoder.keras)")
    pretrain.add_argument("--profile", default=None, help="smoke, ci or full")
    pretrain.add_argument("--output", default=None,
                          help="model file (default models/autoencoder.keras)")

    evaluate = commands.add_parser("evaluate", help="test metrics of saved reference models")
    evaluate.add_argument("names", nargs="+")
    evaluate.add_argument("--tta", nargs="?", const="flip", default="none",
                          choices=["none", "flip", "shifts"],
                          help="test-time augmentation: average over the face and its mirror "
                          "image (--tta or --tta flip) or over ten shifted and mirrored views "
                          "(--tta shifts)")
    evaluate.add_argument("--dataset", metavar="DIR",
                          help="score on a folder of <class>/*.png|jpg faces instead of the "
                          "FER-2013 test set")
    evaluate.add_argument("--class-map", action="append", default=[], metavar="FOLDER=CLASS",
                          help="map a folder name to a FER-2013 class, e.g. anger=angry")

    predict = commands.add_parser("predict", help="find faces in photos and name expressions")
    predict.add_argument("photos", nargs="+")
    predict.add_argument("--model", default="vgg_cnn",
                         help="reference model (default: %(default)s, the best single model)")
    predict.add_argument("--detector", choices=("mtcnn", "haar"),
                         help="face detector: MTCNN (default) or OpenCV's Haar cascade; "
                              "chapter 11 compares them")
    predict.add_argument("--annotate", help="write an annotated copy of the (first) photo here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fer-core`` command."""
    arguments = _parser().parse_args(argv)
    try:
        return _COMMANDS[arguments.command](arguments)
    # DataError, ModelFileError and the configuration checks are ValueErrors; OSError covers
    # missing, unreadable and unwritable files. One line each; --debug for the traceback.
    except (ValueError, OSError, RuntimeError) as error:
        if arguments.debug:
            raise
        message = str(error).strip() or type(error).__name__
        print(f"fer-core: error: {message}", file=sys.stderr)
        return 2


def _data(arguments: argparse.Namespace) -> int:
    from fer_core import data

    loaded = data.load_fer2013(arguments.data)
    splits = data.split_data(loaded)
    print(data.summary_statistics(splits).to_string())
    print(data.class_counts(splits).to_string())
    print(data.audit(loaded).summary().to_string())
    return 0


def _outliers(arguments: argparse.Namespace) -> int:
    from fer_core import config, data, outliers

    splits = data.load_splits(arguments.data)
    profile = config.get_profile(arguments.profile)
    result, _ = outliers.detect_outliers(splits.train.head(profile.train_subset),
                                         arguments.percentile, profile)
    path = outliers.save_outliers(result, splits.train.checksum,
                                  arguments.output or outliers.OUTLIER_FILE,
                                  command="fer-core " + " ".join(sys.argv[1:]),
                                  pixels_checksum=splits.train.pixels_checksum)
    print(f"{int(result.flagged.sum())} of {len(result.errors)} training images flagged "
          f"(threshold {result.threshold:.5f}); written to {path}")
    return 0


def _train(arguments: argparse.Namespace) -> int:
    from fer_core import config, data, train

    profile = config.get_profile(arguments.profile)
    changes = {key: value for key, value in {
        "epochs": arguments.epochs, "learning_rate": arguments.learning_rate,
        "label_smoothing": arguments.label_smoothing,
        "init_from": arguments.init_from, "batch_size": arguments.batch_size,
        "weight_decay": arguments.weight_decay, "soft_targets": arguments.soft_targets,
        "teacher": arguments.teacher,
        "soft_weight": arguments.soft_weight, "soft_temperature": arguments.soft_temperature,
        "mixup": arguments.mixup, "cutmix": arguments.cutmix,
        "train_subset": arguments.train_subset, "seed": arguments.seed}.items()
        if value is not None}
    options = _model_options(arguments.option)
    if arguments.width is not None:  # 0 too, so that the config check refuses it
        options["width"] = arguments.width
    settings = train.TrainConfig.from_profile(
        arguments.model, profile, augment=not arguments.no_augment,
        class_weights=arguments.class_weights, exclude_outliers=arguments.exclude_outliers,
        denoise=arguments.denoise, precision=arguments.precision,
        distribute=arguments.distribute, optimizer=arguments.optimizer, ema=arguments.ema,
        refit=arguments.refit, augmentation=_model_options(arguments.augment),
        model_options=options, **changes)
    name = arguments.name or arguments.model
    models_dir = Path(arguments.models_dir) if arguments.models_dir else config.models_dir()
    run_dir = Path(arguments.run_dir) if arguments.run_dir else config.runs_dir() / name
    if arguments.long_run:
        if arguments.init_from or arguments.run_dir:
            raise ValueError("--long-run chooses the run folder and the starting weights itself: "
                             "drop --init-from and --run-dir.")
        plan = train.plan_cycle(name, models_dir)
        run_dir = plan.run_dir
        settings = replace(settings, init_from=plan.init_from)
        print(f"long run {name}: cycle {plan.cycle}, "
              + ("resuming its checkpoint" if plan.resuming else
                 f"warm restart from {plan.init_from}" if plan.init_from else "from scratch")
              + f" (checkpoints in {run_dir})", flush=True)
    splits = data.load_splits(arguments.data)
    # one line per epoch: readable in logs of long background runs
    result = train.train_model(splits, settings, run_dir, verbose=2)
    path = train.save_reference(result, splits, name, models_dir, profile=profile.name)
    print(f"saved {path} ({result.seconds / 60:.1f} min, {result.seconds_per_epoch:.1f} s/epoch)")
    print(path.with_suffix(".json").read_text())
    return 0


def _model_options(pairs: list[str]) -> dict:
    """Parse ``KEY=VALUE`` options; values are read as numbers where they look like one."""
    options = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise ValueError(f"Model options look like KEY=VALUE (e.g. depth=4), got {pair!r}.")
        for convert in (int, float):
            try:
                options[key] = convert(value)
                break
            except ValueError:
                continue
        else:
            options[key] = value
    return options


def _pretrain(arguments: argparse.Namespace) -> int:
    from fer_core import config, data, outliers

    splits = data.load_splits(arguments.data)
    profile = config.get_profile(arguments.profile)
    path = outliers.save_autoencoder(
        outliers.train_autoencoder(splits.train.head(profile.train_subset), profile, verbose=2),
        splits.train.checksum, arguments.output or outliers.AUTOENCODER_FILE,
        command="fer-core " + " ".join(sys.argv[1:]), profile=profile)
    print(f"saved {path}")
    return 0


def _evaluate(arguments: argparse.Namespace) -> int:
    from fer_core import data, evaluate

    if arguments.dataset:
        class_map = {}
        for pair in arguments.class_map:
            folder, separator, name = pair.partition("=")
            if not separator:
                raise ValueError(f"--class-map takes FOLDER=CLASS, got {pair!r}.")
            class_map[folder] = name
        faces, absent = data.load_labelled_folder(arguments.dataset, class_map)
        if absent:
            print(f"classes absent from {arguments.dataset} (their recall is not measured): "
                  f"{', '.join(absent)}")
    else:
        faces = data.load_splits(arguments.data).test
    # the library's call, so recorded data switches (denoising) apply as in the book
    results = {name: evaluate.evaluate_reference(name, faces, tta=arguments.tta)[0]
               for name in arguments.names}
    print(evaluate.metrics_table(results).to_string())
    return 0


def _predict(arguments: argparse.Namespace) -> int:
    from fer_core import predict, store

    if arguments.annotate:  # before any work, so no prediction is lost to a bad path
        predict.check_annotation_path(arguments.annotate)
    classifier = store.load_reference(arguments.model)[0]
    failed = []
    for photo in arguments.photos:
        try:
            faces = predict.predict_photo(photo, classifier, annotate=arguments.annotate,
                                          detector=arguments.detector)
        except ValueError as error:  # a bad or face-less photo must not stop the others
            print(f"fer-core: {photo}: {error}", file=sys.stderr)
            failed.append(photo)
            continue
        for face in faces:
            print(f"{photo}: {face.describe()}")
        arguments.annotate = None  # annotate only the first photo with faces
    if failed:
        print(f"fer-core: error: {len(failed)} of {len(arguments.photos)} photo(s) failed: "
              f"{', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


_COMMANDS = {"data": _data, "outliers": _outliers, "pretrain": _pretrain, "train": _train,
             "evaluate": _evaluate, "predict": _predict}

if __name__ == "__main__":
    sys.exit(main())
