"""Evaluation: hand-checked metrics, soft-voting ensembles, test-time augmentation, references."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from fer_core.config import CLASS_NAMES
from fer_core.data import FerData
from fer_core.evaluate import (
    CAMPAIGN_TARGETS,
    chosen_by_validation,
    confused_examples,
    ensemble,
    ensemble_table,
    evaluate_model,
    final_model,
    greedy_ensemble,
    load_reference,
    metrics_table,
    most_confused_pairs,
    paired_comparison,
    predict_probabilities,
    recorded_benchmark,
    recorded_speeds,
    reference_predictions,
    score,
    size_study_table,
    target_table,
)

K = len(CLASS_NAMES)


def _labelled(labels, usage) -> FerData:
    count = len(labels)
    return FerData(np.zeros((count, 48, 48), np.uint8), np.asarray(labels, np.int64),
                   np.array([f"image_{i}" for i in range(count)]), np.asarray(usage))


def _probabilities_predicting(predicted) -> np.ndarray:
    """Probability rows (summing to 1) whose argmax is ``predicted``."""
    rows = np.full((len(predicted), K), 0.4 / (K - 1))
    rows[np.arange(len(predicted)), predicted] = 0.6
    return rows


@pytest.fixture
def six():
    """Six test images: PublicTest gets 3 of 3 right, PrivateTest 1 of 3."""
    data = _labelled([0, 0, 1, 3, 3, 3], ["PublicTest", "PrivateTest", "PublicTest",
                                          "PublicTest", "PrivateTest", "PrivateTest"])
    predicted = np.array([0, 1, 1, 3, 3, 0])
    return data, predicted


@pytest.fixture(scope="module")
def tiny_model() -> keras.Model:
    """A small, deliberately asymmetric (not flip-invariant) classifier."""
    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(K, activation="softmax", kernel_initializer=
                                 keras.initializers.RandomNormal(stddev=0.2, seed=1))(hidden)
    return keras.Model(inputs, outputs)


def test_score_on_six_hand_checked_predictions(six):
    data, predicted = six
    metrics = score(_probabilities_predicting(predicted), data)
    assert metrics.count == 6
    assert metrics.accuracy == pytest.approx(4 / 6)
    assert metrics.by_half == pytest.approx({"PublicTest": 1.0, "PrivateTest": 1 / 3})

    table = metrics.per_class
    assert list(table.index) == list(CLASS_NAMES)
    # angry: 1 of 2 found, 1 of 2 "angry" calls right; disgust: found, but called twice;
    # happy: 2 of 3 found, never wrongly called
    expected = {"angry": (0.5, 0.5, 0.5, 2), "disgust": (0.5, 1.0, 2 / 3, 1),
                "happy": (1.0, 2 / 3, 0.8, 3)}
    for name, (precision, recall, f1, support) in expected.items():
        assert table.loc[name, "precision"] == pytest.approx(precision)
        assert table.loc[name, "recall"] == pytest.approx(recall)
        assert table.loc[name, "f1"] == pytest.approx(f1)
        assert table.loc[name, "support"] == support
    absent = ["fear", "neutral", "sad", "surprise"]
    assert (table.loc[absent].to_numpy() == 0).all()
    # macro F1 averages over all seven classes (absent ones score 0)
    assert metrics.macro_f1 == pytest.approx((0.5 + 2 / 3 + 0.8) / K)

    confusion = metrics.confusion
    assert confusion.shape == (K, K)
    np.testing.assert_allclose(confusion[0], [0.5, 0.5, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(confusion[1], [0, 1, 0, 0, 0, 0, 0])
    np.testing.assert_allclose(confusion[3], [1 / 3, 0, 0, 2 / 3, 0, 0, 0])
    present = np.bincount(data.labels, minlength=K) > 0
    np.testing.assert_allclose(confusion[present].sum(axis=1), 1.0)
    np.testing.assert_allclose(confusion[~present].sum(axis=1), 0.0)

    summary = metrics.summary()
    assert summary == pytest.approx({
        "accuracy": round(4 / 6, 5), "macro_f1": round((0.5 + 2 / 3 + 0.8) / K, 5),
        "images": 6, "accuracy_PublicTest": 1.0, "accuracy_PrivateTest": round(1 / 3, 5),
        "disgust_recall": 1.0,
        "fear_recall": round(float(metrics.per_class.loc["fear", "recall"]), 5)})


def test_score_accepts_predicted_labels(six):
    data, predicted = six
    from_labels = score(predicted, data)
    from_probabilities = score(_probabilities_predicting(predicted), data)
    assert from_labels.accuracy == from_probabilities.accuracy
    assert from_labels.macro_f1 == from_probabilities.macro_f1
    np.testing.assert_array_equal(from_labels.confusion, from_probabilities.confusion)


def test_macro_f1_with_every_class_present():
    data = _labelled([0, 1, 2, 3, 4, 5, 6, 6], ["PublicTest"] * 8)
    metrics = score(np.array([0, 1, 2, 3, 4, 5, 5, 6]), data)
    # five perfect classes; sad: P 1/2 R 1 -> 2/3; surprise: P 1 R 1/2 -> 2/3
    assert metrics.macro_f1 == pytest.approx((5 + 2 / 3 + 2 / 3) / 7)
    assert metrics.accuracy == pytest.approx(7 / 8)
    assert metrics.by_half == {"PublicTest": pytest.approx(7 / 8)}  # no PrivateTest half
    np.testing.assert_allclose(metrics.confusion.sum(axis=1), 1.0)


def test_paired_comparison_counts_discordant_faces_and_tests_them():
    labels = np.arange(200) % K
    data = _labelled(labels, ["PublicTest"] * 200)
    wrong = (labels + 1) % K
    # first is right on all but 10 faces; second is wrong on those 10 and on 30 more.
    first = labels.copy()
    first[:10] = wrong[:10]
    second = labels.copy()
    second[10:50] = wrong[10:50]
    result = paired_comparison(_probabilities_predicting(first), second, data)
    assert (result["first_only"], result["second_only"]) == (40, 10)
    assert result["difference"] == pytest.approx(100 * 30 / 200)
    assert result["p_value"] < 1e-4  # 40 of 50 coin tosses one way
    reverse = paired_comparison(second, first, data)
    assert reverse["difference"] == pytest.approx(-result["difference"])
    assert reverse["p_value"] == pytest.approx(result["p_value"])


def test_paired_comparison_of_equal_models_finds_nothing():
    labels = np.arange(70) % K
    data = _labelled(labels, ["PrivateTest"] * 70)
    same = paired_comparison(labels, labels, data)
    assert same == {"difference": 0.0, "first_only": 0, "second_only": 0, "p_value": 1.0}
    # Different faces right but equally many: no evidence either way.
    first, second = labels.copy(), labels.copy()
    first[:5] = (labels[:5] + 1) % K
    second[5:10] = (labels[5:10] + 1) % K
    balanced = paired_comparison(first, second, data)
    assert balanced["difference"] == 0.0 and balanced["p_value"] == pytest.approx(1.0)


def test_ensemble_averages_and_weights():
    first = np.array([[0.8, 0.2], [0.4, 0.6]])
    second = np.array([[0.2, 0.8], [0.6, 0.4]])
    third = np.array([[0.5, 0.5], [0.1, 0.9]])
    np.testing.assert_allclose(ensemble([first, second, third]), (first + second + third) / 3)
    np.testing.assert_allclose(ensemble([first, second], [3, 1]), 0.75 * first + 0.25 * second)
    np.testing.assert_allclose(ensemble([first, second], [6, 2]), ensemble([first, second], [3, 1]))
    np.testing.assert_allclose(ensemble([first, second], [1, 0]), first)
    weighted = ensemble([first, second, third], [1, 2, 5])
    np.testing.assert_allclose(weighted.sum(axis=1), 1.0)
    np.testing.assert_allclose(ensemble([first]), first)


@pytest.mark.parametrize("weights", [[1.0], [1, 2, 3], [0, 0], [2, -1], [-1, -1]])
def test_ensemble_rejects_bad_weights(weights):
    probabilities = [np.full((2, K), 1 / K), np.eye(K)[[0, 1]]]
    with pytest.raises(ValueError, match="one non-negative weight per model"):
        ensemble(probabilities, weights)


def test_predict_probabilities_with_tta_averages_the_flipped_faces(tiny_model):
    pixels = np.random.default_rng(0).uniform(0, 255, (5, 48, 48, 1)).astype(np.float32)
    plain = predict_probabilities(tiny_model, pixels)
    flipped = predict_probabilities(tiny_model, np.flip(pixels, axis=2))  # left-right
    with_tta = predict_probabilities(tiny_model, pixels, tta=True)
    assert plain.shape == with_tta.shape == (5, K)
    assert plain.dtype == np.float64
    np.testing.assert_allclose(with_tta, (plain + flipped) / 2, rtol=1e-5, atol=1e-7)
    assert not np.allclose(with_tta, plain, atol=1e-4)  # the flip did change the inputs
    np.testing.assert_allclose(with_tta.sum(axis=1), 1.0, atol=1e-5)


def test_shifted_faces_move_whole_and_the_border_turns_black():
    from fer_core.models import shifted

    faces = np.arange(2 * 48 * 48, dtype=np.float32).reshape(2, 48, 48, 1) + 1
    down = shifted(faces, 3, 0)
    np.testing.assert_array_equal(down[:, 3:], faces[:, :-3])
    assert not down[:, :3].any()  # the uncovered rows are black, as in the training crop
    left = shifted(faces, 0, -2)
    np.testing.assert_array_equal(left[:, :, :-2], faces[:, :, 2:])
    assert not left[:, :, -2:].any()
    np.testing.assert_array_equal(shifted(faces, 0, 0), faces)
    np.testing.assert_array_equal(shifted(shifted(faces, -1, 2), 1, -2)[:, 1:-1, 2:-2],
                                  faces[:, 1:-1, 2:-2])  # and back, away from the border
    with pytest.raises(ValueError, match="smaller than the face"):
        shifted(faces, 48, 0)


def test_shift_tta_averages_ten_views_of_each_face(tiny_model):
    from fer_core.evaluate import TTA_VIEWS, tta_views
    from fer_core.models import flipped, shifted

    views = tta_views("shifts")
    assert len(views) == len(set(views)) == 10 and views == TTA_VIEWS["shifts"]
    assert tta_views(True) == tta_views("flip") and tta_views(False) == tta_views("none")
    pixels = np.random.default_rng(1).uniform(0, 255, (4, 48, 48, 1)).astype(np.float32)
    by_hand = np.mean([predict_probabilities(
        tiny_model, flipped(shifted(pixels, down, right)) if mirrored
        else shifted(pixels, down, right)) for down, right, mirrored in views], axis=0)
    with_shifts = predict_probabilities(tiny_model, pixels, tta="shifts")
    np.testing.assert_allclose(with_shifts, by_hand, rtol=1e-5, atol=1e-7)
    assert not np.allclose(with_shifts, predict_probabilities(tiny_model, pixels, tta=True),
                           atol=1e-4)  # the shifted views are other inputs
    np.testing.assert_allclose(with_shifts.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("setting", ["ten-crop", "Flip", 2])
def test_unknown_tta_setting_is_refused_with_the_known_ones(tiny_model, setting):
    with pytest.raises(ValueError, match=r"Unknown test-time augmentation.*'shifts'"):
        predict_probabilities(tiny_model, np.zeros((1, 48, 48, 1), np.float32) + 9,
                              tta=setting)


def test_predict_probabilities_takes_ferdata_and_plain_images(tiny_model):
    rng = np.random.default_rng(1)
    data = FerData(rng.integers(0, 256, (4, 48, 48), dtype=np.uint8), np.arange(4),
                   np.array(["a", "b", "c", "d"]), np.array(["PublicTest"] * 4))
    from_data = predict_probabilities(tiny_model, data)
    np.testing.assert_allclose(predict_probabilities(tiny_model, data.images), from_data,
                               rtol=1e-6)
    np.testing.assert_allclose(predict_probabilities(tiny_model, data.model_input()), from_data,
                               rtol=1e-6)
    metrics = evaluate_model(tiny_model, data)
    assert metrics.accuracy == score(from_data, data).accuracy


def test_metrics_table_is_in_percent(six):
    data, predicted = six
    perfect = score(data.labels, data)
    results = {"half right": score(predicted, data), "perfect": perfect}
    table = metrics_table(results)
    assert list(table.index) == ["half right", "perfect"]
    assert "images" not in table.columns
    assert set(table.columns) == {"accuracy", "macro_f1", "accuracy_PublicTest",
                                  "accuracy_PrivateTest", "disgust_recall", "fear_recall"}
    assert table.loc["half right", "accuracy"] == 66.7
    assert table.loc["half right", "accuracy_PublicTest"] == 100.0
    assert table.loc["half right", "accuracy_PrivateTest"] == 33.3
    assert table.loc["half right", "macro_f1"] == pytest.approx(
        round(100 * (0.5 + 2 / 3 + 0.8) / K, 1))
    assert table.loc["perfect", "accuracy"] == 100.0


def test_load_reference_missing_lists_available(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="Available: none"):
        load_reference("baseline", tmp_path)
    tiny_model.save(tmp_path / "alpha.keras")
    tiny_model.save(tmp_path / "beta.keras")
    with pytest.raises(FileNotFoundError, match="No reference model 'gamma'") as error:
        load_reference("gamma", tmp_path)
    assert "Available: alpha, beta" in str(error.value)
    assert "fer-core train gamma" in str(error.value)


def test_load_reference_returns_model_and_record(tmp_path, tiny_model):
    tiny_model.save(tmp_path / "alpha.keras")
    model, record = load_reference("alpha", tmp_path)
    assert record == {}  # no JSON record next to it
    pixels = np.random.default_rng(2).uniform(0, 255, (3, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(model.predict(pixels, verbose=0),
                               tiny_model.predict(pixels, verbose=0), rtol=1e-6)
    (tmp_path / "alpha.json").write_text(json.dumps({"test": {"accuracy": 0.5}}))
    assert load_reference("alpha", tmp_path)[1] == {"test": {"accuracy": 0.5}}


def test_reference_scores_gives_each_model_alone_and_with_flips(tmp_path, tiny_model):
    from fer_core.evaluate import reference_scores

    rng = np.random.default_rng(5)
    data = FerData(rng.integers(0, 256, (30, 48, 48), dtype=np.uint8),
                   rng.integers(0, K, 30), np.array([f"f{i}" for i in range(30)]),
                   np.array(["PublicTest", "PrivateTest"] * 15))
    tiny_model.save(tmp_path / "alpha.keras")
    scores = reference_scores(["alpha"], data, tmp_path)
    assert list(scores) == ["alpha", "alpha, flips"]
    expected = {"alpha": evaluate_model(tiny_model, data),
                "alpha, flips": evaluate_model(tiny_model, data, tta=True)}
    for key, metrics in expected.items():
        assert scores[key].accuracy == metrics.accuracy
        np.testing.assert_array_equal(scores[key].confusion, metrics.confusion)
    with pytest.raises(FileNotFoundError, match="No reference model 'beta'"):
        reference_scores(["beta"], data, tmp_path)


def test_ensemble_table_scores_every_combination(six):
    data, predicted = six
    wrong_elsewhere = predicted.copy()
    wrong_elsewhere[[1, 5]] = [0, 3]  # this model fixes the two PrivateTest mistakes ...
    wrong_elsewhere[0] = 2  # ... and makes one of its own
    confident = _probabilities_predicting(wrong_elsewhere)
    confident[[1, 5]] = 0.0  # it is sure where it fixes first's mistakes ...
    confident[1, 0] = confident[5, 3] = 1.0
    confident[0] = 0.08  # ... and unsure about its own mistake
    confident[0, 2] = 0.52
    probabilities = {"first": _probabilities_predicting(predicted), "second": confident}
    table = ensemble_table(probabilities, data)
    assert list(table.index) == ["first + second", "second", "first"]
    assert table.loc["first", "accuracy"] == pytest.approx(100 * 4 / 6, abs=0.05)
    assert table.loc["second", "accuracy"] == pytest.approx(100 * 5 / 6, abs=0.05)
    # the average keeps first's answer on image 0 (class 0: 0.34 vs class 2: 0.29) and
    # second's sure fixes on images 1 and 5
    assert table.loc["first + second", "accuracy"] == 100.0
    assert table.loc["first + second", "models"] == 2
    with pytest.raises(ValueError, match="at least one model"):
        ensemble_table({}, data)


def _two_class_rows(first_class_probability) -> np.ndarray:
    """Probability rows over classes 0 and 1 only (the other classes get nothing)."""
    rows = np.zeros((len(first_class_probability), K))
    rows[:, 0] = first_class_probability
    rows[:, 1] = 1 - np.asarray(first_class_probability)
    return rows


def test_greedy_ensemble_weighs_a_member_twice_where_equal_votes_cannot_win():
    labels = np.array([0, 0, 0, 1])
    data = _labelled(labels, ["PublicTest"] * 4)
    # "steady" is right but unsure on faces 0-2 and wrong on face 3; "bold" is sure of face 3,
    # right on 1-2 and badly wrong on 0. Alone or averaged equally they each get 3 of 4.
    probabilities = {"steady": _two_class_rows([0.7, 0.7, 0.7, 0.7]),
                     "bold": _two_class_rows([0.2, 0.6, 0.6, 0.0])}
    table = ensemble_table(probabilities, data)
    assert table["accuracy"].max() == pytest.approx(75.0)
    # round 1: both 3/4, steady has the lower log loss (0.57 vs 0.66); round 2: steady twice
    # still 3/4, steady + bold 3/4 at lower loss (0.52); round 3: 2 x steady + bold is right
    # on face 0 (1.6/3 > 1/2) and face 3 (1.6/3 for class 1): 4 of 4
    weights = greedy_ensemble(probabilities, labels, rounds=3)
    assert weights == {"steady": 2, "bold": 1}
    vote = ensemble(list(probabilities.values()), [weights[name] for name in probabilities])
    assert score(vote, data).accuracy == 1.0
    # more rounds keep the earliest best round: nothing beats 4 of 4
    assert greedy_ensemble(probabilities, labels, rounds=10) == weights


def test_reported_ensemble_takes_the_weighted_vote_only_when_validation_prefers_it():
    from fer_core.evaluate import reported_ensemble

    equal = {"members": ["a_refit", "b"], "accuracy": 0.70}
    weighted = {"members": ["a_refit", "b", "c"], "weights": [2, 1, 1], "accuracy": 0.69}
    run = {"final": equal, "weighted": {"validation accuracy": 71.0,
                                        "equal validation accuracy": 70.9, "final": weighted}}
    # chosen on validation, whatever the test accuracy says
    assert reported_ensemble(run) == {**weighted, "selection": "weighted"}
    run["weighted"]["validation accuracy"] = 70.9  # a tie keeps equal weights
    assert reported_ensemble(run) == {**equal, "selection": "equal weights"}
    assert reported_ensemble({"final": equal})["selection"] == "equal weights"  # older record


def test_greedy_ensemble_keeps_a_perfect_model_alone_and_rejects_bad_input():
    labels = np.array([0, 1, 1, 0])
    perfect = _two_class_rows([0.9, 0.2, 0.3, 0.8])
    coin = _two_class_rows([0.5, 0.5, 0.5, 0.5])
    assert greedy_ensemble({"coin": coin, "perfect": perfect}, labels) == {"perfect": 1}
    with pytest.raises(ValueError, match="at least one model"):
        greedy_ensemble({}, labels)
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        greedy_ensemble({"perfect": perfect}, labels, rounds=0)


def test_ensemble_table_ranks_by_validation_when_given(six):
    data, _ = six
    right = _probabilities_predicting(data.labels)
    all_wrong = _probabilities_predicting((data.labels + 1) % K)
    test = {"first": right, "second": all_wrong}
    # On the validation faces the ranking is the other way round: "second" is the one chosen,
    # whatever the test labels say.
    validation = ({"first": all_wrong, "second": right}, data)
    table = ensemble_table(test, data, validation=validation)
    assert table.index[0] == "second"
    assert table.loc["second", "validation accuracy"] == 100.0
    assert table.loc["second", "accuracy"] == 0.0
    assert list(table["validation accuracy"]) == sorted(table["validation accuracy"],
                                                        reverse=True)
    with pytest.raises(ValueError, match="same models"):
        ensemble_table(test, data, validation=({"first": right}, data))


def test_most_confused_pairs_reads_the_off_diagonal():
    confusion = np.eye(K) * 0.5
    confusion[2, 5] = 0.3  # fear -> sad
    confusion[1, 0] = 0.4  # disgust -> angry
    pairs = most_confused_pairs(confusion, top=2)
    assert pairs[["true", "predicted"]].values.tolist() == [["disgust", "angry"], ["fear", "sad"]]
    assert pairs["share of true class (%)"].tolist() == [40.0, 30.0]
    with pytest.raises(ValueError, match="7x7"):
        most_confused_pairs(np.eye(3))


def test_confused_examples_are_the_surest_mistakes_first(six):
    data, _ = six
    probabilities = np.full((6, K), 0.01)
    probabilities[:, 0] = 0.5
    probabilities[3, 5], probabilities[4, 5], probabilities[5, 5] = 0.6, 0.9, 0.3  # happy faces
    chosen = confused_examples(probabilities, data, "happy", "sad")
    assert chosen.ids.tolist() == ["image_4", "image_3"]  # image_5 is predicted angry
    with pytest.raises(ValueError, match="Unknown class 'joy'"):
        confused_examples(probabilities, data, "joy", "sad")


def test_recorded_speeds_reads_the_records(tmp_path):
    record = {"parameters": 10, "config": {"epochs": 3}, "training_seconds": 120.0,
              "seconds_per_epoch": 40.0, "train_images_per_second": 500.0,
              "inference_images_per_second": 2000.0}
    (tmp_path / "m.json").write_text(json.dumps(record))
    speeds = recorded_speeds(["m"], tmp_path)
    assert speeds.loc["m"].to_dict() == {
        "parameters": 10, "epochs": 3, "training minutes": 2.0, "seconds per epoch": 40.0,
        "train images/s": 500.0, "inference images/s": 2000.0}


def test_recorded_benchmark_reads_the_script_output(tmp_path):
    results = [{"model": "a", "parameters": 5, "inference images/s": 100.0},
               {"model": "b", "parameters": 7, "inference images/s": 50.0}]
    path = tmp_path / "benchmark.json"
    path.write_text(json.dumps({"steps": 3, "results": results}))
    table = recorded_benchmark(path)
    assert list(table.index) == ["a", "b"]
    assert table.loc["b", "inference images/s"] == 50.0


def test_benchmarked_inference_takes_the_faster_precision_and_names_a_missing_model(tmp_path):
    from fer_core.evaluate import benchmarked_inference

    (tmp_path / "benchmark.json").write_text(json.dumps({
        "hardware": {"cpu": "AMD EPYC"}, "inference_images": 2048, "results": [
            {"model": "wide", "inference images/s": 300.0,
             "bfloat16 inference images/s": 640.0, "bfloat16 answers changed": 3},
            {"model": "small", "inference images/s": 900.0,
             "bfloat16 inference images/s": 700.0, "bfloat16 answers changed": 5},
            {"model": "timed_on_avx2", "inference images/s": 100.0}]}))
    wide = benchmarked_inference("wide", tmp_path / "benchmark.json")
    assert (wide["faces/s"], wide["precision"], wide["float32 faces/s"]) == (
        640.0, "bfloat16", 300.0)
    assert (wide["answers changed"], wide["faces timed"], wide["cpu"]) == (3, 2048, "AMD EPYC")
    small = benchmarked_inference("small", tmp_path / "benchmark.json")
    assert (small["faces/s"], small["precision"], small["answers changed"]) == (
        900.0, "float32", 0)
    assert benchmarked_inference("timed_on_avx2", tmp_path / "benchmark.json")[
        "precision"] == "float32"
    with pytest.raises(KeyError, match=r"has not measured 'absent'.*scripts/benchmark\.py"):
        benchmarked_inference("absent", tmp_path / "benchmark.json")


def test_recorded_benchmark_missing_file_says_how_to_make_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"scripts/benchmark\.py --json"):
        recorded_benchmark(tmp_path / "absent.json")


def test_recorded_speed_settings_reads_the_script_output(tmp_path):
    from fer_core.evaluate import recorded_speed_settings

    path = tmp_path / "speed.json"
    path.write_text(json.dumps({"hardware": {"cpu": "x"}, "results": [
        {"setting": "base", "train images/s": 100.0, "speed-up": 1.0},
        {"setting": "bf16", "train images/s": 140.0, "speed-up": 1.4}]}))
    table, hardware = recorded_speed_settings(path)
    assert table.loc["bf16", "speed-up"] == 1.4 and hardware == {"cpu": "x"}
    with pytest.raises(FileNotFoundError, match=r"scripts/speed_settings\.py --json"):
        recorded_speed_settings(tmp_path / "absent.json")


def test_recorded_detector_comparison_reads_the_script_output(tmp_path):
    from fer_core.evaluate import recorded_detector_comparison

    detector = {"recall": 0.5, "false detections per face scene": 0.25,
                "false detections per empty scene": 0.1, "ms per scene": 12.3456,
                "end-to-end accuracy": 0.4}
    path = tmp_path / "detectors.json"
    path.write_text(json.dumps({"faces": 4, "results": {
        "true boxes": {"end-to-end accuracy": 0.75}, "haar": detector}}))
    table, settings = recorded_detector_comparison(path)
    assert table.loc["haar", "recall %"] == 50.0 and table.loc["haar", "ms per scene"] == 12.35
    assert table.loc["true boxes", "end-to-end accuracy %"] == 75.0
    assert np.isnan(table.loc["true boxes", "recall %"]) and settings == {"faces": 4}
    with pytest.raises(FileNotFoundError, match=r"scripts/compare_detectors\.py --json"):
        recorded_detector_comparison(tmp_path / "absent.json")


def test_config_changes_names_each_difference_and_the_effective_augmentation():
    from fer_core.evaluate import config_changes

    base = {"optimizer": "adamw", "learning_rate": 1e-3, "model_options": {"width": 16},
            "augment": True, "augmentation": {"crop": 4, "erasing": 0.25}, "seed": 1}
    assert config_changes(dict(base, seed=2), base) == "(base)"
    sgd = dict(base, optimizer="sgd", learning_rate=0.05)
    assert config_changes(sgd, base) == "learning_rate 0.001\u21920.05, optimizer adamw\u2192sgd"
    assert config_changes(dict(base, model_options={"width": 24}), base) == "width 16\u219224"
    # Dropping the overrides goes back to the study's defaults: every field that moves is named.
    study = config_changes(dict(base, augmentation={}), base)
    assert "augment crop 4\u21920" in study and "augment erasing 0.25\u21920.0" in study
    assert "augment flip" not in study


def test_recipe_study_table_scores_each_run_against_the_base(tmp_path, tiny_model):
    from fer_core.evaluate import recipe_study_table

    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (40, 48, 48), dtype=np.uint8)
    predicted = tiny_model.predict(pixels[..., None].astype(np.float32), verbose=0).argmax(1)
    # Labelled with the base model's own answers, so the base run is right on every face.
    data = FerData(pixels, predicted, np.array([f"f{i}" for i in range(40)]),
                   np.array(["PublicTest", "PrivateTest"] * 20))
    tiny_model.save(tmp_path / "base.keras")
    (tmp_path / "base.json").write_text(json.dumps(
        {"config": {"optimizer": "adamw"}, "training_seconds": 120}))
    with pytest.raises(FileNotFoundError, match="No record"):
        recipe_study_table(tmp_path, data, data, base="missing")
    table = recipe_study_table(tmp_path, data, data)
    assert table.loc["base", "change"] == "(base)"
    assert table.loc["base", "validation accuracy"] == 100.0
    assert table.loc["base", "minutes"] == 2.0

    flipped_model = keras.models.clone_model(tiny_model)
    weights = tiny_model.get_weights()
    flipped_model.set_weights([-w for w in weights])  # argmin of the base's scores: all wrong
    flipped_model.save(tmp_path / "other.keras")
    (tmp_path / "other.json").write_text(json.dumps(
        {"config": {"optimizer": "sgd"}, "training_seconds": 60}))
    table = recipe_study_table(tmp_path, data, data)
    assert list(table.index) == ["base", "other"]
    assert table.loc["other", "change"] == "optimizer adamw\u2192sgd"
    assert table.loc["other", "validation accuracy"] == 0.0
    assert table.loc["other", "validation \u0394"] == pytest.approx(
        table.loc["other", "validation accuracy"] - 100.0, abs=0.05)
    assert table.loc["base", "test \u0394"] == 0.0
    assert set(table["scored from"]) == {"weights"}

    # A run whose weights are left out reads the scores its weights got: the same table.
    for name in ("base", "other"):
        record = json.loads((tmp_path / f"{name}.json").read_text())
        record.update({split: score(reference_predictions(name, data, models_dir=tmp_path),
                                    data).summary() for split in ("validation", "test")})
        (tmp_path / f"{name}.json").write_text(json.dumps(record))
    (tmp_path / "other.keras").unlink()
    from_records = recipe_study_table(tmp_path, data, data)
    assert list(from_records["scored from"]) == ["weights", "record"]
    pd.testing.assert_frame_equal(from_records.drop(columns="scored from"),
                                  table.drop(columns="scored from"))
    with pytest.raises(ValueError, match="not these 20"):
        recipe_study_table(tmp_path, data.head(20), data)
    record = json.loads((tmp_path / "other.json").read_text())
    del record["validation"]
    (tmp_path / "other.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"no validation scores.*record_scores\.py"):
        recipe_study_table(tmp_path, data, data)


def test_reference_table_reads_a_record_only_run_as_its_weights_scored(tmp_path, tiny_model):
    from fer_core.evaluate import reference_table

    rng = np.random.default_rng(5)
    data = FerData(rng.integers(0, 256, (30, 48, 48), dtype=np.uint8), rng.integers(0, K, 30),
                   np.array([f"f{i}" for i in range(30)]),
                   np.array(["PublicTest", "PrivateTest"] * 15))
    tiny_model.save(tmp_path / "kept.keras")
    record = {"config": {"augment": True}, "parameters": tiny_model.count_params(),
              "validation_curve": {"val_accuracy": [0.2, 0.3]}}
    (tmp_path / "kept.json").write_text(json.dumps(record))
    scored = reference_table(["kept"], data, models_dir=tmp_path)
    assert scored.loc["kept", "scored from"] == "weights"

    record["test"] = score(reference_predictions("kept", data, models_dir=tmp_path),
                           data).summary()
    (tmp_path / "kept.json").write_text(json.dumps(record))
    (tmp_path / "kept.keras").rename(tmp_path / "elsewhere.keras")
    from_record = reference_table(["kept"], data, models_dir=tmp_path)
    assert from_record.loc["kept", "scored from"] == "record"
    shared = [column for column in scored if column not in ("scored from", "recorded accuracy")]
    pd.testing.assert_frame_equal(from_record[shared], scored[shared])
    with pytest.raises(ValueError, match="test-time augmentation"):
        reference_table(["kept"], data, tta=True, models_dir=tmp_path)
    with pytest.raises(ValueError, match="keeps only its record"):
        reference_table(["kept"], data.head(10), models_dir=tmp_path)


def test_recipe_deltas_draws_one_bar_per_run_and_split():
    import pandas as pd

    from fer_core.plots import recipe_deltas

    table = pd.DataFrame({"validation \u0394": [0.0, 1.5, -2.0], "test \u0394": [0.0, 0.5, -1.0]},
                         index=["base", "ema", "mixup"])
    figure = recipe_deltas(table)
    widths = sorted(round(patch.get_width(), 2) for patch in figure.axes[0].patches
                    if patch.get_height() > 0)
    assert widths == [-2.0, -1.0, 0.5, 1.5]  # the base's zero bars are not drawn
    assert [label.get_text() for label in figure.axes[0].get_yticklabels()] == ["ema", "mixup"]
    banded = recipe_deltas(table, noise=1.2).axes[0]
    assert "within the noise" in [text.get_text() for text in banded.get_legend().get_texts()]
    assert banded.get_xlim()[0] < -1.2 and banded.get_xlim()[1] > 1.2


def test_training_curves_draw_each_metric_for_each_run():
    from fer_core.plots import training_curves

    histories = {"a": {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5],
                       "accuracy": [0.3, 0.6], "val_accuracy": [0.25, 0.5]},
                 "b": {"accuracy": [0.4, 0.7], "val_accuracy": [0.35, 0.55]}}
    both = training_curves(histories)
    assert [axis.get_ylabel() for axis in both.axes] == ["loss", "accuracy"]
    assert len(both.axes[0].lines) == 2 and len(both.axes[1].lines) == 4  # b has no loss
    only = training_curves(histories, metrics=("accuracy",))
    assert [axis.get_ylabel() for axis in only.axes] == ["accuracy"]
    validation = [line for line in only.axes[0].lines if line.get_linestyle() == "-"]
    assert [list(line.get_ydata()) for line in validation] == [[0.25, 0.5], [0.35, 0.55]]
    assert [t.get_text() for t in only.axes[0].get_legend().get_texts()] == ["a", "b"]


def _random_faces(count: int, seed: int) -> FerData:
    rng = np.random.default_rng(seed)
    return FerData(rng.integers(0, 256, (count, 48, 48), dtype=np.uint8),
                   rng.integers(0, K, count), np.array([f"f{i}" for i in range(count)]),
                   np.array(["PublicTest", "PrivateTest"] * (count // 2)))


def test_reference_predictions_are_cached_and_equal_a_fresh_prediction(
        tmp_path, tiny_model, cache_folder, monkeypatch):
    from fer_core import evaluate

    data = _random_faces(20, 6)
    tiny_model.save(tmp_path / "alpha.keras")
    fresh = evaluate.reference_predictions("alpha", data, models_dir=tmp_path)
    np.testing.assert_array_equal(fresh, tiny_model.predict(
        data.model_input(), batch_size=256, verbose=0))
    mirrored = evaluate.reference_predictions("alpha", data, mirrored=True,
                                              models_dir=tmp_path)
    assert not np.allclose(fresh, mirrored)  # the mirror images are other inputs
    assert len(list((cache_folder / "predictions").glob("alpha-*.npy"))) == 2

    def no_model(*_):
        raise AssertionError("the cache should have answered without loading the model")

    monkeypatch.setattr(evaluate, "_model_and_its_inputs", no_model)
    np.testing.assert_array_equal(
        evaluate.reference_predictions("alpha", data, models_dir=tmp_path), fresh)
    # the cached halves give exactly what predicting with flips gives
    np.testing.assert_array_equal(
        evaluate.reference_probabilities(["alpha"], data, tta=True, models_dir=tmp_path)["alpha"],
        predict_probabilities(tiny_model, data, tta=True))
    with pytest.raises(AssertionError, match="cache should have answered"):
        evaluate.reference_predictions("alpha", _random_faces(20, 7), models_dir=tmp_path)


def test_robustness_predictors_cache_each_perturbed_face_set(tmp_path, tiny_model,
                                                            cache_folder, monkeypatch):
    """A cached answer per model and exact pixels, never confused with another view's."""
    from fer_core import evaluate, robustness

    tiny_model.save(tmp_path / "alpha.keras")
    faces = _random_faces(20, 8).images
    predict = robustness.predictors(["alpha"], peer=False, models_dir=tmp_path)["alpha"]
    clean, noisy = predict(faces), predict(robustness.perturb(faces, "gaussian noise (sigma)", 10))
    np.testing.assert_array_equal(clean, predict_probabilities(tiny_model, faces))
    assert not np.allclose(clean, noisy)
    assert len(list((cache_folder / "predictions").glob("alpha-*.npy"))) == 2

    def no_model(*_):
        raise AssertionError("the cache should have answered without predicting")

    with monkeypatch.context() as patched:
        patched.setattr(evaluate, "predict_probabilities", no_model)
        np.testing.assert_array_equal(predict(faces), clean)
    # reference_predictions shows the model its own inputs: a key of its own
    data = FerData(faces, np.zeros(20, int), np.arange(20).astype(str),
                   np.array(["PublicTest"] * 20))
    evaluate.reference_predictions("alpha", data, models_dir=tmp_path)
    assert len(list((cache_folder / "predictions").glob("alpha-*.npy"))) == 3


