"""Metrics computed from a confusion matrix, the way the papers report them.

Every function takes a confusion matrix ``cm`` with **rows = true class, columns = predicted
class** (scikit-learn's convention). A multi-class matrix is read one class at a time, that
class against all the others ("one-vs-rest"):

- TP: images of the class predicted as the class (the diagonal cell),
- FN: images of the class predicted as anything else (rest of its row),
- FP: images of other classes predicted as the class (rest of its column),
- TN: everything else.

Apostolopoulos & Mpesiana (2020) reduce their 3x3 Table 3 to the COVID-19 counts of Table 4
exactly this way; Aboughazala & Mohammed (2020) sum the matrices of their ten folds into one
"overlapped" matrix (:func:`summed_confusion`).

**Zero division.** A ratio whose denominator is zero (for example the sensitivity of a class
with no images in the test set) is reported as ``0.0``, like scikit-learn's
``zero_division=0``. The confidence interval of such a ratio is ``(0.0, 1.0)``: no
information (:func:`wilson_interval` with ``total=0``).

scikit-learn already computes precision, recall and F1; this module adds what it lacks
(specificity, the one-vs-rest reduction, summed fold matrices, Wilson intervals) and the tests
cross-check the rest against it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from sklearn import metrics as sk_metrics

__all__ = [
    "BinaryCounts",
    "accuracy",
    "classification_table",
    "confusion_matrix",
    "f1_score",
    "macro_average",
    "one_vs_rest",
    "precision",
    "roc_curves",
    "sensitivity",
    "specificity",
    "summary",
    "summed_confusion",
    "wilson_interval",
]


def _ratio(numerator: ArrayLike, denominator: ArrayLike) -> float | np.ndarray:
    """``numerator / denominator`` with 0.0 where the denominator is 0 (scalars or arrays)."""
    numerator = np.asarray(numerator, dtype=float)
    denominator = np.asarray(denominator, dtype=float)
    out = np.divide(
        numerator,
        denominator,
        out=np.zeros(np.broadcast(numerator, denominator).shape),
        where=denominator != 0,
    )
    return float(out) if out.ndim == 0 else out


def _as_confusion(cm: ArrayLike) -> np.ndarray:
    """Check that ``cm`` is a square matrix of non-negative counts and return it as an array."""
    matrix = np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"a confusion matrix must be square (n_classes x n_classes), got shape {matrix.shape}"
        )
    if not np.issubdtype(matrix.dtype, np.number) or np.any(matrix < 0):
        raise ValueError("a confusion matrix holds counts: non-negative numbers only")
    return matrix


@dataclass(frozen=True)
class BinaryCounts:
    """The four counts of one class against the rest: TP, FP, TN, FN.

    The fields are numbers for one class; :func:`sensitivity` and friends fill them with
    arrays (one entry per class) so that each formula below is written only once. A ratio
    with a zero denominator is 0.0.

    Examples
    --------
    Apostolopoulos & Mpesiana (2020), Table 4, MobileNet v2:

    >>> counts = BinaryCounts(tp=222, fp=35, tn=1169, fn=2)
    >>> round(counts.sensitivity, 4), round(counts.specificity, 4)
    (0.9911, 0.9709)
    """

    tp: int | np.ndarray
    fp: int | np.ndarray
    tn: int | np.ndarray
    fn: int | np.ndarray

    @property
    def total(self) -> int | np.ndarray:
        """All images: TP + FP + TN + FN."""
        return self.tp + self.fp + self.tn + self.fn

    @property
    def accuracy(self) -> float | np.ndarray:
        """(TP + TN) / (TP + FP + TN + FN): the "2-class accuracy" of Apostolopoulos (Eq. 1)."""
        return _ratio(self.tp + self.tn, self.total)

    @property
    def sensitivity(self) -> float | np.ndarray:
        """TP / (TP + FN), also called recall or true-positive rate (Apostolopoulos, Eq. 2)."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> float | np.ndarray:
        """TN / (TN + FP), the true-negative rate (Apostolopoulos, Eq. 3)."""
        return _ratio(self.tn, self.tn + self.fp)

    @property
    def precision(self) -> float | np.ndarray:
        """TP / (TP + FP), the positive predictive value."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def f1(self) -> float | np.ndarray:
        """2 TP / (2 TP + FP + FN), the harmonic mean of precision and sensitivity."""
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)


def _all_one_vs_rest(cm: ArrayLike) -> BinaryCounts:
    """The one-vs-rest counts of every class at once (fields are arrays, one entry per class)."""
    matrix = _as_confusion(cm)
    tp = np.diag(matrix)
    fn = matrix.sum(axis=1) - tp  # rest of the row: the class predicted as something else
    fp = matrix.sum(axis=0) - tp  # rest of the column: other classes predicted as the class
    tn = matrix.sum() - tp - fn - fp
    return BinaryCounts(tp=tp, fp=fp, tn=tn, fn=fn)


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], n_classes: int) -> np.ndarray:
    """Count how often each true class was predicted as each class.

    Parameters
    ----------
    y_true, y_pred : sequences of int
        Class indices in ``0 .. n_classes - 1``.
    n_classes : int
        Number of classes; classes absent from both sequences still get a row and a column.

    Returns
    -------
    np.ndarray of shape (n_classes, n_classes)
        ``cm[i, j]`` = number of images of true class ``i`` predicted as class ``j``.
    """
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    for name, values in (("y_true", y_true), ("y_pred", y_pred)):
        if values.size and (values.min() < 0 or values.max() >= n_classes):
            raise ValueError(f"{name} must hold class indices between 0 and {n_classes - 1}")
    return sk_metrics.confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def accuracy(cm: ArrayLike) -> float:
    """Share of images on the diagonal: trace(cm) / sum(cm); 0.0 for an empty matrix.

    For a 3-class matrix this is Apostolopoulos' "3-class accuracy".
    """
    matrix = _as_confusion(cm)
    return _ratio(np.trace(matrix), matrix.sum())


def balanced_accuracy(cm: ArrayLike) -> float:
    """Mean of the per-class sensitivities (recall): each class counts the same however many
    test images it has, so a model that answers one class for everything scores
    ``1 / n_classes``. Classes without test images are left out.
    """
    cm = _as_confusion(cm)
    values = sensitivity(cm)[cm.sum(axis=1) > 0]
    if values.size == 0:
        raise ValueError("balanced_accuracy needs a confusion matrix with at least one image")
    return float(values.mean())


def classes_never_predicted(cm: ArrayLike, classes: Sequence[str]) -> list[str]:
    """The classes a model gave no test image to, though the test set holds some: an empty
    column of its confusion matrix (rows: true class) beside a non-empty row.

    Such a model has not learned to tell that class apart, whatever its other scores; its
    balanced accuracy counts a sensitivity of 0 for it.
    """
    cm = _as_confusion(cm)
    return [
        name
        for name, given, held in zip(classes, cm.sum(axis=0), cm.sum(axis=1), strict=True)
        if given == 0 and held > 0
    ]


def precision(cm: ArrayLike) -> np.ndarray:
    """Per-class precision TP / (TP + FP) = cm[i, i] / column sum i (0.0 for an empty column)."""
    return _all_one_vs_rest(cm).precision


def sensitivity(cm: ArrayLike) -> np.ndarray:
    """Per-class sensitivity TP / (TP + FN) = cm[i, i] / row sum i (0.0 if the row is empty)."""
    return _all_one_vs_rest(cm).sensitivity


def specificity(cm: ArrayLike) -> np.ndarray:
    """Per-class specificity TN / (TN + FP): how many images of the *other* classes stay out of i.

    0.0 when no image belongs to another class.
    """
    return _all_one_vs_rest(cm).specificity


def f1_score(cm: ArrayLike) -> np.ndarray:
    """Per-class F1 = 2 TP / (2 TP + FP + FN) (0.0 when the class is never true nor predicted)."""
    return _all_one_vs_rest(cm).f1


def macro_average(values: Sequence[float]) -> float:
    """Unweighted mean over classes: every class counts the same, however many images it has."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("macro_average needs at least one value")
    return float(values.mean())


