"""FER+ votes: every FER-2013 face relabelled by 10 annotators (Barsoum et al. 2016, MIT license).

The votes come as a table with one row per file of the Kaggle archive (``file`` such as
``train/angry/Training_10118481.jpg``, then vote counts for ``neutral, happiness, surprise,
sadness, anger, disgust, fear, contempt, unknown, NF``; NF = not a face). :func:`load_votes`
aligns them with a loaded :class:`~fer_core.data.FerData` by file name and class folder, so the
row order of the table does not matter. Users of the ICML ``fer2013.csv`` build the same table
from FER+'s ``fer2013new.csv``, whose rows follow the csv's (:func:`votes_from_ferplus_csv`).

FER+ has three answers FER-2013 lacks. They are kept in the counts and handled explicitly:

- ``contempt`` is not a FER-2013 class: its votes are left out of the 7-class soft labels;
- ``unknown`` (the annotator could not tell) and ``NF`` (not a face) are not emotions either:
  left out of soft labels, and reported by :func:`majority_labels` as their own outcomes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.config import CLASS_NAMES, data_path_from_environment
from fer_core.data import DataError, FerData

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                "contempt", "unknown", "NF")
# FER+ column -> FER-2013 class
FERPLUS_TO_CLASS = {"anger": "angry", "disgust": "disgust", "fear": "fear",
                    "happiness": "happy", "neutral": "neutral", "sadness": "sad",
                    "surprise": "surprise"}
EMOTION_COLUMNS = [VOTE_COLUMNS.index(next(k for k, v in FERPLUS_TO_CLASS.items() if v == name))
                   for name in CLASS_NAMES]  # vote columns in CLASS_NAMES order
VOTES_VARIABLE = "FERPLUS_PATH"
VOTES_FILE_NAME = "ferplus.csv.gz"
# majority_labels outcomes beyond the 7 classes
CONTEMPT, UNKNOWN, NOT_A_FACE, NO_VOTES = -1, -2, -3, -4
OUTCOME_NAMES = {CONTEMPT: "contempt", UNKNOWN: "unknown", NOT_A_FACE: "not a face",
                 NO_VOTES: "no FER+ votes"}
MIN_MATCHED_SHARE = 0.9


@dataclass
class Votes:
    """FER+ vote counts aligned with a :class:`~fer_core.data.FerData`, row for row.

    Attributes
    ----------
    counts : numpy.ndarray
        (N, 10) integer votes in :data:`VOTE_COLUMNS` order; zeros where ``matched`` is False.
    matched : numpy.ndarray
        (N,) bool: the face has FER+ votes.
    ids : numpy.ndarray
        The faces' ids, as in the data.
    """

    counts: np.ndarray
    matched: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def select(self, index: np.ndarray) -> Votes:
        """The votes of a subset (a boolean mask or positions), like ``FerData.select``."""
        return Votes(self.counts[index], self.matched[index], self.ids[index])

    def for_data(self, data: FerData) -> Votes:
        """The votes of the faces of ``data`` (a split of the data these votes were loaded
        for), in its order."""
        position = {image_id: i for i, image_id in enumerate(self.ids.tolist())}
        missing = [i for i in data.ids.tolist() if i not in position]
        if missing:
            raise DataError(f"{len(missing)} faces (e.g. {missing[0]}) are not among the faces "
                            "these votes were loaded for.")
        return self.select(np.array([position[i] for i in data.ids.tolist()], np.int64))


def votes_path(path: str | Path | None = None) -> Path:
    """The FER+ votes table: ``path``, ``$FERPLUS_PATH``, or ``ferplus.csv.gz`` beside the
    archive named by ``$FER2013_PATH``.

    Raises
    ------
    DataError
        When none of these exists; the message says where to get the table.
    """
    candidates = [Path(path).expanduser()] if path is not None else []
    if path is None and os.environ.get(VOTES_VARIABLE):
        candidates.append(Path(os.environ[VOTES_VARIABLE]).expanduser())
    archive = data_path_from_environment()
    if path is None and archive is not None:
        candidates.append(archive.parent / VOTES_FILE_NAME)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(f"'{c}'" for c in candidates) or "nothing (no path given)"
    raise DataError(f"FER+ votes not found (tried {tried}). Put '{VOTES_FILE_NAME}' beside the "
                    f"FER-2013 archive, set {VOTES_VARIABLE}, or pass the path. ICML csv users "
                    "can build it from FER+'s fer2013new.csv (votes_from_ferplus_csv).")


def read_votes_table(path: str | Path | None = None) -> pd.DataFrame:
    """The votes table as published beside the archive (``file`` + the ten vote columns)."""
    source = votes_path(path)
    try:
        table = pd.read_csv(source)
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DataError(f"Cannot read the FER+ votes table '{source}': {error}") from error
    missing = {"file", *VOTE_COLUMNS} - set(table.columns)
    if missing:
        raise DataError(f"'{source}' lacks the column(s) {sorted(missing)}; expected 'file' and "
                        f"{', '.join(VOTE_COLUMNS)}.")
    return table


def _face_key(image_id: str, label: int) -> tuple[str, str]:
    return image_id.split("@")[0], CLASS_NAMES[int(label)]


def align_votes(table: pd.DataFrame, data: FerData) -> Votes:
    """Vote counts for each face of ``data``, matched by file name and class folder.

    Rows of the table without votes (empty counts) leave their face unmatched. At least
    :data:`MIN_MATCHED_SHARE` of the faces must match, or the table belongs to other data.

    Raises
    ------
    DataError
        When too few faces match; the message gives examples on both sides.
    """
    stems = table["file"].astype(str).str.rsplit("/", n=1).str[-1].str.rsplit(".", n=1).str[0]
    folders = table["file"].astype(str).str.split("/").str[-2]
    has_votes = table[list(VOTE_COLUMNS)].notna().all(axis=1).to_numpy()
    lookup = {(stem, folder): row for row, (stem, folder, voted) in
              enumerate(zip(stems, folders, has_votes, strict=True)) if voted}
    counts = np.zeros((len(data), len(VOTE_COLUMNS)), np.int64)
    matched = np.zeros(len(data), bool)
    values = table[list(VOTE_COLUMNS)].to_numpy()
    for position, (image_id, label) in enumerate(zip(data.ids.tolist(), data.labels,
                                                     strict=True)):
        row = lookup.get(_face_key(image_id, label))
        if row is not None:
            counts[position] = values[row].astype(np.int64)
            matched[position] = True
    if len(data) and matched.mean() < MIN_MATCHED_SHARE:
        example = data.ids[~matched][0]
        raise DataError(f"Only {int(matched.sum())} of {len(data)} faces have a row in the "
                        f"votes table (e.g. no row for '{example}'; the table has "
                        f"'{table['file'].iloc[0]}'). The table does not belong to this "
                        "archive.")
    return Votes(counts, matched, data.ids.copy())


def load_votes(data: FerData, path: str | Path | None = None) -> Votes:
    """FER+ votes aligned with ``data`` (see :func:`votes_path` for where they are read)."""
    return align_votes(read_votes_table(path), data)


def votes_from_ferplus_csv(ferplus_csv: str | Path, data: FerData) -> Votes:
    """Votes for data loaded from the ICML ``fer2013.csv``: FER+'s ``fer2013new.csv`` has one
    row per csv row, in the same order, which is the ``<Usage>_<row>`` id the loader gives."""
    table = pd.read_csv(ferplus_csv)
    renamed = {"Neutral": "neutral", "Happiness": "happiness", "Surprise": "surprise",
               "Sadness": "sadness", "Anger": "anger", "Disgust": "disgust", "Fear": "fear",
               "Contempt": "contempt", "Unknown": "unknown"}
    table = table.rename(columns=renamed)
    if "NF" not in table or "Usage" not in table:
        raise DataError(f"'{ferplus_csv}' is not FER+'s fer2013new.csv (Usage, Image name and "
                        "the ten vote columns expected).")
    row_ids = [f"{usage}_{row}" for row, usage in enumerate(table["Usage"])]
    position = {image_id: i for i, image_id in enumerate(row_ids)}
    counts = np.zeros((len(data), len(VOTE_COLUMNS)), np.int64)
    matched = np.zeros(len(data), bool)
    values = table[list(VOTE_COLUMNS)].fillna(0).to_numpy(np.int64)
    for index, image_id in enumerate(data.ids.tolist()):
        row = position.get(image_id)
        if row is not None and values[row].sum() > 0:
            counts[index], matched[index] = values[row], True
    return Votes(counts, matched, data.ids.copy())


def soft_labels(votes: Votes) -> np.ndarray:
    """Vote distributions over the 7 FER-2013 classes, (N, 7), each row summing to 1.

    Contempt, unknown and not-a-face votes are left out. A face with no emotion vote at all
    (unmatched, or only contempt/unknown/NF votes) gets a row of NaN: there is no distribution
    to learn from, and a silent uniform row would pretend there is.
    """
    emotion = votes.counts[:, EMOTION_COLUMNS].astype(np.float64)
    totals = emotion.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, emotion / totals, np.nan)


def majority_labels(votes: Votes) -> np.ndarray:
    """The FER+ majority per face: a class index 0..6, or :data:`CONTEMPT`, :data:`UNKNOWN`,
    :data:`NOT_A_FACE`, :data:`NO_VOTES`.

    The majority is taken over all ten answers; a tie between classes goes to the class that
    comes first in :data:`~fer_core.config.CLASS_NAMES` (deterministic, and rare).
    """
    ordered = np.concatenate([votes.counts[:, EMOTION_COLUMNS],
                              votes.counts[:, [VOTE_COLUMNS.index("contempt"),
                                               VOTE_COLUMNS.index("unknown"),
                                               VOTE_COLUMNS.index("NF")]]], axis=1)
    winner = ordered.argmax(axis=1)
    outcome = np.where(winner < len(CLASS_NAMES), winner,
                       np.array([CONTEMPT, UNKNOWN, NOT_A_FACE])[
                           np.clip(winner - len(CLASS_NAMES), 0, 2)])
    return np.where(votes.matched & (ordered.sum(axis=1) > 0), outcome, NO_VOTES)


def outcome_name(outcome: int) -> str:
    """A class name or the name of a non-class outcome of :func:`majority_labels`."""
    return CLASS_NAMES[outcome] if outcome >= 0 else OUTCOME_NAMES[outcome]


def agreement(votes: Votes) -> pd.DataFrame:
    """Per face: number of votes, share of the most voted answer, and entropy (bits) of the
    vote distribution over all ten answers (0 = unanimous)."""
    counts = votes.counts.astype(np.float64)
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = counts / totals[:, None]
        entropy = -np.nansum(np.where(shares > 0, shares * np.log2(shares), 0.0), axis=1)
        majority_share = np.where(totals > 0, counts.max(axis=1) / totals, np.nan)
    return pd.DataFrame({"votes": totals.astype(int), "majority share": majority_share,
                         "entropy": np.where(totals > 0, entropy, np.nan)}, index=votes.ids)


def annotator_ceiling(votes: Votes) -> np.ndarray:
    """Expected accuracy of one annotator against the majority of the others, per face.

    Leave one annotator out: the held-out annotator gave answer ``k`` with probability
    ``c_k / n`` (the table keeps counts, not who voted what, and annotators are exchangeable);
    the others' counts are ``c - e_k`` and their majority the answer(s) with the most votes.
    The held-out annotator is right when ``k`` is that majority; a tie between ``t`` answers
    counts ``1/t``. Faces with fewer than two votes give NaN.

    .. math::
        \\text{ceiling}(c) = \\sum_k \\frac{c_k}{n} \\cdot
            \\frac{[\\,k \\in \\arg\\max_j (c - e_k)_j\\,]}{|\\arg\\max_j (c - e_k)_j|}
    """
    counts = votes.counts.astype(np.int64)
    totals = counts.sum(axis=1)
    result = np.zeros(len(counts), np.float64)
    for answer in range(counts.shape[1]):
        others = counts.copy()
        others[:, answer] -= 1
        best = others.max(axis=1, keepdims=True)
        is_best = others == best
        right = is_best[:, answer] / is_best.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            result += np.where(counts[:, answer] > 0, counts[:, answer] / totals * right, 0.0)
    return np.where(totals >= 2, result, np.nan)


# --------------------------------------------------------------------------- analyses

def label_confusion(data: FerData, votes: Votes) -> pd.DataFrame:
    """Share of each FER-2013 class's faces (rows) by FER+ majority (columns: the 7 classes,
    then contempt, unknown, not a face); faces without votes are left out. Rows sum to 1."""
    majority = majority_labels(votes)
    keep = majority != NO_VOTES
    columns = [*CLASS_NAMES, *(OUTCOME_NAMES[k] for k in (CONTEMPT, UNKNOWN, NOT_A_FACE))]
    frame = pd.crosstab(pd.Categorical([CLASS_NAMES[k] for k in data.labels[keep]],
                                       CLASS_NAMES),
                        pd.Categorical([outcome_name(k) for k in majority[keep]], columns),
                        normalize="index", dropna=False)
    frame.index.name, frame.columns.name = "FER-2013 label", "FER+ majority"
    return frame


def label_agreement(data: FerData, votes: Votes) -> pd.DataFrame:
    """Per FER-2013 class: faces with votes, the share whose FER+ majority is the same class,
    the most frequent other majority, and the annotators' ceiling (mean of
    :func:`annotator_ceiling`) on those faces; an ``all`` row at the end."""
    majority = majority_labels(votes)
    ceiling = annotator_ceiling(votes)
    rows = {}
    for index, name in [*enumerate(CLASS_NAMES), (None, "all")]:
        chosen = (majority != NO_VOTES) & ((data.labels == index) if index is not None
                                           else True)
        others = majority[chosen & (majority != data.labels)]
        rows[name] = {
            "faces with votes": int(chosen.sum()),
            "FER+ agrees %": _percent(majority[chosen] == data.labels[chosen]),
            "most frequent other": outcome_name(int(pd.Series(others).mode()[0]))
            if index is not None and len(others) else "",
            "annotator ceiling %": _percent(ceiling[chosen]),
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def ceiling_by_majority(votes: Votes) -> pd.Series:
    """Mean single-annotator accuracy against the others (%), grouped by the FER+ majority
    class: how well a person does on the faces that people call, say, fear."""
    majority = majority_labels(votes)
    ceiling = annotator_ceiling(votes)
    return pd.Series({name: _percent(ceiling[majority == index])
                      for index, name in enumerate(CLASS_NAMES)}, name="annotator ceiling %")


def rescore(probabilities: np.ndarray, data: FerData, votes: Votes,
            min_votes: int = 2) -> pd.DataFrame:
    """A model's predictions judged three ways, per FER-2013 class and overall (%).

    - ``vs FER-2013``: accuracy against the original single labels;
    - ``vs FER+ majority``: accuracy against the majority of ten annotators (faces whose
      majority is one of the 7 classes);
    - ``plausible``: the predicted class received at least ``min_votes`` FER+ votes;
    - ``mistakes FER+ backs``: of the faces wrong against FER-2013, the share where the
      prediction is the FER+ majority.
    """
    predicted = np.asarray(probabilities).argmax(axis=1)
    majority = majority_labels(votes)
    has_class = majority >= 0
    votes_for_prediction = votes.counts[np.arange(len(predicted)),
                                        np.array(EMOTION_COLUMNS)[predicted]]
    rows = {}
    for index, name in [*enumerate(CLASS_NAMES), (None, "all")]:
        chosen = (data.labels == index) if index is not None else np.ones(len(data), bool)
        voted = chosen & votes.matched
        wrong = voted & (predicted != data.labels)
        rows[name] = {
            "faces": int(chosen.sum()),
            "vs FER-2013 %": _percent(predicted[chosen] == data.labels[chosen]),
            "vs FER+ majority %": _percent(
                predicted[voted & has_class] == majority[voted & has_class]),
            "plausible %": _percent(votes_for_prediction[voted] >= min_votes),
            "mistakes FER+ backs %": _percent(predicted[wrong] == majority[wrong]),
        }
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def rescore_models(probabilities: dict[str, np.ndarray], data: FerData, votes: Votes,
                   min_votes: int = 2) -> pd.DataFrame:
    """Several models judged as :func:`rescore` judges one (its ``all`` row, %), one row each,
    plus ``vote share %``: the mean share of a face's ten votes that went to the predicted
    class (faces with votes), which rewards a second-best answer people also gave."""
    rows = {}
    for name, model_probabilities in probabilities.items():
        predicted = np.asarray(model_probabilities).argmax(axis=1)
        counts = votes.counts[votes.matched]
        share = counts[np.arange(len(counts)), np.array(EMOTION_COLUMNS)[
            predicted[votes.matched]]] / counts.sum(axis=1)
        row = rescore(model_probabilities, data, votes, min_votes).loc["all"].to_dict()
        rows[name] = {**{key: value for key, value in row.items() if key != "faces"},
                      "vote share %": round(_percent(share), 1)}
    return pd.DataFrame.from_dict(rows, orient="index")


def soft_vote_table(votes: Votes) -> pd.DataFrame:
    """Vote counts per face over the 7 classes and the three other answers, columns named as
    :func:`label_confusion`'s (for figures of faces with their vote bars)."""
    columns = [*CLASS_NAMES, "contempt", "unknown", "not a face"]
    order = [*EMOTION_COLUMNS, VOTE_COLUMNS.index("contempt"), VOTE_COLUMNS.index("unknown"),
             VOTE_COLUMNS.index("NF")]
    return pd.DataFrame(votes.counts[:, order], columns=columns, index=votes.ids)


