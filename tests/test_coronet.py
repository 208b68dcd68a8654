"""CoroNet (Khan et al. 2020): Table II's counts, the task relabelling, Table III-V layouts."""

import numpy as np
import pandas as pd
import pytest

from covidlab import papers
from covidlab.papers import coronet

SPEC = papers.get("coronet")


def test_table_ii_is_reproduced_at_the_input_size_the_counts_imply():
    model = SPEC.build_model()
    assert model.input.shape[1:] == (150, 150, 3)
    table = coronet.table_ii_comparison(model)
    assert list(table["match"]) == ["✓"] * 8, table.to_string()
    assert table.loc[table["paper layer"] == "total parameters", "our params"].item() == 33_969_964


def test_table_ii_is_not_reproduced_at_the_224_pixels_of_the_text():
    model = SPEC.build_model(input_shape=(*coronet.TEXT_INPUT_SIZE, 3))
    table = coronet.table_ii_comparison(model).set_index("paper layer")
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
    assert list(coronet.task_manifest(manifest, "3-class")["label"]) == [
        "covid",
        "normal",
        "pneumonia",
        "pneumonia",
    ]
    assert list(coronet.task_manifest(manifest, "binary")["label"]) == ["covid"] + ["other"] * 3
    assert set(coronet.task_manifest(manifest, "4-class")["label"]) == set(
        coronet.CLASS_SETS["4-class"]
    )
    with pytest.raises(ValueError, match="not CoroNet"):
        coronet.task_manifest(manifest.assign(label="pneumonia"), "binary")


def test_binary_metrics_take_covid_as_positive():
    cm = np.array([[9, 1], [2, 38]])  # covid: TP 9, FN 1, FP 2, TN 38
    result = coronet.task_metrics(cm, coronet.CLASS_SETS["binary"])
    assert result["recall"] == pytest.approx(0.9)
    assert result["specificity"] == pytest.approx(38 / 40)
    assert result["precision"] == pytest.approx(9 / 11)
    assert result["accuracy"] == pytest.approx(47 / 50)


def test_multiclass_metrics_are_macro_averages():
    cm = np.array([[5, 0, 0], [1, 3, 0], [0, 2, 4]])
    result = coronet.task_metrics(cm, coronet.CLASS_SETS["3-class"])
    recall = np.mean([5 / 5, 3 / 4, 4 / 6])
    assert result["recall"] == pytest.approx(recall)
    assert result["accuracy"] == pytest.approx(12 / 15)


def test_per_fold_and_per_class_tables():
    classes = coronet.CLASS_SETS["3-class"]
    cms = [np.array([[5, 0, 0], [1, 3, 0], [0, 2, 4]]), np.eye(3, dtype=int) * 4]
    folds = coronet.per_fold_table(cms, classes)
    assert list(folds.index) == ["fold 1", "fold 2", "average"]
    assert folds.loc["fold 2", "accuracy"] == 1.0
    assert folds.loc["average", "accuracy"] == pytest.approx((0.8 + 1.0) / 2)
    per_class = coronet.per_class_table(cms, classes)
    assert list(per_class.index) == list(classes)
    assert per_class.loc["pneumonia", "recall"] == pytest.approx((4 / 6 + 1) / 2)


def test_table_v_comparison_puts_the_paper_beside_this_run():
    cms = {"4-class": np.eye(4, dtype=int) * 25, "binary": np.array([[1, 9], [0, 90]])}
    table = coronet.table_v_comparison(cms, run="test")
    assert table.loc["4-class", "accuracy (paper)"] == 89.6
    assert table.loc["4-class", "accuracy (ours)"] == 100.0
    assert table.loc["4-class", "paper in CI"] == "no"  # 100/100 correct: CI 96.3-100
    assert table.loc["binary", "recall (ours)"] == 10.0  # COVID-19 sensitivity 1/10
    assert table.loc["binary", "test images"] == 100
    assert table.loc["binary", "run"] == "test"


def test_fine_tune_epochs_keep_the_paper_profile_ratio():
    assert coronet.fine_tune_epochs(SPEC.epochs) == coronet.FINE_TUNE_EPOCHS == 20
    assert coronet.fine_tune_epochs(4) == 1
    assert coronet.fine_tune_epochs(1) == 1
    assert coronet.fine_tune_epochs(40) == 10
    with pytest.raises(ValueError):
        coronet.fine_tune_epochs(0)