def test_shifted_views_are_cached_apart_and_average_like_predicting(tmp_path, tiny_model,
                                                                    cache_folder):
    from fer_core import evaluate

    data = _random_faces(10, 11)
    tiny_model.save(tmp_path / "alpha.keras")
    flips = evaluate.reference_probabilities(["alpha"], data, tta=True, models_dir=tmp_path)
    keys_before = sorted((cache_folder / "predictions").glob("alpha-*.npy"))
    ten = evaluate.reference_probabilities(["alpha"], data, tta="shifts", models_dir=tmp_path)
    keys_after = sorted((cache_folder / "predictions").glob("alpha-*.npy"))
    assert len(keys_before) == 2 and len(keys_after) == 10  # one file per view
    assert set(keys_before) <= set(keys_after)  # the unshifted views kept their keys
    np.testing.assert_allclose(ten["alpha"], predict_probabilities(tiny_model, data, tta="shifts"),
                               rtol=1e-5, atol=1e-7)
    assert not np.allclose(ten["alpha"], flips["alpha"], atol=1e-4)


def test_reference_predictions_recompute_for_a_new_model_or_a_broken_cache(
        tmp_path, tiny_model, cache_folder):
    from fer_core.evaluate import reference_predictions

    data = _random_faces(10, 8)
    tiny_model.save(tmp_path / "alpha.keras")
    first = reference_predictions("alpha", data, models_dir=tmp_path)
    for cached in (cache_folder / "predictions").glob("*.npy"):
        cached.write_bytes(b"not an array")
    np.testing.assert_array_equal(reference_predictions("alpha", data, models_dir=tmp_path),
                                  first)
    retrained = keras.models.clone_model(tiny_model)  # other weights, same file name
    retrained.set_weights([-weights for weights in tiny_model.get_weights()])
    retrained.save(tmp_path / "alpha.keras")
    again = reference_predictions("alpha", data, models_dir=tmp_path)
    np.testing.assert_array_equal(again, retrained.predict(data.model_input(), verbose=0))
    assert not np.allclose(again, first)
    with pytest.raises(FileNotFoundError, match="No reference model 'beta'"):
        reference_predictions("beta", data, models_dir=tmp_path)


