"""Figures: training curves, confusion matrices, ROC curves, image grids, class counts and
values with their intervals.

Every function returns a matplotlib ``Figure`` and never shows it: a notebook displays the
figure it gets back, a script saves it with ``fig.savefig``. Figures are closed in pyplot
right away, so Jupyter does not draw them a second time. ``caption=profiles.tag(config)``
writes small grey text under the figure saying which profile and data produced it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from covidlab.data import display_name
from covidlab.images import load_image
from covidlab.sources import may_show

#: Characters of a small-font caption that fit in one inch of figure width (about 8 pt type).
CAPTION_CHARS_PER_INCH = 14


def new_figure(nrows: int = 1, ncols: int = 1, **kwargs) -> tuple[Figure, np.ndarray]:
    """A figure and a 2-D array of axes that pyplot does not keep.

    Closed in pyplot at once, so a notebook shows it once, when a cell returns it; every
    figure function of the package starts here.
    """
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained", **kwargs)
    plt.close(fig)
    return fig, axes


def add_caption(fig: Figure, caption: str | None) -> Figure:
    """Write ``caption`` (e.g. the run's profile tag) in small grey text under the figure,
    wrapped to the figure's width: an unwrapped long caption would widen the saved image and
    shrink the plot on the page."""
    if caption:
        width = max(40, int(fig.get_figwidth() * CAPTION_CHARS_PER_INCH))
        fig.supxlabel(textwrap.fill(caption, width), fontsize="small", color="grey")
    return fig


def interval_rows(
    labels: Sequence[str],
    values: Sequence[float],
    low: Sequence[float],
    high: Sequence[float],
    *,
    label: str | None = None,
    width: float = 7.5,
    row_height: float = 0.6,
    margin: float = 1.4,
    fontsize: float | None = None,
) -> tuple[Figure, plt.Axes, np.ndarray]:
    """One row per item, the first on top: its value as a dot and its interval (e.g. an
    accuracy and its Wilson 95 % interval) as a bar, the item's label on the left.

    Returns the figure, its axes and the rows' y positions, so that a chapter can mark more at
    the same rows (a paper's claim, a chance line) before it adds its caption.
    """
    values, low, high = (np.asarray(column, dtype=float) for column in (values, low, high))
    fig, axes = new_figure(figsize=(width, row_height * len(values) + margin))
    ax = axes[0, 0]
    y = np.arange(len(values))[::-1]
    ax.errorbar(values, y, xerr=[values - low, high - values], fmt="o", capsize=4, label=label)
    ax.set_yticks(y, list(labels), fontsize=fontsize)
    return fig, ax, y


def showable(manifest: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``manifest`` whose image the book may show (:func:`covidlab.sources.may_show`).

    Reads the ``license`` column (a recipe's or source reader's manifest has one); synthetic
    images are always shown; a row without a licence is not.
    """
    licenses = manifest["license"] if "license" in manifest else pd.Series("", manifest.index)
    keep = [
        may_show(license, source)
        for license, source in zip(licenses, manifest["source"], strict=True)
    ]
    return manifest[keep]


def load_showable(
    manifest: pd.DataFrame, image_size: tuple[int, int], *, resize: str = "stretch"
) -> np.ndarray:
    """The images of ``manifest`` as one array, for a figure (e.g. Grad-CAM).

    Every image shown by the course goes through here or :func:`image_grid`. Raises ValueError
    naming the first file whose licence does not let the book show it: pick rows from
    :func:`showable` instead.
    """
    allowed = showable(manifest)
    refused = manifest.loc[~manifest.index.isin(allowed.index), "path"]
    if len(refused):
        raise ValueError(
            f"{refused.iloc[0]} has no licence that lets the book show it (license "
            f"{manifest.loc[refused.index[0]].get('license', '')!r}); choose images with "
            "viz.showable(manifest)"
        )
    return np.stack([load_image(path, image_size, resize=resize) for path in manifest["path"]])


def plot_history(history, *, title: str | None = None, caption: str | None = None) -> Figure:
    """Loss and accuracy per epoch, training and (when present) validation.

    ``history`` is a ``keras.callbacks.History``, its ``.history`` dict, or
    ``RunResult.history``.
    """
    curves: Mapping[str, Sequence[float]] = getattr(history, "history", history)
    fig, axes = new_figure(1, 2, figsize=(9, 3.5))
    for ax, metric in zip(axes[0], ("loss", "accuracy"), strict=True):
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = curves.get(prefix + metric)
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(metric)
        ax.legend()
    if title:
        fig.suptitle(title)
    return add_caption(fig, caption)


def plot_confusion_matrix(
    cm: np.ndarray,
    class_names: Sequence[str],
    title: str | None = None,
    normalize: bool = False,
    *,
    caption: str | None = None,
) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted class) with counts in cells.

    ``normalize=True`` divides each row by its total, so a cell reads as the share of that
    class's images (the diagonal is then each class's sensitivity); counts stay in brackets.
    """
    counts = np.asarray(cm)
    n = len(class_names)
    if counts.shape != (n, n):
        raise ValueError(f"{n} class names for a confusion matrix of shape {counts.shape}")
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    shown = shares if normalize else counts
    fig, axes = new_figure(figsize=(1.2 * n + 2.5, 1.2 * n + 1.8))
    ax = axes[0, 0]
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else max(1, counts.max()))
    fig.colorbar(image, ax=ax, shrink=0.8)
    names = [display_name(name) for name in class_names]
    ax.set_xticks(range(n), names, rotation=30, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    threshold = (1 if normalize else max(1, counts.max())) / 2
    for i in range(n):
        for j in range(n):
            text = f"{shares[i, j]:.2f}\n({counts[i, j]})" if normalize else f"{counts[i, j]}"
            color = "white" if shown[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color)
    if title:
        ax.set_title(title)
    return add_caption(fig, caption)


def plot_roc(
    roc: Mapping[str, tuple[np.ndarray, np.ndarray, float]],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Figure:
    """One-vs-rest ROC curves, from ``metrics.roc_curves``: ``{class: (fpr, tpr, auc)}``."""
    fig, axes = new_figure(figsize=(4.8, 4.5))
    ax = axes[0, 0]
    for name, (fpr, tpr, auc) in roc.items():
        ax.plot(fpr, tpr, label=f"{display_name(name)} (AUC {auc:.2f})")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    ax.set_xlabel("false positive rate (1 - specificity)")
    ax.set_ylabel("true positive rate (sensitivity)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    return add_caption(fig, caption)


def image_grid(
    manifest: pd.DataFrame,
    n_per_class: int = 4,
    image_size: tuple[int, int] = (128, 128),
    by: str = "label",
    *,
    seed: int = 0,
    resize: str = "pad",
    caption: str | None = None,
) -> Figure:
    """A few images of each group: one row per ``label`` (or per ``source``).

    Each image is titled with the other column (its source when grouped by label, its label
    when grouped by source), which makes it visible when classes come from different places.
    Only images whose licence lets the book show them are drawn (:func:`showable`).
    """
    if by not in ("label", "source"):
        raise ValueError(f"by must be 'label' or 'source', not {by!r}")
    manifest = showable(manifest)
    if manifest.empty:
        raise ValueError("none of these images has a licence that lets the book show it")
    other = "source" if by == "label" else "label"
    groups = sorted(manifest[by].unique())
    fig, axes = new_figure(
        len(groups), n_per_class, figsize=(1.9 * n_per_class, 2.1 * len(groups) + 0.3)
    )
    for row, group in enumerate(groups):
        rows = manifest[manifest[by] == group]
        picked = rows.sample(n=min(n_per_class, len(rows)), random_state=seed)
        for column in range(n_per_class):
            ax = axes[row, column]
            ax.set_xticks([])
            ax.set_yticks([])
            if column < len(picked):
                item = picked.iloc[[column]]
                pixels = load_showable(item, image_size, resize=resize)[0]
                item = item.iloc[0]
                ax.imshow(pixels.astype(np.uint8))
                ax.set_title(display_name(str(item[other])), fontsize="small")
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(display_name(str(group)))
    return add_caption(fig, caption)


def plot_counts(
    counts: pd.Series | pd.DataFrame,
    *,
    title: str | None = None,
    ylabel: str = "images",
    caption: str | None = None,
) -> Figure:
    """Bar chart of image counts: a Series (one bar per class, e.g. ``data.class_counts``),
    or a DataFrame (grouped bars, e.g. columns "paper" and "this run", one row per class)."""
    table = counts.to_frame() if isinstance(counts, pd.Series) else counts
    fig, axes = new_figure(figsize=(max(4.5, 1.1 * len(table) * max(1, table.shape[1] / 2)), 3.5))
    ax = axes[0, 0]
    table.rename(index=display_name).plot.bar(ax=ax, rot=0, legend=table.shape[1] > 1)
    for bars in ax.containers:
        ax.bar_label(bars, fontsize="small")
    ax.set_ylabel(ylabel)
    ax.set_xlabel("")
    if title:
        ax.set_title(title)
    return add_caption(fig, caption)


def image_row(
    rows: pd.DataFrame,
    *,
    image_size: tuple[int, int] = (160, 160),
    ncols: int = 4,
    title: str | None = None,
    caption: str | None = None,
) -> Figure:
    """The images of ``rows`` in a grid, each titled with its label, view and day.

    Raises ValueError when an image's licence does not let the book show it
    (:func:`covidlab.viz.load_showable`).
    """
    pixels = load_showable(rows, image_size, resize="pad")
    nrows = max(1, -(-len(rows) // ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(2.6 * ncols, 2.9 * nrows + 0.4))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, item), image in zip(axes.flat, rows.iterrows(), pixels, strict=False):
        ax.imshow(image.astype(np.uint8))
        parts = [display_name(str(item["label"])), str(item.get("view", "") or "")]
        day = item.get("meta_offset")
        if isinstance(day, str) and day.strip():
            parts.append(f"day {day}")
        ax.set_title(
            "\n".join([" · ".join(p for p in parts if p), _short(Path(item["path"]).name)]),
            fontsize="x-small",
        )
    if title:
        fig.suptitle(title)
    return add_caption(fig, caption)


def _short(name: str, width: int = 30) -> str:
    half = (width - 1) // 2
    return name if len(name) <= width else f"{name[:half]}…{name[-half:]}"
