"""Calibration metrics and temperature scaling on hand-made and synthetic probabilities."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from fer_core import calibrate, plots


def honest_probabilities(count: int, classes: int = 7, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them, so the probabilities are calibrated."""
    rng = np.random.default_rng(seed)
    probabilities = rng.dirichlet(np.full(classes, 0.5), size=count)
    labels = np.array([rng.choice(classes, p=row) for row in probabilities])
    return probabilities, labels


def sharpen(probabilities: np.ndarray, power: float) -> np.ndarray:
    raised = probabilities ** power
    return raised / raised.sum(axis=1, keepdims=True)


def test_expected_calibration_error_matches_hand_computation():
    probabilities = np.array([[0.9, 0.05, 0.05],   # confidence 0.9, right
                              [0.8, 0.1, 0.1],     # confidence 0.8, wrong
                              [0.3, 0.6, 0.1],     # confidence 0.6, right
                              [0.4, 0.35, 0.25]])  # confidence 0.4, wrong
    labels = np.array([0, 1, 1, 2])
    # 4 bins: (0.25, 0.5] holds 0.4 (accuracy 0), (0.5, 0.75] holds 0.6 (accuracy 1),
    # (0.75, 1] holds 0.9 and 0.8 (accuracy 0.5, mean confidence 0.85).
    by_hand = 1 / 4 * 0.4 + 1 / 4 * 0.4 + 2 / 4 * abs(0.5 - 0.85)
    assert calibrate.expected_calibration_error(probabilities, labels, bins=4) == \
        pytest.approx(by_hand)
    table = calibrate.reliability_table(probabilities, labels, bins=4)
    assert table.bin_low.tolist() == [0.25, 0.5, 0.75]
    assert table["count"].tolist() == [1, 1, 2]
    assert table.accuracy.tolist() == [0.0, 1.0, 0.5]
    assert table.confidence.tolist() == pytest.approx([0.4, 0.6, 0.85])


def test_confidence_on_a_bin_edge_goes_to_the_bin_it_closes():
    table = calibrate.reliability_table(np.array([[0.5, 0.5], [0.75, 0.25]]),
                                        np.array([0, 0]), bins=4)
    assert table.bin_high.tolist() == [0.5, 0.75]


def test_calibrated_probabilities_have_near_zero_error():
    probabilities, labels = honest_probabilities(60_000)
    assert calibrate.expected_calibration_error(probabilities, labels) < 0.01


def test_temperature_scaling_fixes_over_confidence_without_changing_predictions():
    honest, labels = honest_probabilities(6_000, seed=1)
    over_confident = sharpen(honest, 3)
    validation, test = slice(0, 3_000), slice(3_000, None)
    temperature = calibrate.fit_temperature(over_confident[validation], labels[validation])
    # Cubing p is undone exactly by T = 3, so the fit should land near it.
    assert temperature == pytest.approx(3, abs=0.4)
    scaled = calibrate.apply_temperature(over_confident[test], temperature)
    assert (scaled.argmax(axis=1) == over_confident[test].argmax(axis=1)).all()
    assert calibrate.negative_log_likelihood(scaled, labels[test]) < \
        calibrate.negative_log_likelihood(over_confident[test], labels[test]) - 0.1
    assert calibrate.expected_calibration_error(scaled, labels[test]) < \
        calibrate.expected_calibration_error(over_confident[test], labels[test]) / 2


def test_under_confident_probabilities_get_a_temperature_below_one():
    honest, labels = honest_probabilities(3_000, seed=2)
    temperature = calibrate.fit_temperature(sharpen(honest, 1 / 3), labels)
    assert temperature == pytest.approx(1 / 3, abs=0.07)


def test_temperature_one_changes_nothing():
    probabilities, _ = honest_probabilities(50, seed=3)
    assert np.allclose(calibrate.apply_temperature(probabilities, 1.0), probabilities,
                       rtol=0, atol=1e-12)


def test_negative_log_likelihood_is_clipped_and_averaged():
    probabilities = np.array([[1.0, 0.0], [0.5, 0.5]])
    expected = (-np.log(1e-12) - np.log(0.5)) / 2
    assert calibrate.negative_log_likelihood(probabilities, np.array([1, 0])) == \
        pytest.approx(expected)


def test_calibration_summary_reports_before_and_after():
    honest, labels = honest_probabilities(4_000, seed=4)
    over_confident = sharpen(honest, 3)
    summary = calibrate.calibration_summary({"sharp": over_confident[:2000]}, labels[:2000],
                                            {"sharp": over_confident[2000:]}, labels[2000:])
    row = summary.loc["sharp"]
    assert row["temperature"] > 2
    assert row["test NLL after"] < row["test NLL before"]
    assert row["test ECE % after"] < row["test ECE % before"]
    accuracy = 100 * (over_confident[2000:].argmax(1) == labels[2000:]).mean()
    assert row["test accuracy %"] == pytest.approx(accuracy, abs=0.01)
    with pytest.raises(ValueError, match="same models"):
        calibrate.calibration_summary({"a": honest}, labels, {"b": honest}, labels)


@pytest.mark.parametrize(("probabilities", "labels", "message"), [
    (np.full((3, 2), 0.5), np.array([0, 1]), "one label per image"),
    (np.full(4, 0.25), np.array([0]), "shape"),
    (np.array([[2.0, 1.0], [0.5, 0.5]]), np.array([0, 1]), "sum to 1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), np.array([0, 1]), "non-negative"),
    (np.full((2, 2), 0.5), np.array([0, 2]), "0..1"),
    (np.full((2, 2), 0.5), np.array([0.0, 1.0]), "integer"),
])
def test_bad_inputs_are_rejected_with_a_clear_message(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        calibrate.expected_calibration_error(probabilities, labels)


def test_rows_off_by_rounding_are_renormalized():
    probabilities = np.array([[0.7, 0.3 + 1e-6]], np.float32)
    assert calibrate.apply_temperature(probabilities, 1.0).sum() == pytest.approx(1, abs=1e-12)


def test_temperature_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        calibrate.apply_temperature(np.full((1, 2), 0.5), 0.0)


def test_reliability_diagram_draws_one_series_per_table():
    honest, labels = honest_probabilities(500, seed=5)
    tables = {"before": calibrate.reliability_table(sharpen(honest, 3), labels),
              "after": calibrate.reliability_table(honest, labels)}
    figure = plots.reliability_diagram(tables)
    legend = [text.get_text() for text in figure.axes[0].get_legend().get_texts()]
    assert legend[0] == "perfect"
    assert [entry.split(" (")[0] for entry in legend[1:]] == ["before", "after"]
    plt.close(figure)
