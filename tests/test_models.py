"""The backbone registry and build_classifier: shapes, freezing, heads, CoroNet's Table II."""

from __future__ import annotations

import urllib.error
from collections.abc import Callable

import keras
import numpy as np
import pytest

from covidlab import models
from covidlab.models import BACKBONES, Head, build_classifier, parameter_counts

TEN_BACKBONES = (
    "VGG16",
    "VGG19",
    "ResNet50",
    "ResNet50V2",
    "DenseNet121",
    "DenseNet201",
    "InceptionV3",
    "InceptionResNetV2",
    "Xception",
    "MobileNetV2",
)
TINY_HEAD = Head(pooling="avg", hidden_units=(8,), dropout=0.2)


@pytest.fixture(scope="module")
def smallest_classifiers() -> Callable[[str], keras.Model]:
    """Each backbone built once for this module, at its smallest input size, 3 classes."""
    built = {}

    def build(name: str) -> keras.Model:
        if name not in built:
            size = models.smallest_input_size(name)
            built[name] = build_classifier(name, 3, input_shape=(size, size, 3), head=TINY_HEAD)
        return built[name]

    return build


def test_registry_holds_the_ten_backbones_of_the_papers():
    assert set(BACKBONES) == set(TEN_BACKBONES)
    for name, backbone in BACKBONES.items():
        assert backbone.name == name
        assert callable(backbone.application) and callable(backbone.preprocess_input)
        assert backbone.default_input_size in (224, 299)
        assert backbone.min_input_size <= backbone.default_input_size


def test_smallest_input_sizes_are_those_keras_enforces():
    sizes = {name: models.smallest_input_size(name) for name in TEN_BACKBONES}
    assert sizes["InceptionV3"] == sizes["InceptionResNetV2"] == 75
    assert sizes["Xception"] == 71
    assert {sizes[n] for n in TEN_BACKBONES if "Inception" not in n and n != "Xception"} == {32}
    with pytest.raises(ValueError, match="ResNet18"):
        models.smallest_input_size("ResNet18")