def test_a_model_in_a_subfolder_is_named_by_its_relative_path(tmp_path, tiny_model,
                                                              cache_folder):
    """Snapshots of long runs live in models/snapshots/: 'snapshots/name' finds, scores and
    caches them like a top-level model, and the same bytes under another name predict alike."""
    from fer_core import evaluate

    data = _random_faces(12, 9)
    (tmp_path / "snapshots").mkdir()
    tiny_model.save(tmp_path / "snapshots" / "alpha_cycle1.keras")
    tiny_model.save(tmp_path / "alpha.keras")
    both = evaluate.reference_probabilities(["snapshots/alpha_cycle1", "alpha"], data,
                                            tta=True, models_dir=tmp_path)
    assert list(both) == ["snapshots/alpha_cycle1", "alpha"]
    np.testing.assert_array_equal(both["snapshots/alpha_cycle1"], both["alpha"])
    assert len(list((cache_folder / "predictions" / "snapshots").glob("alpha_cycle1-*.npy"))) == 2
    with pytest.raises(FileNotFoundError, match="snapshots/beta"):
        evaluate.reference_predictions("snapshots/beta", data, models_dir=tmp_path)


def test_chosen_by_validation_reads_each_records_best_epoch(tmp_path):
    curves = {"steady": [0.60, 0.62, 0.63], "peaked": [0.55, 0.65, 0.50]}
    for name, val in curves.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(
            {"validation_curve": {"val_accuracy": val}}))
    # the peak counts, not the last epoch: that is the checkpoint its run kept
    assert chosen_by_validation(["steady", "peaked"], tmp_path) == "peaked"
    (tmp_path / "bare.json").write_text(json.dumps({"test": {}}))
    with pytest.raises(ValueError, match="no validation curve"):
        chosen_by_validation(["steady", "bare"], tmp_path)
    # a refit trained on the validation faces: its own curve, if any, must not choose it
    (tmp_path / "refit.json").write_text(json.dumps(
        {"config": {"refit": True}, "validation_curve": {"val_accuracy": [0.99]}}))
    with pytest.raises(ValueError, match="is a refit"):
        chosen_by_validation(["steady", "refit"], tmp_path)
    with pytest.raises(ValueError, match="at least one"):
        chosen_by_validation([], tmp_path)