def one_vs_rest(cm: ArrayLike, positive_index: int) -> BinaryCounts:
    """Reduce a multi-class confusion matrix to TP/FP/TN/FN for one class.

    Apostolopoulos & Mpesiana (2020) turn the 3x3 matrices of Table 3 into the COVID-19
    counts of Table 4 this way: a normal image predicted as pneumonia is still a true
    negative for COVID-19.

    Parameters
    ----------
    cm : array-like of shape (n, n)
        Rows = true class, columns = predicted class.
    positive_index : int
        Row/column of the class treated as positive.
    """
    matrix = _as_confusion(cm)
    if not 0 <= positive_index < matrix.shape[0]:
        raise IndexError(f"positive_index {positive_index} is outside 0..{matrix.shape[0] - 1}")
    counts = _all_one_vs_rest(matrix)
    return BinaryCounts(
        tp=int(counts.tp[positive_index]),
        fp=int(counts.fp[positive_index]),
        tn=int(counts.tn[positive_index]),
        fn=int(counts.fn[positive_index]),
    )


def summed_confusion(cms: Sequence[ArrayLike]) -> np.ndarray:
    """Add the confusion matrices of several folds into one.

    Aboughazala & Mohammed (2020) call this the "overlapped" matrix of a cross-validation:
    every image is tested exactly once, so the sum counts each image once.
    """
    matrices = [_as_confusion(cm) for cm in cms]
    if not matrices:
        raise ValueError("summed_confusion needs at least one confusion matrix")
    shapes = {m.shape for m in matrices}
    if len(shapes) > 1:
        raise ValueError(f"all confusion matrices must have the same shape, got {sorted(shapes)}")
    return np.sum(matrices, axis=0)


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson (1927) score interval for a proportion such as an accuracy or a sensitivity.

    With :math:`\\hat p = k / n` and :math:`z` the standard normal quantile of
    :math:`1 - (1 - \\text{confidence}) / 2`:

    .. math::

        \\frac{\\hat p + z^2 / 2n}{1 + z^2 / n} \\pm
        \\frac{z}{1 + z^2 / n} \\sqrt{\\frac{\\hat p (1 - \\hat p)}{n} + \\frac{z^2}{4 n^2}}

    Unlike the textbook :math:`\\hat p \\pm z \\sqrt{\\hat p (1 - \\hat p) / n}`, it stays
    inside [0, 1] and is not empty at 0/n or n/n, which matters for the small test sets of
    these papers (e.g. 73/75 gives 0.908 to 0.993).

    Parameters
    ----------
    successes : int
        Number of successes k (e.g. correctly classified images).
    total : int
        Number of trials n. ``total == 0`` returns ``(0.0, 1.0)``: no information.
    confidence : float
        Coverage between 0 and 1, default 0.95.

    Returns
    -------
    (low, high) : tuple of float
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    if total < 0 or not 0 <= successes <= total:
        raise ValueError(f"need 0 <= successes <= total, got {successes} of {total}")
    if total == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p_hat = successes / total
    denominator = 1 + z**2 / total
    centre = (p_hat + z**2 / (2 * total)) / denominator
    half_width = z / denominator * math.sqrt(p_hat * (1 - p_hat) / total + z**2 / (4 * total**2))
    # exact at 0/n and n/n, where floating-point round-off would give 1e-17 or 0.9999999999999999
    low = 0.0 if successes == 0 else centre - half_width
    high = 1.0 if successes == total else centre + half_width
    return low, high


