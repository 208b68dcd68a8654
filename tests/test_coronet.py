"""CoroNet (Khan et al. 2020): Table II's counts, the task relabelling, Table III-V layouts."""

import numpy as np
import pandas as pd
import pytest

from covidlab import metrics, models, papers
from covidlab.chapters import coronet as chapter
from covidlab.papers import coronet

SPEC = papers.get("coronet")


def test_table_ii_is_reproduced_at_the_input_size_the_counts_imply():
    model = models.build_paper_model(SPEC)
    assert model.input.shape[1:] == (150, 150, 3)
    table = chapter.table_ii_comparison(model)
    assert list(table["match"]) == ["✓"] * 8, table.to_string()
    assert table.loc[table["paper layer"] == "total parameters", "our params"].item() == 33_969_964


def test_table_ii_is_not_reproduced_at_the_224_pixels_of_the_text():
    model = models.build_paper_model(SPEC, input_shape=(*coronet.TEXT_INPUT_SIZE, 3))
    table = chapter.table_ii_comparison(model).set_index("paper layer")
    assert table.loc["xception", "our output shape"] == "7 x 7 x 2048"
    assert table.loc["total parameters", "our params"] == 46_552_876
    assert table.loc["dense", "match"] == "✗"


def test_table_ii_rows_add_up_to_its_total():
    layers = SPEC.reported["layers"].table
    totals = SPEC.reported["parameters"].table["params"]
    assert layers["params"].sum() == totals["total"]
    assert totals["trainable"] + totals["non_trainable"] == totals["total"]


def test_table_iii_average_row_is_the_mean_of_the_folds():
    table = SPEC.reported["per_fold"].table
    folds = table.drop(index="average")
    np.testing.assert_allclose(folds.mean(), table.loc["average"], atol=0.15)


def test_table_iv_averages_to_table_iii_average():
    per_class = SPEC.reported["per_class"].table
    average = SPEC.reported["per_fold"].table.loc["average"]
    for column in ("precision", "recall", "specificity"):
        assert per_class[column].mean() == pytest.approx(average[column], abs=0.2)


def test_task_manifest_merges_labels():
    manifest = pd.DataFrame(
        {
            "path": list("abcd"),
            "label": ["covid", "normal", "bacterial", "viral"],
            "patient_id": list("abcd"),
            "source": ["x"] * 4,
        }
    )
    assert list(chapter.task_manifest(manifest, "3-class")["label"]) == [
        "covid",
        "normal",
        "pneumonia",
        "pneumonia",
    ]
    assert list(chapter.task_manifest(manifest, "binary")["label"]) == ["covid"] + ["other"] * 3
    assert set(chapter.task_manifest(manifest, "4-class")["label"]) == set(
        coronet.CLASS_SETS["4-class"]
    )
    with pytest.raises(ValueError, match="not CoroNet"):
        chapter.task_manifest(manifest.assign(label="pneumonia"), "binary")


def test_binary_metrics_take_covid_as_positive():
    cm = np.array([[9, 1], [2, 38]])  # covid: TP 9, FN 1, FP 2, TN 38
    result = chapter.task_metrics(cm, coronet.CLASS_SETS["binary"])
    assert result["recall"] == pytest.approx(0.9)
    assert result["specificity"] == pytest.approx(38 / 40)
    assert result["precision"] == pytest.approx(9 / 11)
    assert result["accuracy"] == pytest.approx(47 / 50)


def test_multiclass_metrics_are_macro_averages():
    cm = np.array([[5, 0, 0], [1, 3, 0], [0, 2, 4]])
    result = chapter.task_metrics(cm, coronet.CLASS_SETS["3-class"])
    recall = np.mean([5 / 5, 3 / 4, 4 / 6])
    assert result["recall"] == pytest.approx(recall)
    assert result["accuracy"] == pytest.approx(12 / 15)


def test_per_fold_and_per_class_tables():
    classes = coronet.CLASS_SETS["3-class"]
    cms = [np.array([[5, 0, 0], [1, 3, 0], [0, 2, 4]]), np.eye(3, dtype=int) * 4]
    folds = chapter.per_fold_table(cms, classes)
    assert list(folds.index) == ["fold 1", "fold 2", "average"]
    assert folds.loc["fold 2", "accuracy"] == 1.0
    assert folds.loc["average", "accuracy"] == pytest.approx((0.8 + 1.0) / 2)
    per_class = chapter.per_class_table(cms, classes)
    assert list(per_class.index) == list(classes)
    assert per_class.loc["pneumonia", "recall"] == pytest.approx((4 / 6 + 1) / 2)


