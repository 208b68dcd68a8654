"""covidlab.metrics: the papers' own tables recomputed, and cross-checks against scikit-learn."""

from __future__ import annotations

import math
import subprocess
import sys
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest
from sklearn import metrics as sk

from covidlab import metrics, papers
from covidlab.metrics import BinaryCounts


def truncated_percent(fraction: float) -> float:
    """A fraction as a percentage cut (not rounded) to two decimals, as Apostolopoulos prints it."""
    return math.floor(fraction * 10_000 + 1e-9) / 100


def reported(paper: str, name: str):
    return papers.get(paper).reported[name].table


def labels_from_confusion(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (true, predicted) pair per image counted in ``cm``."""
    n = cm.shape[0]
    pairs = np.array([(i, j) for i in range(n) for j in range(n)])
    repeated = np.repeat(pairs, cm.ravel(), axis=0).reshape(-1, 2)
    return repeated[:, 0], repeated[:, 1]


def random_confusion(seed: int) -> np.ndarray:
    """A random 2- to 5-class matrix; some rows and columns are empty to exercise zero division."""
    rng = np.random.default_rng(seed)
    n = rng.integers(2, 6)
    cm = rng.integers(0, 20, size=(n, n)) * (rng.random((n, n)) < 0.7)
    return cm


# --- Apostolopoulos & Mpesiana (2020) ---------------------------------------------------------

APOSTOLOPOULOS_COVID = 0  # index of "covid" in the stored tables


def test_apostolopoulos_table3_reduces_to_table4_for_mobilenet():
    table3 = reported("apostolopoulos", "table3_confusion")
    table4 = reported("apostolopoulos", "table4_covid_counts")
    counts = metrics.one_vs_rest(table3.loc["MobileNetV2"], APOSTOLOPOULOS_COVID)
    assert counts == BinaryCounts(**table4.loc["MobileNetV2"].astype(int).to_dict())


def test_apostolopoulos_table3_vgg19_differs_from_table4_only_in_tp():
    # Documented in the notes: Table 3 prints 222 true positives for VGG19, Table 4 prints 208;
    # only 208 fits the 224 COVID-19 images of the text.
    table3 = reported("apostolopoulos", "table3_confusion").loc["VGG19"]
    table4 = reported("apostolopoulos", "table4_covid_counts").loc["VGG19"]
    counts = metrics.one_vs_rest(table3, APOSTOLOPOULOS_COVID)
    assert (counts.fp, counts.tn, counts.fn) == (table4["fp"], table4["tn"], table4["fn"])
    assert (counts.tp, table4["tp"]) == (222, 208)
    assert counts.tp + counts.fn == 238
    assert table4["tp"] + table4["fn"] == papers.get("apostolopoulos").recipe["covid"] == 224


def test_apostolopoulos_table3_pneumonia_and_normal_totals_are_swapped():
    table3 = reported("apostolopoulos", "table3_confusion")
    recipe = papers.get("apostolopoulos").recipe
    for model in ("MobileNetV2", "VGG19"):
        totals = table3.loc[model].sum(axis=1)  # images per true class
        assert (totals["pneumonia"], totals["normal"]) == (504, 700)
    assert (recipe["pneumonia"], recipe["normal"]) == (700, 504)


def vgg19_corrected() -> np.ndarray:
    """VGG19's Table 3 with the COVID-19 cell set to Table 4's TP (208)."""
    cm = reported("apostolopoulos", "table3_confusion").loc["VGG19"].to_numpy().copy()
    cm[0, 0] = reported("apostolopoulos", "table4_covid_counts").loc["VGG19", "tp"]
    return cm


def test_apostolopoulos_table2_sensitivity_and_specificity_reproduce_from_table4():
    table2 = reported("apostolopoulos", "table2_metrics")
    table4 = reported("apostolopoulos", "table4_covid_counts")
    for model in ("VGG19", "MobileNetV2"):
        counts = BinaryCounts(**table4.loc[model].astype(int).to_dict())
        assert truncated_percent(counts.sensitivity) == table2.loc[model, "sensitivity"]
        assert truncated_percent(counts.specificity) == table2.loc[model, "specificity"]


def test_apostolopoulos_table2_accuracies_reproduce_only_in_part():
    table2 = reported("apostolopoulos", "table2_metrics")
    mobilenet = reported("apostolopoulos", "table3_confusion").loc["MobileNetV2"].to_numpy()
    vgg19 = vgg19_corrected()

    # These reproduce.
    mobilenet_2class = metrics.one_vs_rest(mobilenet, APOSTOLOPOULOS_COVID).accuracy
    assert truncated_percent(mobilenet_2class) == table2.loc["MobileNetV2", "accuracy_2class"]
    assert truncated_percent(metrics.accuracy(vgg19)) == table2.loc["VGG19", "accuracy_3class"]

    # These do not (see the note of table2_metrics): the printed values are other cells.
    vgg19_2class = metrics.one_vs_rest(vgg19, APOSTOLOPOULOS_COVID).accuracy
    assert truncated_percent(vgg19_2class) == 97.82
    assert table2.loc["VGG19", "accuracy_2class"] == table2.loc["VGG19", "specificity"] == 98.75
    assert truncated_percent(metrics.accuracy(mobilenet)) == 95.44
    assert table2.loc["MobileNetV2", "accuracy_3class"] == 92.85 == truncated_percent(208 / 224)


def test_apostolopoulos_table6_gives_table5_except_the_2class_accuracy():
    table5 = reported("apostolopoulos", "table5_metrics").loc["MobileNetV2"]
    cm = reported("apostolopoulos", "table6_confusion").to_numpy()
    counts = metrics.one_vs_rest(cm, APOSTOLOPOULOS_COVID)
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (221, 43, 1175, 3)
    assert truncated_percent(counts.sensitivity) == table5["sensitivity"]
    assert truncated_percent(counts.specificity) == table5["specificity"]
    assert truncated_percent(metrics.accuracy(cm)) == table5["accuracy_3class"]

    # 96.78 % is not a whole number of correct images out of 1442, rounded or truncated.
    assert round(100 * counts.accuracy, 2) == 96.81
    total = int(cm.sum())
    assert not [
        k
        for k in range(total + 1)
        if table5["accuracy_2class"] in (round(100 * k / total, 2), truncated_percent(k / total))
    ]


# --- Aboughazala & Mohammed (2020) ------------------------------------------------------------

ABOUGHAZALA_COLUMNS = ["sensitivity", "specificity", "precision", "f1", "accuracy"]


def table1_row(counts: BinaryCounts) -> list[float]:
    """The five Table 1 values of a 2x2 matrix, rounded to four decimals as printed."""
    return [round(float(getattr(counts, name)), 4) for name in ABOUGHAZALA_COLUMNS]


def matrices_matching(row: list[float], totals: range) -> list[tuple[int, int, int, int]]:
    """Every (tp, fp, tn, fn) of ``totals`` images whose metrics round to ``row``."""
    found = []
    for total in totals:
        grid = np.arange(total + 1)
        tp, fp, tn = (a.ravel() for a in np.meshgrid(grid, grid, grid, indexing="ij"))
        fn = total - tp - fp - tn
        keep = fn >= 0
        counts = BinaryCounts(tp=tp[keep], fp=fp[keep], tn=tn[keep], fn=fn[keep])
        match = np.ones(keep.sum(), dtype=bool)
        for name, value in zip(ABOUGHAZALA_COLUMNS, row, strict=True):
            match &= np.round(getattr(counts, name), 4) == value
        fields = (getattr(counts, f)[match].tolist() for f in ("tp", "fp", "tn", "fn"))
        found += zip(*fields, strict=True)
    return found


def covid_counts(cm) -> BinaryCounts:
    classes = papers.get("aboughazala").classes
    return metrics.one_vs_rest(cm, list(classes).index("covid"))


def test_aboughazala_fold6_is_7_covid_and_8_normal_with_one_false_positive():
    table1 = reported("aboughazala", "table1_folds")
    derived = reported("aboughazala", "table1_derived_confusion").loc["6"]
    row = table1.loc["6", ABOUGHAZALA_COLUMNS].tolist()
    counts = covid_counts(derived)
    assert table1_row(counts) == row
    assert matrices_matching(row, range(1, 21)) == [(counts.tp, counts.fp, counts.tn, counts.fn)]
    assert (counts.tp, counts.fp, counts.tn, counts.fn) == (7, 1, 7, 0)


def test_aboughazala_overlapped_row_fits_73_covid_and_74_normal_not_the_text():
    table1 = reported("aboughazala", "table1_folds")
    derived = reported("aboughazala", "table1_derived_confusion")
    row = table1.loc["overlapped", ABOUGHAZALA_COLUMNS].tolist()

    # The sum of fold 6 and nine perfect folds is the derived overlapped matrix.
    fold6 = derived.loc["6"].to_numpy()
    overlapped = derived.loc["overlapped"].to_numpy()
    rest = overlapped.sum(axis=1) - fold6.sum(axis=1)  # images per class in the other folds
    sizes = [[len(part) for part in np.array_split(np.arange(n), 9)] for n in rest]
    perfect = [np.diag(fold_sizes) for fold_sizes in zip(*sizes, strict=True)]
    assert np.array_equal(metrics.summed_confusion([fold6, *perfect]), overlapped)
    assert all(table1_row(covid_counts(cm)) == [1.0] * 5 for cm in perfect)

    counts = covid_counts(overlapped)
    assert table1_row(counts) == row
    assert matrices_matching(row, range(147, 148)) == [(73, 1, 73, 0)]
    # COVID-19 positive: 73 COVID-19 and 74 normal images, the reverse of the text's 73 / 74.
    assert (counts.tp + counts.fn, counts.tn + counts.fp) == (73, 74)
    assert papers.get("aboughazala").recipe == {"covid": 74, "normal": 73}


def test_aboughazala_with_the_texts_counts_covid_sensitivity_is_not_100_percent():
    # 73 normal all right, 74 COVID-19 with one called normal: Table 1's row only if "normal"
    # is the positive class, and then COVID-19 sensitivity is 73/74, not the 100 % of the text.
    classes = list(papers.get("aboughazala").classes)
    normal, covid = classes.index("normal"), classes.index("covid")
    cm = np.zeros((2, 2), dtype=int)
    cm[normal, normal], cm[covid, covid], cm[covid, normal] = 73, 73, 1
    row = reported("aboughazala", "table1_folds").loc["overlapped", ABOUGHAZALA_COLUMNS].tolist()
    assert table1_row(metrics.one_vs_rest(cm, normal)) == row
    assert metrics.one_vs_rest(cm, covid).sensitivity == pytest.approx(73 / 74)


def test_aboughazala_average_accuracy_is_the_mean_over_folds():
    accuracy = reported("aboughazala", "table1_folds")["accuracy"]
    assert round(100 * metrics.macro_average(accuracy.drop("overlapped")), 2) == 99.33
    overlapped = reported("aboughazala", "table1_derived_confusion").loc["overlapped"]
    assert round(100 * metrics.accuracy(overlapped), 2) == 99.32


# --- Soares & Soares (2020) -------------------------------------------------------------------


def test_soares_vgg16_test_matrix_gives_73_of_75():
    cm = reported("soares", "figure2_vgg16_confusion")
    assert int(cm.to_numpy().sum()) == 75
    assert int(np.trace(cm.to_numpy())) == 73
    assert round(100 * metrics.accuracy(cm), 1) == 97.3
    recall = dict(zip(cm.index, metrics.sensitivity(cm), strict=True))
    assert [round(100 * recall[c], 1) for c in ("covid", "normal", "infection")] == [100, 88.2, 100]
    errors = cm.loc["normal", "infection"]
    assert (errors, round(100 * errors / 75, 1)) == (2, 2.7)
    result = metrics.summary(cm, list(cm.index))
    assert result["accuracy_ci"] == metrics.wilson_interval(73, 75)
    assert result["sensitivity"] == 1.0


# --- cross-checks against scikit-learn ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_per_class_metrics_match_sklearn(seed):
    cm = random_confusion(seed)
    n = cm.shape[0]
    y_true, y_pred = labels_from_confusion(cm)
    labels = np.arange(n)

    assert np.array_equal(metrics.confusion_matrix(y_true, y_pred, n), cm)
    assert np.array_equal(sk.confusion_matrix(y_true, y_pred, labels=labels), cm)
    assert metrics.accuracy(cm) == pytest.approx(sk.accuracy_score(y_true, y_pred))

    p, r, f, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    np.testing.assert_allclose(metrics.precision(cm), p)
    np.testing.assert_allclose(metrics.sensitivity(cm), r)
    np.testing.assert_allclose(metrics.f1_score(cm), f)
    # specificity of class i = recall of "not i" in the binary problem i vs rest
    specificity = [
        sk.recall_score(y_true != i, y_pred != i, zero_division=0) if len(y_true) else 0.0
        for i in labels
    ]
    np.testing.assert_allclose(metrics.specificity(cm), specificity)

    macro = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average="macro", zero_division=0
    )
    assert metrics.macro_average(metrics.precision(cm)) == pytest.approx(macro[0])
    assert metrics.macro_average(metrics.f1_score(cm)) == pytest.approx(macro[2])

    table = metrics.classification_table(cm, [f"c{i}" for i in labels])
    np.testing.assert_array_equal(table["support"].iloc[:-1], support)
    report = sk.classification_report(
        y_true, y_pred, labels=labels, output_dict=True, zero_division=0
    )
    assert table.loc["macro average", "sensitivity"] == pytest.approx(report["macro avg"]["recall"])
    assert table.loc["macro average", "support"] == cm.sum()


@pytest.mark.parametrize("seed", range(5))
def test_one_vs_rest_matches_sklearn_binary_confusion(seed):
    cm = random_confusion(seed)
    y_true, y_pred = labels_from_confusion(cm)
    for i in range(cm.shape[0]):
        tn, fp, fn, tp = sk.confusion_matrix(y_true == i, y_pred == i, labels=[False, True]).ravel()
        assert metrics.one_vs_rest(cm, i) == BinaryCounts(tp=tp, fp=fp, tn=tn, fn=fn)


def test_classification_table_layout():
    cm = np.array([[5, 1, 0], [2, 6, 1], [0, 0, 3]])
    table = metrics.classification_table(cm, ["covid", "normal", "pneumonia"])
    assert list(table.index) == ["covid", "normal", "pneumonia", "macro average"]
    assert list(table.columns) == ["precision", "sensitivity", "specificity", "f1", "support"]
    assert list(table["support"]) == [6, 9, 3, 18]
    assert table.loc["macro average", "specificity"] == pytest.approx(
        np.mean(metrics.specificity(cm))
    )
    with pytest.raises(ValueError, match="class names"):
        metrics.classification_table(cm, ["covid", "normal"])


# --- zero division ------------------------------------------------------------------------------


def test_zero_division_gives_zero():
    # class 1 has no image and is never predicted; class 2 is never predicted
    cm = np.array([[5, 0, 0], [0, 0, 0], [3, 0, 0]])
    assert metrics.precision(cm).tolist() == [5 / 8, 0.0, 0.0]
    assert metrics.sensitivity(cm).tolist() == [1.0, 0.0, 0.0]
    assert metrics.f1_score(cm)[1] == 0.0
    assert metrics.specificity(cm)[1] == 1.0  # all 8 others stay out of class 1
    assert metrics.specificity(np.array([[4]])).tolist() == [0.0]  # no negatives at all
    assert metrics.accuracy(np.zeros((2, 2), dtype=int)) == 0.0
    empty = BinaryCounts(0, 0, 0, 0)
    assert [empty.accuracy, empty.sensitivity, empty.specificity, empty.precision, empty.f1] == [
        0.0
    ] * 5


def test_summary_without_positive_images():
    cm = np.array([[0, 0], [1, 9]])  # no COVID-19 image in this test set
    result = metrics.summary(cm, ["covid", "normal"])
    assert result["sensitivity"] == 0.0
    assert result["sensitivity_ci"] == (0.0, 1.0)
    assert result["specificity"] == pytest.approx(9 / 10)
    assert result["n_images"] == 10
    assert "sensitivity" not in metrics.summary(cm, ["normal", "pneumonia"])


# --- Wilson (1927) interval ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "total", "expected"),
    [
        # Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score)
        (81, 263, (0.2553, 0.3662)),
        (15, 148, (0.0624, 0.1605)),
        (0, 20, (0.0, 0.1611)),
        (1, 29, (0.0061, 0.1718)),
    ],
)
def test_wilson_interval_published_values(successes, total, expected):
    low, high = metrics.wilson_interval(successes, total)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_interval_at_the_edges_and_soares():
    z2 = NormalDist().inv_cdf(0.975) ** 2
    low, high = metrics.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(z2 / (10 + z2))  # closed form at k = 0
    low, high = metrics.wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(10 / (10 + z2))
    scipy_ci = binomtest(73, 75).proportion_ci(confidence_level=0.95, method="wilson")
    assert metrics.wilson_interval(73, 75) == pytest.approx((scipy_ci.low, scipy_ci.high))
    assert metrics.wilson_interval(0, 0) == (0.0, 1.0)


def test_wilson_interval_contains_the_estimate_and_solves_the_score_equation():
    rng = np.random.default_rng(0)
    for _ in range(200):
        total = int(rng.integers(1, 500))
        successes = int(rng.integers(0, total + 1))
        confidence = float(rng.uniform(0.5, 0.999))
        low, high = metrics.wilson_interval(successes, total, confidence)
        p_hat = successes / total
        assert 0.0 <= low <= p_hat <= high <= 1.0
        # Wilson's definition: the p with (p_hat - p)^2 = z^2 p (1 - p) / n
        z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
        for p in (low, high):
            assert (p_hat - p) ** 2 == pytest.approx(z**2 * p * (1 - p) / total, abs=1e-12)
        wider = metrics.wilson_interval(successes, total, min(0.9999, confidence + 0.0005))
        assert wider[0] <= low and wider[1] >= high


def test_wilson_interval_rejects_bad_input():
    with pytest.raises(ValueError, match="successes"):
        metrics.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="confidence"):
        metrics.wilson_interval(5, 10, confidence=1.0)


# --- summed confusion, ROC, input checks --------------------------------------------------------


def test_summed_confusion_equals_confusion_of_all_folds_pooled():
    rng = np.random.default_rng(1)
    y_true = rng.integers(0, 3, 60)
    y_pred = np.where(rng.random(60) < 0.7, y_true, rng.integers(0, 3, 60))
    folds = np.array_split(np.arange(60), 10)
    per_fold = [metrics.confusion_matrix(y_true[f], y_pred[f], 3) for f in folds]
    pooled = metrics.confusion_matrix(y_true, y_pred, 3)
    assert np.array_equal(metrics.summed_confusion(per_fold), pooled)
    with pytest.raises(ValueError, match="same shape"):
        metrics.summed_confusion([np.eye(2), np.eye(3)])
    with pytest.raises(ValueError, match="at least one"):
        metrics.summed_confusion([])


def test_roc_curves_auc_matches_sklearn():
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 3, 80)
    logits = rng.normal(size=(80, 3)) + 1.5 * np.eye(3)[y_true]
    y_prob = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    names = ["covid", "normal", "pneumonia"]
    curves = metrics.roc_curves(y_true, y_prob, names)
    expected = sk.roc_auc_score(y_true, y_prob, multi_class="ovr", average=None)
    assert list(curves) == names
    for name, auc in zip(names, expected, strict=True):
        fpr, tpr, area = curves[name]
        assert area == pytest.approx(auc)
        assert fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0


def test_roc_curves_leave_out_a_class_without_images():
    y_prob = np.array([[0.8, 0.1, 0.1], [0.3, 0.6, 0.1], [0.6, 0.3, 0.1]])
    curves = metrics.roc_curves([0, 1, 0], y_prob, ["covid", "normal", "pneumonia"])
    assert list(curves) == ["covid", "normal"]
    with pytest.raises(ValueError, match="shape"):
        metrics.roc_curves([0, 1], y_prob, ["covid", "normal", "pneumonia"])


def test_bad_confusion_matrices_and_labels_are_rejected():
    with pytest.raises(ValueError, match="square"):
        metrics.precision(np.ones((2, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        metrics.accuracy(np.array([[1, -1], [0, 2]]))
    with pytest.raises(ValueError, match="class indices"):
        metrics.confusion_matrix([0, 3], [0, 1], n_classes=3)
    with pytest.raises(IndexError):
        metrics.one_vs_rest(np.eye(2), 2)
    # a class absent from both label lists still gets its row and column
    assert metrics.confusion_matrix([0, 0], [0, 2], n_classes=3).shape == (3, 3)


def test_metrics_module_does_not_import_tensorflow():
    code = "import sys, covidlab.metrics; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_balanced_accuracy_is_the_mean_sensitivity_of_classes_with_images():
    from sklearn.metrics import balanced_accuracy_score

    y_true = [0, 0, 0, 0, 1, 1, 2, 2, 2]
    y_pred = [0, 0, 0, 1, 1, 2, 2, 2, 0]
    cm = metrics.confusion_matrix(y_true, y_pred, 3)
    assert metrics.balanced_accuracy(cm) == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    one_class = np.array([[0, 10, 0], [0, 10, 0], [0, 0, 0]])  # always "1"; class 2 absent
    assert metrics.balanced_accuracy(one_class) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one image"):
        metrics.balanced_accuracy(np.zeros((2, 2)))


def test_summary_table_has_a_row_per_matrix_with_its_own_classes():
    cms = {"4-class": np.diag([5, 5, 5, 5]), "binary": np.array([[8, 2], [1, 9]])}
    classes = {"4-class": ["covid", "normal", "bacterial", "viral"], "binary": ["covid", "other"]}
    table = metrics.summary_table(cms, classes)
    assert list(table.index) == ["4-class", "binary"]
    assert table.loc["4-class", "balanced accuracy"] == 1.0
    assert table.loc["binary", "sensitivity"] == 0.8 and table.loc["binary", "test images"] == 20


def test_accuracy_with_interval_uses_wilson():
    cm = metrics.confusion_from_labels(["a", "b", "a", "a"], ["a", "b", "b", "a"], ["a", "b"])
    result = metrics.accuracy_with_interval(cm)
    assert (result["correct"], result["n"], result["accuracy"]) == (3, 4, 0.75)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(metrics.wilson_interval(3, 4))


def test_paper_vs_run_labels_where_each_number_comes_from():
    paper = pd.DataFrame({"accuracy": [0.9]}, index=["VGG16"])
    run = pd.DataFrame({"accuracy": [0.7]}, index=["VGG16"])
    beside = metrics.paper_vs_run(paper, run, run_label="smoke")
    assert beside.columns.tolist() == [("paper", "accuracy"), ("smoke", "accuracy")]
    above = metrics.paper_vs_run(paper, run, run_label="smoke", axis=0)
    assert above.index.names[0] == "source"
    assert above["accuracy"].tolist() == [0.9, 0.7]


def test_classes_never_predicted_are_empty_columns_of_classes_with_test_images():
    classes = ("covid", "normal", "pneumonia")  # rows: true class; columns: answer
    every_normal_called_pneumonia = [[15, 0, 0], [0, 0, 15], [0, 0, 31]]
    assert metrics.classes_never_predicted(every_normal_called_pneumonia, classes) == ["normal"]
    one_answer = [[0, 0, 2], [0, 0, 2], [0, 0, 16]]
    assert metrics.classes_never_predicted(one_answer, classes) == ["covid", "normal"]
    # a class without test images is not "never predicted": there was nothing to predict
    no_normal_images = [[3, 0, 1], [0, 0, 0], [1, 0, 5]]
    assert metrics.classes_never_predicted(no_normal_images, classes) == []