@pytest.mark.parametrize("name", TEN_BACKBONES)
def test_every_backbone_builds_at_its_smallest_size(smallest_classifiers, name):
    model = smallest_classifiers(name)
    size = models.smallest_input_size(name)
    assert model.get_layer(name) is models.find_backbone(model)
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    probabilities = model(images, training=False).numpy()
    assert probabilities.shape == (2, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(("name", "size"), [("VGG16", 31), ("Xception", 70), ("InceptionV3", 74)])
def test_input_below_the_minimum_is_refused_with_the_size_to_use(name, size):
    minimum = models.smallest_input_size(name)
    with pytest.raises(ValueError, match=rf"{name} needs images of at least {minimum}x{minimum}"):
        build_classifier(name, 2, input_shape=(size, 100, 3))


@pytest.mark.parametrize("name", ["VGG16", "DenseNet121", "Xception"])
def test_the_model_applies_the_backbones_own_preprocessing(name):
    pixels = np.random.default_rng(1).uniform(0, 255, (2, 8, 8, 3)).astype("float32")
    expected = BACKBONES[name].preprocess_input(pixels.copy())
    np.testing.assert_allclose(models.Preprocess(name)(pixels), expected, rtol=1e-5, atol=1e-4)


def test_preprocessing_can_be_left_out():
    model = build_classifier("VGG16", 2, input_shape=(32, 32, 3), include_preprocessing=False)
    assert not any(isinstance(layer, models.Preprocess) for layer in model.layers)


def test_frozen_base_trains_only_the_head():
    frozen = build_classifier("VGG16", 3, input_shape=(32, 32, 3), head=TINY_HEAD)
    trained = build_classifier(
        "VGG16", 3, input_shape=(32, 32, 3), head=TINY_HEAD, base_trainable=True
    )
    head_params = (512 * 8 + 8) + (8 * 3 + 3)
    base_params = models.find_backbone(frozen).count_params()
    assert parameter_counts(frozen) == {
        "total": base_params + head_params,
        "trainable": head_params,
        "non_trainable": base_params,
    }
    assert parameter_counts(trained)["trainable"] == base_params + head_params


def test_layer_cutoff_freezes_exactly_the_first_k_backbone_layers():
    cutoff = 5
    model = build_classifier("VGG16", 2, input_shape=(32, 32, 3), layer_cutoff=cutoff)
    base = models.find_backbone(model)
    assert [layer.trainable for layer in base.layers] == [False] * cutoff + [True] * (
        len(base.layers) - cutoff
    )
    table = models.frozen_layers_table(model, cutoff)
    frozen_params = table.loc[table["frozen"], "params"].sum()
    counts = parameter_counts(model)
    assert counts["non_trainable"] == frozen_params
    assert counts["trainable"] + counts["non_trainable"] == counts["total"]


def test_layer_cutoff_overrides_base_trainable_and_keeps_batch_norm_statistics():
    cutoff = 10  # Apostolopoulos & Mpesiana 2020, Table 1: MobileNetV2
    model = build_classifier("MobileNetV2", 3, input_shape=(32, 32, 3), layer_cutoff=cutoff)
    table = models.frozen_layers_table(model, cutoff)
    batch_norm = table["type"] == "BatchNormalization"
    # Frozen layers keep all their parameters; a trainable BatchNorm layer still does not train
    # its moving mean and variance, half of its 4 x channels parameters.
    expected = (
        table.loc[table["frozen"], "params"].sum()
        + table.loc[~table["frozen"] & batch_norm, "params"].sum() // 2
    )
    assert parameter_counts(model)["non_trainable"] == expected

    base = models.find_backbone(model)
    frozen_bn = base.get_layer(table.loc[table["frozen"] & batch_norm, "layer"].iloc[0])
    trainable_bn = base.get_layer(table.loc[~table["frozen"] & batch_norm, "layer"].iloc[0])
    for layer, runs_in_inference_mode in ((frozen_bn, True), (trainable_bn, False)):
        channels = layer.gamma.shape[0]
        x = np.random.default_rng(2).normal(3.0, 2.0, (4, 5, 5, channels)).astype("float32")
        same = np.allclose(layer(x, training=True), layer(x, training=False), atol=1e-4)
        assert same == runs_in_inference_mode, layer.name


@pytest.mark.parametrize("cutoff", [-1, 23])
def test_layer_cutoff_outside_the_backbone_is_refused(cutoff):
    with pytest.raises(ValueError, match=rf"layer_cutoff={cutoff} is outside 0..22"):
        build_classifier("VGG19", 2, input_shape=(32, 32, 3), layer_cutoff=cutoff)


def test_vgg19_cutoff_18_leaves_the_last_three_convolutions_trainable():
    # Apostolopoulos & Mpesiana 2020, Table 1: VGG19, 18 non-trainable layers. Keras counts the
    # input and the pooling layers, so the cut-off falls inside block 5, not at its start.
    table = models.frozen_layers_table("VGG19", 18)
    assert table.loc[0, "type"] == "InputLayer"
    assert table["frozen"].sum() == 18
    assert table.loc[17, "layer"] == "block5_conv1"
    assert list(table.loc[~table["frozen"], "layer"]) == [
        "block5_conv2",
        "block5_conv3",
        "block5_conv4",
        "block5_pool",
    ]


def test_flatten_and_average_heads_have_the_parameters_counted_by_hand():
    # VGG16 at 64x64 ends in a 2x2x512 map: Flatten gives 2048 features, pooling 512.
    counts = {}
    for pooling in ("flatten", "avg", "max"):
        model = build_classifier(
            "VGG16",
            3,
            input_shape=(64, 64, 3),
            head=Head(pooling=pooling, hidden_units=(16,), dropout=0.5),
        )
        counts[pooling] = parameter_counts(model)["trainable"]
    assert counts["flatten"] == (2048 * 16 + 16) + (16 * 3 + 3)
    assert counts["avg"] == counts["max"] == (512 * 16 + 16) + (16 * 3 + 3)


def test_head_layers_come_in_coronets_order():
    model = build_classifier(
        "VGG16", 4, input_shape=(32, 32, 3), head=Head("flatten", (32, 16), dropout=0.3)
    )
    types = [type(layer).__name__ for layer in model.layers[3:]]
    assert types == ["Flatten", "Dropout", "Dense", "Dropout", "Dense", "Dense"]
    no_hidden = build_classifier("VGG16", 4, input_shape=(32, 32, 3), head=Head(dropout=0.3))
    assert [type(layer).__name__ for layer in no_hidden.layers[3:]] == [
        "GlobalAveragePooling2D",
        "Dropout",
        "Dense",
    ]
    assert model.layers[-1].activation is keras.activations.softmax


def test_pooling_none_is_refused():
    with pytest.raises(ValueError, match="4-D feature map"):
        build_classifier("VGG16", 2, input_shape=(32, 32, 3), head=Head(pooling=None))


CORONET_HEAD = Head(pooling="flatten", hidden_units=(256,), dropout=0.5)


def test_coronet_table_ii_counts_are_reproduced_at_150_pixels():
    # Khan et al. 2020, Table II: Xception 5x5x2048 -> Flatten 51200 -> Dropout -> Dense 256 -> 4.
    model = build_classifier(
        "Xception", 4, input_shape=(150, 150, 3), head=CORONET_HEAD, base_trainable=True
    )
    assert parameter_counts(model) == {
        "total": 33_969_964,
        "trainable": 33_915_436,
        "non_trainable": 54_528,
    }
    rows = [(layer.output.shape[1:], layer.count_params()) for layer in model.layers[2:]]
    assert rows == [
        ((5, 5, 2048), 20_861_480),
        ((51200,), 0),
        ((51200,), 0),
        ((256,), 13_107_456),
        ((4,), 1028),
    ]


def test_coronet_counts_fix_the_feature_map_not_the_input_size():
    # Table II's 5x5 Xception map, hence its counts, comes from any square input of 135 to 166
    # pixels; the 224 pixels of the text give a 7x7 map.
    sides = {
        size: models.build_backbone("Xception", (size, size, 3)).output.shape[1]
        for size in (134, 135, 166, 167)
    }
    assert sides == {134: 4, 135: 5, 166: 5, 167: 6}


def test_imagenet_weights_offline_raise_a_helpful_error(monkeypatch, tmp_path):
    # Simulate no network (deterministic online and offline): an empty Keras cache and a
    # download that fails the way urllib does without DNS.
    from keras.src.backend import config as keras_config
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    with pytest.raises(models.WeightsUnavailableError) as error:
        build_classifier("Xception", 2, input_shape=(71, 71, 3), weights="imagenet")
    message = str(error.value)
    assert "could not be downloaded" in message
    assert "weights=None" in message
    assert "xception_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "KERAS_HOME" in message


def test_other_errors_with_imagenet_weights_are_not_disguised():
    with pytest.raises(ValueError) as error:  # ImageNet weights need 3 channels
        build_classifier("VGG16", 2, input_shape=(32, 32, 1), weights="imagenet")
    assert not isinstance(error.value, models.WeightsUnavailableError)


def test_head_can_pool_first_and_put_dropout_after_the_hidden_layer():
    """Soares' head: AveragePooling2D(2), Flatten, Dense(20), Dropout(0.2), then the output."""
    head = Head(pooling="flatten", pool_size=2, hidden_units=(20,), dropout=0.2, dropout_after=True)
    model = build_classifier("VGG16", 3, input_shape=(64, 64, 3), head=head)
    names = [layer.name for layer in model.layers]
    assert names[-5:] == ["pool", "flatten", "hidden_1", "dropout_1", "predictions"]
    assert model.get_layer("flatten").output.shape[-1] == 512  # 2x2 map pooled to 1x1
