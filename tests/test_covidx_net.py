"""COVIDX-Net (Hemdan et al. 2020): spec, Rosebrock's 50 files, leakage counts, F1 arithmetic."""

from pathlib import Path

import numpy as np
import pytest

from covidlab import data, leakage, metrics, models, papers, profiles
from covidlab.chapters import covidx_net as chapter
from covidlab.papers import covidx_net

SPEC = papers.get("covidx_net")


def test_spec_has_the_papers_settings_and_seven_backbones():
    assert (SPEC.input_size, SPEC.optimizer, SPEC.learning_rate) == ((224, 224), "sgd", 1e-3)
    assert (SPEC.batch_size, SPEC.epochs, SPEC.test_fraction) == (7, 50, 0.2)
    assert list(SPEC.models) == [
        "VGG19",
        "DenseNet201",
        "InceptionV3",
        "ResNetV2",
        "InceptionResNetV2",
        "Xception",
        "MobileNetV2",
    ]
    assert SPEC.models["ResNetV2"].backbone == "ResNet50V2"
    assert all(m.backbone in models.BACKBONES for m in SPEC.models.values())
    assert set(covidx_net.PAPER_SAYS) == set(SPEC.models)
    assert len(SPEC.choices) >= 5 and len(SPEC.ambiguities) >= 5


def test_head_is_pooling_and_one_softmax_layer_on_a_trainable_base():
    model = models.build_paper_model(SPEC, "MobileNetV2", input_shape=(32, 32, 3))
    assert [layer.name for layer in model.layers[-2:]] == ["pool", "predictions"]
    assert model.get_layer("predictions").count_params() == 1280 * 2 + 2
    counts = models.parameter_counts(model)
    assert counts["trainable"] > 0.95 * counts["total"]  # only BN statistics are frozen


def test_dataset_list_has_25_covid_images_from_12_patients():
    listing = chapter.dataset_list()
    data.validate_manifest(listing)
    assert dict(listing["label"].value_counts()) == {"covid": 25, "normal": 25}
    table = chapter.patients_table(listing)
    assert table.loc["covid", "patients"] == 12
    assert table.loc["covid", "most_images_of_one_patient"] == 4
    assert table.loc["normal", "patients"] == 25  # one image per Kermany patient
    normal = listing[listing["label"] == "normal"]
    assert dict(normal["true_label"].value_counts()) == {"bacterial": 12, "normal": 7, "viral": 6}


def test_image_level_splits_leak_and_patient_level_splits_do_not():
    counts = chapter.sibling_leak(chapter.dataset_list(), 0.2, seeds=range(20))
    by_split = counts.groupby("split")[leakage.LEAKED]
    assert by_split.max()["patient-level"] == 0
    assert by_split.mean()["image-level"] > 1
    summary = chapter.sibling_leak_summary(counts)
    assert summary.loc["patient-level", "splits with a leak"] == 0
    assert (counts.loc[counts["split"] == "image-level", "n_test"] == 10).all()


def test_the_papers_f1_scores_are_one_misclassified_normal_image():
    found = chapter.matrices_with_f1(0.89, 0.91, n_test=10)
    assert sorted(int(np.trace(m)) for m in found) == [9, 9]  # one error, whichever class
    (cm,) = [m for m in found if list(m.sum(axis=1)) == [5, 5]]  # a stratified 5 + 5 test set
    np.testing.assert_array_equal(cm, [[4, 1], [0, 5]])
    np.testing.assert_allclose(metrics.f1_score(cm), [8 / 9, 10 / 11])
    low, high = metrics.wilson_interval(9, 10)
    assert (round(low, 2), round(high, 2)) == (0.6, 0.98)


def test_paper_vs_run_puts_the_papers_claims_beside_the_confusion_matrices():
    table = chapter.paper_vs_run(
        {"VGG19": np.array([[4, 1], [0, 5]]), "InceptionV3": np.array([[0, 5], [0, 5]])},
        {"VGG19": {"total": 10, "trainable": 8}, "InceptionV3": {"total": 3, "trainable": 1}},
        run="test",
    )
    assert list(table.index) == ["VGG19", "InceptionV3"]  # the trained models only
    assert list(table.columns.unique(0)) == ["paper", "this run (test)"]
    paper, ours = table["paper"], table["this run (test)"]
    assert ours.loc["VGG19", "accuracy"] == pytest.approx(0.9)
    assert ours.loc["VGG19", "95% CI"] == "0.60-0.98"
    assert ours.loc["VGG19", "balanced accuracy"] == pytest.approx((4 / 5 + 5 / 5) / 2)
    assert ours.loc["InceptionV3", "balanced accuracy"] == 0.5  # one class for everything
    assert ours.loc["InceptionV3", "f1 normal"] == 0.0  # no normal image predicted
    assert ours.loc["InceptionV3", "predicted covid"] == 10
    assert ours.loc["VGG19", "predicted covid"] == 6
    assert ours.loc["InceptionV3", "trainable"] == 1
    # the paper's F1 for its best model is this matrix's, rounded (Abstract and Section 3)
    assert paper.loc["VGG19", "f1 normal"] == round(ours.loc["VGG19", "f1 normal"], 2) == 0.89
    assert paper.loc["VGG19", "f1 covid"] == round(ours.loc["VGG19", "f1 covid"], 2) == 0.91
    assert paper.loc["InceptionV3", "f1 normal"] == ""  # the text gives no number for it
    assert "worst" in paper.loc["InceptionV3", "what the text says"]
    assert not table.isna().any().any()
    unlabelled = chapter.paper_vs_run({"VGG19": np.array([[4, 1], [0, 5]])})
    assert list(unlabelled.columns.unique(0)) == ["paper", "this run"]
    assert "parameters" not in unlabelled["this run"]


