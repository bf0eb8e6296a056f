"""Where reference models live and how they are read: one place, one behaviour.

A reference model is ``<name>.keras`` (graph and weights) beside ``<name>.json`` (its record:
metrics, configuration, command, data checksum, hardware). The folder is ``$FER_MODELS_DIR`` or,
by default, the repository's ``models/`` (see :func:`fer_core.config.models_dir`).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import keras

from fer_core import models  # noqa: F401  (registers the ViT's custom layer for loading)
from fer_core.config import CLASS_NAMES, MODELS_VARIABLE
from fer_core.config import models_dir as configured_models_dir
from fer_core.models import INPUT_SHAPE


class ModelFileError(ValueError):
    """A model file that is missing, unreadable or not what the caller needs."""


def models_dir(folder: str | Path | None = None) -> Path:
    """``folder`` when given, else the configured reference-model folder."""
    return Path(folder) if folder is not None else configured_models_dir()


def available(folder: str | Path | None = None) -> list[str]:
    """Names of the saved models in a folder."""
    return sorted(p.stem for p in models_dir(folder).glob("*.keras"))


def load_model_file(path: str | Path, classifier: bool = True) -> keras.Model:
    """Load a ``.keras`` file with errors that say what went wrong and what to do.

    Parameters
    ----------
    path : str or Path
        The file.
    classifier : bool
        Also check that it is a 7-class expression classifier taking 48x48x1 faces (the
        autoencoder, say, is not).

    Raises
    ------
    ModelFileError
        Missing, a folder, corrupt or truncated, or (with ``classifier``) not a classifier.
    """
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"'{path}' is a folder; give the path of a .keras model file.")
    if not path.is_file():
        raise ModelFileError(f"No model file '{path}'. Train it (fer-core train ...) or check "
                             f"the path; reference models live in {configured_models_dir()} "
                             f"(${MODELS_VARIABLE}).")
    try:
        model = keras.models.load_model(path, compile=False)
    except (ValueError, OSError, TypeError, KeyError, zipfile.BadZipFile) as error:
        raise ModelFileError(f"'{path}' is not a readable Keras model (corrupt, truncated or "
                             f"from an incompatible version: {str(error)[:160]}). Restore it "
                             "with `git checkout -- FILE` or train it again.") from error
    if classifier:
        check_classifier(model, str(path))
    return model


def save_model_file(model: keras.Model, path: str | Path) -> Path:
    """Save ``model`` as a ``.keras`` file without optimizer state, compressed.

    Keras stores the archive's members uncompressed; deflating them is lossless (the weights
    read back bit for bit) and makes the repository's model files about 8% smaller.
    """
    path = Path(path)
    # A fresh functional wrapper is uncompiled, so the file holds no optimizer state.
    keras.Model(model.inputs, model.outputs, name=model.name).save(path)
    deflate_model_file(path)
    return path


def weights_checksum(path: str | Path) -> str:
    """SHA-256 of the weights inside a ``.keras`` file: equal for two files exactly when their
    weights are the same, bit for bit, whatever the file's name, date or compression."""
    with zipfile.ZipFile(path) as archive:
        return hashlib.sha256(archive.read("model.weights.h5")).hexdigest()


def deflate_model_file(path: str | Path) -> None:
    """Rewrite a ``.keras`` archive with every member deflated (same names, same bytes)."""
    path = Path(path)
    with zipfile.ZipFile(path) as archive:
        members = [(info, archive.read(info)) for info in archive.infolist()]
    partial = path.with_name(path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for info, content in members:
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    partial.replace(path)  # a reader never sees a half-written model


def check_classifier(model: keras.Model, name: str = "model") -> None:
    """Raise :class:`ModelFileError` unless ``model`` maps (N, 48, 48, 1) faces to 7 classes."""
    inputs, outputs = tuple(model.input_shape[1:]), tuple(model.output_shape[1:])
    if inputs != INPUT_SHAPE or outputs != (len(CLASS_NAMES),):
        raise ModelFileError(f"{name} is not an expression classifier: it maps {inputs} to "
                             f"{outputs}, but a classifier here maps {INPUT_SHAPE} faces to "
                             f"{len(CLASS_NAMES)} class probabilities.")


def read_record(name: str, folder: str | Path | None = None) -> dict:
    """The JSON record of a reference model.

    Raises
    ------
    FileNotFoundError
        When there is no record; the message lists the models that have one.
    """
    path = models_dir(folder) / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in models_dir(folder).glob("*.json"))
        raise FileNotFoundError(f"No record '{path.name}' in '{models_dir(folder)}'. Records "
                                f"there: {', '.join(known) or 'none'}.")
    return json.loads(path.read_text())


