"""imagenet_backbone: one clean line offline; replace_output: the 4-class CoroNet becomes a
3-class or binary model (Khan et al. 2020)."""

import keras
import numpy as np
import pytest

from covidlab import models
from covidlab.transfer import imagenet_backbone, replace_output


def test_imagenet_backbone_offline_gives_one_clean_line(monkeypatch, capsys):
    def offline(backbone, input_shape, weights=None):
        print("Downloading data from https://storage.googleapis.com/x/weights_no_top.h5")
        raise models.WeightsUnavailableError(
            "... cache folder /root/.keras/models ... [Errno -2] Name or service not known"
        )

    monkeypatch.setattr(models, "build_backbone", offline)
    model, message = imagenet_backbone("MobileNetV2", (96, 96, 3))
    assert model is None
    assert capsys.readouterr().out == ""  # Keras' download line is swallowed
    assert "\n" not in message and message.startswith("MobileNetV2: ")
    assert "weights=None" in message and "Colab" in message
    for noise in ("http", "/root", "Errno", ".keras"):
        assert noise not in message


def test_imagenet_backbone_online_returns_the_model(monkeypatch):
    built = {}

    def online(backbone, input_shape, weights=None):
        built["weights"] = weights
        inputs = keras.Input(input_shape)
        return keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs), name=backbone)

    monkeypatch.setattr(models, "build_backbone", online)
    model, message = imagenet_backbone("VGG16", (8, 8, 3))
    assert built["weights"] == "imagenet"
    assert model.name == "VGG16"
    assert message == "VGG16: ImageNet weights loaded, 56 parameters"


def _small_classifier(num_classes: int = 4) -> keras.Model:
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, activation="relu", name="dense")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="dense_1")(x)
    return keras.Model(inputs, outputs, name="small")


def _randomise(model: keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])


def test_new_output_has_the_new_number_of_classes():
    model = _small_classifier(4)
    new = replace_output(model, 3)
    assert new.output.shape[-1] == 3
    probs = new.predict(np.zeros((2, 8, 8, 3), "float32"), verbose=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_reused_layers_keep_the_trained_weights():
    model = _small_classifier(4)
    _randomise(model)
    new = replace_output(model, 2)
    for name in ("conv", "bn", "dense"):
        for old, copied in zip(
            model.get_layer(name).get_weights(), new.get_layer(name).get_weights(), strict=True
        ):
            np.testing.assert_array_equal(old, copied)
    # the hidden features are unchanged: same activations before the output layer
    x = np.random.default_rng(1).normal(size=(3, 8, 8, 3)).astype("float32")
    old_features = keras.Model(model.input, model.get_layer("dense").output)(x, training=False)
    new_features = keras.Model(new.input, new.get_layer("dense").output)(x, training=False)
    np.testing.assert_allclose(old_features, new_features, rtol=1e-5, atol=1e-6)


def test_original_model_is_left_untouched_by_training_the_new_one():
    model = _small_classifier(4)
    _randomise(model)
    before = [w.copy() for w in model.get_weights()]
    new = replace_output(model, 3)
    new.compile(optimizer=keras.optimizers.Adam(1e-2), loss="categorical_crossentropy")
    x = np.random.default_rng(2).normal(size=(6, 8, 8, 3)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 0, 1, 2], 3)
    new.fit(x, y, epochs=1, verbose=0)
    for old, now in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, now)
    assert not np.allclose(
        model.get_layer("dense").get_weights()[0], new.get_layer("dense").get_weights()[0]
    )


def test_train_features_false_freezes_all_but_the_new_layer():
    new = replace_output(_small_classifier(4), 3, train_features=False)
    trainable = [w.path for w in new.trainable_weights]
    assert len(trainable) == 2 and all("dense_1" in path for path in trainable)


def test_nested_backbone_is_copied_too():
    from covidlab import models, papers

    model = models.build_paper_model(papers.get("coronet"), input_shape=(71, 71, 3))
    new = replace_output(model, 2, name="binary")
    assert new.name == "binary"
    assert new.count_params() == model.count_params() - (4 - 2) * (256 + 1)
    old_base, new_base = model.get_layer("Xception"), new.get_layer("Xception")
    assert old_base is not new_base
    np.testing.assert_array_equal(old_base.get_weights()[0], new_base.get_weights()[0])


def test_rejects_a_model_without_a_dense_output():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Softmax()(inputs))
    with pytest.raises(ValueError, match="not Dense"):
        replace_output(model, 2)
    with pytest.raises(ValueError, match="at least 2"):
        replace_output(_small_classifier(), 1)


def test_fine_tune_folds_trains_one_new_model_per_fold(tmp_path):
    from covidlab import data, profiles, synthetic, train
    from covidlab.chapters import coronet as chapter
    from covidlab.papers import coronet
    from covidlab.transfer import fine_tune_folds

    manifest = synthetic.synthetic_manifest(
        tmp_path, coronet.CLASS_SETS["4-class"], 4, image_size=(8, 8)
    )
    config = profiles.resolve("coronet", "smoke", image_size=(8, 8), batch_size=8)
    splits = data.kfold_splits(manifest, 2, seed=0)
    trained = [_small_classifier(4), _small_classifier(4)]
    before = [model.get_weights() for model in trained]
    binary = profiles.resolve(
        "coronet", "smoke", image_size=(8, 8), classes=coronet.CLASS_SETS["binary"]
    )
    results = fine_tune_folds(
        trained, splits, binary, relabel=lambda df: chapter.task_manifest(df, "binary")
    )
    assert len(results) == 2
    for result, (_, test_df) in zip(results, splits, strict=True):
        assert isinstance(result, train.RunResult)
        assert result.confusion.shape == (2, 2)
        assert result.confusion.sum() == len(test_df)
        assert result.class_names == ("covid", "other")
    for model, weights in zip(trained, before, strict=True):  # the 4-class models are unchanged
        for old, now in zip(weights, model.get_weights(), strict=True):
            np.testing.assert_array_equal(old, now)
    with pytest.raises(ValueError, match="2 trained models for 1 splits"):
        fine_tune_folds(trained, splits[:1], config, relabel=lambda df: df)