def test_demo_data_tops_up_the_normal_class_with_stand_ins_of_the_same_kinds(shared_data):
    config = profiles.resolve("covidx_net", "demo")
    result = chapter.load_dataset(config, top_up_normal=True)
    manifest = result.manifest
    normal = manifest[manifest["label"] == "normal"]
    assert len(normal) == 25
    assert dict(normal["true_label"].value_counts()) == {"bacterial": 12, "normal": 7, "viral": 6}
    listed = set(chapter.dataset_list()["path"])
    stand_ins = normal[~normal["in_list"]]
    assert not stand_ins["path"].map(lambda p: Path(p).name).isin(listed).any()
    normal_patients = normal["patient_id"]
    assert normal_patients.is_unique  # stand-ins are new patients
    covid = manifest[manifest["label"] == "covid"]
    assert covid["in_list"].all()  # COVID-19 is never topped up
    assert "stand-ins" in " ".join(result.table["drawn_from"])
    untouched = chapter.load_dataset(config, top_up_normal=False).manifest
    assert untouched["in_list"].all()


def test_resolve_keeps_the_papers_batch_and_trains_mobilenet_only_in_smoke():
    smoke = chapter.resolve("smoke")
    assert smoke.models == profiles.PROFILE_MODELS["covidx_net"]["smoke"] == ("MobileNetV2",)
    assert (smoke.batch_size, smoke.run_eagerly, smoke.image_size) == (7, True, (32, 32))
    assert chapter.resolve("demo").image_size == (64, 64)
    # demo trains the paper's 50 epochs: a traced graph, not eager steps
    assert chapter.resolve("demo").epochs == 50 and not chapter.resolve("demo").run_eagerly
    demo = chapter.resolve("demo", backbones=["VGG19", "InceptionV3"])
    assert demo.models == ("VGG19", "InceptionV3") and demo.image_size == (75, 75)
    paper = chapter.resolve("paper", seed=3)
    assert paper.models == tuple(SPEC.models) and paper.seed == 3
    assert (paper.image_size, paper.epochs, paper.batch_size) == ((224, 224), 50, 7)
    assert not paper.run_eagerly and paper.weights == "imagenet"


def test_paper_cost_table_counts_the_model_at_224_pixels():
    table = chapter.paper_cost_table(["MobileNetV2"], n_images=40, epochs=50)
    row = table.loc["MobileNetV2"]
    # Keras' MobileNetV2 without its top has 2,257,984 parameters; the head adds 1280 x 2 + 2
    assert row["parameters"] == 2_257_984 + 1280 * 2 + 2
    assert row["parameters"] == row["trainable"] + row["non-trainable"]
    assert 0.5 < row["forward GFLOP / image"] < 0.7  # ~0.3 GMACs at 224x224
    assert row["training TFLOP"] == pytest.approx(
        3 * row["forward GFLOP / image"] * 40 * 50 / 1000, abs=0.05
    )


def test_headline_model_is_one_of_the_papers_two_best():
    assert covidx_net.HEADLINE_MODEL in SPEC.reported["headline"].table.index


def test_split_comparison_reuses_given_runs_and_scores_balanced_accuracy():
    from covidlab.train import RunResult

    manifest = chapter.dataset_list()
    config = profiles.resolve("covidx_net", "smoke")
    reuse = {}
    for split, group in leakage.SPLITS.items():
        _, test_df = data.holdout_split(manifest, config.test_fraction, seed=0, group=group)
        y_true = (test_df["label"] == "covid").to_numpy().astype(int)
        y_pred = np.ones_like(y_true)  # a model that calls every image COVID-19
        cm = metrics.confusion_matrix(y_true, y_pred, 2)
        reuse[(0, split)] = RunResult({}, y_true, np.eye(2)[y_pred], cm, SPEC.classes, 0.0)

    def never_built():
        raise AssertionError("a reused run must not be trained again")

    table = chapter.split_comparison(never_built, manifest, config, seeds=[0], reuse=reuse)
    assert list(table["split"]) == list(leakage.SPLITS)
    assert table["reused"].all()
    assert (table["score"] == 0.5).all()  # one class for everything: balanced accuracy 0.5
    assert (table["predicted covid"] == table["n_test"]).all()
    assert table.loc[table["split"] == "patient-level", leakage.LEAKED].eq(0).all()
    with pytest.raises(ValueError, match="not the same split"):
        chapter.split_comparison(
            never_built,
            manifest,
            config,
            seeds=[0],
            reuse={(0, "image-level"): reuse[(0, "patient-level")]},
        )