def accuracy_with_interval(cm: ArrayLike, confidence: float = 0.95) -> dict[str, float]:
    """Accuracy of a confusion matrix with its Wilson interval (:func:`wilson_interval`).

    Returns ``accuracy``, ``correct`` (the trace), ``n`` (all images), ``ci_low`` and
    ``ci_high``. An empty matrix has accuracy 0 and the no-information interval (0, 1).
    """
    matrix = _as_confusion(cm)
    correct, total = int(np.trace(matrix)), int(matrix.sum())
    low, high = wilson_interval(correct, total, confidence)
    return {
        "accuracy": float(accuracy(matrix)),
        "correct": correct,
        "n": total,
        "ci_low": low,
        "ci_high": high,
    }


def classification_table(cm: ArrayLike, class_names: Sequence[str]) -> pd.DataFrame:
    """Per-class precision, sensitivity, specificity, F1 and support, plus a macro-average row.

    ``support`` is the number of images of each true class (row sums); the macro row averages
    the metrics over classes without weighting and gives the total number of images as support.
    """
    matrix = _as_confusion(cm)
    names = list(class_names)
    if len(names) != matrix.shape[0]:
        raise ValueError(f"{len(names)} class names for a {matrix.shape[0]}-class confusion matrix")
    counts = _all_one_vs_rest(matrix)
    table = pd.DataFrame(
        {
            "precision": counts.precision,
            "sensitivity": counts.sensitivity,
            "specificity": counts.specificity,
            "f1": counts.f1,
            "support": matrix.sum(axis=1).astype(int),
        },
        index=pd.Index(names, name="class"),
    )
    macro = {column: macro_average(table[column]) for column in table.columns[:-1]}
    table.loc["macro average"] = {**macro, "support": int(matrix.sum())}
    table["support"] = table["support"].astype(int)
    return table


def summary(
    cm: ArrayLike, class_names: Sequence[str], positive: str = "covid", confidence: float = 0.95
) -> dict[str, object]:
    """Accuracy with its Wilson interval, and the positive class's sensitivity and specificity.

    Returns
    -------
    dict
        ``n_images``, ``accuracy``, ``accuracy_ci``; when ``positive`` is one of
        ``class_names`` also ``positive``, ``sensitivity``, ``sensitivity_ci``,
        ``specificity``, ``specificity_ci`` (one-vs-rest, see :func:`one_vs_rest`).
        Intervals are Wilson score intervals at ``confidence``.
    """
    matrix = _as_confusion(cm)
    names = list(class_names)
    if len(names) != matrix.shape[0]:
        raise ValueError(f"{len(names)} class names for a {matrix.shape[0]}-class confusion matrix")
    overall = accuracy_with_interval(matrix, confidence)
    result: dict[str, object] = {
        "n_images": overall["n"],
        "accuracy": overall["accuracy"],
        "accuracy_ci": (overall["ci_low"], overall["ci_high"]),
    }
    if positive in names:
        counts = one_vs_rest(matrix, names.index(positive))
        result.update(
            positive=positive,
            sensitivity=counts.sensitivity,
            sensitivity_ci=wilson_interval(counts.tp, counts.tp + counts.fn, confidence),
            specificity=counts.specificity,
            specificity_ci=wilson_interval(counts.tn, counts.tn + counts.fp, confidence),
        )
    return result


