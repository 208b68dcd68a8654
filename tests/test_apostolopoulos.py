"""Apostolopoulos & Mpesiana (2020): Table 1 as built, Tables 2-6 re-derived, the two datasets."""

import numpy as np
import pandas as pd
import pytest

from covidlab import config as config_paths
from covidlab import metrics, models, papers, profiles
from covidlab.chapters import apostolopoulos as chapter
from covidlab.papers import apostolopoulos

SPEC = papers.get("apostolopoulos")
TABLE_1 = {  # backbone: (layer cut-off, hidden units)
    "VGG19": (18, (1024,)),
    "MobileNetV2": (10, (1000, 750)),
    "InceptionV3": (249, (1000,)),
    "Xception": (120, (1000, 750)),
    "InceptionResNetV2": (730, ()),
}


def test_spec_follows_table_1_and_the_text():
    assert {name: (m.layer_cutoff, m.head.hidden_units) for name, m in SPEC.models.items()} == (
        TABLE_1
    )
    for model in SPEC.models.values():
        two_hidden = len(model.head.hidden_units) == 2
        assert (model.head.dropout > 0) == two_hidden  # "a Dropout layer" with two hidden layers
        assert model.base_trainable  # the layers after the cut-off train
    assert (SPEC.optimizer, SPEC.epochs, SPEC.batch_size, SPEC.n_splits) == ("adam", 10, 64, 10)
    assert (SPEC.input_size, SPEC.resize) == ((200, 266), "pad")


def test_table_3_reduces_to_table_4():
    table4 = SPEC.reported["table4_covid_counts"].table
    printed = SPEC.reported["table3_confusion"].table
    mobilenet = metrics.one_vs_rest(printed.loc["MobileNetV2"].to_numpy(), 0)
    assert (mobilenet.tp, mobilenet.fp, mobilenet.tn, mobilenet.fn) == tuple(
        table4.loc["MobileNetV2"]
    )
    vgg = metrics.one_vs_rest(printed.loc["VGG19"].to_numpy(), 0)
    assert (vgg.fp, vgg.fn) == (15, 16)  # these agree with Table 4 ...
    assert vgg.tp == 222 != table4.loc["VGG19", "tp"] == 208  # ... the COVID-19 cell does not
    corrected = metrics.one_vs_rest(chapter.paper_confusion("VGG19").to_numpy(), 0)
    assert (corrected.tp, corrected.fp, corrected.tn, corrected.fn) == tuple(table4.loc["VGG19"])


def test_printed_pneumonia_and_normal_totals_are_swapped():
    for model, dataset, pneumonia in (
        ("VGG19", "Dataset_1", 700),
        ("MobileNetV2", "Dataset_2", 714),
    ):
        printed = chapter.paper_confusion(model, dataset, corrected=False)
        corrected = chapter.paper_confusion(model, dataset)
        assert printed.loc["pneumonia"].sum() == 504
        assert corrected.loc["pneumonia"].sum() == pneumonia
        assert corrected.loc["normal"].sum() == 504
        assert np.trace(printed.to_numpy()) - np.trace(corrected.to_numpy()) == (
            14 if model == "VGG19" else 0  # only VGG19's COVID-19 cell changes
        )


def test_tables_2_and_5_follow_from_the_matrices_except_three_cells():
    check = chapter.check_reported()
    disagree = set(check.index[~check["agrees"]])
    assert disagree == {
        ("Dataset_1", "VGG19", "accuracy_2class"),  # 98.75 is its specificity repeated
        ("Dataset_1", "MobileNetV2", "accuracy_3class"),  # 92.85, printed for four networks
        ("Dataset_2", "MobileNetV2", "accuracy_2class"),  # 96.78 vs 96.81
    }
    assert check.loc[("Dataset_1", "MobileNetV2", "accuracy_3class"), "from matrix"] == (
        pytest.approx(100 * 1363 / 1428, abs=1e-3)
    )


def test_the_paper_truncates_rather_than_rounds():
    assert chapter.truncate_percent(222 / 224) == 99.10
    assert round(100 * 222 / 224, 2) == 99.11
    assert chapter.truncate_percent(208 / 224) == 92.85
    assert chapter.truncate_percent(0.5) == 50.0


def test_a_model_that_never_says_covid_scores_84_percent():
    counts = apostolopoulos.DATASETS["Dataset_1"].counts
    never = chapter.two_accuracies(chapter.always_predict(counts, "pneumonia"), SPEC.classes)
    assert never["accuracy_2class"] == pytest.approx(1204 / 1428)
    assert (never["sensitivity"], never["specificity"]) == (0.0, 1.0)
    assert never["accuracy_3class"] == pytest.approx(700 / 1428)
    low, high = never["accuracy_2class_ci"]
    assert low < 1204 / 1428 < high
    with pytest.raises(ValueError, match="not one of the classes"):
        chapter.always_predict(counts, "viral")


def test_asterisked_rows_are_impossible():
    implied = chapter.implied_by_sensitivity_specificity()
    for model in ("InceptionV3", "Xception", "InceptionResNetV2"):
        assert (
            implied.loc[model, "highest possible 3-class"] < implied.loc[model, "printed 3-class"]
        )
    # a sensitivity of 0.08 % leaves at most (1428 - 0.9992 * 224) / 1428 correct
    assert implied.loc["Xception", "highest possible 3-class"] == pytest.approx(84.33, abs=0.01)