def test_final_model_is_the_refit_of_the_chosen_model_when_there_is_one(tmp_path):
    (tmp_path / "chosen.json").write_text(json.dumps({"config": {"refit": False}}))
    assert final_model("chosen", tmp_path) == "chosen"
    (tmp_path / "chosen_refit.json").write_text(json.dumps({"config": {"refit": True}}))
    assert final_model("chosen", tmp_path) == "chosen_refit"
    # a model merely named like a refit must not replace the chosen one
    (tmp_path / "other.json").write_text("{}")
    (tmp_path / "other_refit.json").write_text(json.dumps({"config": {"refit": False}}))
    with pytest.raises(ValueError, match="not trained with --refit"):
        final_model("other", tmp_path)


def test_target_table_says_which_targets_were_met():
    table = target_table({"best ensemble": ("a + b", 71.04),
                          "best single model, no TTA": ("a", 67.31),
                          "attention U-Net": ("c", 65.953)})
    assert table.loc["best ensemble", "met"] and table.loc["best ensemble", "margin"] == 0.04
    assert not table.loc["best single model, no TTA", "met"]
    assert table.loc["best single model, no TTA", "margin"] == -0.69
    # a few faces short is short, and the table says so
    assert not table.loc["attention U-Net", "met"]
    assert (table.loc["attention U-Net", "measured"], table.loc["attention U-Net", "margin"]) \
        == (65.95, -0.05)
    assert table.loc["best single model, no TTA", "goal"] == CAMPAIGN_TARGETS[
        "best single model, no TTA"]
    with pytest.raises(ValueError, match="Unknown target"):
        target_table({"best model": ("a", 70.0)})


