"""``fer-core``: the command line over the same functions the book calls.

    fer-core data                         summary, split sizes and audit of the dataset
    fer-core outliers --profile full      train the autoencoder, write models/outliers.json
    fer-core pretrain --profile full      autoencoder for in-domain transfer
    fer-core train attention_unet --profile full
    fer-core evaluate baseline attention_unet [--tta]
    fer-core predict photo.jpg [--annotate out.jpg]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fer-core", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="FER-2013 zip, folder or csv (default: $FER2013_PATH)")
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
    train.add_argument("--run-dir", help="checkpoint folder (default runs/<name>); resumes")
    train.add_argument("--models-dir", default=None, help="where to save (default models/)")

    pretrain = commands.add_parser(
        "pretrain", help="train the autoencoder on the training faces and save it, so a "
        "classifier can start from its encoder (--init-from models/autoencoder.keras)")
    pretrain.add_argument("--profile", default=None, help="smoke, ci or full")
    pretrain.add_argument("--output", default=None,
                          help="model file (default models/autoencoder.keras)")

    evaluate = commands.add_parser("evaluate", help="test metrics of saved reference models")
    evaluate.add_argument("names", nargs="+")
    evaluate.add_argument("--tta", action="store_true", help="average with flipped faces")

    predict = commands.add_parser("predict", help="find faces in photos and name expressions")
    predict.add_argument("photos", nargs="+")
    predict.add_argument("--model", default="attention_unet")
    predict.add_argument("--annotate", help="write an annotated copy of the (first) photo here")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``fer-core`` command."""
    arguments = _parser().parse_args(argv)
    try:
        return _COMMANDS[arguments.command](arguments)
    except (ValueError, FileNotFoundError) as error:  # DataError is a ValueError
        print(f"fer-core: error: {error}", file=sys.stderr)
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
                                  command="fer-core " + " ".join(sys.argv[1:]))
    print(f"{int(result.flagged.sum())} of {len(result.errors)} training images flagged "
          f"(threshold {result.threshold:.5f}); written to {path}")
    return 0


def _train(arguments: argparse.Namespace) -> int:
    from fer_core import config, data, train

    profile = config.get_profile(arguments.profile)
    changes = {key: value for key, value in {
        "epochs": arguments.epochs, "learning_rate": arguments.learning_rate,
        "label_smoothing": arguments.label_smoothing,
        "init_from": arguments.init_from,
        "train_subset": arguments.train_subset}.items() if value is not None}
    options = _model_options(arguments.option)
    if arguments.width:
        options["width"] = arguments.width
    settings = train.TrainConfig.from_profile(
        arguments.model, profile, augment=not arguments.no_augment,
        class_weights=arguments.class_weights, exclude_outliers=arguments.exclude_outliers,
        denoise=arguments.denoise, precision=arguments.precision,
        distribute=arguments.distribute,
        model_options=options, **changes)
    name = arguments.name or arguments.model
    splits = data.load_splits(arguments.data)
    # one line per epoch: readable in logs of long background runs
    result = train.train_model(splits, settings, arguments.run_dir or Path("runs") / name,
                               verbose=2)
    path = train.save_reference(result, splits, name, arguments.models_dir or train.MODELS_DIR,
                                profile=profile.name)
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

    splits = data.load_splits(arguments.data)
    results = {name: evaluate.evaluate_model(evaluate.load_reference(name)[0], splits.test,
                                             tta=arguments.tta) for name in arguments.names}
    print(evaluate.metrics_table(results).to_string())
    return 0


def _predict(arguments: argparse.Namespace) -> int:
    from fer_core import predict

    for photo in arguments.photos:
        faces = predict.predict_photo(photo, arguments.model, annotate=arguments.annotate)
        for face in faces:
            print(f"{photo}: {face.describe()}")
        arguments.annotate = None  # annotate only the first photo
    return 0


_COMMANDS = {"data": _data, "outliers": _outliers, "pretrain": _pretrain, "train": _train,
             "evaluate": _evaluate, "predict": _predict}

if __name__ == "__main__":
    sys.exit(main())