def test_paper_vs_run_puts_table_v_beside_this_run():
    cms = {"4-class": np.eye(4, dtype=int) * 25, "binary": np.array([[1, 9], [0, 90]])}
    table = chapter.paper_vs_run(cms, run="test")
    assert list(table.index) == ["4-class", "binary"]  # the tasks this run trained, in order
    assert list(table.columns.unique(0)) == ["paper", "this run (test)"]
    paper, ours = table["paper"], table["this run (test)"]
    assert list(paper.columns) == coronet.METRICS
    assert paper.loc["4-class", "accuracy"] == 89.6
    assert ours.loc["4-class", "accuracy"] == 100.0
    assert ours.loc["4-class", "accuracy 95% CI"] == "96.3-100.0"
    assert ours.loc["4-class", "paper in CI"] == "no"  # 100/100 correct: CI 96.3-100
    assert ours.loc["binary", "recall"] == 10.0  # COVID-19 sensitivity 1/10
    assert paper.loc["binary", "recall"] == 99.3
    assert ours.loc["binary", "test images"] == 100
    close = chapter.paper_vs_run({"3-class": np.array([[9, 1, 0], [0, 9, 1], [0, 0, 10]])})
    assert close.loc["3-class", ("this run", "paper in CI")] == "yes"  # 28/30: CI 79-98 %


def test_fine_tune_epochs_keep_the_paper_profile_ratio():
    assert chapter.fine_tune_epochs(SPEC.epochs) == coronet.FINE_TUNE_EPOCHS == 20
    assert chapter.fine_tune_epochs(4) == 1
    assert chapter.fine_tune_epochs(1) == 1
    assert chapter.fine_tune_epochs(40) == 10
    with pytest.raises(ValueError):
        chapter.fine_tune_epochs(0)


def test_table_v_binary_row_contradicts_itself():
    """Table V's binary row: F1 is not 2PR/(P + R) whatever the test set; and if the binary model
    was tested on the 3-class test set (29 COVID-19 + 192 others, the only one the paper
    states), its recall, specificity and precision fit no 2x2 matrix of it; only the accuracy
    (219/221) does."""
    row = SPEC.reported["tasks"].table.loc["binary"]
    p, r = row["precision"], row["recall"]
    assert round(2 * p * r / (p + r), 2) == 98.80 != row["f1"]
    positives, others = 29, 72 + 120
    assert coronet.TASK_TEST_SET == {"covid": 29, "normal": 72, "pneumonia": 120}
    assert not [k for k in range(positives + 1) if round(100 * k / positives, 1) == row["recall"]]
    assert not [k for k in range(others + 1) if round(100 * k / others, 1) == row["specificity"]]
    precisions = {
        round(100 * tp / (tp + fp), 1) for tp in range(1, positives + 1) for fp in range(others + 1)
    }
    assert row["precision"] not in precisions
    assert round(100 * 219 / 221) == row["accuracy"]

    check = chapter.binary_row_check()
    assert check["fits"].to_dict() == {
        "precision": "no",
        "recall": "no",
        "specificity": "no",
        "f1": "no",
        "accuracy": "yes",
    }
    assert check.loc["f1", "nearest possible (%)"] == pytest.approx(98.80, abs=0.005)
    assert check.loc["f1", "assumes"].startswith("nothing")  # the F1 check needs no test set
    assert check.loc["recall", "assumes"] == "tested on 29 COVID-19 + 192 other images"
    assert check.loc["recall", "as a fraction"] in {"28/29", "29/29"}
    assert check.loc["accuracy", "as a fraction"] == "219/221"


def test_binary_row_check_accepts_a_row_that_fits():
    """The check can pass: with 300 COVID-19 images 99.3 % recall is 298/300."""
    check = chapter.binary_row_check({"covid": 300, "other": 700})
    assert check.loc["recall", "fits"] == "yes"
    assert check.loc["recall", "as a fraction"] == "298/300"
    assert check.loc["f1", "fits"] == "no"  # F1 does not depend on the test set


def test_dataset_2_table_vi_is_stored():
    table = SPEC.reported["dataset_2"].table
    assert coronet.DATASET_2_ACCURACY == 90.21
    assert table.loc["covid", "recall"] == 89.0
    np.testing.assert_allclose(table.drop(index="average").mean(), table.loc["average"], atol=0.7)


