"""Every figure of the book, in one look.

Each function returns the matplotlib ``Figure`` so notebooks can display it and tests can check
it; none of them calls ``plt.show``.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from fer_core.calibrate import calibration_error_of_table
from fer_core.config import CLASS_NAMES, SEED
from fer_core.data import FerData

PALETTE = dict(zip(CLASS_NAMES, sns.color_palette("colorblind", len(CLASS_NAMES)), strict=True))


def set_style() -> None:
    """The book's figure style (called on import)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update({"figure.dpi": 90, "axes.titlesize": 10, "savefig.bbox": "tight"})


set_style()


def image_grid(images: np.ndarray, titles: Sequence[str] | None = None, columns: int = 8,
               size: float = 1.25, cmap: str = "gray", suptitle: str | None = None) -> plt.Figure:
    """Show images (N, 48, 48) in a grid with optional titles."""
    count = len(images)
    rows = max(1, int(np.ceil(count / columns)))
    figure, axes = plt.subplots(rows, columns, figsize=(columns * size, rows * size * 1.15),
                                squeeze=False)
    for position, axis in enumerate(axes.flat):
        axis.axis("off")
        if position < count:
            axis.imshow(np.squeeze(images[position]), cmap=cmap, vmin=0, vmax=255)
            if titles is not None:
                axis.set_title(titles[position], fontsize=7)
    if suptitle:
        figure.suptitle(suptitle)
    figure.tight_layout()
    return figure


