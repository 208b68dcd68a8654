"""Chapter 08 (CoroNet, Khan, Shah, Bhat 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.coronet`. Here: the 3-class and binary tasks
derived from the 4-class data (:func:`task_manifest`), their metrics and tables beside the
paper's Tables II-VI, and the check of Table V's binary row (:func:`binary_row_check`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import keras

from covidlab.papers.coronet import (
    BINARY_DECIMALS,
    CLASS_SETS,
    FINE_TUNE_EPOCHS,
    LABEL_MERGES,
    METRICS,
    SPEC,
    TABLE_II,
    TABLE_II_TOTALS,
    TABLE_V,
    TASK_TEST_SET,
)


def fine_tune_epochs(epochs: int) -> int:
    """Fine-tuning epochs for a run whose 4-class model trains ``epochs`` epochs.

    Keeps our paper-profile ratio (:data:`FINE_TUNE_EPOCHS` = 20 of 80) at any scale, with at
    least one epoch: 80 -> 20, 4 -> 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return max(1, round(epochs * FINE_TUNE_EPOCHS / SPEC.epochs))


def _closest(percent: float, fractions) -> tuple[int, int]:
    """The (k, n) of ``fractions`` whose 100 k / n is nearest ``percent``."""
    return min(fractions, key=lambda kn: abs(100 * kn[0] / kn[1] - percent))