def _percent(values: np.ndarray) -> float:
    """100 x the mean of booleans or fractions, ignoring NaN; NaN when there is nothing."""
    values = np.asarray(values, np.float64)
    values = values[~np.isnan(values)]
    return 100 * float(values.mean()) if len(values) else float("nan")


def outcome_table(votes: Votes, groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """For groups of faces (boolean masks over ``votes``): how many, and the shares (%) whose
    FER+ majority is not a face, unknown, contempt, or that have no votes, and the mean share
    of votes for the majority answer."""
    majority = majority_labels(votes)
    share = agreement(votes)["majority share"].to_numpy()
    rows = {}
    for name, mask in groups.items():
        mask = np.asarray(mask, bool)
        rows[name] = {"faces": int(mask.sum()),
                      **{f"{OUTCOME_NAMES[k]} %": _percent(majority[mask] == k)
                         for k in (NOT_A_FACE, UNKNOWN, CONTEMPT, NO_VOTES)},
                      "mean majority share %": _percent(share[mask])}
    return pd.DataFrame.from_dict(rows, orient="index").round(1)


def ceiling_table(probabilities: dict[str, np.ndarray], votes: Votes) -> pd.DataFrame:
    """Per FER+ majority class: faces, the annotators' ceiling (%), and each model's accuracy
    against the FER+ majority (%), with an ``all`` row. Faces whose majority is not one of the
    7 classes are left out, so people and models are judged on the same faces."""
    majority = majority_labels(votes)
    ceiling = annotator_ceiling(votes)
    predicted = {name: np.asarray(p).argmax(axis=1) for name, p in probabilities.items()}
    rows = {}
    for index, name in [*enumerate(CLASS_NAMES), (None, "all")]:
        chosen = (majority == index) if index is not None else (majority >= 0)
        rows[name] = {"faces": int(chosen.sum()), "annotator ceiling %": _percent(
            ceiling[chosen]), **{f"{model} %": _percent(labels[chosen] == majority[chosen])
                                 for model, labels in predicted.items()}}
    return pd.DataFrame.from_dict(rows, orient="index").round(1)