def roc_curves(
    y_true_idx: Sequence[int], y_prob: np.ndarray, class_names: Sequence[str]
) -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """One-vs-rest ROC curve and area under it for each class (scikit-learn's ``roc_curve``).

    Parameters
    ----------
    y_true_idx : sequence of int
        True class index of each image.
    y_prob : array of shape (n_images, n_classes)
        Predicted probabilities (softmax output); column ``i`` scores class ``i``.
    class_names : sequence of str
        One name per column of ``y_prob``.

    Returns
    -------
    dict
        ``name -> (false_positive_rate, true_positive_rate, auc)``. A class with no image,
        or with every image, in ``y_true_idx`` has no ROC curve and is left out.
    """
    y_true_idx = np.asarray(y_true_idx)
    y_prob = np.asarray(y_prob, dtype=float)
    names = list(class_names)
    if y_prob.ndim != 2 or y_prob.shape != (len(y_true_idx), len(names)):
        raise ValueError(
            f"y_prob must have shape (n_images, n_classes) = ({len(y_true_idx)}, {len(names)}), "
            f"got {y_prob.shape}"
        )
    curves = {}
    for index, name in enumerate(names):
        is_class = y_true_idx == index
        if is_class.all() or not is_class.any():
            continue
        fpr, tpr, _ = sk_metrics.roc_curve(is_class, y_prob[:, index])
        curves[name] = (fpr, tpr, float(sk_metrics.auc(fpr, tpr)))
    return curves


def summary_table(
    confusions: Mapping[str, ArrayLike],
    classes: Sequence[str] | Mapping[str, Sequence[str]],
    positive: str = "covid",
) -> pd.DataFrame:
    """One row per named confusion matrix (a model, a task, the summed folds): test images,
    balanced accuracy, accuracy and the ``positive`` class's sensitivity and specificity, each
    with its 95 % Wilson interval (:func:`summary`).

    ``classes`` names the matrices' classes, or maps each name to its own (tasks with different
    classes, as CoroNet's 4-class, 3-class and binary models).
    """
    rows = {}
    for name, cm in confusions.items():
        names = classes[name] if isinstance(classes, Mapping) else classes
        result = summary(cm, list(names), positive=positive)
        row = {
            "test images": result["n_images"],
            "balanced accuracy": round(balanced_accuracy(cm), 3),
        }
        for measure in ("accuracy", "sensitivity", "specificity"):
            if measure in result:
                low, high = result[f"{measure}_ci"]
                row[measure] = round(result[measure], 3)
                row[f"{measure} 95% CI"] = f"{low:.2f}-{high:.2f}"
        rows[name] = row
    return pd.DataFrame(rows).T


def confusion_from_labels(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]
) -> np.ndarray:
    """Confusion matrix (rows: true class, columns: predicted) of two label sequences."""
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted({str(label) for label in (*y_true, *y_pred)} - set(index))
    if unknown:
        raise ValueError(f"labels {unknown} are not among the classes {list(classes)}")
    return confusion_matrix(
        [index[label] for label in y_true], [index[label] for label in y_pred], len(classes)
    )


def run_label(tag: str = "") -> str:
    """The label of this run's side of :func:`paper_vs_run`: "this run (<tag>)", e.g. the
    run tag of :func:`covidlab.profiles.tag`; "this run" without one."""
    return f"this run ({tag})" if tag else "this run"


def paper_vs_run(
    paper: pd.DataFrame,
    run: pd.DataFrame,
    *,
    run_label: str,
    paper_label: str = "paper",
    axis: int = 1,
) -> pd.DataFrame:
    """A paper's table and this run's in one table, labelled by where each number comes from.

    ``axis=1`` puts them side by side under a two-level column header (``paper_label`` over
    the paper's columns, ``run_label`` over the run's); ``axis=0`` one above the other, under
    a two-level row index whose first level is named "source". Rows (``axis=1``) or columns
    (``axis=0``) are matched by name, so both tables should use the same ones.
    """
    table = pd.concat({paper_label: paper, run_label: run}, axis=axis)
    if axis == 0:
        table.index = table.index.set_names("source", level=0)
    return table