def test_paper_vs_run_puts_the_paper_beside_the_run():
    cm = chapter.paper_confusion("MobileNetV2", "Dataset_2").to_numpy()
    table = chapter.paper_vs_run({("Dataset_2", "MobileNetV2"): cm}, tag="smoke")
    assert list(table.index.unique("source")) == ["paper", "this run (smoke)"]
    assert list(table.index.unique("metric")) == list(apostolopoulos.METRIC_COLUMNS)
    column = table[("Dataset_2", "MobileNetV2")]
    # the paper's own matrix: same counts, same interval, the run's value rounded to 0.1
    assert column[("sensitivity", "paper")] == "98.66 (96.1-99.5) n=224"
    assert column[("sensitivity", "this run (smoke)")] == "98.7 (96.1-99.5) n=224"
    other = chapter.paper_vs_run({("Dataset_1", "VGG19"): cm * 0 + np.eye(3, dtype=int)})
    assert other.loc[("accuracy_3class", "paper"), ("Dataset_1", "VGG19")].startswith("93.48 (")
    assert other.loc[("accuracy_3class", "this run"), ("Dataset_1", "VGG19")].endswith(" n=3")


def test_paper_vs_run_lists_only_what_the_run_trained():
    cm = chapter.paper_confusion("MobileNetV2", "Dataset_2").to_numpy()
    table = chapter.paper_vs_run({("Dataset_2", "MobileNetV2"): cm, ("Dataset_2", "VGG19"): cm})
    assert set(table.columns) == {
        ("Dataset_2", "MobileNetV2"),
        ("Dataset_2", "VGG19"),
    }  # no paper-only columns (Dataset_1's five networks are in paper_intervals)
    assert len(chapter.paper_intervals("Dataset_1")) == 5 * 4
    unreported = table[("Dataset_2", "VGG19")].xs("paper", level="source")
    assert (unreported == "").all()  # the paper ran only MobileNet v2 on Dataset_2
    assert not table.isna().any().any()


def test_dataset_2_pneumonia_is_400_bacterial_and_314_viral():
    info = apostolopoulos.DATASETS["Dataset_2"]
    assert info.composition["pneumonia"] == {"bacterial": 400, "viral": 314}
    assert info.counts["pneumonia"] == 714
    plan = SPEC.variant_plans[info.variant]  # the recipe draws what the dataset lists
    assert {part.source_labels: part.count for part in plan["pneumonia"]} == {
        ("bacterial",): 400,
        ("viral",): 314,
    }
    assert apostolopoulos.DATASETS["Dataset_1"].counts == SPEC.recipe
    assert info.models == ("MobileNetV2",)


def test_load_dataset_on_smoke_is_synthetic_and_shows_the_paper_counts(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    config = profiles.resolve("apostolopoulos", "smoke", models=("MobileNetV2",))
    first = chapter.load_dataset(config, "Dataset_1")
    second = chapter.load_dataset(config, "Dataset_2")
    assert list(second.table["requested"]) == [224, 714, 504]
    assert set(first.manifest["label"]) == set(SPEC.classes)
    assert not set(first.manifest["path"]) & set(second.manifest["path"])


@pytest.mark.shared_data
def test_load_dataset_on_demo_keeps_the_paper_proportions(shared_data):
    config = profiles.resolve("apostolopoulos", "demo", max_per_class=20)
    result = chapter.load_dataset(config, "Dataset_2")
    used = result.manifest["label"].value_counts()
    assert used["covid"] == 20
    assert used["normal"] == round(504 * 20 / 224)
    assert used["pneumonia"] == round(400 * 20 / 224) + round(314 * 20 / 224)


@pytest.mark.parametrize(
    ("backbone", "last_frozen", "first_trainable"),
    [
        ("VGG19", "block5_conv1", "block5_conv2"),
        ("MobileNetV2", "block_1_expand", "block_1_expand_BN"),
        ("InceptionV3", "mixed8", None),  # the next layer's name carries a global counter
        ("Xception", "block13_sepconv2_act", "block13_sepconv2"),
    ],
)
def test_cutoffs_land_where_the_chapter_says(backbone, last_frozen, first_trainable):
    size = models.smallest_input_size(backbone)
    model = models.build_paper_model(SPEC, backbone, input_shape=(size, size + 10, 3))
    summary = chapter.cutoff_summary(model, backbone)
    assert summary["last frozen"].startswith(f"{last_frozen} (")
    if first_trainable:
        assert summary["first trainable"].startswith(f"{first_trainable} (")
    assert (
        summary["frozen with weights"] + summary["frozen without weights"] == TABLE_1[backbone][0]
    )
    counts = models.parameter_counts(model)
    assert 0 < counts["trainable"] < counts["total"]


def test_table1_lists_every_backbone():
    table = chapter.table1()
    assert list(table.index) == list(TABLE_1)
    assert table.loc["InceptionResNetV2", "hidden layers"] == "none"
    assert isinstance(table, pd.DataFrame)


def test_choices_and_ambiguities_are_recorded():
    assert len(SPEC.choices) >= 8 and len(SPEC.ambiguities) >= 10
    assert any("1,427" in text for text in SPEC.ambiguities)


def test_example_images_prefer_real_images(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(config_paths, "shared_data_dir", lambda: None)  # no sources anywhere
    config = profiles.resolve("apostolopoulos", "smoke", models=("MobileNetV2",))
    synthetic = chapter.load_dataset(config).manifest
    examples = chapter.example_images(synthetic, n_per_class=2)
    assert (examples["source"] == "synthetic").all()  # no sources anywhere: the run's own
    assert examples["label"].value_counts().to_dict() == {label: 2 for label in SPEC.classes}


@pytest.mark.shared_data
def test_example_images_use_the_sources_for_a_synthetic_run(shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))
    config = profiles.resolve("apostolopoulos", "smoke", models=("MobileNetV2",))
    synthetic = chapter.load_dataset(config).manifest
    examples = chapter.example_images(synthetic, n_per_class=2)
    assert set(examples["source"]) == {"cohen", "kermany"}
    assert set(examples["label"]) == set(SPEC.classes)
