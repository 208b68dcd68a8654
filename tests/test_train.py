"""Training and evaluation on synthetic images with a tiny CNN (seconds, not minutes)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from covidlab import data, profiles, synthetic, train

IMAGE_SIZE = (32, 32)


def tiny_cnn(num_classes: int = 2) -> keras.Model:
    """Three layers: enough to check the plumbing, fast enough for a test."""
    return keras.Sequential(
        [
            keras.Input((*IMAGE_SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )


@pytest.fixture(scope="module")
def config() -> profiles.RunConfig:
    # Aboughazala & Mohammed 2020: normal vs COVID-19, k-fold (2 folds in smoke)
    return profiles.resolve("aboughazala", "smoke", image_size=IMAGE_SIZE, epochs=2)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory, config):
    return synthetic.synthetic_manifest(
        tmp_path_factory.mktemp("synthetic"), config.classes, 10, image_size=IMAGE_SIZE, seed=1
    )


def test_make_optimizer_by_name():
    optimizer = train.make_optimizer("SGD", 1e-3, momentum=0.9)
    assert isinstance(optimizer, keras.optimizers.SGD)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert isinstance(train.make_optimizer("adam", 1e-4), keras.optimizers.Adam)
    with pytest.raises(ValueError, match="adam, sgd, rmsprop"):
        train.make_optimizer("adagrad", 1e-3)


def test_compile_classifier_uses_cross_entropy():
    model = train.compile_classifier(tiny_cnn(), "adam", 1e-3, run_eagerly=True)
    assert model.run_eagerly
    assert model.loss == "categorical_crossentropy"


def test_holdout_run_scores_every_test_image(manifest, config):
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    result = train.train_and_evaluate(tiny_cnn, train_df, test_df, config, validation_df=test_df)
    assert result.confusion.sum() == len(test_df)
    expected = data.labels_to_indices(test_df["label"], config.classes)
    np.testing.assert_array_equal(result.y_true, expected)  # predictions in manifest order
    np.testing.assert_array_equal(result.confusion.sum(axis=1), np.bincount(expected, minlength=2))
    assert result.y_prob.shape == (len(test_df), 2)
    np.testing.assert_allclose(result.y_prob.sum(axis=1), 1, rtol=1e-5)
    assert len(result.history["loss"]) == config.epochs == len(result.history["val_loss"])
    assert result.wall_seconds > 0
    assert result.accuracy == pytest.approx(np.mean(result.y_pred == result.y_true))


def test_same_seed_same_predictions_other_seed_other_model(manifest, config):
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    first = train.train_and_evaluate(tiny_cnn, train_df, test_df, config, verbose=0)
    again = train.train_and_evaluate(tiny_cnn, train_df, test_df, config, verbose=0)
    np.testing.assert_allclose(first.y_prob, again.y_prob, atol=1e-6)
    other = dataclasses.replace(config, seed=config.seed + 1)
    reseeded = train.train_and_evaluate(tiny_cnn, train_df, test_df, other, verbose=0)
    assert not np.allclose(first.y_prob, reseeded.y_prob, atol=1e-6)


def test_model_with_wrong_number_of_outputs_is_refused(manifest, config):
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    with pytest.raises(ValueError, match="num_classes=2"):
        train.train_and_evaluate(lambda: tiny_cnn(3), train_df, test_df, config)


def test_cross_validation_tests_every_image_exactly_once(manifest, config):
    result = train.cross_validate(tiny_cnn, manifest, config)
    assert len(result.folds) == config.n_splits == 2
    # the summed ("overlapped") matrix holds every image once, in its true class's row
    assert result.summed_confusion.sum() == len(manifest)
    counts = data.class_counts(manifest).reindex(config.classes).to_numpy()
    np.testing.assert_array_equal(result.summed_confusion.sum(axis=1), counts)
    table = result.per_fold
    assert table["fold"].tolist() == [1, 2]
    assert table["n_test"].sum() == len(manifest)
    assert (table["n_train"] + table["n_test"] == len(manifest)).all()
    for column in ("accuracy", "sensitivity_covid", "specificity_covid", "f1_normal"):
        assert table[column].between(0, 1).all()
    assert all(fold.model is None for fold in result.folds)


def test_cross_validation_needs_folds(manifest):
    holdout = profiles.resolve("soares", "smoke", image_size=IMAGE_SIZE)
    with pytest.raises(ValueError, match="n_splits"):
        train.cross_validate(tiny_cnn, manifest, holdout)


# --- Batch-norm recalibration ------------------------------------------------------------------


def _batches(x: np.ndarray, y: np.ndarray, batch_size: int):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def test_recalibration_sets_moving_averages_to_the_training_statistics():
    """Each trainable BN layer ends with its input's mean and variance over every image,
    also inside a nested model; a frozen BN layer (inference mode in training) is left alone."""
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (100, 6)).astype("float32")  # 100: batches of 16 and a last of 4
    y = np.eye(2, dtype="float32")[rng.integers(0, 2, 100)]
    inner = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(5, name="dense"), keras.layers.BatchNormalization()]
    )
    frozen = keras.layers.BatchNormalization(name="frozen_bn")
    outer_bn = keras.layers.BatchNormalization(name="outer_bn")
    inputs = keras.Input((6,))
    hidden = outer_bn(inner(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(frozen(hidden)))
    frozen.trainable = False

    assert train.recalibrate_batch_norm(model, _batches(x, y, 16)) == 2
    inner_input = inner.get_layer("dense")(x).numpy()
    bn = inner.layers[-1]
    np.testing.assert_allclose(bn.moving_mean.numpy(), inner_input.mean(axis=0), rtol=1e-4)
    np.testing.assert_allclose(bn.moving_variance.numpy(), inner_input.var(axis=0), rtol=1e-3)
    # the outer layer sees the inner one's output as in training: normalised per batch
    per_batch = [
        (chunk - chunk.mean(axis=0)) / np.sqrt(chunk.var(axis=0) + bn.epsilon)
        for chunk in np.split(inner_input, [16, 32, 48, 64, 80, 96])
    ]
    outer_input = np.concatenate(per_batch) * bn.gamma.numpy() + bn.beta.numpy()
    np.testing.assert_allclose(outer_bn.moving_mean.numpy(), outer_input.mean(axis=0), atol=1e-4)
    np.testing.assert_allclose(outer_bn.moving_variance.numpy(), outer_input.var(axis=0), rtol=1e-3)
    np.testing.assert_array_equal(frozen.moving_mean.numpy(), np.zeros(5))
    assert outer_bn.momentum == 0.99, "the layers' momentum is restored"


def test_recalibration_rescues_a_model_that_collapses_to_one_class():
    """A toy separable problem, pixel-like values, 30 training steps: with the stale moving
    averages the model answers one class for every image; recalibrated, it separates them."""
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 240)
    x = (rng.normal(0, 10, (240, 8)) + np.where(labels[:, None] == 1, 150, 100)).astype("float32")
    y = np.eye(2, dtype="float32")[labels]
    train.set_seed(0)
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(8, activation="relu"),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    train.compile_classifier(model, "adam", 1e-2)
    model.fit(x[:160], y[:160], batch_size=16, epochs=3, verbose=0)
    stale = model.predict(x[160:], verbose=0).argmax(axis=1)
    assert len(set(stale)) == 1, "the toy problem should collapse without recalibration"

    train.recalibrate_batch_norm(model, _batches(x[:160], y[:160], 16))
    recalibrated = model.predict(x[160:], verbose=0).argmax(axis=1)
    assert (recalibrated == labels[160:]).mean() > 0.9


def test_train_and_evaluate_recalibrates_random_weights_only(manifest, config, monkeypatch):
    calls = []
    monkeypatch.setattr(train, "recalibrate_batch_norm", lambda model, ds: calls.append(model))
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    train.train_and_evaluate(tiny_cnn, train_df, test_df, config)  # config.weights is None
    assert len(calls) == 1
    imagenet = dataclasses.replace(config, weights="imagenet")  # tiny_cnn ignores the weights
    train.train_and_evaluate(tiny_cnn, train_df, test_df, imagenet)
    assert len(calls) == 1, "a model from ImageNet weights keeps its averages by default"
    train.train_and_evaluate(tiny_cnn, train_df, test_df, imagenet, recalibrate_bn=True)
    assert len(calls) == 2


def test_frozen_base_trains_its_head_on_features_computed_once(manifest, config):
    """A frozen backbone: the head trains on cached features, and the full model is trained."""
    from covidlab import models

    def build():
        return models.build_classifier("VGG16", 2, input_shape=(*IMAGE_SIZE, 3))

    extractor, head = train.split_frozen_base(build())
    assert [layer.name for layer in head.layers] == ["predictions"]
    assert (
        train.split_frozen_base(
            models.build_classifier("VGG16", 2, input_shape=(32, 32, 3), base_trainable=True)
        )
        is None
    )
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    result = train.train_and_evaluate(build, train_df, test_df, config)
    assert len(result.history["loss"]) == config.epochs
    y_true, y_prob = train.predict(result.model, train._dataset(test_df, config, shuffle=False))
    np.testing.assert_allclose(y_prob, result.y_prob, atol=1e-5)
