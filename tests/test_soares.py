"""Soares & Soares (2020): the reported numbers, the authors' head, the split, the probe."""

import dataclasses

import numpy as np
import pytest

from covidlab import data, models, papers, profiles, synthetic
from covidlab.chapters import soares as chapter
from covidlab.papers import soares

SPEC = papers.get("soares")


def test_figure2_matrix_and_accuracy_table_agree_on_vgg16():
    cm = SPEC.reported["figure2_vgg16_confusion"].table.to_numpy()
    reported = SPEC.reported["accuracy"].table["accuracy (%)"]
    assert cm.sum() == 75 and np.trace(cm) == 73
    assert round(100 * np.trace(cm) / cm.sum(), 1) == reported["VGG16"]


@pytest.mark.parametrize("model", ["Xception", "ResNet50"])
def test_xception_and_resnet_accuracies_are_not_counts_of_75_or_30_images(model):
    value = SPEC.reported["accuracy"].table.loc[model, "accuracy (%)"]
    for total in (75, 30):
        assert all(round(100 * k / total, 1) != value for k in range(total + 1))


def test_vgg16_head_at_237_pixels_has_the_authors_sizes():
    model = models.build_paper_model(SPEC, "VGG16")
    assert model.get_layer("flatten").output.shape[-1] == 3 * 3 * 512
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == (4608 * 20 + 20) + (20 * 3 + 3)


def test_base_is_frozen_unless_asked_and_small_inputs_still_build():
    frozen = models.build_paper_model(SPEC, "ResNet50", input_shape=(32, 32, 3))
    unfrozen = models.build_paper_model(
        SPEC, "ResNet50", input_shape=(32, 32, 3), base_trainable=True
    )
    assert frozen.get_layer("flatten").output.shape[-1] == 2048  # 1x1 map, 1x1 pool
    assert len(unfrozen.trainable_weights) > len(frozen.trainable_weights) == 4


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    out = tmp_path_factory.mktemp("soares")
    return synthetic.synthetic_manifest(
        out, SPEC.classes, 10, image_size=(32, 32), seed=0, patients_per_class=10
    )


def test_split_takes_test_first_then_validation_from_the_rest(manifest):
    train, validation, test = data.train_validation_test_split(
        manifest, SPEC.test_fraction, SPEC.validation_fraction, seed=0
    )
    assert len(test) == 6 and len(validation) == 3 and len(train) == 21
    data.assert_patient_disjoint(train, test)
    data.assert_patient_disjoint(train, validation)
    data.assert_patient_disjoint(validation, test)


def test_paper_vs_run_puts_wilson_interval_beside_the_paper():
    cm = SPEC.reported["figure2_vgg16_confusion"].table.to_numpy()
    table = chapter.paper_vs_run({"VGG16": cm}, run="run")
    assert table.loc["VGG16", ("paper", "paper (%)")] == 97.3
    assert table.loc["VGG16", ("run", "95% CI (%)")] == "90.8-99.3"
    assert table.loc["Xception", ("run", "this run (%)")] == "not trained"
    assert not table.isna().any().any()


def test_per_class_table_reads_like_the_figure2_text():
    cm = SPEC.reported["figure2_vgg16_confusion"].table.to_numpy()
    table = chapter.per_class_table(cm, SPEC.classes)
    assert table.loc["normal", "images"] == 17 and table.loc["normal", "right"] == 15
    assert table.loc["normal", "sensitivity"] == 0.882
    assert table.loc["covid", "95% CI"] == "0.91-1.00"


def test_linear_probe_scores_every_test_image(manifest):
    config = dataclasses.replace(profiles.resolve("soares", "smoke"), batch_size=8)
    train, _, test = data.train_validation_test_split(manifest, 0.2, 0.1, seed=0)
    model = models.build_paper_model(SPEC, "VGG16", input_shape=(*config.image_size, 3))
    cm = chapter.linear_probe(model, train, test, config)
    assert cm.shape == (3, 3) and cm.sum() == len(test)


def test_headline_model_is_the_one_the_paper_tests_in_full():
    assert soares.HEADLINE_MODEL == "VGG16" and soares.HEADLINE_MODEL in SPEC.models


def test_the_infection_class_pools_bacterial_and_viral_pneumonia():
    (part,) = SPEC.plan["infection"]
    assert set(part.source_labels) == {"bacterial", "viral"} and part.count is None
    assert any("bacterial and viral" in choice for choice in SPEC.choices)


def test_head_step_size_is_the_learning_rate_times_the_features_l1_norm():
    features = np.array([[1.0, -2.0, 0.0], [3.0, 0.0, -1.0]])  # L1 norms 3 and 4
    assert chapter.head_step_size(features, 1e-3) == pytest.approx(1e-3 * 3.5)
    tiny = np.full((4, 8192), 1e-5)  # Xception's frozen random features are about this size
    assert chapter.head_step_size(tiny, 1e-3) < 1e-3


