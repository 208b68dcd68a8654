"""Training and evaluation: one hold-out run, or k-fold cross-validation.

Every paper trains the same way: compile a classifier with categorical cross-entropy, fit it
for a number of epochs, predict the test images, and count a confusion matrix. The papers
differ in the protocol: a hold-out split (Hemdan et al. 2020; Soares & Soares 2020) or k-fold
cross-validation whose fold matrices are summed (Aboughazala & Mohammed 2020, 10 folds;
Apostolopoulos & Mpesiana 2020, 10 folds; Khan et al. 2020, 4 folds).

>>> config = profiles.resolve("aboughazala", "smoke")          # doctest: +SKIP
>>> manifest = profiles.load_data(config)                      # doctest: +SKIP
>>> result = cross_validate(lambda: models.build_paper_model(spec, input_shape=(32, 32, 3)),
...                         manifest, config)                  # doctest: +SKIP
>>> result.summed_confusion                                    # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import keras
import numpy as np
import pandas as pd
import tensorflow as tf
from tqdm.auto import tqdm

from covidlab import data, metrics
from covidlab.images import make_dataset
from covidlab.run_config import RunConfig

# Every fold and backbone is a new model whose predict step is traced once; TensorFlow's
# "triggered tf.function retracing" warning then reads as a problem in every chapter's output.
tf.get_logger().setLevel("ERROR")

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "sgd": keras.optimizers.SGD,
    "rmsprop": keras.optimizers.RMSprop,
}


def set_seed(seed: int, *, deterministic_ops: bool = False) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow in one call.

    ``deterministic_ops=True`` also asks TensorFlow for deterministic kernels
    (``tf.config.experimental.enable_op_determinism``): slower, and it stays on for the rest
    of the session. On a CPU the same seed already gives the same model in practice.
    """
    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def make_optimizer(name: str, learning_rate: float, **kwargs) -> keras.optimizers.Optimizer:
    """A Keras optimiser by name: ``"adam"``, ``"sgd"`` or ``"rmsprop"``.

    Extra keyword arguments go to the optimiser (e.g. ``momentum=0.9`` for SGD).
    """
    key = name.lower()
    if key not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[key](learning_rate=learning_rate, **kwargs)


def compile_classifier(
    model: keras.Model,
    optimizer_name: str,
    learning_rate: float,
    run_eagerly: bool = False,
    *,
    momentum: float = 0.0,
) -> keras.Model:
    """Compile ``model`` with categorical cross-entropy and accuracy, as all five papers do.

    ``run_eagerly=True`` skips graph tracing: faster for a handful of images (see
    :mod:`covidlab.profiles`), slower for real runs. ``momentum`` goes to SGD (ignored by
    the adaptive optimisers). Returns the model.
    """
    options = {"momentum": momentum} if optimizer_name.lower() == "sgd" and momentum else {}
    model.compile(
        optimizer=make_optimizer(optimizer_name, learning_rate, **options),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
        run_eagerly=run_eagerly,
    )
    return model


