"""Figures come back as matplotlib Figures, closed in pyplot, with the profile caption."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text

from covidlab import data, metrics, synthetic, viz

CAPTION = "smoke profile · synthetic data · weights: none"
CLASSES = ("covid", "normal", "viral")


def all_text(fig: Figure) -> list[str]:
    return [text.get_text() for text in fig.findobj(Text)]


def check(fig: Figure) -> None:
    assert isinstance(fig, Figure)
    assert CAPTION in all_text(fig)
    assert fig.number not in plt.get_fignums()  # not kept by pyplot: Jupyter draws it once
    fig.canvas.draw()  # renders without error


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return synthetic.synthetic_manifest(tmp_path_factory.mktemp("grid"), CLASSES, 3, image_size=40)


def test_history():
    history = {"loss": [0.9, 0.6, 0.4], "accuracy": [0.5, 0.7, 0.8], "val_loss": [1, 0.8, 0.7]}
    fig = viz.plot_history(history, caption=CAPTION)
    check(fig)
    loss_axes = fig.axes[0]
    assert [line.get_label() for line in loss_axes.lines] == ["training", "validation"]
    np.testing.assert_array_equal(loss_axes.lines[0].get_ydata(), history["loss"])


def test_confusion_matrix_counts_and_row_shares():
    cm = np.array([[39, 0, 0], [0, 17, 2], [0, 0, 19]])  # Soares & Soares 2020, VGG16
    fig = viz.plot_confusion_matrix(cm, CLASSES, title="VGG16", caption=CAPTION)
    check(fig)
    assert {"39", "17", "2", "19", "COVID-19"} <= set(all_text(fig))
    shares = viz.plot_confusion_matrix(cm, CLASSES, normalize=True, caption=CAPTION)
    check(shares)
    assert "0.89\n(17)" in all_text(shares) and "0.11\n(2)" in all_text(shares)
    with pytest.raises(ValueError, match="2 class names"):
        viz.plot_confusion_matrix(cm, CLASSES[:2])


def test_roc():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_prob = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1]] * 2)
    curves = metrics.roc_curves(y_true, y_prob, CLASSES)
    fig = viz.plot_roc(curves, caption=CAPTION)
    check(fig)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels[-1] == "chance" and len(labels) == len(curves) + 1


@pytest.mark.parametrize(("by", "rows"), [("label", 3), ("source", 1)])
def test_image_grid(manifest, by, rows):
    fig = viz.image_grid(manifest, n_per_class=2, image_size=(32, 32), by=by, caption=CAPTION)
    check(fig)
    assert len(fig.axes) == rows * 2
    assert len(fig.axes[0].images) == 1


def test_image_grid_rejects_other_columns(manifest):
    with pytest.raises(ValueError, match="label"):
        viz.image_grid(manifest, by="patient_id")


def test_counts_series_and_table(manifest):
    fig = viz.plot_counts(data.class_counts(manifest), caption=CAPTION)
    check(fig)
    assert len(fig.axes[0].patches) == 3
    table = pd.DataFrame({"paper": [224, 504], "this run": [8, 8]}, index=["covid", "normal"])
    grouped = viz.plot_counts(table, caption=CAPTION)
    check(grouped)
    assert len(grouped.axes[0].patches) == 4 and "504" in all_text(grouped)


def test_interval_rows_draws_the_first_item_on_top_with_its_interval():
    fig, ax, y = viz.interval_rows(
        ["a", "b", "c"], [0.5, 0.7, 0.9], [0.4, 0.6, 0.85], [0.6, 0.8, 0.95], label="accuracy"
    )
    assert list(y) == [2, 1, 0]
    assert [tick.get_text() for tick in ax.get_yticklabels()] == ["a", "b", "c"]
    bars = ax.containers[0]  # the errorbar: its segments span low..high at each row
    segments = bars.lines[2][0].get_segments()
    assert [tuple(segment[:, 0]) for segment in segments] == [(0.4, 0.6), (0.6, 0.8), (0.85, 0.95)]
    assert [segment[0, 1] for segment in segments] == [2, 1, 0]
    assert ax.get_legend_handles_labels()[1] == ["accuracy"]
