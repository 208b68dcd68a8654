"""covidlab.frozen: what frozen random layers pass on (Apostolopoulos & Mpesiana 2020, Table 1)."""

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from covidlab import frozen, models, papers

SPEC = papers.get("apostolopoulos")


def random_images(n: int = 8, size: tuple[int, int] = (32, 42), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (n, *size, 3)).astype("float32")


def table1_model(backbone: str, size: tuple[int, int] = (32, 42)) -> keras.Model:
    keras.utils.set_random_seed(0)
    return models.build_paper_model(SPEC, backbone, input_shape=(*size, 3))


def test_identical_images_are_fully_alike_and_one_hot_images_not_at_all():
    same = np.tile(np.arange(1.0, 7.0), (5, 1))
    alike = frozen.image_similarity(same)
    assert alike["mean cosine similarity"] == pytest.approx(1.0)
    assert alike["image-specific share"] == pytest.approx(0.0)
    # four one-hot vectors: orthogonal; mean 1/4 each, spread 4 * (9/16 + 3/16) = 3 of energy 4
    apart = frozen.image_similarity(np.eye(4))
    assert apart["mean cosine similarity"] == pytest.approx(0.0)
    assert apart["image-specific share"] == pytest.approx(0.75)
    assert apart["rms"] == pytest.approx(0.5)


def test_similarity_agrees_with_the_matrix_of_cosines():
    features = np.random.default_rng(2).normal(0.3, 1.0, size=(7, 2, 5))
    flat = features.reshape(7, -1)
    unit = flat / np.linalg.norm(flat, axis=1, keepdims=True)
    cosines = (unit @ unit.T)[~np.eye(7, dtype=bool)]
    spread = ((flat - flat.mean(axis=0)) ** 2).sum() / (flat**2).sum()
    result = frozen.image_similarity(features)
    assert result["mean cosine similarity"] == pytest.approx(cosines.mean())
    assert result["image-specific share"] == pytest.approx(spread)
    assert result["rms"] == pytest.approx(np.sqrt((flat**2).mean()))


def test_similarity_ignores_scale_but_rms_does_not():
    features = np.random.default_rng(1).normal(size=(6, 3, 4))
    small = frozen.image_similarity(features / 1000)
    large = frozen.image_similarity(features)
    for column in ("mean cosine similarity", "image-specific share"):
        assert small[column] == pytest.approx(large[column])
    assert small["rms"] == pytest.approx(large["rms"] / 1000)


def test_similarity_needs_two_images_and_survives_zeros():
    with pytest.raises(ValueError, match="at least two images"):
        frozen.image_similarity(np.ones((1, 5)))
    zeros = frozen.image_similarity(np.zeros((3, 5)))
    assert (zeros["mean cosine similarity"], zeros["image-specific share"]) == (0.0, 0.0)


def test_frozen_part_ends_where_table_1_cuts():
    model = table1_model("MobileNetV2")
    base = models.find_backbone(model)
    assert frozen.frozen_layer_count(model) == 10
    images = random_images(3)
    part = frozen.frozen_part(model)
    expected = keras.Model(base.input, base.layers[9].output)(model.get_layer("preprocess")(images))
    np.testing.assert_allclose(part(images), expected, rtol=1e-5, atol=1e-6)
    assert base.layers[10].trainable and not base.layers[9].trainable


def test_a_fully_frozen_base_counts_every_layer_and_a_trainable_one_none():
    head = SPEC.models["MobileNetV2"].head
    fully = models.build_classifier("MobileNetV2", 3, input_shape=(32, 32, 3), head=head)
    assert frozen.frozen_layer_count(fully) == len(models.find_backbone(fully).layers)
    trainable = models.build_classifier(
        "MobileNetV2", 3, input_shape=(32, 32, 3), head=head, base_trainable=True
    )
    assert frozen.frozen_layer_count(trainable) == 0
    with pytest.raises(ValueError, match="layer_cutoff"):
        frozen.frozen_part(trainable)


def test_random_frozen_vgg19_makes_different_images_alike():
    """VGG19's 18 frozen random layers leave little that differs between images; MobileNetV2's
    10 leave much more."""
    images = random_images(8)
    vgg = frozen.similarity_by_depth(table1_model("VGG19"), images)
    mobilenet = frozen.similarity_by_depth(table1_model("MobileNetV2"), images)
    assert list(vgg.index) == list(range(18)) and list(mobilenet.index) == list(range(10))
    assert vgg.iloc[0]["layer"] == "input (preprocessed)"
    assert vgg.iloc[-1]["layer"] == "block5_conv1"
    share = "image-specific share"
    assert vgg.iloc[-1][share] < 0.1 * vgg.iloc[0][share]
    assert vgg.iloc[-1]["mean cosine similarity"] > vgg.iloc[0]["mean cosine similarity"]
    assert mobilenet.iloc[-1][share] > 5 * vgg.iloc[-1][share]
    last = frozen.image_similarity(np.asarray(frozen.frozen_part(table1_model("VGG19"))(images)))
    assert last[share] == pytest.approx(vgg.iloc[-1][share], rel=1e-3)


def test_plot_draws_one_line_per_backbone_in_each_panel():
    table = frozen.similarity_by_depth(table1_model("MobileNetV2"), random_images(4))
    fig = frozen.plot_similarity_by_depth({"a": table, "b": table}, caption="test")
    assert isinstance(fig, Figure)
    assert [len(ax.lines) for ax in fig.axes] == [2, 2]


def test_summary_puts_the_input_beside_what_the_first_trainable_layer_receives():
    images = random_images(6)
    tables = {
        name: frozen.similarity_by_depth(table1_model(name), images)
        for name in ("VGG19", "MobileNetV2")
    }
    summary = frozen.summary_table(tables)
    assert list(summary.index) == ["VGG19", "MobileNetV2"]
    assert summary.loc["VGG19", "frozen layers"] == 18
    assert summary.loc["VGG19", "first trainable layer"] == "block5_conv2 (Conv2D)"
    assert summary.loc["MobileNetV2", "first trainable layer"].endswith("(BatchNormalization)")
    vgg = tables["VGG19"]
    assert summary.loc["VGG19", "signal shrunk by (rms ratio)"] == pytest.approx(
        vgg.iloc[0]["rms"] / vgg.iloc[-1]["rms"]
    )
    assert not summary.isna().any().any()


def test_manifest_images_are_what_training_receives(tmp_path):
    from covidlab import synthetic

    manifest = synthetic.synthetic_manifest(tmp_path, ("covid", "normal"), 2, image_size=(40, 40))
    images = frozen.manifest_images(manifest, (32, 42), resize="pad")
    assert images.shape == (4, 32, 42, 3)
    assert 0 <= images.min() and images.max() <= 255
    assert not np.allclose(images[0], images[1])
