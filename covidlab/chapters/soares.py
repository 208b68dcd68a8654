"""Chapter 05 (Soares & Soares 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.soares` (its train / validation / test
split is :func:`covidlab.data.train_validation_test_split`). Here: the run's data, the
accuracy tables beside the paper's, and the frozen
features the chapter measures (:func:`frozen_features`, :func:`linear_probe`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import keras

    from covidlab.run_config import RunConfig

from covidlab.papers.soares import (
    ACCURACY,
    SPEC,
)


def load_dataset(config: RunConfig) -> pd.DataFrame:
    """The run's manifest (``covidlab.profiles.load_data``); synthetic images get a
    ``true_label`` equal to their label (they are what their label says)."""
    from covidlab import profiles

    manifest = profiles.load_data(config)
    if config.data == "synthetic":
        return manifest.assign(true_label=manifest["label"])
    return manifest


def paper_vs_run(
    confusions: Mapping[str, np.ndarray], *, run: str, confidence: float = 0.95
) -> pd.DataFrame:
    """The paper's accuracy per model beside this run's, with Wilson intervals for this run.

    ``confusions`` maps a model name (``"VGG16"``, ``"ResNet50"``, ``"Xception"``) to its test
    confusion matrix; ``run`` labels this run's columns (e.g. ``profiles.tag(config)``).
    Values in percent. Models this run did not train show the paper's value and "not trained".
    """
    from covidlab import metrics

    ci = f"{confidence:.0%} CI (%)"
    paper = ACCURACY.rename(columns={"accuracy (%)": "paper (%)"})
    rows = {}
    for name in paper.index:
        if name not in confusions:
            rows[name] = {"this run (%)": "not trained", "correct / tested": "", ci: ""}
            continue
        overall = metrics.accuracy_with_interval(confusions[name], confidence)
        rows[name] = {
            "this run (%)": round(100 * overall["accuracy"], 1),
            "correct / tested": f"{overall['correct']} / {overall['n']}",
            ci: f"{100 * overall['ci_low']:.1f}-{100 * overall['ci_high']:.1f}",
        }
    ours = pd.DataFrame.from_dict(rows, orient="index").rename_axis(paper.index.name)
    return metrics.paper_vs_run(paper, ours, run_label=run)


def per_class_table(
    cm: np.ndarray, class_names: tuple[str, ...] | list[str], *, confidence: float = 0.95
) -> pd.DataFrame:
    """Per class: test images, how many were right, sensitivity with its Wilson interval,
    precision and specificity (the layout of the paper's Figure 2 text: "100 % (n = 39)")."""
    from covidlab import metrics

    matrix = np.asarray(cm)
    support = matrix.sum(axis=1).astype(int)
    correct = np.diag(matrix).astype(int)
    intervals = [
        metrics.wilson_interval(int(k), int(n), confidence)
        for k, n in zip(correct, support, strict=True)
    ]
    return pd.DataFrame(
        {
            "images": support,
            "right": correct,
            "sensitivity": metrics.sensitivity(matrix),
            f"{confidence:.0%} CI": [f"{low:.2f}-{high:.2f}" for low, high in intervals],
            "precision": metrics.precision(matrix),
            "specificity": metrics.specificity(matrix),
        },
        index=pd.Index(list(class_names), name="class"),
    ).round(3)


def frozen_features(
    model: keras.Model, manifest: pd.DataFrame, config: RunConfig
) -> tuple[np.ndarray, np.ndarray]:
    """The ``flatten`` output of ``model`` (what the paper's head sees) for every image of
    ``manifest``, with the class index of each image. ``config`` is a ``profiles.RunConfig``.
    """
    import keras

    from covidlab import images

    features = keras.Model(model.inputs, model.get_layer("flatten").output)
    dataset = images.make_dataset(
        manifest,
        config.classes,
        config.image_size,
        resize=config.resize,
        batch_size=config.batch_size,
    )
    # an eager call: no graph to trace for a one-off pass over a few hundred images
    pairs = [(features(x, training=False).numpy(), y.numpy().argmax(axis=1)) for x, y in dataset]
    return np.concatenate([f for f, _ in pairs]), np.concatenate([y for _, y in pairs])


def linear_probe(
    model: keras.Model, train_df: pd.DataFrame, test_df: pd.DataFrame, config: RunConfig
) -> np.ndarray:
    """Test confusion matrix of a logistic regression on the frozen backbone's features.

    The features are the model's ``flatten`` output (what the paper's head sees,
    :func:`frozen_features`); :func:`probe_confusion` fits the regression. It asks whether the
    frozen features carry class information at all, whatever the head's training made of them.
    ``config`` is a ``profiles.RunConfig`` (classes, image size, resize, batch size).
    """
    return probe_confusion(
        frozen_features(model, train_df, config),
        frozen_features(model, test_df, config),
        len(config.classes),
    )


def probe_confusion(
    train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], n_classes: int
) -> np.ndarray:
    """Fit a logistic regression on ``train`` = (features, class indices) and return its
    confusion matrix on ``test``. Each feature is standardised to zero mean and unit variance
    on the training images first; scikit-learn's ``LogisticRegression`` stands in for the
    trained head."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from covidlab import metrics

    (x_train, y_train), (x_test, y_test) = train, test
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(x_train, y_train)
    return metrics.confusion_matrix(y_test, probe.predict(x_test), n_classes)


def head_step_size(features: np.ndarray, learning_rate: float) -> float:
    """How far one Adam step can move a hidden unit of the head: ``learning_rate`` times the
    mean L1 norm of a feature vector.

    Adam moves every weight by about the learning rate at each step, whatever the size of its
    gradient (Kingma & Ba 2015, section 2.1). A unit of the head's Dense(20) layer computes
    w . f on the raw frozen features f, so one step can change its input by up to
    ``learning_rate * sum(|f|)``. Near 0.1-1 a few hundred steps can shape it; far above, a
    single step throws the unit across its ReLU and the head answers one class; far below,
    the paper's 80 epochs do not move it. ImageNet weights, with their estimated batch-norm
    statistics, give features of a usable size; random weights need not. ``features`` holds
    one row per image (:func:`frozen_features`).
    """
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    if len(flat) == 0:
        raise ValueError("head_step_size needs at least one image")
    return float(learning_rate * np.abs(flat).sum(axis=1).mean())


def frozen_models(runs: Mapping[str, object], config: RunConfig) -> dict[str, keras.Model]:
    """One model per architecture of the paper whose frozen features the chapter measures.

    A model this run trained (``runs`` maps its name to a ``train.RunResult``) is taken from
    its run. Any other is built as ``train.train_and_evaluate`` would build it (same seed, so
    the same random frozen base) and not trained: a frozen base's features do not depend on
    the head. Architectures that do not accept ``config.image_size`` (Xception needs 71 px)
    are left out.
    """
    import keras

    from covidlab import models
    from covidlab.architectures import smallest_input_size
    from covidlab.train import set_seed

    chosen = {}
    for name, model_spec in SPEC.models.items():
        if name in runs:
            chosen[name] = runs[name].model
        elif smallest_input_size(model_spec.backbone) <= min(config.image_size):
            keras.backend.clear_session()
            set_seed(config.seed)
            chosen[name] = models.build_paper_model(
                SPEC, name, input_shape=(*config.image_size, 3), weights=config.weights
            )
    return chosen


def summary_table(confusions: Mapping[str, np.ndarray], classes: Sequence[str]) -> pd.DataFrame:
    """Per model: test images, balanced accuracy, accuracy and the COVID-19 sensitivity and
    specificity (one against the other two classes), each with its 95 % Wilson interval."""
    from covidlab import metrics

    return metrics.summary_table(confusions, classes)
