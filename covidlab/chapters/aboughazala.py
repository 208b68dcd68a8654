"""Chapter 06 (Aboughazala & Mohammed 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.aboughazala`. Here: the run's data
(:func:`load_dataset`), Table 1 rebuilt from fold confusion matrices (:func:`table1`,
:func:`paper_table1`, :func:`paper_vs_run`), and accuracy intervals per fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab import metrics

if TYPE_CHECKING:
    from covidlab.recipes import RecipeResult
    from covidlab.run_config import RunConfig

from covidlab.papers.aboughazala import (
    CLASSES,
    PAPER_FOLD_SIZES,
    POSITIVE,
    SPEC,
    TABLE1_COLUMNS,
)


def table1(
    fold_confusions: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """This run's Table 1: one row per fold and an "overlapped" row (the folds summed).

    Sensitivity, specificity, precision, F1 and accuracy take COVID-19 as the positive class,
    as Aboughazala & Mohammed (2020, Table 1) do. Two columns the paper lacks say how much each
    row can tell: ``correct / tested`` and the Wilson interval of the accuracy.
    """
    positive = list(classes).index(POSITIVE)
    matrices = [np.asarray(cm) for cm in fold_confusions]
    labels = [str(fold) for fold in range(1, len(matrices) + 1)] + ["overlapped"]
    rows = []
    for cm in [*matrices, metrics.summed_confusion(matrices)]:
        counts = metrics.one_vs_rest(cm, positive)
        overall = metrics.accuracy_with_interval(cm, confidence)
        row = {name: float(getattr(counts, name)) for name in TABLE1_COLUMNS}
        row["correct / tested"] = f"{overall['correct']} / {overall['n']}"
        row[_ci_column(confidence)] = _interval_text((overall["ci_low"], overall["ci_high"]))
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(labels, name="fold"))


def paper_table1(*, confidence: float = 0.95) -> pd.DataFrame:
    """The paper's Table 1 with the same two extra columns as :func:`table1`.

    Fold sizes are not printed. Fold 6 and the overlapped row come from the matrices derived
    from Table 1 (``table1_derived_confusion``); the nine perfect folds are taken to hold 14 or
    15 images (an even split), so their interval is given for both sizes.
    """
    table = SPEC.reported["table1_folds"].table.copy()
    derived = SPEC.reported["table1_derived_confusion"].table
    ci = _ci_column(confidence)
    perfect = " or ".join(
        _interval_text(metrics.wilson_interval(n, n, confidence)) for n in PAPER_FOLD_SIZES
    )
    table["correct / tested"] = "all of " + " or ".join(map(str, PAPER_FOLD_SIZES))
    table[ci] = perfect
    for fold in derived.index.unique("fold"):
        overall = metrics.accuracy_with_interval(derived.loc[fold].to_numpy(), confidence)
        table.loc[fold, "correct / tested"] = f"{overall['correct']} / {overall['n']}"
        table.loc[fold, ci] = _interval_text((overall["ci_low"], overall["ci_high"]))
    return table


def paper_vs_run(
    fold_confusions: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    *,
    run: str,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The paper's Table 1 above this run's, same columns; ``run`` labels this run's rows."""
    reported = SPEC.reported["table1_folds"]
    return metrics.paper_vs_run(
        paper_table1(confidence=confidence),
        table1(fold_confusions, classes, confidence=confidence),
        paper_label=f"paper ({reported.cite})",
        run_label=metrics.run_label(run),
        axis=0,
    )


def fold_confusion_table(
    fold_confusions: Sequence[np.ndarray], classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """Every fold's confusion matrix and their sum, stacked in one table (the paper's Figs. 4-7).

    Same layout as ``SPEC.reported["table1_derived_confusion"]``: rows (fold, true class),
    columns the predicted class.
    """
    matrices = [np.asarray(cm) for cm in fold_confusions]
    labels = [str(fold) for fold in range(1, len(matrices) + 1)] + ["overlapped"]
    stacked = np.vstack([*matrices, metrics.summed_confusion(matrices)])
    return pd.DataFrame(
        stacked,
        index=pd.MultiIndex.from_product([labels, list(classes)], names=["fold", "true"]),
        columns=pd.Index(list(classes), name="predicted"),
    )


def summary_table(
    confusions: Mapping[str, np.ndarray], classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """Per named matrix (e.g. the overlapped one): test images, balanced accuracy, accuracy and
    the COVID-19 sensitivity and specificity, each with its 95 % Wilson interval."""
    return metrics.summary_table(confusions, classes)


def accuracy_intervals(
    counts: Mapping[str, tuple[int, int]], *, confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy and Wilson interval for named (correct, tested) pairs, one row each.

    e.g. ``{"a perfect fold of 15": (15, 15), "overlapped": (146, 147)}``; the ``width``
    column is how far apart the interval's ends are.
    """
    rows = {}
    for name, (correct, tested) in counts.items():
        low, high = metrics.wilson_interval(correct, tested, confidence)
        rows[name] = {
            "correct": correct,
            "tested": tested,
            "accuracy": correct / tested if tested else 0.0,
            f"{confidence:.0%} CI low": low,
            f"{confidence:.0%} CI high": high,
            "width": high - low,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _ci_column(confidence: float) -> str:
    return f"accuracy {confidence:.0%} CI"


def _interval_text(interval: tuple[float, float]) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}"


def load_dataset(config: RunConfig) -> RecipeResult:
    """The manifest and requested / available / used table of the paper's 147 images.

    Synthetic images for the smoke profile (the table still shows the paper's counts);
    otherwise the recipe from the sources (``covidlab.recipes``), at most
    ``config.max_per_class`` images per class when the profile sets it (demo).
    """
    from covidlab import profiles

    return profiles.load_recipe(config)