def class_samples(data: FerData, per_class: int = 8, seed: int = SEED) -> plt.Figure:
    """A row of random example faces for each class."""
    rng = np.random.default_rng(seed)
    figure, axes = plt.subplots(len(CLASS_NAMES), per_class,
                                figsize=(per_class * 1.1, len(CLASS_NAMES) * 1.15), squeeze=False)
    for label, name in enumerate(CLASS_NAMES):
        positions = np.flatnonzero(data.labels == label)
        chosen = rng.choice(positions, size=min(per_class, len(positions)), replace=False)
        for column, axis in enumerate(axes[label]):
            axis.set_xticks([])
            axis.set_yticks([])
            if column < len(chosen):
                axis.imshow(data.images[chosen[column]], cmap="gray", vmin=0, vmax=255)
        axes[label, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return figure


def class_count_bars(counts: pd.DataFrame) -> plt.Figure:
    """Bar chart of images per class and split (from ``fer_core.data.class_counts``)."""
    table = counts.drop(index="total", errors="ignore").drop(columns="all", errors="ignore")
    long = table.reset_index(names="class").melt("class", var_name="split", value_name="images")
    figure, axis = plt.subplots(figsize=(8, 3.6))
    sns.barplot(long, x="class", y="images", hue="split", ax=axis)
    axis.set_title("Images per class: disgust is about 16x rarer than happy")
    for container in axis.containers:
        axis.bar_label(container, fontsize=6, padding=1)
    figure.tight_layout()
    return figure


def pixel_histograms(parts: dict[str, np.ndarray], bins: int = 64) -> plt.Figure:
    """Overlaid pixel-intensity densities (values 0..255) for several image sets."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    for name, images in parts.items():
        axis.hist(images.ravel(), bins=bins, range=(0, 255), density=True, histtype="step",
                  linewidth=1.6, label=name)
    axis.set_xlabel("pixel intensity")
    axis.set_ylabel("density")
    axis.legend()
    figure.tight_layout()
    return figure


def histogram_with_threshold(values: np.ndarray, threshold: float, label: str,
                             title: str) -> plt.Figure:
    """Histogram (log count) of a score with a vertical threshold line."""
    figure, axis = plt.subplots(figsize=(7, 3.2))
    axis.hist(values, bins=80, color="0.55")
    axis.axvline(threshold, color="crimson", linestyle="--",
                 label=f"threshold {threshold:.4g} ({(values > threshold).sum()} above)")
    axis.set_yscale("log")
    axis.set_xlabel(label)
    axis.set_ylabel("images (log scale)")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    return figure


def side_by_side(rows: dict[str, np.ndarray], titles: Sequence[str] | None = None,
                 cmaps: dict[str, str] | None = None, size: float = 1.3) -> plt.Figure:
    """Rows of images, one row per named variant (e.g. original / denoised / difference)."""
    names = list(rows)
    columns = len(next(iter(rows.values())))
    figure, axes = plt.subplots(len(names), columns, figsize=(columns * size, len(names) * size),
                                squeeze=False)
    for row, name in enumerate(names):
        for column, axis in enumerate(axes[row]):
            image = np.squeeze(rows[name][column])
            cmap = (cmaps or {}).get(name, "gray")
            limits = {"vmin": 0, "vmax": 255} if cmap == "gray" else {}
            axis.imshow(image, cmap=cmap, **limits)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0 and titles is not None:
                axis.set_title(titles[column], fontsize=7)
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return figure


def line_plot(frame: pd.DataFrame, x: str, y: str, hue: str | None = None,
              title: str = "", ylabel: str | None = None) -> plt.Figure:
    """A seaborn line plot with markers (sweeps, learning curves)."""
    figure, axis = plt.subplots(figsize=(6.5, 3.4))
    sns.lineplot(frame, x=x, y=y, hue=hue, marker="o", ax=axis)
    axis.set_title(title)
    if ylabel:
        axis.set_ylabel(ylabel)
    figure.tight_layout()
    return figure


def training_curves(histories: dict[str, dict[str, list[float]]],
                    metrics: tuple[str, ...] = ("loss", "accuracy")) -> plt.Figure:
    """Each metric per epoch (training dashed, validation solid) for several runs.

    ``metrics=("accuracy",)`` leaves out the losses, e.g. for distilled runs recorded before
    their validation loss included the teacher (it is not comparable with the training loss).
    """
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.4), squeeze=False)
    axes = axes[0]
    colours = sns.color_palette("colorblind", len(histories))
    for colour, (name, history) in zip(colours, histories.items(), strict=True):
        for axis, metric in zip(axes, metrics, strict=True):
            if metric in history:
                axis.plot(history[metric], linestyle="--", color=colour, alpha=0.6)
            if f"val_{metric}" in history:
                axis.plot(history[f"val_{metric}"], color=colour, label=name)
    for axis, metric in zip(axes, metrics, strict=True):
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
    axes[-1].legend(fontsize=7)
    axes[0].set_title("dashed: training, solid: validation")
    figure.tight_layout()
    return figure


def confusion_heatmap(matrix: np.ndarray, title: str = "") -> plt.Figure:
    """Row-normalized confusion matrix (true class in rows)."""
    figure, axis = plt.subplots(figsize=(5.6, 4.6))
    sns.heatmap(matrix, annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1, ax=axis,
                xticklabels=CLASS_NAMES, yticklabels=CLASS_NAMES, cbar=False)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    return figure


def heatmap_overlays(images: np.ndarray, maps: dict[str, np.ndarray],
                     titles: Sequence[str] | None = None, alpha: float = 0.45,
                     size: float = 1.35) -> plt.Figure:
    """Faces with heat maps in [0, 1] laid over them; one row per named set of maps."""
    columns = len(images)
    rows = ["face", *maps]
    figure, axes = plt.subplots(len(rows), columns, figsize=(columns * size, len(rows) * size),
                                squeeze=False)
    for column in range(columns):
        for row, name in enumerate(rows):
            axis = axes[row, column]
            axis.imshow(np.squeeze(images[column]), cmap="gray", vmin=0, vmax=255)
            if name != "face":
                axis.imshow(maps[name][column], cmap="jet", alpha=alpha, vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if row == 0 and titles is not None:
                axis.set_title(titles[column], fontsize=7)
    for row, name in enumerate(rows):
        axes[row, 0].set_ylabel(name, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return figure


def bar_table(frame: pd.DataFrame, x: str, y: str, hue: str | None = None,
              title: str = "") -> plt.Figure:
    """Grouped bars from a tidy table."""
    figure, axis = plt.subplots(figsize=(8, 3.4))
    sns.barplot(frame, x=x, y=y, hue=hue, ax=axis)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def recipe_deltas(table: pd.DataFrame, base: str = "base",
                  noise: float | None = None) -> plt.Figure:
    """Each proxy run's accuracy change from the base run, in points (validation and test).

    ``table`` is :func:`fer_core.evaluate.recipe_study_table`'s: indexed by run, with
    ``validation \u0394`` and ``test \u0394`` columns. ``noise`` (points) shades the band
    of changes that are ties, e.g. the gap between two runs that differ only in arithmetic.
    """
    others = table.drop(index=base)
    tidy = others[["validation \u0394", "test \u0394"]].rename(
        columns=lambda column: column.split()[0]).rename_axis("run").reset_index().melt(
        id_vars="run", var_name="split", value_name="points")
    figure, axis = plt.subplots(figsize=(7, 0.45 * len(others) + 1.2))
    sns.barplot(tidy, y="run", x="points", hue="split", orient="h", ax=axis,
                palette="colorblind")
    axis.axvline(0, color="black", linewidth=0.8)
    if noise:
        axis.axvspan(-noise, noise, color="grey", alpha=0.15, zorder=0,
                     label="within the noise")
        axis.legend()
    axis.set_xlabel(f"accuracy change from '{base}' (points)")
    axis.set_ylabel("")
    figure.tight_layout()
    return figure


def reliability_diagram(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Accuracy against confidence per bin (from ``fer_core.calibrate.reliability_table``).

    Points below the diagonal are over-confident bins. Each legend entry carries the expected
    calibration error computed from its table, so the figure never disagrees with the numbers.
    """
    figure, axis = plt.subplots(figsize=(4.8, 4.4))
    axis.plot([0, 1], [0, 1], color="0.5", linestyle="--", linewidth=1, label="perfect")
    for name, table in tables.items():
        ece = calibration_error_of_table(table)
        axis.plot(table.confidence, table.accuracy, marker="o", markersize=4,
                  label=f"{name} (ECE {100 * ece:.1f}%)")
    axis.set_xlim(0, 1)
    axis.set_ylim(0, 1)
    axis.set_aspect("equal")
    axis.set_xlabel("confidence (mean top-class probability in the bin)")
    axis.set_ylabel("accuracy in the bin")
    axis.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    return figure


def share_heatmap(frame: pd.DataFrame, title: str = "") -> plt.Figure:
    """A table of shares in [0, 1] (e.g. rows that sum to 1) as an annotated heat map, using
    the table's own row and column labels."""
    figure, axis = plt.subplots(figsize=(0.62 * len(frame.columns) + 1.6,
                                         0.42 * len(frame) + 1.4))
    sns.heatmap(frame.astype(float), annot=True, fmt=".2f", cmap="Blues", vmin=0, vmax=1,
                ax=axis, cbar=False)
    axis.set_title(title)
    figure.tight_layout()
    return figure


def faces_with_votes(images: np.ndarray, titles: Sequence[str], votes: pd.DataFrame,
                     size: float = 1.5) -> plt.Figure:
    """Each face above a bar chart of its annotators' votes (columns of ``votes``)."""
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(count * size, 2.6 * size), squeeze=False,
                                gridspec_kw={"height_ratios": [1, 1.1]})
    colours = [PALETTE.get(name, (0.6, 0.6, 0.6)) for name in votes.columns]
    for column in range(count):
        axes[0, column].imshow(images[column], cmap="gray", vmin=0, vmax=255)
        axes[0, column].set_title(titles[column], fontsize=7)
        axes[0, column].axis("off")
        bars = axes[1, column]
        bars.barh(np.arange(len(votes.columns)), votes.iloc[column].to_numpy(), color=colours)
        bars.set_yticks(np.arange(len(votes.columns)))
        bars.set_yticklabels(votes.columns if column == 0 else [], fontsize=6)
        bars.invert_yaxis()
        bars.set_xlim(0, max(10, float(votes.to_numpy().max())))
        bars.tick_params(axis="x", labelsize=6)
    figure.tight_layout()
    return figure