def _tiny_classifier(seed: int) -> keras.Model:
    inputs = keras.Input((48, 48, 1))
    hidden = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    outputs = keras.layers.Dense(K, activation="softmax", kernel_initializer=
                                 keras.initializers.RandomNormal(stddev=0.2, seed=seed))(hidden)
    return keras.Model(inputs, outputs)


def _ten_view_study_of_saved_classifiers(folder, count: int):
    """``count`` tiny classifiers saved in ``folder``, random validation and test faces, and
    the ten-view study run on them."""
    from fer_core import evaluate

    classifiers = {f"m{seed}": _tiny_classifier(seed) for seed in range(count)}
    for name, model in classifiers.items():
        model.save(folder / f"{name}.keras")
    validation, test = _random_faces(40, 1), _random_faces(40, 2)
    study = evaluate.ten_view_study(list(classifiers), validation, test, models_dir=folder)
    return classifiers, validation, test, study


def test_ten_view_study_rescores_the_flip_chosen_ensemble_and_its_record_is_checked(
        tmp_path, cache_folder):
    from fer_core import evaluate, store

    classifiers, validation, test, study = _ten_view_study_of_saved_classifiers(tmp_path, 3)

    flips = {split: {name: predict_probabilities(model, faces, tta=True)
                     for name, model in classifiers.items()}
             for split, faces in (("validation", validation), ("test", test))}
    by_flips = ensemble_table(flips["test"], test, validation=(flips["validation"], validation))
    assert study["members"] == by_flips.index[0].split(" + ")
    members = study["members"]
    assert len(study["ensembles"]) == 2 ** len(members) - 1
    ranked = [row["validation accuracy"] for row in study["ensembles"].values()]
    assert ranked == sorted(ranked, reverse=True)
    ten = {name: predict_probabilities(classifiers[name], test, tta="shifts") for name in members}
    for name in members:
        expected = paired_comparison(ten[name], flips["test"][name], test)
        assert study["gains"][name] == pytest.approx(expected)
    top = study["top"]
    assert top["accuracy"] == pytest.approx(
        score(ensemble([ten[name] for name in top["members"]]), test).accuracy)
    # the weighted vote is chosen on the validation faces' flips alone, then scored with ten
    weighted = study["weighted"]
    assert weighted["weights"] == greedy_ensemble(flips["validation"], validation.labels)
    chosen = list(weighted["weights"])
    votes = [predict_probabilities(classifiers[name], test, tta="shifts") for name in chosen]
    expected = ensemble(votes, [weighted["weights"][name] for name in chosen])
    assert weighted["final"]["accuracy"] == pytest.approx(score(expected, test).accuracy)
    assert weighted["versus_equal"] == pytest.approx(paired_comparison(
        expected, ensemble([ten[name] for name in study["final"]["members"]]), test))

    record = tmp_path / "ten_view_study.json"
    checksums = {name: store.weights_checksum(tmp_path / f"{name}.keras") for name in classifiers}
    stored = {**study, "candidates": list(classifiers), "weights_sha256": checksums,
              "data_checksum": "archive-a", "command": "python scripts/ten_view_study.py"}
    record.write_text(json.dumps(stored))
    evaluate.recorded_ten_view_study(record, models_dir=tmp_path, data_checksum="archive-a")
    with pytest.raises(ValueError, match="another archive"):
        evaluate.recorded_ten_view_study(record, models_dir=tmp_path, data_checksum="archive-b")
    shifts, gains, run = evaluate.recorded_ten_view_study(record, models_dir=tmp_path)
    assert list(shifts.index) == list(study["ensembles"])
    assert gains.loc[members[0], "difference"] == pytest.approx(
        study["gains"][members[0]]["difference"])
    assert run["members"] == members and "ensembles" not in run
    # the recorded validation accuracies rank the test table as the validation faces did
    assert run["flip_validation"] == by_flips["validation accuracy"].to_dict()
    recorded_choice = ensemble_table(flips["test"], test, validation=run["flip_validation"])
    pd.testing.assert_frame_equal(recorded_choice, by_flips)
    with pytest.raises(ValueError, match="measured among other models"):
        ensemble_table({**flips["test"], "new": flips["test"]["m0"]}, test,
                       validation=run["flip_validation"])
    record.write_text(json.dumps({**stored, "weights_sha256": {
        name: checksum for name, checksum in checksums.items() if name != "m2"}}))
    with pytest.raises(ValueError, match=r"no weight checksum for \['m2'\]"):
        evaluate.recorded_ten_view_study(record, models_dir=tmp_path)
    record.write_text(json.dumps(stored))
    _tiny_classifier(99).save(tmp_path / f"{members[0]}.keras")  # retrained since
    with pytest.raises(ValueError, match=r"measure it again.*ten_view_study\.py"):
        evaluate.recorded_ten_view_study(record, models_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"scripts/ten_view_study\.py --json"):
        evaluate.recorded_ten_view_study(tmp_path / "absent.json")


