"""Model cards (Mitchell et al. 2019) generated from the reference models' JSON records.

A card is never typed: :func:`model_card` writes it from a record (and, when given, the
robustness measurements of :mod:`fer_core.robustness`), so it cannot disagree with the numbers.
"""

from __future__ import annotations

import pandas as pd

from fer_core.config import CLASS_NAMES
from fer_core.data import training_pixels

INTENDED_USE = (
    "Teaching and research on facial expression recognition: reproducing and comparing "
    "results on FER-2013. Not for decisions about people (hiring, education, policing, health, "
    "credit), not for inferring anyone's inner emotional state, and not where the law restricts "
    "emotion recognition (the EU AI Act prohibits it at work and in education).")
PIXEL_NOTES = {
    "original": "the original FER-2013 pixels (Kaggle archive)",
    "rebuilt": "a superseded copy whose training images had been rebuilt from degraded "
               "sources, with the same files, labels and test images; to be retrained on the "
               "original pixels",
}


def _teacher(source: str) -> str:
    """Words for a soft-target source of :func:`fer_core.distill.soft_target_matrix`."""
    if source.startswith("ensemble:"):
        members = source[len("ensemble:"):].split("+")
        return ("the ensemble " if len(members) > 1 else "") + " + ".join(
            f"`{member}`" for member in members)
    return "the FER+ annotators' votes" if source == "ferplus" else f"`{source}`"


def model_card(record: dict, robustness: pd.DataFrame | None = None) -> str:
    """A Markdown model card from a reference model's record.

    Parameters
    ----------
    record : dict
        The model's JSON record (``fer_core.store.read_record``).
    robustness : pandas.DataFrame, optional
        Rows of :func:`fer_core.robustness.robustness_table` for this model; the largest
        accuracy drops become its known failure modes.

    Raises
    ------
    ValueError
        When the record has no test metrics or per-class table (not a classifier's record).
    """
    if "test" not in record or "per_class" not in record:
        raise ValueError(f"The record of {record.get('name', '?')!r} has no test metrics and "
                         "per-class table: model cards are made for trained classifiers.")
    test, config = record["test"], record.get("config", {})
    pixels = training_pixels(record.get("data_checksum"))
    lineage = record.get("lineage") or {}
    epochs = lineage.get("epochs", config.get("epochs"))
    hours = lineage.get("training_hours", record.get("training_seconds", 0) / 3600)
    per_class = pd.DataFrame(record["per_class"]).set_index("class").reindex(list(CLASS_NAMES))
    table = (per_class[["precision", "recall", "f1"]] * 100).round(1)
    table["support"] = per_class["support"].astype(int)
    named = (("augment", "augmentation"), ("exclude_outliers", "autoencoder outliers removed"),
             ("class_weights", "class weights"), ("denoise", "non-local-means denoising"))
    switches = [label for key, label in named if config.get(key)]
    if config.get("augment") and config.get("augmentation"):
        changed = ", ".join(f"{key} {value}" for key, value in config["augmentation"].items())
        switches[0] = f"augmentation ({changed}; other settings as in chapter 4)"
    if config.get("label_smoothing"):
        switches.append(f"label smoothing {config['label_smoothing']}")
    if config.get("soft_targets"):
        switches.append(f"taught by {_teacher(config['soft_targets'])} (soft weight "
                        f"{config.get('soft_weight')}, temperature "
                        f"{config.get('soft_temperature')})")
    if config.get("refit"):
        switches.append("refit on the training and validation faces together, last epoch kept")
    cycles = (f" ({lineage['cycles']} learning-rate cycles)" if lineage.get("cycles", 1) > 1
              else "")
    lines = [
        f"### Model card: `{record['name']}`",
        "",
        f"- **Model**: `{record['model']}`, {record.get('parameters', 0):,} parameters; input "
        "48x48 grayscale faces, raw pixel values 0..255; output probabilities of "
        f"{', '.join(CLASS_NAMES)}.",
        f"- **Intended use**: {INTENDED_USE}",
        f"- **Training data**: {record.get('train_images', 0):,} FER-2013 training faces "
        f"({PIXEL_NOTES.get(pixels, pixels + ' pixels')}); single web-search labels, about a "
        "third of which the ten FER+ annotators' majority does not confirm (chapter 10).",
        f"- **Training**: {', '.join(switches) or 'no data switches'}; {epochs} epochs{cycles} in "
        f"{hours:.1f} h on {record.get('hardware', {}).get('cpu', '?')} "
        f"({record.get('hardware', {}).get('cores', '?')} cores); command "
        f"`{record.get('command', '?')}`.",
        f"- **Test results** (7,178 faces, no test-time augmentation): accuracy "
        f"{100 * test['accuracy']:.1f}% (PublicTest {100 * test['accuracy_PublicTest']:.1f}%, "
        f"PrivateTest {100 * test['accuracy_PrivateTest']:.1f}%), macro F1 "
        f"{100 * test['macro_f1']:.1f}%.",
        "",
        table.to_markdown(floatfmt=".1f"),
        "",
    ]
    weakest = table["recall"].idxmin()
    failures = [f"lowest recall on {weakest} ({table.loc[weakest, 'recall']:.1f}%)"]
    if robustness is not None and len(robustness):
        worst = robustness[robustness.perturbation != "clean"].nsmallest(3, "change")
        failures += [f"{row.perturbation} {row.severity}: {row.change:+.1f} points"
                     for row in worst.itertuples()]
    lines += [f"- **Known failure modes**: {'; '.join(failures)}.",
              "- **Limits**: FER-2013 holds web-searched, mostly frontal, mostly adult faces "
              "with one label each; a facial configuration is not a reliable readout of an "
              "emotion (Barrett et al. 2019). Accuracy on other populations, cameras or "
              "contexts is unknown."]
    return "\n".join(lines)