def restart_chain(name: str, folder: str | Path | None = None) -> list[str]:
    """The cycles of the warm-restart chain that ends with ``name``, first cycle first.

    Each cycle's record names the model it started from (``config.init_from``); the chain is
    followed back while that model has a record in ``folder``, so a chain of any length is
    read from the records instead of being typed. ``init_from`` is matched by file name,
    since it was written relative to wherever training ran.

    Raises
    ------
    FileNotFoundError
        When a cycle has no record (the message lists the records there are).
    ValueError
        When ``name`` is a refit (it ends no chain of cycles) or the records loop.
    """
    chain = [name]
    record = read_record(name, folder)
    if record.get("config", {}).get("refit"):
        raise ValueError(f"{name!r} is a refit on the training and validation faces, not a "
                         "cycle of a chain: pass the last cycle it refits instead.")
    while start := record.get("config", {}).get("init_from"):
        previous = Path(start)
        if not (models_dir(folder) / f"{previous.stem}.json").is_file():
            break
        if previous.stem in chain:
            raise ValueError(f"The records of {chain} loop back to {previous.stem!r}.")
        chain.append(previous.stem)
        record = read_record(previous.stem, folder)
    return chain[::-1]


def load_reference(name: str, folder: str | Path | None = None) -> tuple[keras.Model, dict]:
    """A reference classifier and its record (an empty dict when it has none).

    Raises
    ------
    FileNotFoundError
        When the model is not there; the message lists those that are.
    ModelFileError
        When the file is corrupt or not a 7-class classifier.
    """
    path = models_dir(folder) / f"{name}.keras"
    if not path.exists():
        raise FileNotFoundError(f"No reference model {name!r} in '{models_dir(folder)}'. "
                                f"Available: {', '.join(available(folder)) or 'none'}; train "
                                f"one with `fer-core train {name} --profile full`.")
    model = in_float32(load_model_file(path))
    record_file = path.with_suffix(".json")
    return model, (json.loads(record_file.read_text()) if record_file.exists() else {})


def in_float32(model: keras.Model) -> keras.Model:
    """``model`` computing in float32: itself when it already does, else a twin with the same
    weights whose layers all compute in float32.

    Reference networks trained in bfloat16 where the CPU has it natively (``--precision
    auto``); read back, they compute in float32 everywhere. Where the CPU lacks native
    bfloat16 it is emulated, about 1.5 to 3 times slower than float32 on these models, and
    rounds otherwise than the native instructions do; in float32 a model gives the same
    answers, up to the last bits, on every CPU the book is built on.
    """
    if all(layer.dtype_policy.name == "float32" for layer in model.layers):
        return model
    return _twin_computing_in(model, "float32")


def in_bfloat16(model: keras.Model) -> keras.Model:
    """A twin of ``model`` with the same weights computing in bfloat16, as a ``--precision
    auto`` run trains on a CPU with native bfloat16: weights stay float32, every layer but the
    output computes in bfloat16, the probabilities come out in float32.

    Worth it only where the CPU has native bfloat16 instructions
    (:func:`fer_core.train.cpu_has_native_bfloat16`); ``scripts/benchmark.py`` times it and
    counts the answers it changes. The book itself predicts :func:`in_float32`.
    """
    return _twin_computing_in(model, "mixed_bfloat16")


def _twin_computing_in(model: keras.Model, policy: str) -> keras.Model:
    """``model`` rebuilt layer by layer under dtype ``policy`` (its output layer in float32),
    with its weights."""
    output_layers = {tensor._keras_history.operation.name for tensor in model.outputs}

    def rebuilt(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.Model):
            raise ModelFileError(f"{model.name} nests model {layer.name!r}: only flat "
                                 f"functional models can be moved to {policy} here.")
        config = layer.get_config()
        config["dtype"] = "float32" if layer.name in output_layers else policy
        return layer.__class__.from_config(config)

    twin = keras.models.clone_model(model, clone_function=rebuilt)
    twin.set_weights(model.get_weights())
    return twin
