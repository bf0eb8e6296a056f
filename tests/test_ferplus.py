"""FER+ votes: alignment by file name, soft labels, majorities, agreement, annotator ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fer_core import ferplus
from fer_core.config import CLASS_NAMES
from fer_core.data import DataError, FerData
from fer_core.ferplus import (
    NO_VOTES,
    NOT_A_FACE,
    UNKNOWN,
    VOTE_COLUMNS,
    Votes,
    agreement,
    align_votes,
    annotator_ceiling,
    majority_labels,
    soft_labels,
)


def _data() -> FerData:
    """Four faces; the first id repeats across two class folders, as in the Kaggle archive."""
    ids = np.array(["Training_1@angry", "Training_1@happy", "Training_2", "PublicTest_3"])
    labels = np.array([0, 3, 6, 4])
    usage = np.array(["Training", "Training", "Training", "PublicTest"])
    return FerData(np.zeros((4, 48, 48), np.uint8), labels, ids, usage, "test")


def _row(file: str, **votes: int) -> dict:
    return {"file": file, **{column: votes.get(column, 0) for column in VOTE_COLUMNS}}


def _table() -> pd.DataFrame:
    return pd.DataFrame([
        _row("train/angry/Training_1.jpg", anger=7, disgust=3),
        _row("train/happy/Training_1.jpg", happiness=10),
        _row("train/surprise/Training_2.jpg", surprise=4, fear=4, NF=2),
        _row("test/neutral/PublicTest_3.jpg", neutral=2, unknown=8),
    ])


def test_votes_align_by_file_and_class_folder_whatever_the_row_order():
    data = _data()
    aligned = align_votes(_table(), data)
    shuffled = align_votes(_table().sample(frac=1.0, random_state=3), data)
    np.testing.assert_array_equal(aligned.counts, shuffled.counts)
    assert aligned.matched.all()
    anger, happiness = VOTE_COLUMNS.index("anger"), VOTE_COLUMNS.index("happiness")
    assert aligned.counts[0, anger] == 7 and aligned.counts[1, happiness] == 10  # same name,
    # two folders: each face gets its own folder's votes


def test_unmatched_faces_are_reported_not_guessed():
    table = _table()
    table.loc[2, list(VOTE_COLUMNS)] = np.nan  # a file FER+ has no votes for
    with pytest.raises(DataError, match=r"Only 3 of 4 faces .* no row for 'Training_2'"):
        align_votes(table, _data())
    old = ferplus.MIN_MATCHED_SHARE
    try:
        ferplus.MIN_MATCHED_SHARE = 0.5
        votes = align_votes(table, _data())
    finally:
        ferplus.MIN_MATCHED_SHARE = old
    assert votes.matched.tolist() == [True, True, False, True]
    assert majority_labels(votes)[2] == NO_VOTES
    assert np.isnan(soft_labels(votes)[2]).all()


def test_soft_labels_sum_to_one_over_the_seven_classes():
    votes = align_votes(_table(), _data())
    soft = soft_labels(votes)
    assert soft.shape == (4, len(CLASS_NAMES))
    np.testing.assert_allclose(soft.sum(axis=1), 1.0)
    np.testing.assert_allclose(soft[0], [0.7, 0.3, 0, 0, 0, 0, 0])  # angry, disgust
    np.testing.assert_allclose(soft[2], [0, 0, 0.5, 0, 0, 0, 0.5])  # NF votes left out
    np.testing.assert_allclose(soft[3], [0, 0, 0, 0, 1.0, 0, 0])  # unknown votes left out


def test_majority_labels_name_non_emotions():
    votes = align_votes(_table(), _data())
    majority = majority_labels(votes)
    assert majority[:3].tolist() == [0, 3, 2]  # fear/surprise tie -> first in CLASS_NAMES
    assert majority[3] == UNKNOWN
    assert ferplus.outcome_name(NOT_A_FACE) == "not a face"


def test_agreement_is_one_and_zero_bits_when_unanimous():
    table = agreement(align_votes(_table(), _data()))
    assert table.loc["Training_1@happy", "majority share"] == 1.0
    assert table.loc["Training_1@happy", "entropy"] == 0.0
    assert table.loc["Training_1@angry", "entropy"] == pytest.approx(
        -(0.7 * np.log2(0.7) + 0.3 * np.log2(0.3)))


def test_annotator_ceiling_on_hand_made_votes():
    counts = np.zeros((5, len(VOTE_COLUMNS)), np.int64)
    counts[0, 0] = 10  # unanimous: every held-out annotator agrees with the rest
    counts[1, [0, 1]] = [9, 1]  # the dissenter is wrong (0.1), the 9 are right: 0.9
    counts[2, [0, 1]] = [5, 5]  # held out from either side: the other side wins 5-4: 0
    counts[3, [0, 1]] = [6, 4]  # 6-side held out: 5-4, right; 4-side: 6-3, wrong: 0.6
    counts[4, 0] = 1  # one vote: no "others"
    ceiling = annotator_ceiling(Votes(counts, np.ones(5, bool), np.arange(5).astype(str)))
    np.testing.assert_allclose(ceiling[:4], [1.0, 0.9, 0.0, 0.6])
    assert np.isnan(ceiling[4])


def test_annotator_ceiling_counts_ties_as_fractions():
    counts = np.zeros((1, len(VOTE_COLUMNS)), np.int64)
    counts[0, [0, 1, 2]] = [4, 3, 3]
    # hold out a 0-vote: 3-3-3 three-way tie containing 0 -> 1/3 right, weight 0.4;
    # hold out a 1-vote: 4-2-3, majority 0, wrong; same for 2.
    ceiling = annotator_ceiling(Votes(counts, np.ones(1, bool), np.array(["x"])))
    assert ceiling[0] == pytest.approx(0.4 / 3)


def test_votes_path_says_where_to_put_the_table(tmp_path, monkeypatch):
    monkeypatch.delenv("FERPLUS_PATH", raising=False)
    monkeypatch.setenv("FER2013_PATH", str(tmp_path / "fer2013.zip"))
    with pytest.raises(DataError, match=r"Put 'ferplus\.csv\.gz' beside the FER-2013 archive"):
        ferplus.votes_path()
    (tmp_path / "ferplus.csv.gz").write_bytes(b"")
    assert ferplus.votes_path() == tmp_path / "ferplus.csv.gz"


def test_for_data_selects_a_split_in_its_order():
    data = _data()
    votes = align_votes(_table(), data)
    part = data.select(np.array([3, 0]))
    np.testing.assert_array_equal(votes.for_data(part).counts, votes.counts[[3, 0]])


def test_label_confusion_rows_sum_to_one_and_name_non_emotions():
    data, votes = _data(), align_votes(_table(), _data())
    confusion = ferplus.label_confusion(data, votes)
    assert list(confusion.columns[-3:]) == ["contempt", "unknown", "not a face"]
    filled = confusion[confusion.sum(axis=1) > 0]
    np.testing.assert_allclose(filled.sum(axis=1), 1.0)
    assert confusion.loc["neutral", "unknown"] == 1.0  # PublicTest_3: mostly "unknown"
    assert confusion.loc["surprise", "fear"] == 1.0  # the fear/surprise tie


def test_label_agreement_counts_matching_majorities():
    table = ferplus.label_agreement(_data(), align_votes(_table(), _data()))
    assert table.loc["angry", "FER+ agrees %"] == 100.0
    assert table.loc["surprise", "FER+ agrees %"] == 0.0
    assert table.loc["surprise", "most frequent other"] == "fear"
    assert table.loc["all", "FER+ agrees %"] == 50.0  # angry and happy of four


def test_rescore_judges_predictions_three_ways():
    data, votes = _data(), align_votes(_table(), _data())
    predicted = np.zeros((4, 7))
    predicted[[0, 1, 2, 3], [1, 3, 2, 4]] = 1  # disgust, happy, fear, neutral
    table = ferplus.rescore(predicted, data, votes, min_votes=2)
    overall = table.loc["all"]
    assert overall["vs FER-2013 %"] == 50.0  # happy and neutral right
    # FER+ majorities with a class: angry, happy, fear -> disgust wrong, happy and fear right
    assert overall["vs FER+ majority %"] == pytest.approx(200 / 3, abs=0.1)
    # votes for the predictions: disgust 3, happy 10, fear 4, neutral 2 -> all >= 2
    assert overall["plausible %"] == 100.0
    # mistakes against FER-2013: faces 0 (disgust vs angry majority) and 2 (fear = majority)
    assert overall["mistakes FER+ backs %"] == 50.0


def test_rescore_models_adds_the_vote_share_of_each_prediction():
    data, votes = _data(), align_votes(_table(), _data())
    predicted = np.zeros((4, 7))
    predicted[[0, 1, 2, 3], [1, 3, 2, 4]] = 1  # disgust, happy, fear, neutral
    table = ferplus.rescore_models({"m": predicted, "same": predicted}, data, votes)
    assert list(table.index) == ["m", "same"]
    expected = ferplus.rescore(predicted, data, votes).loc["all"]
    assert table.loc["m", "vs FER-2013 %"] == expected["vs FER-2013 %"]
    # votes for the predictions out of each face's total: 3/10, 10/10, 4/10, 2/10
    totals = votes.counts.sum(axis=1)
    shares = np.array([3, 10, 4, 2]) / totals
    assert table.loc["m", "vote share %"] == pytest.approx(100 * shares.mean(), abs=0.05)


def test_outcome_table_counts_non_emotion_majorities():
    votes = align_votes(_table(), _data())
    table = ferplus.outcome_table(votes, {"first two": np.array([1, 1, 0, 0], bool),
                                          "last": np.array([0, 0, 0, 1], bool)})
    assert table.loc["first two", "faces"] == 2 and table.loc["first two", "unknown %"] == 0
    assert table.loc["last", "unknown %"] == 100.0
    assert table.loc["last", "mean majority share %"] == 80.0


def test_ceiling_table_puts_people_and_models_on_the_same_faces():
    votes = align_votes(_table(), _data())
    right = np.zeros((4, 7))
    right[[0, 1, 2, 3], [0, 3, 2, 4]] = 1  # agrees with every FER+ majority that is a class
    table = ferplus.ceiling_table({"model": right}, votes)
    assert table.loc["all", "faces"] == 3  # the "unknown" face is left out
    assert table.loc["all", "model %"] == 100.0
    expected = np.nanmean(annotator_ceiling(votes)[:3]) * 100
    assert table.loc["all", "annotator ceiling %"] == pytest.approx(expected, abs=0.05)