def test_ten_view_study_reports_the_chosen_members_refits_and_a_new_refit_voids_the_record(
        tmp_path, cache_folder):
    from fer_core import evaluate, store

    classifiers, validation, test, before = _ten_view_study_of_saved_classifiers(tmp_path, 2)
    assert before["final"] == before["top"]  # no refit trained: the top row is reported

    def recorded(study: dict) -> dict:
        names = dict.fromkeys([*classifiers, *study["final"]["members"]])
        (tmp_path / "study.json").write_text(json.dumps(
            {**study, "candidates": list(classifiers), "weights_sha256": {
                name: store.weights_checksum(tmp_path / f"{name}.keras") for name in names}}))
        return evaluate.recorded_ten_view_study(tmp_path / "study.json", tmp_path)[2]

    assert recorded(before)["final"]["members"] == before["top"]["members"]
    chosen = before["top"]["members"][0]
    refit = _tiny_classifier(7)
    refit.save(tmp_path / f"{chosen}_refit.keras")
    (tmp_path / f"{chosen}_refit.json").write_text(json.dumps({"config": {"refit": True}}))
    with pytest.raises(ValueError, match=r"now reported as.*_refit.*measure it again"):
        recorded(before)
    after = evaluate.ten_view_study(list(classifiers), validation, test, models_dir=tmp_path)
    assert after["top"] == before["top"]  # the choice is made without the refit
    finals = [f"{name}_refit" if name == chosen else name for name in after["top"]["members"]]
    assert after["final"]["members"] == finals
    models = {**classifiers, f"{chosen}_refit": refit}
    expected = score(ensemble([predict_probabilities(models[name], test, tta="shifts")
                               for name in finals]), test)
    assert after["final"]["accuracy"] == pytest.approx(expected.accuracy)
    assert recorded(after)["final"]["members"] == finals
    assert after["weighted"]["final"]["members"] == [
        f"{name}_refit" if name == chosen else name for name in after["weighted"]["weights"]]


