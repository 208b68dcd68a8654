"""Chapter 08 (CoroNet, Khan, Shah, Bhat 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.coronet`. Here: the 3-class and binary tasks
derived from the 4-class data (:func:`task_manifest`, :func:`merge_confusion`), their metrics
and tables beside the paper's Tables II-VI, each fine-tuned model beside the trivial answer and
the 4-class model it came from (:func:`fine_tune_table`, :func:`fine_tune_reading`), and the
check of Table V's binary row (:func:`binary_row_check`).
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
    """Table V's binary row against what its own numbers, and a 2x2 matrix of a test set,
    allow.

    Khan et al. (2020) state a test set only for the 3-class model: 29 COVID-19, 72 normal and
    120 pneumonia images (:data:`TASK_TEST_SET`). The F1 check needs nothing else: F1 against
    2PR/(P + R) of the printed precision and recall. The other checks ask what the row would
    need *if* the binary model was tested on ``test_set`` (by default those 29 COVID-19 and
    192 other images): recall against k/29, specificity against k/192, precision against
    TP/(TP + FP) with TP <= 29, accuracy against k/221. For each printed value (percent) the
    table gives the check, what it assumes, the nearest value the check can produce and
    whether that value rounds to the printed one.
    """
    row = TABLE_V.loc["binary"]
    positives = int(test_set["covid"])
    negatives = int(sum(test_set.values())) - positives
    total = positives + negatives
    tested_on = f"tested on {positives} COVID-19 + {negatives} other images"
    p, r = row["precision"], row["recall"]
    checks = {
        "f1": (
            "2PR/(P + R) of the printed precision and recall",
            "nothing: the printed row alone",
            2 * p * r / (p + r),
            "",
        ),
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
        checks[metric] = (how, tested_on, 100 * k / n, f"{k}/{n}")
    rows = []
    for metric in METRICS:
        how, assumes, value, fraction = checks[metric]
        decimals = BINARY_DECIMALS[metric]
        rows.append(
            {
                "metric": metric,
                "printed (%)": row[metric],
                "check": how,
                "assumes": assumes,
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


def merge_confusion(cm: np.ndarray, task: str) -> np.ndarray:
    """A 4-class confusion matrix read as one of the tasks of :data:`CLASS_SETS`: rows and
    columns of classes the task merges (:data:`LABEL_MERGES`) are added together.

    It is what the 4-class model would score on the task with its answers relabelled, the
    starting point of the task's fine-tuning.
    """
    four, classes = CLASS_SETS["4-class"], CLASS_SETS[task]
    matrix = np.asarray(cm)
    if matrix.shape != (len(four), len(four)):
        raise ValueError(f"expected a {len(four)}x{len(four)} matrix of {four}, got {matrix.shape}")
    to_task = np.zeros((len(four), len(classes)), dtype=matrix.dtype)
    for i, label in enumerate(four):
        to_task[i, classes.index(LABEL_MERGES[task].get(label, label))] = 1
    return to_task.T @ matrix @ to_task


def one_answer_confusion(cm: np.ndarray) -> np.ndarray:
    """The confusion matrix of answering every test image of ``cm`` with its most common true
    class: the trivial baseline a model must beat (its accuracy is that class's share)."""
    matrix = np.asarray(cm)
    baseline = np.zeros_like(matrix)
    baseline[:, matrix.sum(axis=1).argmax()] = matrix.sum(axis=1)
    return baseline


#: The rows of :func:`fine_tune_table`.
FINE_TUNED = "fine-tuned"
MERGED_PARENT = "4-class model, answers merged"
ONE_ANSWER = "one answer for all"


def fine_tune_table(
    parents: Sequence[np.ndarray], tuned: Sequence[np.ndarray], task: str
) -> pd.DataFrame:
    """A fine-tuned task model beside what it has to beat, on the same test images.

    ``parents`` are the 4-class test matrices of the folds that were fine-tuned, ``tuned`` the
    task's matrices on the same folds; both are summed. Rows: the fine-tuned model
    (:data:`FINE_TUNED`), the 4-class model it started from with its answers merged into the
    task's classes (:data:`MERGED_PARENT`, :func:`merge_confusion`) and the trivial answer
    (:data:`ONE_ANSWER`, :func:`one_answer_confusion`). Columns as in :func:`summary_table`.
    """
    from covidlab import metrics

    run, parent = _fine_tuned_and_parent(parents, tuned, task)
    matrices = {FINE_TUNED: run, MERGED_PARENT: parent, ONE_ANSWER: one_answer_confusion(run)}
    table = metrics.summary_table(matrices, CLASS_SETS[task])
    # the trivial answer is a fixed rule, not an estimate: its score has no interval
    table.loc[ONE_ANSWER, [column for column in table.columns if column.endswith("CI")]] = ""
    return table


def _fine_tuned_and_parent(
    parents: Sequence[np.ndarray], tuned: Sequence[np.ndarray], task: str
) -> tuple[np.ndarray, np.ndarray]:
    """The summed task matrices of the fine-tuned folds, and their 4-class parents' summed and
    merged into the task's classes (:func:`merge_confusion`); checked to be of the same images."""
    from covidlab import metrics

    if len(parents) != len(tuned):
        raise ValueError(f"{len(parents)} 4-class matrices for {len(tuned)} {task} matrices")
    run = metrics.summed_confusion(list(tuned))
    parent = merge_confusion(metrics.summed_confusion(list(parents)), task)
    if not np.array_equal(parent.sum(axis=1), run.sum(axis=1)):
        raise ValueError("the 4-class and the fine-tuned matrices are not of the same images")
    return run, parent


def fine_tune_reading(
    parents: Sequence[np.ndarray], tuned: Sequence[np.ndarray], task: str, *, folds: str = ""
) -> str:
    """What :func:`fine_tune_table`'s numbers do and do not show, in words (Markdown).

    The accuracy beats the trivial answer only when its 95 % Wilson interval lies wholly above
    the trivial answer's score; a model can find COVID-19 images yet not beat it, when it also
    calls other images COVID-19. ``folds`` names the folds (:func:`folds_label`).
    """
    from covidlab import metrics

    run, parent = _fine_tuned_and_parent(parents, tuned, task)
    classes = CLASS_SETS[task]
    covid = classes.index("covid")
    scores = metrics.accuracy_with_interval(run)
    n, right, low, high = scores["n"], scores["correct"], scores["ci_low"], scores["ci_high"]
    largest = int(run.sum(axis=1).argmax())
    share = int(run[largest].sum())
    composition = ", ".join(f"{int(k)} {c}" for c, k in zip(classes, run.sum(axis=1), strict=True))
    where = f" ({folds})" if folds else ""
    text = [
        f"**{task}**{where}, {n} test images ({composition}): accuracy {right}/{n} = "
        f"{100 * right / n:.1f} % (95 % interval {100 * low:.1f}-{100 * high:.1f} %). "
        f'Calling every image "{classes[largest]}" would score {share}/{n} = '
        f"{100 * share / n:.1f} %,"
    ]
    if low > share / n:
        text.append("below that interval: the accuracy beats the trivial answer.")
    else:
        text.append(
            "inside that interval: the accuracy does not show that the model beats the "
            "trivial answer."
        )
    tuned_counts = metrics.one_vs_rest(run, covid)
    parent_counts = metrics.one_vs_rest(parent, covid)
    others = int(tuned_counts.tn + tuned_counts.fp)
    text.append(
        f"Its balanced accuracy is {metrics.balanced_accuracy(run):.2f} (one answer for all: "
        f"{1 / len(classes):.2f}); it finds {int(tuned_counts.tp)} of "
        f"{int(tuned_counts.tp + tuned_counts.fn)} COVID-19 images and calls "
        f"{int(tuned_counts.fp)} of the {others} others COVID-19 (specificity "
        f"{tuned_counts.specificity:.2f})."
    )
    parent_name = "4-class model it was" if len(parents) == 1 else "4-class models it was"
    text.append(
        f"On the same images the {parent_name} fine-tuned from, answers merged into "
        f"these classes, has balanced accuracy {metrics.balanced_accuracy(parent):.2f}, finds "
        f"{int(parent_counts.tp)} of {int(parent_counts.tp + parent_counts.fn)} COVID-19 images "
        f"and calls {int(parent_counts.fp)} of the {others} others COVID-19 (specificity "
        f"{parent_counts.specificity:.2f})."
    )
    if metrics.balanced_accuracy(run) <= metrics.balanced_accuracy(parent):
        text.append(
            "So on these images the fine-tuning does not improve on relabelling the 4-class "
            "model's answers."
        )
    else:
        text.append(
            "The fine-tuned model's balanced accuracy is the higher of the two on these images."
        )
    return " ".join(text)


def folds_label(n_used: int, n_splits: int) -> str:
    """Which folds a figure or a sentence sums: "fold 1 of 3", "folds 1-2 of 3 summed" or
    "all 3 folds summed" (fine-tuning uses the first ``n_used`` folds)."""
    if not 1 <= n_used <= n_splits:
        raise ValueError(f"{n_used} folds used of {n_splits}")
    if n_used == 1:
        return f"fold 1 of {n_splits}"
    if n_used == n_splits:
        return f"all {n_splits} folds summed"
    return f"folds 1-{n_used} of {n_splits} summed"


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
