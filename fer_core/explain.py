"""What models look at: attention-gate coefficients, Grad-CAM and Grad-CAM++ heat maps, the share
of each map falling on each part of the face, activation maximization and DeepDream.

Every function takes the models of :mod:`fer_core.models` as they are (pixels 0..255 in, softmax
out) and never changes them: methods that need a linear output work on a clone.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_core.config import CLASS_NAMES, FACE_REGION_BOXES, IMAGE_SIZE, SEED
from fer_core.models import predict_in_batches

with warnings.catch_warnings():
    # tf-keras-vis 0.8.7 imports scipy.ndimage.interpolation and its own deprecated regularizers
    # module; the warnings concern the library's internals, not our use of it.
    warnings.simplefilter("ignore", DeprecationWarning)
    from tf_keras_vis.activation_maximization import ActivationMaximization
    from tf_keras_vis.activation_maximization.input_modifiers import InputModifier, Rotate2D
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore


def attention_layers(model: keras.Model) -> list[str]:
    """Names of the attention-gate coefficient layers of a model (coarsest first)."""
    return [layer.name for layer in model.layers if layer.name.endswith("_coefficients")]


def attention_maps(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    """Attention coefficients of every gate, resized to 48x48, for images (N, 48, 48[, 1]).

    Returns
    -------
    dict
        Gate name -> array (N, 48, 48) with values in [0, 1] (a sigmoid's output).

    Raises
    ------
    ValueError
        When the model has no attention gates.
    """
    names = attention_layers(model)
    if not names:
        raise ValueError(f"Model {model.name!r} has no attention gates (layers named "
                         "'*_coefficients'); use an attention_unet.")
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in names])
    pixels = np.asarray(images, np.float32)
    pixels = pixels[..., None] if pixels.ndim == 3 else pixels
    outputs = predict_in_batches(probe, pixels)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return {name.removesuffix("_coefficients"): tf.image.resize(
                output, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear").numpy()[..., 0]
            for name, output in zip(names, outputs, strict=True)}


# --------------------------------------------------------------------------- shared helpers

# The 2-D convolution family: each keeps a spatial feature map that Grad-CAM can weigh.
_CONV_TYPES = (keras.layers.Conv2D, keras.layers.Conv2DTranspose, keras.layers.SeparableConv2D,
               keras.layers.DepthwiseConv2D)
_BATCH = 64


def _model_input(images: np.ndarray) -> np.ndarray:
    """Images (N, 48, 48[, 1]) or one image (48, 48) as float32 (N, 48, 48, 1) in 0..255."""
    pixels = np.asarray(images, np.float32)
    if pixels.ndim == 2:
        pixels = pixels[None]
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim != 4 or pixels.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 1):
        raise ValueError(f"Expected images of shape (N, {IMAGE_SIZE}, {IMAGE_SIZE}[, 1]), got "
                         f"{np.shape(images)}.")
    return pixels


def _as_functional(model: keras.Model) -> keras.Model:
    """The model as a functional graph whose intermediate outputs can be read.

    tf-keras-vis and every probe below build new models from layer outputs, which a Sequential
    model only offers through a functional wrapper; the wrapper shares the caller's layers.
    """
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(f"Model {model.name!r} has no symbolic inputs: explanations need a "
                         "functional or built Sequential model (keras.Input(...) first).")
    if isinstance(model, keras.Sequential):
        outputs = model.outputs[0] if len(model.outputs) == 1 else model.outputs
        return keras.Model(_graph_input(model), outputs, name=model.name)
    return model


def _graph_input(model: keras.Model):
    # A single-input model is called with a tensor, so a probe must take a tensor, not a list.
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


@contextlib.contextmanager
def _quiet_input_structure():
    # tf-keras-vis calls models with a list of inputs; Keras 3 accepts it but warns each call.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The structure of `inputs` doesn't match")
        yield


def _predict(model: keras.Model, pixels: np.ndarray) -> np.ndarray:
    # A direct call avoids building Keras' predict loop for the handful of images explained.
    return np.concatenate([np.asarray(model(pixels[start:start + 256], training=False))
                           for start in range(0, len(pixels), 256)])


def _class_indices(classes, count: int, classes_known: int) -> np.ndarray:
    """Class indices (or FER class names), one for all images or one per image, as ints."""
    values = np.atleast_1d(np.asarray(classes))
    if values.dtype.kind in "US":
        unknown = sorted({str(v) for v in values} - set(CLASS_NAMES))
        if unknown:
            raise ValueError(f"Unknown class names {unknown}; use {', '.join(CLASS_NAMES)}.")
        values = np.array([CLASS_NAMES.index(str(v)) for v in values])
    if values.dtype.kind not in "iu":
        raise ValueError(f"Classes must be integer indices or class names, got {classes!r}.")
    if values.ndim != 1 or len(values) not in (1, count):
        raise ValueError(f"Give one class for all {count} images or one per image, "
                         f"got {len(values)}.")
    if values.min() < 0 or values.max() >= classes_known:
        raise ValueError(f"Class indices must lie in 0..{classes_known - 1}, got {classes!r}.")
    return np.broadcast_to(values, (count,)).astype(np.int64)


def _output_layer(model: keras.Model) -> keras.layers.Layer:
    try:
        return model.get_layer(model.output_names[0])
    except (AttributeError, IndexError, ValueError):
        return model.layers[-1]


def _linear_score_probe(model: keras.Model, features: Sequence[str] = ()):
    """A probe model returning the named layers' outputs and the output layer's input, and a
    function turning that input into pre-softmax class scores.

    The scores are computed from the caller's own weights, so neither the model nor a clone of
    it has to be modified. An output layer that is not a softmax Dense or Activation layer is
    taken as already linear.
    """
    head = _output_layer(model)
    softmax = getattr(head, "activation", None) is keras.activations.softmax

    def linear(hidden):
        return tf.cast(hidden, tf.float32)

    head_input = model.outputs[0]
    if isinstance(head, keras.layers.Dense) and softmax:
        def linear(hidden):
            scores = tf.matmul(tf.cast(hidden, head.kernel.dtype), head.kernel)
            return scores + head.bias if head.use_bias else scores

        head_input = head.input
    elif isinstance(head, keras.layers.Softmax) or (
            isinstance(head, keras.layers.Activation) and softmax):
        head_input = head.input
    outputs = [model.get_layer(name).output for name in features] + [head_input]
    return keras.Model(_graph_input(model), outputs), linear


def conv_layer_names(model: keras.Model) -> list[str]:
    """Names of the model's 2-D convolution layers, input side first.

    ``Conv2D`` and its transposed, separable and depthwise kin count; layers inside nested
    sub-models are not listed.
    """
    return [layer.name for layer in model.layers if isinstance(layer, _CONV_TYPES)]


def _conv_layer(model: keras.Model, layer: str | None) -> str:
    """``layer`` checked to be a convolution layer of ``model``; None picks the last one."""
    names = conv_layer_names(model)
    if not names:
        raise ValueError(f"Model {model.name!r} has no 2-D convolution layers to explain.")
    if layer is None:
        return names[-1]
    if layer not in names:
        known = {candidate.name for candidate in model.layers}
        problem = "is not a convolution layer" if layer in known else "does not exist"
        raise ValueError(f"Layer {layer!r} {problem} in model {model.name!r}; valid convolution "
                         f"layers: {', '.join(names)}.")
    return layer


# --------------------------------------------------------------------------- Grad-CAM

def _normalized_heatmaps(cams: np.ndarray) -> np.ndarray:
    """Raw class activation maps (N, h, w) resized to 48x48 and scaled to [0, 1] per image."""
    cams = np.maximum(np.asarray(cams, np.float32), 0.0)[..., None]
    maps = tf.image.resize(cams, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear").numpy()[..., 0]
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    # A map without any positive evidence stays all zero instead of dividing by zero.
    scaled = np.where(span > 0, (maps - low) / np.where(span > 0, span, 1.0), 0.0)
    return np.clip(scaled, 0.0, 1.0).astype(np.float32)


def _gradcam_tf_keras_vis(model: keras.Model, pixels: np.ndarray, targets: np.ndarray,
                          layer: str, plus_plus: bool) -> np.ndarray:
    # clone=True: ReplaceToLinear swaps the softmax for a linear activation on a copy, so the
    # caller's model keeps predicting probabilities.
    method = (GradcamPlusPlus if plus_plus else Gradcam)(
        model, model_modifier=ReplaceToLinear(), clone=True)
    cams = []
    for start in range(0, len(pixels), _BATCH):
        with _quiet_input_structure():
                cam = method(CategoricalScore(targets[start:start + _BATCH].tolist()),
                         pixels[start:start + _BATCH], penultimate_layer=layer,
                         seek_penultimate_conv_layer=False, expand_cam=False,
                         normalize_cam=False)
        cams.append(np.asarray(cam, np.float32))
    return np.concatenate(cams)


def _gradcam_gradient_tape(model: keras.Model, pixels: np.ndarray, targets: np.ndarray,
                           layer: str, plus_plus: bool = False) -> np.ndarray:
    """Grad-CAM (or Grad-CAM++) with a plain ``tf.GradientTape``: raw maps (N, h, w) >= 0.

    The same computation as tf-keras-vis (gradients of the pre-softmax class score with respect
    to ``layer``'s output), without cloning the model.
    """
    probe, linear = _linear_score_probe(model, [layer])
    cams = []
    for start in range(0, len(pixels), _BATCH):
        batch = tf.convert_to_tensor(pixels[start:start + _BATCH])
        chosen = tf.convert_to_tensor(targets[start:start + _BATCH])
        with tf.GradientTape() as tape:
            features, head_input = probe(batch, training=False)
            scores = tf.gather(linear(head_input), chosen, axis=1, batch_dims=1)
        grads = tf.cast(tape.gradient(scores, features), tf.float32)
        features = tf.cast(features, tf.float32)
        if plus_plus:
            # Chattopadhay et al. 2018 with tf-keras-vis' alpha normalization. The exp(score)
            # factor of the paper scales each image's map by a constant, which the per-image
            # normalization removes, so it is left out (it overflows for large scores).
            second, third = grads ** 2, grads ** 3
            total = tf.reduce_sum(features, axis=(1, 2), keepdims=True)
            denominator = 2.0 * second + third * total
            alphas = second / (denominator + tf.cast(second == 0.0, tf.float32))
            norm = tf.reduce_sum(alphas, axis=(1, 2), keepdims=True)
            alphas = alphas / (norm + tf.cast(norm == 0.0, tf.float32))
            weights = tf.reduce_sum(tf.nn.relu(grads) * alphas, axis=(1, 2), keepdims=True)
        else:
            weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cams.append(tf.nn.relu(tf.reduce_sum(features * weights, axis=-1)).numpy())
    return np.concatenate(cams)


GRADCAM_IMPLEMENTATIONS = ("tf-keras-vis", "gradient-tape")


def gradcam(model: keras.Model, images: np.ndarray, classes: int | str | Sequence | None = None,
            layer: str | None = None, plus_plus: bool = False,
            implementation: str = "tf-keras-vis") -> np.ndarray:
    """Grad-CAM (or Grad-CAM++) heat maps: where the evidence for a class lies.

    Parameters
    ----------
    model : keras.Model
        Any functional or Sequential classifier taking (N, 48, 48, 1) pixels. It is not changed:
        the softmax is made linear on a clone.
    images : np.ndarray
        Faces (N, 48, 48[, 1]) with values 0..255.
    classes : int, str or sequence, optional
        The class to explain: None for each image's predicted class, one index or class name
        for all images, or one per image.
    layer : str, optional
        The convolution layer whose feature maps are weighed (default: the last one). Earlier
        layers give sharper but less class-specific maps.
    plus_plus : bool
        Grad-CAM++ instead of Grad-CAM.
    implementation : str
        ``tf-keras-vis`` (the library, on a clone of the model) or ``gradient-tape`` (the same
        computation with a plain ``tf.GradientTape``, for models tf-keras-vis cannot clone).
        There is no silent switch between them; the one exception is logged: tf-keras-vis'
        Grad-CAM++ multiplies by ``exp(score)``, which overflows for very confident models, and
        those maps are recomputed with the tape, with a warning.

    Returns
    -------
    np.ndarray
        Maps (N, 48, 48), float32, each scaled to [0, 1] (all zero where nothing speaks for the
        class).

    Raises
    ------
    ValueError
        When ``layer`` is missing or not convolutional (the message lists the valid layers),
        the classes do not fit the images, or tf-keras-vis cannot handle the model (the message
        names the other implementation).
    """
    if implementation not in GRADCAM_IMPLEMENTATIONS:
        raise ValueError(f"Unknown Grad-CAM implementation {implementation!r}: use "
                         f"{' or '.join(GRADCAM_IMPLEMENTATIONS)}.")
    functional = _as_functional(model)
    layer = _conv_layer(functional, layer)
    pixels = _model_input(images)
    count = functional.outputs[0].shape[-1]
    targets = (np.argmax(_predict(functional, pixels), axis=1) if classes is None
               else _class_indices(classes, len(pixels), count))
    if implementation == "gradient-tape":
        return _normalized_heatmaps(
            _gradcam_gradient_tape(functional, pixels, targets, layer, plus_plus))
    try:
        cams = _gradcam_tf_keras_vis(functional, pixels, targets, layer, plus_plus)
    except (AttributeError, KeyError, NotImplementedError, TypeError) as error:
        # tf-keras-vis must clone the model, which fails for layers that cannot be rebuilt
        # from their config (custom layers without get_config); the tape needs no clone.
        raise ValueError(f"tf-keras-vis could not explain model {functional.name!r} ({error}). "
                         "Use gradcam(..., implementation='gradient-tape'), which needs no "
                         "clone of the model.") from error
    if not np.isfinite(cams).all():
        # tf-keras-vis' Grad-CAM++ multiplies by exp(score), which overflows float32 for class
        # scores above about 88; the tape version leaves that per-image constant out.
        warnings.warn("tf-keras-vis' Grad-CAM++ overflowed (exp of a class score above 88); "
                      "these maps were recomputed with implementation='gradient-tape'.",
                      stacklevel=2)
        cams = _gradcam_gradient_tape(functional, pixels, targets, layer, plus_plus)
    return _normalized_heatmaps(cams)


# --------------------------------------------------------------------------- face regions

# FACE_REGION_BOXES (fer_core.config) is the one definition of the face's parts.


def _region_mask(region: np.ndarray | Sequence[int]) -> np.ndarray:
    """A boolean (48, 48) mask from a mask or a (row0, row1, col0, col1) box."""
    if np.ndim(region) == 1:
        row0, row1, col0, col1 = (int(v) for v in region)
        mask = np.zeros((IMAGE_SIZE, IMAGE_SIZE), bool)
        mask[row0:row1, col0:col1] = True
        return mask
    mask = np.asarray(region, bool)
    if mask.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"A region is a ({IMAGE_SIZE}, {IMAGE_SIZE}) mask or a "
                         f"(row0, row1, col0, col1) box, got shape {mask.shape}.")
    return mask


def _face_regions() -> dict[str, np.ndarray]:
    masks = {name: _region_mask(box) for name, box in FACE_REGION_BOXES.items()}
    masks["other"] = ~np.any(list(masks.values()), axis=0)
    for mask in masks.values():
        mask.setflags(write=False)  # shared module state: nobody may edit it by accident
    return masks


FACE_REGIONS: dict[str, np.ndarray] = _face_regions()
"""Boolean (48, 48) masks of brows, eyes, nose, mouth and everything else ("other"); they do not
overlap and together cover the image."""


def region_shares(maps: np.ndarray,
                  regions: Mapping[str, np.ndarray | Sequence[int]] | None = None) -> pd.DataFrame:
    """The share of each heat map's total mass that falls in each face region.

    Parameters
    ----------
    maps : np.ndarray
        Non-negative maps (N, 48, 48), e.g. from :func:`gradcam`.
    regions : mapping, optional
        Name -> boolean (48, 48) mask or (row0, row1, col0, col1) box; default
        :data:`FACE_REGIONS`. Regions may not overlap; pixels none covers form "other".

    Returns
    -------
    pd.DataFrame
        One row per map, one column per region; each row sums to 1 (NaN for an all-zero map,
        which has no mass to share).

    Raises
    ------
    ValueError
        For negative maps, misshapen maps or regions, or overlapping regions.
    """
    maps = np.asarray(maps, np.float64)
    if maps.ndim == 2:
        maps = maps[None]
    if maps.ndim != 3 or maps.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"Expected maps (N, {IMAGE_SIZE}, {IMAGE_SIZE}), got {maps.shape}.")
    if (maps < 0).any():
        raise ValueError("Heat maps must be non-negative to be shared out as mass.")
    masks = {name: _region_mask(region) for name, region in (regions or FACE_REGIONS).items()}
    coverage = np.sum(list(masks.values()), axis=0)
    if (coverage > 1).any():
        raise ValueError(f"Regions {', '.join(masks)} overlap; each pixel may count once.")
    if (coverage == 0).any():
        if "other" in masks:
            raise ValueError("Regions leave pixels uncovered but already use the name 'other'.")
        masks["other"] = coverage == 0
    totals = maps.sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {name: np.where(totals > 0, maps[:, mask].sum(axis=1) / totals, np.nan)
                  for name, mask in masks.items()}
    return pd.DataFrame(shares)


def region_summary(maps: np.ndarray | pd.DataFrame, labels: Sequence | None = None,
                   regions: Mapping[str, np.ndarray | Sequence[int]] | None = None
                   ) -> pd.DataFrame:
    """Mean share of heat-map mass per face region with a 95% confidence interval.

    Parameters
    ----------
    maps : np.ndarray or pd.DataFrame
        Maps (N, 48, 48), or the table :func:`region_shares` made of them.
    labels : sequence, optional
        One class (index into :data:`~fer_core.config.CLASS_NAMES`, or name) per map: summarize
        each class separately.
    regions : mapping, optional
        Passed to :func:`region_shares` (default :data:`FACE_REGIONS`).

    Returns
    -------
    pd.DataFrame
        Columns ``[class,] region, mean, ci_low, ci_high, sem, images``: the interval is
        mean +- 1.96 standard errors (normal approximation; NaN for a single image). All-zero
        maps are left out.
    """
    shares = maps if isinstance(maps, pd.DataFrame) else region_shares(maps, regions)
    frame = shares.reset_index(drop=True)
    keys: list[str] = []
    if labels is not None:
        labels = np.asarray(labels)
        if len(labels) != len(frame):
            raise ValueError(f"Got {len(labels)} labels for {len(frame)} maps.")
        names = ([CLASS_NAMES[int(k)] for k in labels] if labels.dtype.kind in "iu"
                 else [str(k) for k in labels])
        order = [c for c in CLASS_NAMES if c in names] + sorted(set(names) - set(CLASS_NAMES))
        frame["class"] = pd.Categorical(names, categories=order)
        keys = ["class"]
    long = frame.melt(id_vars=keys, var_name="region", value_name="share").dropna(
        subset=["share"])
    long["region"] = pd.Categorical(long["region"], categories=list(shares.columns))
    table = long.groupby([*keys, "region"], observed=True)["share"].agg(
        mean="mean", sem="sem", images="count").reset_index()
    table["ci_low"] = table["mean"] - 1.96 * table["sem"]
    table["ci_high"] = table["mean"] + 1.96 * table["sem"]
    return table[[*keys, "region", "mean", "ci_low", "ci_high", "sem", "images"]]


# --------------------------------------------------------------------------- what excites a class

class _SeededJitter(InputModifier):
    """tf-keras-vis' Jitter (random roll) drawing from its own seeded generator rather than
    NumPy's global one, so that a seed fixes the result."""

    def __init__(self, jitter: int, rng: np.random.Generator):
        self.jitter, self.rng = int(jitter), rng

    def __call__(self, seed_input):
        shift = tuple(int(s) for s in self.rng.integers(-self.jitter, self.jitter, size=2))
        return tf.roll(seed_input, shift=shift, axis=(1, 2))


def class_score(model: keras.Model, images: np.ndarray, cls: int | str,
                logit: bool = True) -> np.ndarray:
    """The model's score for class ``cls`` on each image.

    Parameters
    ----------
    model : keras.Model
        A classifier with a softmax output (not changed).
    images : np.ndarray
        Faces (N, 48, 48[, 1]) with values 0..255.
    cls : int or str
        Class index or name.
    logit : bool
        The pre-softmax score (what :func:`activation_maximization` climbs) rather than the
        probability.

    Returns
    -------
    np.ndarray
        Scores (N,), float32.
    """
    functional = _as_functional(model)
    pixels = _model_input(images)
    index = int(_class_indices(cls, 1, functional.outputs[0].shape[-1])[0])
    if not logit:
        return _predict(functional, pixels)[:, index].astype(np.float32)
    probe, linear = _linear_score_probe(functional)
    return np.concatenate([linear(probe(pixels[start:start + 256], training=False)).numpy()
                           for start in range(0, len(pixels), 256)])[:, index]


def activation_maximization(model: keras.Model, classes: int | str | Sequence,
                            steps: int = 200, seed: int = SEED,
                            start: np.ndarray | None = None,
                            score_scale: float = 255.0) -> np.ndarray:
    """Images that the model scores highly for each class (tf-keras-vis ActivationMaximization).

    Gradient ascent on the pre-softmax class score from a grey, lightly noisy face-sized image,
    with tf-keras-vis' default regularizers (total variation 1.0, L1 norm 0.3), its default
    jitter (4 pixels) and rotation (1 degree) seeded here, and its RMSprop optimizer (learning
    rate 1 pixel value) working on 0..255 pixels.

    Parameters
    ----------
    model : keras.Model
        A classifier with a softmax output; the softmax is made linear on a clone.
    classes : int, str or sequence
        One image per class index or name.
    steps : int
        Ascent steps.
    seed : int
        Seeds the starting image, jitter and rotation.
    start : np.ndarray, optional
        Starting images (len(classes), 48, 48[, 1]) in 0..255 instead of the seeded grey ones.
    score_scale : float
        Factor on the class score. The default regularizer weights suit models that read raw
        0..255 pixels (like VGG); ``fer_core`` models divide by 255 first, which makes the
        score's gradient 255 times weaker, so the regularizers would win and the score fall.
        255 restores the balance; use 1.0 for a model without such rescaling.

    Returns
    -------
    np.ndarray
        Images (len(classes), 48, 48), float32 in 0..255.
    """
    functional = _as_functional(model)
    targets = np.atleast_1d(np.asarray(classes))
    targets = _class_indices(targets, len(targets), functional.outputs[0].shape[-1])
    rng = np.random.default_rng(seed)
    if start is None:
        # mid-grey with mild noise: no face to begin with, yet gradients that are not all equal
        start = rng.uniform(112.0, 144.0, (len(targets), IMAGE_SIZE, IMAGE_SIZE, 1))
    start = _model_input(start)
    if len(start) != len(targets):
        raise ValueError(f"Give one starting image per class: {len(start)} for "
                         f"{len(targets)} classes.")
    rotate = Rotate2D(degree=1.0)
    rotate.random_generator = np.random.default_rng(rng.integers(2 ** 32))
    categorical = CategoricalScore(targets.tolist())

    def score(output):
        return score_scale * categorical(output)

    # clone=True: the softmax becomes linear on a copy, never on the caller's model.
    maximizer = ActivationMaximization(functional, model_modifier=ReplaceToLinear(), clone=True)
    with _quiet_input_structure():
        result = maximizer(score, seed_input=start, input_range=(0.0, 255.0),
                           input_modifiers=[_SeededJitter(4, rng), rotate], steps=steps)
    return np.clip(np.asarray(result, np.float32), 0.0, 255.0)[..., 0]


# --------------------------------------------------------------------------- DeepDream

def layer_activation(model: keras.Model, images: np.ndarray, layer: str | None = None) -> float:
    """Mean activation of a convolution layer (default: the last) over all images."""
    functional = _as_functional(model)
    name = _conv_layer(functional, layer)
    probe = keras.Model(_graph_input(functional), functional.get_layer(name).output)
    pixels = _model_input(images)
    means = [float(tf.reduce_mean(probe(pixels[start:start + 256], training=False)))
             * len(pixels[start:start + 256]) for start in range(0, len(pixels), 256)]
    return sum(means) / len(pixels)


def _tile_offsets(size: int) -> np.ndarray:
    """Top-left positions of 48-pixel tiles that together cover ``size`` pixels."""
    count = int(np.ceil(size / IMAGE_SIZE))
    return np.unique(np.linspace(0, size - IMAGE_SIZE, count).round().astype(int))


def _dream_gradient(probe: keras.Model, image: tf.Tensor) -> tf.Tensor:
    """Gradient of each image's mean activation with respect to an image of any size >= 48,
    read through overlapping 48x48 tiles (the models take 48x48 inputs only)."""
    offsets = _tile_offsets(int(image.shape[1]))
    with tf.GradientTape() as tape:
        tape.watch(image)
        tiles = tf.concat([image[:, row:row + IMAGE_SIZE, col:col + IMAGE_SIZE]
                           for row in offsets for col in offsets], axis=0)
        activation = tf.cast(probe(tiles, training=False), tf.float32)
        objective = tf.reduce_sum(tf.reduce_mean(activation, axis=(1, 2, 3)))
    return tape.gradient(objective, image)


def deepdream(model: keras.Model, images: np.ndarray, layer: str | None = None, steps: int = 20,
              step_size: float = 2.0, octaves: Sequence[float] = (1.0, 1.3), jitter: int = 2,
              seed: int = SEED) -> np.ndarray:
    """DeepDream: change faces so that a layer's mean activation grows, showing what it sees.

    At each octave the image is enlarged by its scale, climbed for ``steps`` steps (each a
    normalized gradient step of ``step_size`` pixel values after a random roll of up to
    ``jitter`` pixels) and the change is shrunk back and added to the 48x48 image.

    Parameters
    ----------
    model : keras.Model
        Any functional or Sequential model taking (N, 48, 48, 1) pixels (not changed).
    images : np.ndarray
        Starting faces (N, 48, 48[, 1]) in 0..255.
    layer : str, optional
        Convolution layer whose mean activation is maximized (default: the last one).
    steps : int
        Ascent steps per octave.
    step_size : float
        Step length in pixel values (0..255) per unit of normalized gradient.
    octaves : sequence of float
        Image scales, each >= 1 (the models read 48x48 tiles of the enlarged image).
    jitter : int
        Largest random roll in pixels (0 turns it off).
    seed : int
        Seeds the rolls.

    Returns
    -------
    np.ndarray
        Dreamed images (N, 48, 48), float32 in 0..255.

    Raises
    ------
    ValueError
        For a layer that is not convolutional or an octave below 1.
    """
    functional = _as_functional(model)
    name = _conv_layer(functional, layer)
    probe = keras.Model(_graph_input(functional), functional.get_layer(name).output)
    if any(scale < 1.0 for scale in octaves):
        raise ValueError(f"Octave scales must be >= 1 (the models take {IMAGE_SIZE}x"
                         f"{IMAGE_SIZE} inputs), got {tuple(octaves)}.")
    rng = np.random.default_rng(seed)
    image = tf.constant(_model_input(images))
    for scale in octaves:
        size = max(IMAGE_SIZE, round(IMAGE_SIZE * scale))
        base = tf.image.resize(image, (size, size), method="bilinear")
        dream = base
        for _ in range(steps):
            shift = [int(s) for s in rng.integers(-jitter, jitter + 1, size=2)]
            rolled = tf.roll(dream, shift=shift, axis=(1, 2))
            gradient = _dream_gradient(probe, rolled)
            gradient /= tf.math.reduce_std(gradient, axis=(1, 2, 3), keepdims=True) + 1e-8
            dream = tf.roll(rolled + step_size * gradient, shift=[-s for s in shift], axis=(1, 2))
            dream = tf.clip_by_value(dream, 0.0, 255.0)
        # Only the change travels back down: resizing the whole image would blur the face.
        change = tf.image.resize(dream - base, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear")
        image = tf.clip_by_value(image + change, 0.0, 255.0)
    return image.numpy()[..., 0]


def class_average_maps(maps: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The mean map of each class, (7, 48, 48); a class without images gives a zero map."""
    return np.stack([maps[labels == k].mean(axis=0) if (labels == k).any()
                     else np.zeros(maps.shape[1:], maps.dtype) for k in range(len(CLASS_NAMES))])


def gradcam_for_models(models: Mapping[str, keras.Model], images: np.ndarray,
                       layer: str | None = None) -> dict[str, np.ndarray]:
    """Grad-CAM maps of several models (each explaining its own prediction) for the same faces."""
    return {name: gradcam(model, images, layer=layer) for name, model in models.items()}


def region_table(maps_by_model: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """:func:`region_summary` of several models' maps, indexed by (model, region), with each
    region's share of the image area: a map that ignored the face would match that column."""
    table = pd.concat({name: region_summary(maps).set_index("region")
                       for name, maps in maps_by_model.items()}, names=["model"])
    areas = {name: float(mask.mean()) for name, mask in FACE_REGIONS.items()}
    table["area share"] = [areas.get(region, np.nan) for region in
                           table.index.get_level_values("region")]
    return table


def maximization_gain(model: keras.Model, synthesized: np.ndarray) -> pd.DataFrame:
    """Each class's pre-softmax score on a plain mid-grey image and on its synthesized image."""
    grey = np.full((1, IMAGE_SIZE, IMAGE_SIZE), 128.0, np.float32)
    rows = {name: {"grey image": float(class_score(model, grey, k)[0]),
                   "synthesized image": float(class_score(model, synthesized[[k]], k)[0])}
            for k, name in enumerate(CLASS_NAMES[:len(synthesized)])}
    return pd.DataFrame.from_dict(rows, orient="index").round(2)