def fit(
    model: keras.Model,
    train_ds: tf.data.Dataset,
    *,
    epochs: int,
    validation_data: tf.data.Dataset | None = None,
    verbose: int | str = "auto",
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> keras.callbacks.History:
    """Train ``model``; ``verbose="auto"`` prints one line per epoch (Keras ``verbose=2``).

    One line per epoch reads well in a notebook and in a papermill log, where a progress bar
    would print hundreds of updates. ``callbacks`` go to ``model.fit`` (e.g.
    ``keras.callbacks.BackupAndRestore``, which :mod:`covidlab.jobs` uses to resume).
    """
    return model.fit(
        train_ds,
        epochs=epochs,
        validation_data=validation_data,
        verbose=2 if verbose == "auto" else verbose,
        shuffle=False,  # a tf.data pipeline shuffles itself (make_dataset(shuffle=True))
        callbacks=list(callbacks),
    )


def batch_norm_layers(model: keras.Model, *, trainable_only: bool = True) -> list:
    """Every ``BatchNormalization`` layer of ``model``, nested backbones included.

    ``trainable_only=True`` keeps the layers that normalise with batch statistics during
    training: a frozen batch-norm layer always uses its moving averages (Keras 3), at training
    and at test time alike, so it needs no recalibration.
    """

    def walk(layer):
        for sublayer in getattr(layer, "layers", ()):
            yield sublayer
            yield from walk(sublayer)

    layers = [layer for layer in walk(model) if isinstance(layer, keras.layers.BatchNormalization)]
    return [layer for layer in layers if layer.trainable or not trainable_only]


def recalibrate_batch_norm(model: keras.Model, train_ds: tf.data.Dataset) -> int:
    """Re-estimate the moving mean and variance of every trainable batch-norm layer.

    In training a batch-norm layer normalises with the statistics of each batch; at test time
    with moving averages that move only ``1 - momentum`` of the way at each step (Keras: 1 %
    per step; MobileNetV2 0.1 %). After a few dozen steps from random weights those averages
    are still near their initial 0 and 1, so the test-time network is not the one that was
    trained and often answers one class for every image. ImageNet weights come with settled
    averages; a from-scratch run needs this pass (the cumulative re-estimate of
    Ioffe & Szegedy 2015, section 3.1, as ``torch.optim.swa_utils.update_bn`` does).

    One pass over ``train_ds`` in training mode, no weight update: each layer's input mean
    and variance are accumulated over every image (weighted by batch size) and written to its
    moving averages. Deeper layers see their inputs as in training, normalised by the earlier
    layers' batch statistics. Returns the number of layers recalibrated (0: nothing to do).
    """
    layers = batch_norm_layers(model)
    if not layers:
        return 0
    momenta = [layer.momentum for layer in layers]
    n_seen = 0
    sums = [np.zeros(2) for _ in layers]  # placeholders, replaced by arrays of the right shape
    try:
        for layer in layers:  # momentum 0: after a batch, moving = that batch's statistics
            layer.momentum = 0.0
        for images, _ in train_ds:
            n = int(images.shape[0])
            model(images, training=True)
            for i, layer in enumerate(layers):
                mean = np.asarray(layer.moving_mean, dtype=np.float64)
                variance = np.asarray(layer.moving_variance, dtype=np.float64)
                moments = np.stack([n * mean, n * (variance + mean**2)])
                sums[i] = moments if n_seen == 0 else sums[i] + moments
            n_seen += n
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    if n_seen == 0:
        raise ValueError("recalibrate_batch_norm() got an empty dataset: no training images")
    for layer, (sum_x, sum_x2) in zip(layers, sums, strict=True):
        mean = sum_x / n_seen
        layer.moving_mean.assign(mean.astype("float32"))
        layer.moving_variance.assign(np.maximum(sum_x2 / n_seen - mean**2, 0.0).astype("float32"))
    return len(layers)


def split_frozen_base(model: keras.Model) -> tuple[keras.Model, keras.Model] | None:
    """``(extractor, head)`` when ``model`` is a frozen base followed by a trainable head.

    The extractor runs the model's leading layers that have no trainable weight (input,
    preprocessing, a frozen backbone); the head is the rest, made of the *same* layer objects,
    so training the head trains ``model``. None when the model does not split that way (a
    trainable backbone, a branching head) or when ``head(extractor(x))`` differs from
    ``model(x)``. Used by :func:`train_and_evaluate` to compute a frozen backbone's features
    once instead of at every epoch.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    frozen = 0
    while frozen < len(layers) and not layers[frozen].trainable_weights:
        frozen += 1
    base_is_frozen = any(isinstance(layer, keras.Model) for layer in layers[:frozen])
    if not base_is_frozen or frozen == len(layers):
        return None
    try:
        inputs = keras.Input(model.input_shape[1:])
        x = inputs
        for layer in layers[:frozen]:
            x = layer(x)
        extractor = keras.Model(inputs, x, name="frozen_base")
        head = keras.Sequential(
            [keras.Input(extractor.output_shape[1:]), *layers[frozen:]], name="head"
        )
        probe = np.random.default_rng(0).uniform(0, 255, (2, *model.input_shape[1:]))
        probe = probe.astype("float32")
        same = np.allclose(head(extractor(probe)), model(probe), rtol=1e-4, atol=1e-5)
    except (ValueError, TypeError):  # not a chain of single-input layers
        return None
    return (extractor, head) if same else None


def frozen_features(extractor: keras.Model, ds: tf.data.Dataset) -> tf.data.Dataset:
    """``ds`` with its images replaced by ``extractor``'s features, computed once, in memory."""
    features, labels = [], []
    for images, one_hot in ds:
        features.append(np.asarray(extractor.predict_on_batch(images)))
        labels.append(one_hot.numpy())
    return tf.data.Dataset.from_tensor_slices((np.concatenate(features), np.concatenate(labels)))


def predict(model: keras.Model, ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """True class indices and predicted probabilities for every image of ``ds``.

    The images and labels are taken from one pass over the data, so they stay aligned even if
    ``ds`` is shuffled; the model then predicts them in one ``model.predict`` call (one graph
    trace per model; under a tf.distribute strategy it splits the batches between the replicas
    and gathers the answers in order).
    """
    batches = [(images.numpy(), one_hot.numpy()) for images, one_hot in ds]
    if not batches:
        raise ValueError("predict() got an empty dataset: the test set has no images")
    images = np.concatenate([images for images, _ in batches])
    y_true = np.argmax(np.concatenate([one_hot for _, one_hot in batches]), axis=1)
    y_prob = model.predict(images, batch_size=len(batches[0][0]), verbose=0)
    return y_true, np.asarray(y_prob)


def predict_manifest(
    model: keras.Model, manifest: pd.DataFrame, config: RunConfig
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`predict` on the images of ``manifest``, loaded as ``config`` loads test images."""
    return predict(model, _dataset(manifest, config, shuffle=False))


@dataclass
class RunResult:
    """One trained model and how it did on its test images.

    ``confusion[i, j]`` counts test images of class ``class_names[i]`` predicted as ``j``.
    """

    history: dict[str, list[float]]
    y_true: np.ndarray
    y_prob: np.ndarray
    confusion: np.ndarray
    class_names: tuple[str, ...]
    wall_seconds: float
    model: keras.Model | None = None

    @property
    def y_pred(self) -> np.ndarray:
        """The predicted class index of every test image (the most probable class)."""
        return np.argmax(self.y_prob, axis=1)

    @property
    def accuracy(self) -> float:
        return metrics.accuracy(self.confusion)


@dataclass
class CVResult:
    """k-fold cross-validation: one :class:`RunResult` per fold, a per-fold table and the
    summed ("overlapped") confusion matrix, which counts every image exactly once."""

    folds: list[RunResult]
    per_fold: pd.DataFrame
    summed_confusion: np.ndarray
    class_names: tuple[str, ...]


def _dataset(manifest: pd.DataFrame, config: RunConfig, *, shuffle: bool) -> tf.data.Dataset:
    return make_dataset(
        manifest,
        config.classes,
        config.image_size,
        resize=config.resize,
        batch_size=config.batch_size,
        shuffle=shuffle,
        seed=config.seed,
    )


def train_and_evaluate(
    build_model: Callable[[], keras.Model],
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    config: RunConfig,
    *,
    validation_df: pd.DataFrame | None = None,
    verbose: int | str = "auto",
    recalibrate_bn: bool | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    strategy: tf.distribute.Strategy | None = None,
) -> RunResult:
    """Build a fresh model, train it on ``train_df`` and evaluate it on ``test_df``.

    ``build_model`` is called after the Keras session is cleared and the seed set, so every
    run (every fold, every backbone) starts from the same state. Images are loaded at
    ``config.image_size`` with ``config.resize``; the training set is reshuffled each epoch
    (as Khan et al. 2020 describe). ``validation_df``, when given, is scored after each epoch.

    A model whose base is frozen (its leading layers have no trainable weight) trains its head
    on the base's features computed once (:func:`split_frozen_base`): the same result as
    running the frozen base at every epoch, in a fraction of the time.

    ``recalibrate_bn`` re-estimates the batch-norm moving averages on the training images
    after ``fit`` and before the test (:func:`recalibrate_batch_norm`); None (the default)
    does so exactly when the model starts from random weights (``config.weights is None``).

    ``callbacks`` go to ``fit``. ``strategy`` (a ``tf.distribute`` strategy, e.g.
    ``MirroredStrategy`` over several GPUs) builds and compiles the model inside its scope,
    after the session is cleared; ``config.batch_size`` is then the global batch, split
    between the replicas.
    """
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        raise NotImplementedError(
            "Keras 3's model.fit cannot train under MultiWorkerMirroredStrategy (it fails with "
            "'Attempt to convert a value (PerReplica ...)'; keras-team/keras#20585). Spread the "
            "jobs over machines instead: `covidlab run PAPER --shard I/N` on each, then "
            "`covidlab report`; within a machine use MirroredStrategy"
        )
    start = time.perf_counter()
    keras.backend.clear_session()  # before the scope is entered: clearing would wipe it
    set_seed(config.seed)
    scope = strategy.scope() if strategy is not None else contextlib.nullcontext()
    with scope:
        model = build_model()
        n_outputs = model.output_shape[-1]
        if n_outputs != len(config.classes):
            raise ValueError(
                f"the model has {n_outputs} outputs but the run has {len(config.classes)} "
                f"classes {config.classes}: build it with num_classes={len(config.classes)}"
            )
        compile_classifier(
            model,
            config.optimizer,
            config.learning_rate,
            config.run_eagerly,
            momentum=config.momentum,
        )
        split = split_frozen_base(model)
        if split is not None:
            compile_classifier(
                split[1],
                config.optimizer,
                config.learning_rate,
                config.run_eagerly,
                momentum=config.momentum,
            )
    validation = None if validation_df is None else _dataset(validation_df, config, shuffle=False)
    train_ds = _dataset(train_df, config, shuffle=True)
    if split is None:
        history = fit(
            model,
            train_ds,
            epochs=config.epochs,
            validation_data=validation,
            verbose=verbose,
            callbacks=callbacks,
        )
    else:  # a frozen base gives the same features at every epoch: compute them once
        extractor, head = split
        features = frozen_features(extractor, _dataset(train_df, config, shuffle=False))
        train_features = (
            features.shuffle(len(train_df), seed=config.seed, reshuffle_each_iteration=True)
            .batch(config.batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        if validation is not None:
            validation = frozen_features(extractor, validation).batch(config.batch_size)
        history = fit(
            head,
            train_features,
            epochs=config.epochs,
            validation_data=validation,
            verbose=verbose,
            callbacks=callbacks,
        )
    if config.weights is None if recalibrate_bn is None else recalibrate_bn:
        recalibrate_batch_norm(model, train_ds)
    y_true, y_prob = predict(model, _dataset(test_df, config, shuffle=False))
    confusion = metrics.confusion_matrix(y_true, y_prob.argmax(axis=1), len(config.classes))
    return RunResult(
        history=dict(history.history),
        y_true=y_true,
        y_prob=y_prob,
        confusion=confusion,
        class_names=tuple(config.classes),
        wall_seconds=time.perf_counter() - start,
        model=model,
    )


def _fold_row(fold: int, n_train: int, result: RunResult) -> dict[str, float]:
    """One row of a per-fold table: sizes, accuracy, and each class's one-vs-rest metrics."""
    row: dict[str, float] = {
        "fold": fold,
        "n_train": n_train,
        "n_test": int(result.confusion.sum()),
        "accuracy": result.accuracy,
    }
    per_class = {
        "sensitivity": metrics.sensitivity(result.confusion),
        "specificity": metrics.specificity(result.confusion),
        "precision": metrics.precision(result.confusion),
        "f1": metrics.f1_score(result.confusion),
    }
    for name, values in per_class.items():
        for class_name, value in zip(result.class_names, values, strict=True):
            row[f"{name}_{class_name}"] = float(value)
    row["wall_seconds"] = result.wall_seconds
    return row


def cross_validate(
    build_model: Callable[[], keras.Model],
    manifest: pd.DataFrame,
    config: RunConfig,
    *,
    n_splits: int | None = None,
    seed: int | None = None,
    verbose: int | str = 0,
    keep_models: bool = False,
    recalibrate_bn: bool | None = None,
) -> CVResult:
    """k-fold cross-validation, patients grouped (``data.kfold_splits``).

    Trains a fresh model per fold with :func:`train_and_evaluate`. ``n_splits`` defaults to
    ``config.n_splits``; ``seed`` (the seed of the fold assignment) to ``config.seed``. The
    per-fold table has one row per fold (cf. Aboughazala & Mohammed 2020, Table 1); the
    summed confusion matrix is their "overlapped" matrix. ``verbose`` is passed to Keras
    (default: silent, the fold bar is enough); ``keep_models=False`` drops each fold's model
    to free memory; ``recalibrate_bn`` as in :func:`train_and_evaluate`.
    """
    n_splits = config.n_splits if n_splits is None else n_splits
    if n_splits is None:
        raise ValueError(
            f"{config.paper_key} uses a hold-out protocol (no n_splits in its config): "
            "pass n_splits=... or use data.holdout_split + train_and_evaluate"
        )
    seed = config.seed if seed is None else seed
    splits = data.kfold_splits(manifest, n_splits, seed=seed)
    folds, n_train = [], []
    for train_df, test_df in tqdm(splits, desc="folds", unit="fold"):
        result = train_and_evaluate(
            build_model, train_df, test_df, config, verbose=verbose, recalibrate_bn=recalibrate_bn
        )
        if not keep_models:
            result.model = None
        folds.append(result)
        n_train.append(len(train_df))
    return summarise_folds(folds, n_train)


def summarise_folds(folds: Sequence[RunResult], n_train: Sequence[int]) -> CVResult:
    """The :class:`CVResult` of fold results (in fold order; ``n_train``: each fold's number
    of training images): the per-fold table and the summed confusion matrix."""
    if not folds:
        raise ValueError("summarise_folds() got no fold results")
    rows = [
        _fold_row(fold, size, result)
        for fold, (size, result) in enumerate(zip(n_train, folds, strict=True), start=1)
    ]
    return CVResult(
        folds=list(folds),
        per_fold=pd.DataFrame(rows),
        summed_confusion=metrics.summed_confusion([f.confusion for f in folds]),
        class_names=tuple(folds[0].class_names),
    )
