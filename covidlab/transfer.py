"""Reuse trained weights: ImageNet weights for a backbone, a trained classifier for new classes.

- :func:`imagenet_backbone`: a backbone with its ImageNet weights, or a one-line message saying
  why they could not be loaded (no network) and what to do instead.
- :func:`replace_output`, :func:`fine_tune_folds`: Khan et al. (2020) turn their trained 4-class
  CoroNet into a 3-class model (bacterial and viral pneumonia merged) and a binary model
  (COVID-19 against the rest): keep every layer up to the last one, put a fresh softmax layer
  with the new number of classes on top, and train on.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import keras
import pandas as pd

from covidlab import models

if TYPE_CHECKING:
    from covidlab.run_config import RunConfig
    from covidlab.train import RunResult


def imagenet_backbone(
    backbone: str, input_shape: tuple[int, int, int]
) -> tuple[keras.Model | None, str]:
    """``backbone`` built with its ImageNet weights, and one line saying how that went.

    Keras downloads the weights the first time (``keras.utils.get_file``) and prints its
    progress; that output is swallowed, so a notebook shows only the returned line. Without
    network access the model is None and the line says what failed and what to do (the full
    error stays available from :func:`covidlab.models.build_backbone`, which raises
    ``models.WeightsUnavailableError``).
    """
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras' "Downloading data from ..."
            model = models.build_backbone(backbone, input_shape, weights="imagenet")
    except models.WeightsUnavailableError:
        return None, (
            f"{backbone}: the ImageNet weights could not be downloaded (no network access). "
            "Build the model with weights=None, as the smoke and demo profiles do, or run this "
            "on Colab, where the weights download."
        )
    return model, f"{backbone}: ImageNet weights loaded, {model.count_params():,} parameters"


def replace_output(
    model: keras.Model,
    num_classes: int,
    *,
    train_features: bool = True,
    name: str | None = None,
) -> keras.Model:
    """A copy of ``model`` whose final Dense layer is replaced by ``Dense(num_classes, softmax)``.

    Every other layer is copied with its trained weights; ``model`` itself is left untouched,
    so several new models (e.g. 3-class and binary) can start from the same trained one.

    Parameters
    ----------
    model
        A trained classifier whose last layer is a ``keras.layers.Dense`` (as every
        ``covidlab.models.build_classifier`` model and CoroNet are).
    num_classes
        Units of the new output layer.
    train_features
        True: all reused layers keep their trainable setting (fine-tune end to end);
        False: they are frozen and only the new output layer trains.
    name
        Name of the new model; default ``"<old name>_<num_classes>class"``.

    Raises
    ------
    ValueError
        If ``num_classes`` < 2 or the last layer of ``model`` is not a Dense layer.
    """
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    old_output = model.layers[-1]
    if not isinstance(old_output, keras.layers.Dense):
        raise ValueError(
            f"the last layer of {model.name!r} is {type(old_output).__name__} "
            f"{old_output.name!r}, not Dense: replace_output needs a classifier ending in a "
            "Dense softmax layer"
        )
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    features = copy.layers[-1].input
    if not train_features:
        for layer in copy.layers[:-1]:
            layer.trainable = False
    outputs = keras.layers.Dense(num_classes, activation="softmax", name=old_output.name)(features)
    return keras.Model(copy.input, outputs, name=name or f"{model.name}_{num_classes}class")


def fine_tune_folds(
    trained: Sequence[keras.Model],
    splits: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    config: RunConfig,
    *,
    relabel: Callable[[pd.DataFrame], pd.DataFrame],
    train_features: bool = True,
    verbose: int | str = 0,
) -> list[RunResult]:
    """Fine-tune each fold's trained model for ``config.classes`` on that fold's own split.

    For fold k, ``trained[k]`` gets a new output layer (:func:`replace_output`), trains on
    ``relabel(train_k)`` and is tested on ``relabel(test_k)``: the test images stay unseen by
    both the original and the fine-tuned model (Khan et al. 2020 derive their 3-class and
    binary CoroNet from the 4-class one; they do not say on which images).

    Parameters
    ----------
    trained
        One trained model per fold, e.g. ``[fold.model for fold in cv.folds]``.
    splits
        The (train, test) manifests those models were trained and tested on, in the same order
        (``covidlab.data.kfold_splits`` with the seed ``cross_validate`` used).
    config
        Run settings for the new task: ``classes``, epochs, optimizer, learning rate, batch.
    relabel
        Maps a manifest of the old classes to one of ``config.classes``.
    train_features
        As in :func:`replace_output`: True fine-tunes every layer, False only the new one.
    verbose
        Passed to Keras; default silent, like ``covidlab.train.cross_validate``.
    """
    from covidlab import train

    if len(trained) != len(splits):
        raise ValueError(f"{len(trained)} trained models for {len(splits)} splits")
    results = []
    for model, (train_df, test_df) in zip(trained, splits, strict=True):
        results.append(
            train.train_and_evaluate(
                lambda model=model: replace_output(
                    model, len(config.classes), train_features=train_features
                ),
                relabel(train_df),
                relabel(test_df),
                config,
                verbose=verbose,
            )
        )
    return results