def test_score_agrees_with_scikit_learn_even_with_a_class_never_seen():
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    rng = np.random.default_rng(3)
    labels = rng.choice([0, 2, 3, 4, 5, 6], 300)  # no disgust face
    predicted = np.where(rng.random(300) < 0.6, labels, rng.integers(0, K, 300))
    data = FerData(np.zeros((300, 48, 48), np.uint8), labels,
                   np.array([f"f{i}" for i in range(300)]),
                   np.array(["PublicTest", "PrivateTest"] * 150))
    metrics = score(predicted, data)
    classes = list(range(K))
    expected = precision_recall_fscore_support(labels, predicted, labels=classes,
                                               zero_division=0)
    for column, values in zip(("precision", "recall", "f1", "support"), expected, strict=True):
        np.testing.assert_allclose(metrics.per_class[column], values)
    assert metrics.accuracy == pytest.approx(accuracy_score(labels, predicted))
    assert metrics.macro_f1 == pytest.approx(f1_score(labels, predicted, labels=classes,
                                                      average="macro", zero_division=0))
    np.testing.assert_allclose(metrics.confusion, confusion_matrix(
        labels, predicted, labels=classes, normalize="true"))
    private = data.usage == "PrivateTest"
    assert metrics.by_half["PrivateTest"] == pytest.approx(
        accuracy_score(labels[private], predicted[private]))


