"""What models look at: attention-gate coefficients, Grad-CAM and Grad-CAM++ heat maps, the share
of each map falling on each part of the face, activation maximization and DeepDream.

Every function takes the models of :mod:`fer_core.models` as they are (pixels 0..255 in, softmax
out) and never changes them: methods that need a linear output work on a clone.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from fer_core.config import CLASS_NAMES, IMAGE_SIZE, SEED

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
    outputs = probe.predict(pixels, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return {name.removesuffix("_coefficients"): tf.image.resize(
                output, (IMAGE_SIZE, IMAGE_SIZE), method="bilinear").numpy()[..., 0]
            for name, output in zip(names, outputs, strict=True)}