def binary_row_check(test_set: Mapping[str, int] = TASK_TEST_SET) -> pd.DataFrame:
    """Table V's binary row against what its own numbers and a 2x2 matrix of its test set allow.

    Khan et al. (2020) test the binary model on 29 COVID-19 and 192 other images (the 3-class
    test set, :data:`TASK_TEST_SET`). For each printed value (percent) the table gives the
    check, the nearest value the check can produce and whether that value rounds to the
    printed one: F1 against 2PR/(P + R) of the printed precision and recall, recall against
    k/29, specificity against k/192, precision against TP/(TP + FP) with TP <= 29, accuracy
    against k/221.
    """
    row = TABLE_V.loc["binary"]
    positives = int(test_set["covid"])
    negatives = int(sum(test_set.values())) - positives
    total = positives + negatives
    p, r = row["precision"], row["recall"]
    checks = {
        "f1": ("2PR/(P + R) of the printed precision and recall", 2 * p * r / (p + r), ""),
    }
    candidates = {
        "recall": (f"k/{positives}", [(k, positives) for k in range(positives + 1)]),
        "specificity": (f"k/{negatives}", [(k, negatives) for k in range(negatives + 1)]),
        "precision": (
            f"TP/(TP + FP), TP <= {positives}",
            [(tp, tp + fp) for tp in range(1, positives + 1) for fp in range(negatives + 1)],
        ),
        "accuracy": (f"k/{total}", [(k, total) for k in range(total + 1)]),
    }
    for metric, (how, fractions) in candidates.items():
        k, n = _closest(row[metric], fractions)
        checks[metric] = (how, 100 * k / n, f"{k}/{n}")
    rows = []
    for metric in METRICS:
        how, value, fraction = checks[metric]
        decimals = BINARY_DECIMALS[metric]
        rows.append(
            {
                "metric": metric,
                "printed (%)": row[metric],
                "check": how,
                "nearest possible (%)": round(value, 2),
                "as a fraction": fraction,
                "fits": "yes" if round(value, decimals) == round(row[metric], decimals) else "no",
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def task_manifest(manifest: pd.DataFrame, task: str) -> pd.DataFrame:
    """The 4-class manifest relabelled for one of the tasks in :data:`CLASS_SETS`.

    Khan et al. (2020), Table V: "3-class" merges bacterial and viral into "pneumonia",
    "binary" puts everything that is not COVID-19 into "other".
    """
    from covidlab.data import merge_labels

    if task not in CLASS_SETS:
        raise KeyError(f"unknown CoroNet task {task!r}; choose from {list(CLASS_SETS)}")
    unknown = set(manifest["label"]) - set(CLASS_SETS["4-class"])
    if unknown:
        raise ValueError(
            f"labels {sorted(unknown)} are not CoroNet's 4 classes {CLASS_SETS['4-class']}"
        )
    return merge_labels(manifest, LABEL_MERGES[task]) if LABEL_MERGES[task] else manifest.copy()


def task_metrics(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Precision, recall, specificity, F1 and accuracy in the paper's convention (fractions).

    Macro averages over classes for multi-class matrices (Table III, Table V rows 1-2);
    COVID-19 as the positive class for the binary matrix (Table V row 3).
    """
    from covidlab import metrics

    names = list(class_names)
    if tuple(names) == CLASS_SETS["binary"]:
        counts = metrics.one_vs_rest(cm, names.index("covid"))
        return {
            "precision": float(counts.precision),
            "recall": float(counts.sensitivity),
            "specificity": float(counts.specificity),
            "f1": float(counts.f1),
            "accuracy": float(counts.accuracy),
        }
    table = metrics.classification_table(cm, names).loc["macro average"]
    return {
        "precision": float(table["precision"]),
        "recall": float(table["sensitivity"]),
        "specificity": float(table["specificity"]),
        "f1": float(table["f1"]),
        "accuracy": metrics.accuracy(cm),
    }


def per_fold_table(confusions: Sequence[np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """Table III's layout for this run: one row of :func:`task_metrics` per fold, plus average."""
    rows = {f"fold {i}": task_metrics(cm, class_names) for i, cm in enumerate(confusions, 1)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["average"] = table.mean()
    table.index.name = "fold"
    return table


def per_class_table(confusions: Sequence[np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """Table IV's layout for this run: each class's metrics averaged over the folds."""
    from covidlab import metrics

    tables = [
        metrics.classification_table(cm, class_names).drop(index="macro average")
        for cm in confusions
    ]
    mean = pd.concat(tables).groupby(level=0, sort=False).mean()
    return mean.rename(columns={"sensitivity": "recall"})[METRICS[:-1]]


def summary_table(confusions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per task of :data:`CLASS_SETS`: test images, balanced accuracy (the chapter's headline
    measure), accuracy and the COVID-19 sensitivity and specificity (COVID-19 against the other
    classes), each with its 95 % Wilson interval. ``confusions`` maps a task to its matrix."""
    from covidlab import metrics

    return metrics.summary_table(confusions, {name: CLASS_SETS[name] for name in confusions})


def table_ii_comparison(model: keras.Model) -> pd.DataFrame:
    """Each row of Table II beside the matching layer of ``model``, then the three totals.

    Layers are matched in order from the backbone on (the input and the pixel preprocessing
    come before it and have no row in the paper). ``match`` is "✓" when the output shape and
    the parameter count both agree.
    """
    from covidlab import models

    backbone = models.find_backbone(model)
    layers = list(model.layers)
    ours = layers[layers.index(backbone) :] if backbone is not None else layers
    rows = []
    for i, paper in TABLE_II.iterrows():
        layer = ours[i] if i < len(ours) else None
        shape = " x ".join(str(d) for d in layer.output.shape[1:]) if layer else "-"
        params = layer.count_params() if layer else 0
        same = shape == paper["output shape"] and params == paper["params"]
        rows.append(
            (
                paper["layer"],
                layer.name if layer else "-",
                paper["output shape"],
                shape,
                int(paper["params"]),
                params,
                same,
            )
        )
    counts = models.parameter_counts(model)
    for key, value in TABLE_II_TOTALS.items():
        label = f"{key.replace('_', '-')} parameters"
        rows.append((label, "", "", "", int(value), counts[key], counts[key] == value))
    table = pd.DataFrame(
        rows,
        columns=[
            "paper layer",
            "our layer",
            "paper output shape",
            "our output shape",
            "paper params",
            "our params",
            "match",
        ],
    )
    table["match"] = table["match"].map({True: "✓", False: "✗"})
    return table


def paper_vs_run(confusions: Mapping[str, np.ndarray], run: str = "") -> pd.DataFrame:
    """Table V beside this run, in percent, with a 95 % interval for this run's accuracy.

    ``confusions`` maps a task of :data:`CLASS_SETS` to this run's confusion matrix (e.g. the
    folds summed); ``run`` labels this run's columns. The interval is Wilson's (1927) on the
    number of correct test images; ``paper in CI`` says whether the paper's accuracy lies
    inside it.
    """
    from covidlab import metrics

    paper = TABLE_V.loc[list(confusions)]
    rows = {}
    for task, cm in confusions.items():
        overall = metrics.accuracy_with_interval(cm)
        low, high = overall["ci_low"], overall["ci_high"]
        ours = task_metrics(cm, CLASS_SETS[task])
        rows[task] = {
            "test images": overall["n"],
            **{metric: round(100 * ours[metric], 1) for metric in METRICS},
            "accuracy 95% CI": f"{100 * low:.1f}-{100 * high:.1f}",
            "paper in CI": "yes" if low <= paper.loc[task, "accuracy"] / 100 <= high else "no",
        }
    ours = pd.DataFrame.from_dict(rows, orient="index").rename_axis(paper.index.name)
    return metrics.paper_vs_run(paper, ours, run_label=metrics.run_label(run))
