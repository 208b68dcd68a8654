"""Training and evaluation on synthetic images with a tiny CNN (seconds, not minutes)."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest

from covidlab import data, profiles, train

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
    return data.synthetic_manifest(
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
