"""Aboughazala & Mohammed (2020): the spec, Table 1 from fold matrices, the ResNet-50 head."""

import numpy as np
import pytest

from covidlab import metrics, models, papers
from covidlab.chapters import aboughazala as chapter
from covidlab.papers import aboughazala

SPEC = papers.get("aboughazala")
COLUMNS = list(aboughazala.TABLE1_COLUMNS)


def paper_folds() -> list[np.ndarray]:
    """Ten fold matrices that fit Table 1: fold 6 as derived, the other nine perfect."""
    derived = SPEC.reported["table1_derived_confusion"].table
    fold6 = derived.loc["6"].to_numpy()
    rest = derived.loc["overlapped"].to_numpy().sum(axis=1) - fold6.sum(axis=1)
    sizes = [[len(part) for part in np.array_split(np.arange(n), 9)] for n in rest]
    perfect = [np.diag(fold_sizes) for fold_sizes in zip(*sizes, strict=True)]
    return [*perfect[:5], fold6, *perfect[5:]]


def test_spec_has_the_papers_settings_and_says_what_it_chose():
    assert (SPEC.input_size, SPEC.epochs, SPEC.n_splits, SPEC.protocol) == (
        (224, 224),
        30,
        10,
        "kfold",
    )
    assert SPEC.classes == aboughazala.CLASSES and aboughazala.POSITIVE in SPEC.classes
    assert SPEC.models["ResNet50"].base_trainable
    assert len(SPEC.choices) >= 5 and len(SPEC.ambiguities) >= 5
    assert any("optimizer" in text.lower() for text in SPEC.choices)


def test_table1_rebuilt_from_fold_matrices_matches_the_paper():
    folds = paper_folds()
    assert sum(int(cm.sum()) for cm in folds) == 147
    ours = chapter.table1(folds)
    paper = SPEC.reported["table1_folds"].table
    assert list(ours.index) == list(paper.index)
    assert np.array_equal(ours[COLUMNS].astype(float).round(4).to_numpy(), paper[COLUMNS])
    assert ours.loc["overlapped", "correct / tested"] == "146 / 147"


def test_table1_takes_covid_as_positive_whatever_the_class_order():
    cm = np.array([[8, 1], [2, 4]])  # rows/columns: normal, covid
    swapped = cm[::-1, ::-1]
    a = chapter.table1([cm], ("normal", "covid"))
    b = chapter.table1([swapped], ("covid", "normal"))
    assert a.equals(b)
    assert a.loc["1", "sensitivity"] == pytest.approx(4 / 6)
    assert a.loc["1", "precision"] == pytest.approx(4 / 5)


def test_paper_table1_intervals_follow_the_fold_sizes():
    table = chapter.paper_table1()
    low, high = metrics.wilson_interval(146, 147)
    assert table.loc["overlapped", "accuracy 95% CI"] == f"{low:.3f}-{high:.3f}"
    assert table.loc["6", "correct / tested"] == "14 / 15"
    low15, _ = metrics.wilson_interval(15, 15)
    assert f"{low15:.3f}-1.000" in table.loc["1", "accuracy 95% CI"]


def test_comparison_stacks_the_paper_above_this_run():
    folds = [np.array([[5, 0], [1, 4]]), np.array([[4, 1], [0, 5]])]
    table = chapter.paper_vs_run(folds, run="smoke")
    assert table.index.get_level_values("source").unique().tolist() == [
        "paper (Table 1)",
        "this run (smoke)",
    ]
    assert table.loc["this run (smoke)"].loc["overlapped", "accuracy"] == pytest.approx(0.9)


def test_fold_confusion_table_ends_with_the_sum():
    folds = paper_folds()
    table = chapter.fold_confusion_table(folds)
    derived = SPEC.reported["table1_derived_confusion"].table
    assert np.array_equal(table.loc["overlapped"].to_numpy(), derived.loc["overlapped"])
    assert np.array_equal(table.loc["6"].to_numpy(), derived.loc["6"])


def test_a_perfect_fold_of_15_cannot_rule_out_80_percent():
    table = chapter.accuracy_intervals({"fold": (15, 15), "all": (146, 147)})
    assert table.loc["fold", "95% CI low"] == pytest.approx(0.796, abs=1e-3)
    assert table.loc["all", "width"] < table.loc["fold", "width"] / 4


def test_head_replaces_the_1000_way_layer_by_a_2_way_one():
    model = models.build_paper_model(SPEC, input_shape=(32, 32, 3))
    assert [layer.name for layer in model.layers[-2:]] == ["pool", "predictions"]
    assert model.get_layer("predictions").count_params() == 2048 * 2 + 2
    counts = models.parameter_counts(model)
    imagenet_top = 2048 * 1000 + 1000
    assert counts["total"] == 25_636_712 - imagenet_top + 2048 * 2 + 2  # Keras ResNet50 with top
    assert counts["non_trainable"] == 53_120  # batch-normalisation statistics only


def test_smoke_dataset_is_synthetic_and_the_table_keeps_the_papers_counts(tmp_path, monkeypatch):
    from covidlab import profiles

    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    config = profiles.resolve("aboughazala", "smoke", max_per_class=3)
    result = chapter.load_dataset(config)
    assert set(result.manifest["source"]) == {"synthetic"}
    assert result.table.set_index("class")["requested"].to_dict() == {"covid": 74, "normal": 73}
    assert result.table["used"].tolist() == [3, 3]


def test_demo_dataset_draws_the_recipe_from_the_shared_sources(shared_data):
    from covidlab import profiles

    config = profiles.resolve("aboughazala", "demo", max_per_class=5)
    result = chapter.load_dataset(config)
    assert dict(result.manifest["label"].value_counts()) == {"covid": 5, "normal": 5}
    assert set(result.manifest["source"]) != {"synthetic"}


def test_summary_table_takes_covid_as_positive():
    cm = np.array([[47, 3], [10, 40]])  # rows/columns: normal, covid
    table = chapter.summary_table({"overlapped": cm})
    row = table.loc["overlapped"]
    assert row["test images"] == 100
    assert row["sensitivity"] == pytest.approx(0.8) and row["specificity"] == pytest.approx(0.94)
    assert row["balanced accuracy"] == pytest.approx(0.87)
    low, high = metrics.wilson_interval(87, 100)
    assert row["accuracy 95% CI"] == f"{low:.2f}-{high:.2f}"
