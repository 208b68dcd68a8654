"""Chapter 07 (Apostolopoulos & Mpesiana 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.apostolopoulos`. Here: the two datasets' runs
(:func:`load_dataset`), the two accuracies of Tables 2 and 5 from a 3x3 confusion matrix
(:func:`two_accuracies`), the paper's own arithmetic re-done (:func:`check_reported`), the
score of a model that never says COVID-19 (:func:`always_predict`), and where each cut-off
lands in Keras' layer list (:func:`cutoff_summary`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab import metrics

if TYPE_CHECKING:
    import keras

    from covidlab.recipes import RecipeResult
    from covidlab.run_config import RunConfig

from covidlab.papers.apostolopoulos import (
    CUTOFF_NOTES,
    DATASETS,
    METRIC_COLUMNS,
    SPEC,
)


def load_dataset(config: RunConfig, dataset: str = "Dataset_1") -> RecipeResult:
    """The manifest and requested / available / used table of one dataset under ``config``.

    Synthetic images for the smoke profile (``config.max_per_class`` per class; the table
    still shows the paper's counts). Otherwise the recipe from the sources; when
    ``config.max_per_class`` is set (demo) the recipe is scaled so that COVID-19 gets that
    many images and the other classes keep the paper's proportions, because the class
    imbalance is part of what this paper's numbers mean.
    """
    from covidlab import profiles

    info = DATASETS[dataset]
    if config.data == "synthetic":
        offset = list(DATASETS).index(dataset)  # different synthetic images per dataset
        config = dataclasses.replace(config, seed=config.seed + offset)
        return profiles.load_recipe(config, variant=info.variant, requested=info.counts)
    scale = 1.0
    if config.max_per_class is not None:
        scale = min(1.0, config.max_per_class / info.counts["covid"])
    return profiles.load_recipe(config, variant=info.variant, requested=info.counts, scale=scale)


def example_images(manifest: pd.DataFrame, n_per_class: int = 3, seed: int = 0) -> pd.DataFrame:
    """A few images per class to show the padding on, real ones whenever possible.

    The run's own images when they are real; for a synthetic run, Dataset_1's classes drawn
    from the unpacked sources when they can be found (:func:`covidlab.download.locate_sources`,
    no image checks, so it takes a second), else the synthetic images.
    """
    from covidlab import download, recipes

    if (manifest["source"] == "synthetic").all():
        try:
            pool = recipes.source_pool(download.locate_sources())
        except FileNotFoundError:
            pool = None
        if pool is not None:
            plan = {"covid": "covid", "bacterial": "pneumonia", "normal": "normal"}
            pool = pool[pool["true_label"].isin(plan)]
            manifest = pool.assign(label=pool["true_label"].map(plan))
    shuffled = manifest.sample(frac=1.0, random_state=seed)
    return shuffled.groupby("label", sort=False).head(n_per_class).reset_index(drop=True)


# --- The paper's metrics ----------------------------------------------------------------------


def two_accuracies(
    cm: np.ndarray, classes: tuple[str, ...] | list[str], positive: str = "covid"
) -> dict[str, float | int | tuple[float, float]]:
    """Tables 2 and 5 from a 3x3 confusion matrix (rows = true class), with Wilson intervals.

    ``accuracy_3class`` is the share of images on the diagonal; ``accuracy_2class`` counts
    only COVID-19 against the rest (a normal image called pneumonia is still right), which
    is (TP + TN) / n of :func:`covidlab.metrics.one_vs_rest` (Apostolopoulos & Mpesiana
    2020, "Metrics", Eqs. 1-3). Values are fractions; ``*_ci`` are 95 % Wilson intervals.
    """
    matrix = np.asarray(cm)
    counts = metrics.one_vs_rest(matrix, list(classes).index(positive))
    n = int(matrix.sum())
    overall = metrics.accuracy_with_interval(matrix)
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
        "accuracy_2class": counts.accuracy,
        "accuracy_2class_ci": metrics.wilson_interval(counts.tp + counts.tn, n),
        "accuracy_3class": metrics.accuracy(matrix),
        "accuracy_3class_ci": (overall["ci_low"], overall["ci_high"]),
        "sensitivity": counts.sensitivity,
        "sensitivity_ci": metrics.wilson_interval(counts.tp, counts.tp + counts.fn),
        "specificity": counts.specificity,
        "specificity_ci": metrics.wilson_interval(counts.tn, counts.tn + counts.fp),
    }


def always_predict(counts: dict[str, int], predicted: str) -> np.ndarray:
    """The confusion matrix of a model that answers ``predicted`` for every image.

    ``counts`` maps each class (in order) to its number of images, e.g.
    ``DATASETS["Dataset_1"].counts``. With ``predicted="pneumonia"`` it never says COVID-19:
    its COVID-19 specificity is 100 % and its 2-class accuracy the share of non-COVID images.
    """
    classes = list(counts)
    if predicted not in classes:
        raise ValueError(f"predicted={predicted!r} is not one of the classes {classes}")
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    matrix[:, classes.index(predicted)] = list(counts.values())
    return matrix


def truncate_percent(fraction: float, decimals: int = 2) -> float:
    """A fraction as a percentage cut (not rounded) to ``decimals``, as the paper prints them.

    >>> truncate_percent(222 / 224)   # Table 2 prints 99.10, rounding would give 99.11
    99.1
    """
    factor = 10**decimals
    return math.floor(round(fraction * 100 * factor, 6)) / factor


def paper_confusion(
    model: str = "MobileNetV2", dataset: str = "Dataset_1", *, corrected: bool = True
) -> pd.DataFrame:
    """The paper's 3x3 matrix (Table 3 or 6) as a DataFrame, rows = true class.

    ``corrected=True`` applies the two fixes the chapter argues for: the 'pneumonia' and
    'normal' labels swapped back (both axes, so the diagonal stays the diagonal), and, for
    VGG19, the COVID-19 cell set to Table 4's TP = 208.
    """
    key = DATASETS[dataset].reported[1]
    table = SPEC.reported[key].table
    printed = table.loc[model] if isinstance(table.index, pd.MultiIndex) else table
    matrix = printed.to_numpy().copy()
    if corrected:
        if model == "VGG19" and dataset == "Dataset_1":
            matrix[0, 0] = SPEC.reported["table4_covid_counts"].table.loc["VGG19", "tp"]
        order = [0, 2, 1]  # printed (covid, "pneumonia", "normal") are (covid, normal, pneumonia)
        matrix = matrix[np.ix_(order, order)]
    labels = list(SPEC.classes)
    return pd.DataFrame(
        matrix,
        index=pd.Index(labels, name="true"),
        columns=pd.Index(labels, name="predicted"),
    )


def check_reported() -> pd.DataFrame:
    """Re-do the paper's arithmetic: Tables 2 and 5 from the matrices of Tables 3, 4 and 6.

    One row per (dataset, model, metric): the printed percentage, the value the corrected
    matrix gives (:func:`paper_confusion`), that value truncated as the paper does, and
    whether the two agree.
    """
    rows = []
    for dataset, model, key in (
        ("Dataset_1", "VGG19", "table2_metrics"),
        ("Dataset_1", "MobileNetV2", "table2_metrics"),
        ("Dataset_2", "MobileNetV2", "table5_metrics"),
    ):
        recomputed = two_accuracies(paper_confusion(model, dataset).to_numpy(), SPEC.classes)
        for metric in METRIC_COLUMNS:
            printed = float(SPEC.reported[key].table.loc[model, metric])
            truncated = truncate_percent(recomputed[metric])
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": metric,
                    "printed": printed,
                    "from matrix": round(100 * recomputed[metric], 3),
                    "truncated": truncated,
                    "agrees": bool(np.isclose(printed, truncated)),
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "model", "metric"])


def implied_by_sensitivity_specificity(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """What Table 2's sensitivity and specificity allow for its two accuracies.

    For every network of Table 2: the 2-class accuracy its sensitivity and specificity imply
    on Dataset_1 (224 COVID-19, 1,204 other images) and the highest 3-class accuracy its
    sensitivity allows (every missed COVID-19 image is a 3-class error too).
    """
    counts = counts or DATASETS["Dataset_1"].counts
    n_covid = counts["covid"]
    n_total = sum(counts.values())
    table = SPEC.reported["table2_metrics"].table
    sensitivity, specificity = table["sensitivity"] / 100, table["specificity"] / 100
    implied_2class = (sensitivity * n_covid + specificity * (n_total - n_covid)) / n_total
    max_3class = (n_total - (1 - sensitivity) * n_covid) / n_total
    return pd.DataFrame(
        {
            "printed 2-class": table["accuracy_2class"],
            "implied 2-class": (100 * implied_2class).round(2),
            "printed 3-class": table["accuracy_3class"],
            "highest possible 3-class": (100 * max_3class).round(2),
        }
    )


def paper_intervals(dataset: str = "Dataset_1") -> pd.DataFrame:
    """Wilson 95 % intervals around the paper's own percentages (Tables 2 and 5).

    The number of images behind each percentage follows from the dataset (sensitivity: the
    COVID-19 images; specificity: the others; accuracies: all). Where the paper gives no
    counts, the successes are the percentage times that number, rounded.
    """
    info = DATASETS[dataset]
    n_covid, n_total = info.counts["covid"], sum(info.counts.values())
    denominators = {
        "accuracy_2class": n_total,
        "accuracy_3class": n_total,
        "sensitivity": n_covid,
        "specificity": n_total - n_covid,
    }
    table = SPEC.reported[info.reported[0]].table
    rows = []
    for model, values in table.iterrows():
        for metric, n in denominators.items():
            low, high = metrics.wilson_interval(round(values[metric] / 100 * n), n)
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": metric,
                    "paper": values[metric],
                    "paper low": round(100 * low, 1),
                    "paper high": round(100 * high, 1),
                    "n": n,
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "model", "metric"])


def paper_vs_run(run: dict[tuple[str, str], np.ndarray], *, tag: str = "") -> pd.DataFrame:
    """The paper's Tables 2 and 5 beside this run's numbers, with Wilson 95 % intervals.

    ``run`` maps (dataset, model) to this run's summed 3x3 confusion matrix (rows = true
    class, classes in ``SPEC.classes`` order); ``tag`` labels this run's rows. One column per
    entry of ``run``; for each metric a row "paper" and a row "this run", each cell the
    percentage, its interval and the number of images behind it (:func:`_cell`). The paper's
    come from :func:`paper_intervals`. A network the paper reports but this run did not train
    is not listed (:func:`paper_intervals` has the paper's rows), and one the paper did not
    report on that dataset gets empty paper cells.
    """
    reported = pd.concat([paper_intervals(name) for name in DATASETS])
    paper, ours = {}, {}
    for (dataset, model), cm in run.items():
        numbers = two_accuracies(cm, SPEC.classes)
        n_total, n_covid = int(np.sum(cm)), int(numbers["tp"] + numbers["fn"])
        denominators = {
            "accuracy_2class": n_total,
            "accuracy_3class": n_total,
            "sensitivity": n_covid,
            "specificity": n_total - n_covid,
        }
        paper[dataset, model], ours[dataset, model] = {}, {}
        for metric in METRIC_COLUMNS:
            low, high = numbers[f"{metric}_ci"]
            ours[dataset, model][metric] = _cell(
                round(100 * numbers[metric], 1), 100 * low, 100 * high, denominators[metric]
            )
            key = (dataset, model, metric)
            row = reported.loc[key] if key in reported.index else None
            paper[dataset, model][metric] = (
                ""
                if row is None
                else _cell(row["paper"], row["paper low"], row["paper high"], row["n"])
            )
    names = ["dataset", "model"]
    run_label = metrics.run_label(tag)
    table = metrics.paper_vs_run(
        pd.DataFrame(paper).rename_axis(columns=names),
        pd.DataFrame(ours).rename_axis(columns=names),
        run_label=run_label,
        axis=0,
    ).swaplevel()
    order = [(metric, source) for metric in METRIC_COLUMNS for source in ("paper", run_label)]
    return table.reindex(order).rename_axis(["metric", "source"])


def _cell(percent: float, low: float, high: float, n: int) -> str:
    """One percentage of :func:`paper_vs_run`: ``"92.85 (91.4-94.1) n=1428"``, the value, its
    Wilson 95 % interval and the number of images behind it."""
    return f"{percent} ({low:.1f}-{high:.1f}) n={int(n)}"


def cutoff_summary(model: keras.Model, model_name: str) -> dict[str, object]:
    """Where Table 1's cut-off for ``model_name`` lands in the Keras backbone of ``model``.

    Returns the backbone's layer count, the cut-off, the last frozen and first trainable
    layer (name and type), how many frozen layers hold weights (convolutions, dense and
    batch-normalisation layers) and how many hold none (input, padding, activation, pooling,
    merge), the share of backbone parameters frozen, and :data:`CUTOFF_NOTES`.
    """
    from covidlab.models import frozen_layers_table

    cutoff = SPEC.models[model_name].layer_cutoff
    table = frozen_layers_table(model, cutoff)
    frozen = table[table["frozen"]]
    last, first = table.iloc[cutoff - 1], table.iloc[cutoff]
    return {
        "Keras layers": len(table),
        "cut-off": cutoff,
        "last frozen": f"{last['layer']} ({last['type']})",
        "first trainable": f"{first['layer']} ({first['type']})",
        "frozen with weights": int((frozen["params"] > 0).sum()),
        "frozen without weights": int((frozen["params"] == 0).sum()),
        "backbone params frozen": f"{frozen['params'].sum() / table['params'].sum():.1%}",
        "where it lands": CUTOFF_NOTES[model_name],
    }


def table1() -> pd.DataFrame:
    """Table 1 as this module builds it: cut-off and head of each backbone."""
    rows = {}
    for name, spec in SPEC.models.items():
        head = spec.head
        rows[name] = {
            "layer cut-off": spec.layer_cutoff,
            "hidden layers": " + ".join(map(str, head.hidden_units)) or "none",
            "pooling": head.pooling,
            "dropout": head.dropout if head.hidden_units and head.dropout else "none",
        }
    table = pd.DataFrame(rows).T
    table.index.name = "backbone"
    return table
