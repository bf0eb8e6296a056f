"""Budget profiles, seeding and environment look-ups (fer_core.config)."""

from __future__ import annotations

import dataclasses
import random
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from fer_core import config
from fer_core.config import PROFILES, get_profile, set_seeds


def test_default_profile_is_ci(monkeypatch):
    monkeypatch.delenv("FER_PROFILE", raising=False)
    profile = get_profile()
    assert profile is PROFILES["ci"]
    assert (profile.name, profile.train_subset, profile.epochs, profile.batch_size) == (
        "ci", 3000, 2, 64)


@pytest.mark.parametrize("name", ["smoke", "ci", "full"])
def test_explicit_profile(name, monkeypatch):
    monkeypatch.delenv("FER_PROFILE", raising=False)
    assert get_profile(name).name == name


def test_profile_values():
    smoke, full = get_profile("smoke"), get_profile("full")
    assert (smoke.train_subset, smoke.eval_subset, smoke.gallery_size) == (256, 128, 4)
    assert full.train_subset is None
    assert full.eval_subset is None
    assert full.epochs == 30


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("FER_PROFILE", "smoke")
    assert get_profile().name == "smoke"
    monkeypatch.setenv("FER_PROFILE", "full")
    assert get_profile().name == "full"
    assert get_profile("smoke").name == "smoke"  # an explicit name wins over the variable


def test_overrides(monkeypatch):
    monkeypatch.delenv("FER_PROFILE", raising=False)
    changed = get_profile("smoke", epochs=5, batch_size=8)
    assert (changed.name, changed.epochs, changed.batch_size) == ("smoke", 5, 8)
    assert changed.train_subset == PROFILES["smoke"].train_subset
    assert PROFILES["smoke"].epochs == 2  # the stored profile is untouched
    assert get_profile(epochs=7).name == "ci"
    with pytest.raises(dataclasses.FrozenInstanceError):
        changed.epochs = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        get_profile("smoke", no_such_field=1)


def test_unknown_profile_lists_the_known_ones(monkeypatch):
    with pytest.raises(ValueError, match=r"Unknown profile 'huge'.*\['ci', 'full', 'smoke'\]"):
        get_profile("huge")
    monkeypatch.setenv("FER_PROFILE", "tiny")
    with pytest.raises(ValueError, match=r"Unknown profile 'tiny'.*FER_PROFILE"):
        get_profile()


def draws() -> tuple[list[float], list[float]]:
    return list(np.random.rand(5)), [random.random() for _ in range(5)]


def test_set_seeds_repeats_draws_and_seeds_keras(monkeypatch):
    seen = []
    fake_keras = types.SimpleNamespace(utils=types.SimpleNamespace(set_random_seed=seen.append))
    monkeypatch.setitem(sys.modules, "keras", fake_keras)  # no TensorFlow import in tests
    monkeypatch.setenv("PYTHONHASHSEED", "placeholder")
    monkeypatch.delenv("PYTHONHASHSEED")
    set_seeds(5)
    first = draws()
    set_seeds(5)
    assert draws() == first
    set_seeds(6)
    assert draws() != first
    assert seen == [5, 5, 6]
    assert config.os.environ["PYTHONHASHSEED"] == "5"
    set_seeds()
    assert seen[-1] == config.SEED == 1306


def test_set_seeds_without_keras(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)  # import keras raises ImportError
    set_seeds(11)
    first = draws()
    set_seeds(11)
    assert draws() == first


def test_paths_from_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FER2013_PATH", raising=False)
    assert config.data_path_from_environment() is None
    monkeypatch.setenv("FER2013_PATH", "~/data/fer2013.zip")
    assert config.data_path_from_environment() == Path.home() / "data" / "fer2013.zip"
    monkeypatch.setenv("FER_CACHE_DIR", str(tmp_path))
    assert config.cache_dir() == tmp_path
    monkeypatch.delenv("FER_CACHE_DIR")
    assert config.cache_dir() == Path.home() / ".cache" / "fer_core"


def test_cache_is_isolated_per_test(tmp_path):
    # conftest points the cache into this test's own tmp_path, never ~/.cache.
    assert config.cache_dir() == tmp_path / "cache"


def test_one_definition_of_each_shared_fact():
    """Face regions, the ICML class order and flip TTA are defined once and used everywhere."""
    from fer_core import compare, data, denoise, explain, models
    from fer_core.config import CLASS_NAMES, FACE_REGION_BOXES, ICML_CLASS_ORDER

    for name in ("eyes", "mouth"):
        rows, columns = denoise.FACE_DETAIL_REGIONS[name]
        box = FACE_REGION_BOXES[name]
        assert (rows.start, rows.stop, columns.start, columns.stop) == box
        assert explain.FACE_REGIONS[name].sum() == (box[1] - box[0]) * (box[3] - box[2])
    assert compare.FER_PACKAGE_CLASSES is ICML_CLASS_ORDER
    assert [CLASS_NAMES[data.CSV_LABEL_TO_CLASS[k]] for k in range(7)] == list(ICML_CLASS_ORDER)
    faces = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1)
    np.testing.assert_array_equal(models.flipped(faces)[:, :, 0], faces[:, :, -1])


COLAB_PYTHON = "3.13"  # Colab's default runtime since August 2026 (3.12 on request)


def test_declared_python_range_admits_colab():
    import tomllib

    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml")
                            .read_text())["project"]
    allowed = SpecifierSet(project["requires-python"])
    assert COLAB_PYTHON in allowed and "3.12" in allowed and "3.11" in allowed