def test_summary_table_gives_every_number_its_interval():
    cm = SPEC.reported["figure2_vgg16_confusion"].table.to_numpy()
    row = chapter.summary_table({"VGG16": cm}, SPEC.classes).loc["VGG16"]
    assert row["test images"] == 75 and row["accuracy 95% CI"] == "0.91-0.99"
    assert row["balanced accuracy"] == round((1 + 15 / 17 + 1) / 3, 3)
    assert row["sensitivity"] == 1.0 and row["sensitivity 95% CI"] == "0.91-1.00"


def test_frozen_models_reuse_trained_runs_and_skip_backbones_too_big_for_the_input():
    from types import SimpleNamespace

    config = profiles.resolve("soares", "smoke")  # 32 px: Xception needs 71
    trained = SimpleNamespace(model="the trained VGG16")
    chosen = chapter.frozen_models({"VGG16": trained}, config)
    assert list(chosen) == ["VGG16", "ResNet50"]
    assert chosen["VGG16"] == "the trained VGG16"
    assert chosen["ResNet50"].get_layer("flatten").output.shape[-1] == 2048


def test_frozen_features_are_what_the_head_sees(manifest):
    config = dataclasses.replace(profiles.resolve("soares", "smoke"), batch_size=8)
    model = models.build_paper_model(SPEC, "VGG16", input_shape=(*config.image_size, 3))
    features, labels = chapter.frozen_features(model, manifest.head(5), config)
    assert features.shape == (5, model.get_layer("flatten").output.shape[-1])
    assert list(labels) == [SPEC.classes.index(label) for label in manifest.head(5)["label"]]


def test_source_and_disease_splits_the_matrix_into_its_two_questions():
    cm = np.array([[10, 0, 0], [0, 10, 0], [0, 7, 3]])  # COVID-19 perfect, 7 infections "normal"
    table = chapter.source_and_disease(cm, SPEC.classes)
    source, disease = table.loc[chapter.SOURCE_QUESTION], table.loc[chapter.DISEASE_QUESTION]
    assert (source["right"], source["test images"]) == (30, 30)
    assert source["one answer for all"] == round(20 / 30, 3)  # "not COVID-19" for every image
    assert (disease["right"], disease["test images"]) == (13, 20)
    assert disease["one answer for all"] == 0.5 and disease["95% CI"] == "0.43-0.82"


def test_a_kermany_image_called_covid_is_wrong_on_both_questions():
    cm = np.array([[5, 0, 0], [2, 3, 0], [0, 0, 5]])
    table = chapter.source_and_disease(cm, SPEC.classes)
    assert table.loc[chapter.SOURCE_QUESTION, "right"] == 13
    assert table.loc[chapter.DISEASE_QUESTION, "right"] == 8


def test_source_reading_applies_chapter_02s_rule_to_the_numbers():
    covid_only = np.array([[10, 0, 0], [0, 10, 0], [0, 7, 3]])
    source_only = chapter.source_reading(covid_only, SPEC.classes)
    assert "13 of 20 right" in source_only and "30 of 30 right" in source_only
    assert "source is doing most of the work" in source_only
    assert "no evidence that it tells normal from infection" in source_only
    figure2 = SPEC.reported["figure2_vgg16_confusion"].table.to_numpy()  # 34 of 36 Kermany right
    both = chapter.source_reading(figure2, SPEC.classes, model="paper")
    assert both.startswith("paper: ") and "does not show the source doing most" in both
    assert "learned something besides the source" in both


def test_infection_mix_counts_the_pool_and_the_draw(monkeypatch, tmp_path):
    import pandas as pd

    from covidlab import profiles as profiles_module

    demo = profiles.resolve("soares", "demo")
    tree = tmp_path / "chest_xray" / "train"
    for folder, names in {
        "PNEUMONIA": ["person1_bacteria_1.jpeg", "person2_bacteria_2.jpeg", "person3_virus_3.jpeg"],
        "NORMAL": ["IM-0001-0001.jpeg"],
    }.items():
        (tree / folder).mkdir(parents=True)
        for name in names:
            (tree / folder / name).write_bytes(b"")
    monkeypatch.setattr(profiles_module, "sources_dir", lambda config: tmp_path)
    manifest = pd.DataFrame(
        {"label": ["infection", "infection", "covid"], "true_label": ["viral", "viral", "covid"]}
    )
    table = chapter.infection_mix(manifest, demo)
    assert table.loc["Kermany pneumonia images in this run's sources"].tolist() == [2, 1, 2.0]
    assert table.loc["this run's infection class", ["bacterial", "viral"]].tolist() == [0, 2]
    assert table.loc["this run's infection class", "bacterial per viral"] == 0.0
    smoke = chapter.infection_mix(manifest, profiles.resolve("soares", "smoke"))
    assert list(smoke.index) == ["this run's infection class"]  # synthetic data has no sources
