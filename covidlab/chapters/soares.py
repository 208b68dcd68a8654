"""Chapter 05 (Soares & Soares 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.soares` (its train / validation / test
split is :func:`covidlab.data.train_validation_test_split`). Here: the run's data and the mix
of its "infection" class (:func:`infection_mix`), the accuracy tables beside the paper's, the
split of a test matrix into a source question and a disease question
(:func:`source_and_disease`, :func:`source_reading`), and the frozen features the chapter
measures (:func:`frozen_features`, :func:`linear_probe`).
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


def infection_mix(manifest: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Bacterial and viral pneumonia in the pool the "infection" class is drawn from, and in
    the class this run drew.

    The recipe pools Kermany's bacterial and viral pneumonia images and draws from the pool
    (``SPEC.plan``), so the class mixes the two kinds in about the pool's proportion. Rows: the
    Kermany pneumonia images in the sources this run reads (``profiles.sources_dir``: the full
    set under ``paper``, the course's small sample under ``demo``; left out for synthetic
    data, which has no sources), and this run's infection class (``manifest["true_label"]``).
    Columns: bacterial, viral and bacterial images per viral one.
    """
    from covidlab import profiles
    from covidlab.download import SOURCES
    from covidlab.sources import read_kermany

    kinds = list(SPEC.plan["infection"][0].source_labels)  # bacterial, viral
    rows = {}
    if config.data != "synthetic":
        kermany = read_kermany(profiles.sources_dir(config) / SOURCES["kermany"].folder)
        rows["Kermany pneumonia images in this run's sources"] = kermany["label"].value_counts()
    infection = manifest.loc[manifest["label"] == "infection", "true_label"]
    rows["this run's infection class"] = infection.value_counts()
    table = pd.DataFrame(rows).T.reindex(columns=kinds).fillna(0).astype(int)
    table.columns.name = None
    viral = table["viral"].where(table["viral"] > 0)
    table["bacterial per viral"] = (table["bacterial"] / viral).round(2)
    return table


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


#: The two questions a COVID-19 / normal / infection matrix mixes, as :func:`source_and_disease`
#: names them. In the recipe COVID-19 is the only class from Cohen's collection; normal and
#: infection both come from Kermany's hospital.
SOURCE_QUESTION = "COVID-19 or not (two collections)"
DISEASE_QUESTION = "normal or infection (one hospital)"


def source_and_disease(
    cm: np.ndarray, class_names: Sequence[str], *, confidence: float = 0.95
) -> pd.DataFrame:
    """Split a COVID-19 / normal / infection test matrix into the two questions it mixes.

    - :data:`SOURCE_QUESTION`: every test image, right when a COVID-19 image is called
      COVID-19 and any other image anything else. COVID-19 is also the only class from
      another collection, so the source alone can answer it.
    - :data:`DISEASE_QUESTION`: the normal and infection test images only (one hospital),
      right when their class is right. Here the source cannot help.

    Per question: test images, right, accuracy with its Wilson interval, and "one answer for
    all", the accuracy of giving every one of those images the answer most of them have (the
    trivial baseline). Chapter 02's reading rule: when the first is answered far better than
    the second, the source is doing the work (:func:`source_reading` applies it).
    """
    rows = {}
    for question, (right, images, low, high, baseline) in _questions(
        cm, class_names, confidence
    ).items():
        rows[question] = {
            "test images": images,
            "right": right,
            "accuracy": round(right / images, 3),
            f"{confidence:.0%} CI": f"{low:.2f}-{high:.2f}",
            "one answer for all": round(baseline, 3),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("question")


def source_reading(cm: np.ndarray, class_names: Sequence[str], *, model: str = "") -> str:
    """One paragraph (Markdown) that reads ``cm`` by chapter 02's rule, with the numbers of
    :func:`source_and_disease`.

    "Far better" means that the two accuracies' 95 % Wilson intervals do not overlap. The
    disease question counts as answered only when its interval lies wholly above the score of
    one answer for all.
    """
    said, intervals = {}, {}
    for question, (right, images, low, high, baseline) in _questions(cm, class_names).items():
        intervals[question] = (low, high, baseline)
        said[question] = (
            f"{right} of {images} right ({100 * right / images:.0f} %, 95 % interval "
            f"{100 * low:.0f}-{100 * high:.0f} %; one answer for all would score "
            f"{100 * baseline:.0f} %)"
        )
    source_low, _, _ = intervals[SOURCE_QUESTION]
    disease_low, disease_high, baseline = intervals[DISEASE_QUESTION]
    text = [
        f"{model + ': ' if model else ''}**COVID-19 or not** (two collections): "
        f"{said[SOURCE_QUESTION]}. **Normal or infection** (one hospital): "
        f"{said[DISEASE_QUESTION]}."
    ]
    if source_low > disease_high:
        text.append(
            "COVID-19, the class from another collection, is told apart far better than normal "
            "from infection (the intervals do not overlap): by chapter 02's reading rule, the "
            "source is doing most of the work."
        )
    else:
        text.append(
            "The two intervals overlap, so this matrix does not show the source doing most of "
            "the work."
        )
    if disease_low > baseline:
        text.append(
            "Within the one hospital the model also beats one answer for all: it has learned "
            "something besides the source."
        )
    else:
        text.append(
            "Within the one hospital its interval holds the score of one answer for all: these "
            "test images give no evidence that it tells normal from infection."
        )
    return " ".join(text)


def _questions(
    cm: np.ndarray, class_names: Sequence[str], confidence: float = 0.95
) -> dict[str, tuple[int, int, float, float, float]]:
    """Per question of :func:`source_and_disease`: (right, images, the accuracy's Wilson
    interval low and high, the accuracy of one answer for all)."""
    from covidlab import metrics

    matrix = np.asarray(cm)
    covid = list(class_names).index("covid")
    others = [i for i in range(len(matrix)) if i != covid]
    rest = matrix[np.ix_(others, others)]
    counts = {
        SOURCE_QUESTION: (
            matrix[covid, covid] + rest.sum(),
            matrix.sum(),
            max(matrix[covid].sum(), matrix[others].sum()),
        ),
        DISEASE_QUESTION: (np.trace(rest), matrix[others].sum(), matrix[others].sum(axis=1).max()),
    }
    answers = {}
    for question, (right, images, largest) in counts.items():
        right, images = int(right), int(images)
        low, high = metrics.wilson_interval(right, images, confidence)
        answers[question] = (right, images, low, high, int(largest) / images)
    return answers


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