def test_a_published_measurement_is_printed_and_read_back_by_its_reader(tmp_path, capsys):
    from fer_core.evaluate import publish_measurement, recorded_benchmark

    record = {"steps": 3, "results": [{"model": "a", "inference images/s": 12.5}]}
    publish_measurement(record, tmp_path / "benchmark.json")
    assert json.loads(capsys.readouterr().out) == record
    assert recorded_benchmark(tmp_path / "benchmark.json").loc["a", "inference images/s"] == 12.5
    publish_measurement(record)  # no file asked for: printed only
    assert json.loads(capsys.readouterr().out) == record
    assert [path.name for path in tmp_path.iterdir()] == ["benchmark.json"]



def test_size_study_table_reads_a_record_only_run_and_refuses_other_faces(tmp_path):
    test = _labelled(np.arange(10) % K, ["PublicTest"] * 10)
    (tmp_path / "small_run.json").write_text(json.dumps({
        "model": "baseline", "train_images": 2250, "parameters": 5,
        "config": {"epochs": 30, "init_from": "models/autoencoder.keras"},
        "test": {"accuracy": 0.354, "macro_f1": 0.2, "images": 10}}))
    table = size_study_table(tmp_path, test)
    row = table.iloc[0]
    assert (row["run"], row["scored from"], row["accuracy"], row["macro_f1"]) == (
        "small_run", "record", 35.4, 20.0)
    assert row["initialized from"] == "autoencoder" and row["train images"] == 2250
    with pytest.raises(ValueError, match="keeps only its record"):
        size_study_table(tmp_path, test.head(5))