def test_summary_table_reads_each_task_with_its_own_classes():
    four = np.array([[10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]])
    binary = np.array([[9, 1], [3, 27]])  # covid: TP 9, FN 1; other: 27 of 30 right
    table = chapter.summary_table({"4-class": four, "binary": binary})
    assert table.loc["4-class", "balanced accuracy"] == pytest.approx(0.75)
    assert table.loc["4-class", "sensitivity"] == 1.0  # COVID-19 against the other three
    assert table.loc["binary", "sensitivity"] == pytest.approx(0.9)
    assert table.loc["binary", "specificity"] == pytest.approx(0.9)
    assert table.loc["binary", "test images"] == 40
    low, high = metrics.wilson_interval(36, 40)
    assert table.loc["binary", "accuracy 95% CI"] == f"{low:.2f}-{high:.2f}"


def test_merge_confusion_adds_the_merged_rows_and_columns():
    four = np.array([[16, 1, 0, 0], [1, 15, 1, 0], [1, 0, 10, 6], [2, 2, 3, 9]])
    three = chapter.merge_confusion(four, "3-class")
    assert three.tolist() == [[16, 1, 0], [1, 15, 1], [3, 2, 28]]  # bacterial <-> viral is right
    binary = chapter.merge_confusion(four, "binary")
    assert binary.tolist() == [[16, 1], [4, 46]]
    assert (chapter.merge_confusion(four, "4-class") == four).all()
    with pytest.raises(ValueError, match="4x4"):
        chapter.merge_confusion(three, "binary")


def test_one_answer_confusion_calls_every_image_the_largest_class():
    binary = np.array([[16, 1], [14, 36]])  # 17 COVID-19, 50 others
    baseline = chapter.one_answer_confusion(binary)
    assert baseline.tolist() == [[0, 17], [0, 50]]
    assert metrics.accuracy(baseline) == pytest.approx(50 / 67)
    assert metrics.balanced_accuracy(baseline) == pytest.approx(0.5)


FOUR = np.array([[16, 1, 0, 0], [1, 15, 1, 0], [1, 0, 10, 6], [2, 2, 3, 9]])
BINARY = np.array([[16, 1], [14, 36]])  # the fine-tuned model calls 14 of 50 others COVID-19


def test_fine_tune_table_sets_the_model_beside_its_parent_and_the_trivial_answer():
    table = chapter.fine_tune_table([FOUR], [BINARY], "binary")
    assert list(table.index) == [chapter.FINE_TUNED, chapter.MERGED_PARENT, chapter.ONE_ANSWER]
    assert table.loc[chapter.FINE_TUNED, "accuracy"] == round(52 / 67, 3)
    assert table.loc[chapter.ONE_ANSWER, "accuracy"] == round(50 / 67, 3)
    assert table.loc[chapter.ONE_ANSWER, "accuracy 95% CI"] == ""  # a rule, not an estimate
    assert table.loc[chapter.MERGED_PARENT, "specificity"] == 0.92  # 46 of 50 others
    with pytest.raises(ValueError, match="same images"):
        chapter.fine_tune_table([FOUR], [np.array([[16, 1], [14, 37]])], "binary")


def test_fine_tune_reading_says_when_the_trivial_answer_is_not_beaten():
    text = chapter.fine_tune_reading([FOUR], [BINARY], "binary", folds="fold 1 of 3")
    assert "fold 1 of 3" in text and "52/67 = 77.6 %" in text
    assert 'Calling every image "other" would score 50/67 = 74.6 %, inside that interval' in text
    assert "does not show that the model beats the trivial answer" in text
    assert "calls 14 of the 50 others COVID-19 (specificity 0.72)" in text
    assert "does not improve on relabelling" in text  # parent: balanced accuracy 0.93 > 0.83
    good = chapter.fine_tune_reading([FOUR], [np.array([[16, 1], [1, 49]])], "binary")
    assert "beats the trivial answer" in good and "does not show" not in good
    assert "is the higher of the two" in good


def test_folds_label_names_the_folds_summed():
    assert chapter.folds_label(1, 3) == "fold 1 of 3"
    assert chapter.folds_label(2, 3) == "folds 1-2 of 3 summed"
    assert chapter.folds_label(4, 4) == "all 4 folds summed"
    with pytest.raises(ValueError):
        chapter.folds_label(0, 3)


def test_grad_cam_refusal_names_the_map_at_the_papers_input_size():
    from covidlab import explain

    demo = models.build_paper_model(SPEC, input_shape=(71, 71, 3))  # 3x3 map
    refusal = explain.grad_cam_refusal(demo, reference=models.build_paper_model(SPEC))
    assert "3x3" in refusal and "at the paper's 150x150 input this network's map is 5x5" in refusal
    assert "224" not in explain.grad_cam_refusal(demo)
