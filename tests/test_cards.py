"""Model cards are generated from records: every number on the card is the record's."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fer_core.cards import model_card
from fer_core.config import REPOSITORY_MODELS


@pytest.fixture
def record() -> dict:
    return json.loads((REPOSITORY_MODELS / "compact_cnn.json").read_text())


def test_card_carries_the_records_numbers(record):
    card = model_card(record)
    test = record["test"]
    assert f"accuracy {100 * test['accuracy']:.1f}%" in card
    assert f"PublicTest {100 * test['accuracy_PublicTest']:.1f}%" in card
    assert f"{record['parameters']:,} parameters" in card
    for row in record["per_class"]:
        assert f"| {row['class']} " in card
        assert f"{100 * row['recall']:.1f}" in card
    assert record["command"] in card
    assert "superseded copy" in card  # trained on the rebuilt pixels, and it says so
    assert "lowest recall on disgust (0.0%)" in card


def test_card_lists_the_worst_perturbations(record):
    robustness = pd.DataFrame({"perturbation": ["clean", "gaussian noise (sigma)", "blur"],
                               "severity": ["", "20", "2.0"], "change": [0.0, -28.4, -24.5]})
    card = model_card(record, robustness)
    assert "gaussian noise (sigma) 20: -28.4 points" in card
    assert "clean" not in card.split("Known failure modes")[1].split("\n")[0]


def test_card_refuses_a_record_without_test_metrics():
    with pytest.raises(ValueError, match="model cards are made for trained classifiers"):
        model_card({"name": "autoencoder", "model": "autoencoder"})


def test_card_says_how_a_taught_refit_long_run_was_trained(record):
    taught = {**record, "config": {
        **record["config"], "augmentation": {"crop": 4, "erasing": 0.25},
        "soft_targets": "ensemble:vgg_cnn+vgg_cnn_wide", "soft_weight": 0.8,
        "soft_temperature": 4.0, "refit": True},
        "lineage": {"cycles": 3, "epochs": 150, "training_hours": 2.6}}
    card = model_card(taught)
    assert "augmentation (crop 4, erasing 0.25;" in card
    assert ("taught by the ensemble `vgg_cnn` + `vgg_cnn_wide` (soft weight 0.8, temperature "
            "4.0)") in card
    assert "refit on the training and validation faces together" in card
    assert "150 epochs (3 learning-rate cycles) in 2.6 h" in card
    plain = model_card(record)
    assert "taught by" not in plain and "refit" not in plain and "cycles" not in plain
    assert "taught by the FER+ annotators' votes" in model_card(
        {**record, "config": {**record["config"], "soft_targets": "ferplus"}})
