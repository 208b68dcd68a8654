"""Soares & Soares (2020): VGG16, ResNet and Xception with frozen bases, three classes.

The paper trains three ImageNet backbones whose convolutional layers stay frozen; only the
fully connected head learns. 375 images (175 COVID-19 from Cohen's collection, 100 normal and
100 "other infection" from Kermany's set), 237x237 RGB, Adam 1e-3, batch 15, 80 epochs. The
head and the split are not described in the paper; the authors' public notebook (their blog
"deepdados", Model 2, April 2020) fills both in, and this module follows it where it can.
Reported numbers are stored as printed (percent or counts) and cited to where they appear.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab.heads import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

if TYPE_CHECKING:
    import keras

    from covidlab.profiles import RunConfig

# The head of the authors' public notebook: AveragePooling2D(2x2), Flatten, Dense(20, ReLU),
# Dropout(0.2), Dense(3, softmax). ``Head`` records its sizes; ``build_soares_model`` builds
# it in that order (``Head`` alone would pool globally and put the dropout first).
HEAD = Head(pooling="flatten", hidden_units=(20,), dropout=0.2)
POOL_SIZE = 2

CLASSES = ("covid", "normal", "infection")

#: The model the chapter's text is about: the paper's best, the only one it tests in full
#: (Figure 2).
HEADLINE_MODEL = "VGG16"

# The paper gives one accuracy per model in the text under Figure 1, in percent.
_ACCURACY = pd.DataFrame(
    {"accuracy (%)": [95.9, 94.6, 97.3]},
    index=pd.Index(["Xception", "ResNet50", "VGG16"], name="model"),
)


@dataclass(frozen=True)
class SoaresSpec(PaperSpec):
    """PaperSpec whose ``build_model`` builds the authors' head (see :func:`build_soares_model`)."""

    def build_model(
        self,
        model_name: str | None = None,
        *,
        input_shape: tuple[int, int, int] | None = None,
        weights: str | None = None,
        num_classes: int | None = None,
        base_trainable: bool | None = None,
    ) -> keras.Model:
        """One of the three models; ``base_trainable=True`` unfreezes the backbone (a deviation
        from the paper, used by the chapter as a contrast)."""
        model = self.model_spec(model_name)
        return build_soares_model(
            model.backbone,
            num_classes or len(self.classes),
            input_shape=input_shape or (*self.input_size, 3),
            weights=weights,
            base_trainable=model.base_trainable if base_trainable is None else base_trainable,
            head=model.head,
        )


def build_soares_model(
    backbone: str,
    num_classes: int = 3,
    *,
    input_shape: tuple[int, int, int] = (237, 237, 3),
    weights: str | None = None,
    base_trainable: bool = False,
    head: Head = HEAD,
) -> keras.Model:
    """Backbone (frozen) -> AveragePooling2D(2x2) -> Flatten -> Dense(20) -> Dropout -> softmax.

    The head is the one of the authors' public notebook; the paper says only that the fully
    connected layers were trained. Pixels in [0, 255] go through the backbone's own
    ``preprocess_input`` inside the model. When the backbone's feature map is smaller than
    2x2 (inputs under 64 px, smoke runs) the pool shrinks to the map's size.
    """
    import keras

    from covidlab.models import Preprocess, build_backbone, freeze_base

    base = build_backbone(backbone, input_shape, weights)
    freeze_base(base, base_trainable=base_trainable)
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = Preprocess(backbone, name="preprocess")(inputs)
    x = base(x)
    pool = min(POOL_SIZE, *base.output.shape[1:3])
    x = keras.layers.AveragePooling2D(pool_size=pool, name="pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(head.hidden_units, start=1):
        x = keras.layers.Dense(units, activation=head.activation, name=f"hidden_{i}")(x)
        if head.dropout > 0:
            x = keras.layers.Dropout(head.dropout, name=f"dropout_{i}")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"soares_{backbone}")


def load_dataset(config: RunConfig) -> pd.DataFrame:
    """The run's manifest (``covidlab.profiles.load_data``); synthetic images get a
    ``true_label`` equal to their label (they are what their label says)."""
    from covidlab import profiles

    manifest = profiles.load_data(config)
    if config.data == "synthetic":
        return manifest.assign(true_label=manifest["label"])
    return manifest


def train_validation_test_split(
    manifest: pd.DataFrame,
    *,
    seed: int,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    group: str | None = "patient_id",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The paper's split as the authors' notebook runs it: test first, then validation.

    ``test_fraction`` of all images go to the test set (20 %: the 75 of 375 images the paper
    tests on); ``validation_fraction`` of the *remaining* images go to validation (Keras'
    ``validation_split=0.1``: 30 of the other 300). Both splits keep each patient on one side
    (``group="patient_id"``); ``group=None`` splits images, as the authors did. On tiny
    sets either fraction is raised so that every class has at least one patient on each side.
    """
    from covidlab import data

    rest, test = data.holdout_split(
        manifest, _at_least_one_per_class(manifest, test_fraction, group), seed=seed, group=group
    )
    train, validation = data.holdout_split(
        rest, _at_least_one_per_class(rest, validation_fraction, group), seed=seed, group=group
    )
    return train, validation, test


def _at_least_one_per_class(manifest: pd.DataFrame, fraction: float, group: str | None) -> float:
    """``fraction``, raised where needed so that a stratified split can give every class one
    patient (tiny smoke sets: 10 % of 19 images would be fewer images than classes)."""
    n_units = manifest[group].nunique() if group else len(manifest)
    return max(fraction, manifest["label"].nunique() / n_units)


def accuracy_comparison(
    confusions: Mapping[str, np.ndarray], *, run: str, confidence: float = 0.95
) -> pd.DataFrame:
    """The paper's accuracy per model beside this run's, with Wilson intervals for this run.

    ``confusions`` maps a model name (``"VGG16"``, ``"ResNet50"``, ``"Xception"``) to its test
    confusion matrix; ``run`` labels this run's columns (e.g. ``profiles.tag(config)``).
    Values in percent. Models this run did not train show the paper's value and "not trained".
    """
    from covidlab import metrics

    rows = []
    for name, paper_value in _ACCURACY["accuracy (%)"].items():
        row = {"model": name, "paper (%)": paper_value}
        if name in confusions:
            cm = np.asarray(confusions[name])
            correct, total = int(np.trace(cm)), int(cm.sum())
            low, high = metrics.wilson_interval(correct, total, confidence)
            row.update(
                {
                    "this run (%)": round(100 * correct / total, 1),
                    "correct / tested": f"{correct} / {total}",
                    f"{confidence:.0%} CI (%)": f"{100 * low:.1f}-{100 * high:.1f}",
                }
            )
        else:
            row.update(
                {
                    "this run (%)": "not trained",
                    "correct / tested": "",
                    f"{confidence:.0%} CI (%)": "",
                }
            )
        rows.append(row)
    table = pd.DataFrame(rows).set_index("model")
    table.columns = pd.MultiIndex.from_tuples(
        [("paper", c) if c.startswith("paper") else (run, c) for c in table.columns]
    )
    return table


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

    from covidlab import data

    features = keras.Model(model.inputs, model.get_layer("flatten").output)
    dataset = data.make_dataset(
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

    from covidlab.models import smallest_input_size
    from covidlab.train import set_seed

    chosen = {}
    for name, model_spec in SPEC.models.items():
        if name in runs:
            chosen[name] = runs[name].model
        elif smallest_input_size(model_spec.backbone) <= min(config.image_size):
            keras.backend.clear_session()
            set_seed(config.seed)
            chosen[name] = SPEC.build_model(
                name, input_shape=(*config.image_size, 3), weights=config.weights
            )
    return chosen


def summary_table(confusions: Mapping[str, np.ndarray], classes: Sequence[str]) -> pd.DataFrame:
    """Per model: test images, balanced accuracy, accuracy and the COVID-19 sensitivity and
    specificity (one against the other two classes), each with its 95 % Wilson interval."""
    from covidlab import metrics

    return metrics.summary_table(confusions, classes)


SPEC = SoaresSpec(
    key="soares",
    short_name="Soares",
    citation="soares2020cnn",
    title="Automatic detection of COVID-19 cases on X-ray images using convolutional "
    "neural networks",
    task="COVID-19 / normal / other infection",
    classes=CLASSES,
    input_size=(237, 237),
    resize="stretch",
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=15,
    epochs=80,
    protocol="holdout",
    test_fraction=0.2,
    validation_fraction=0.1,
    models={
        "VGG16": ModelSpec(backbone="VGG16", head=HEAD),
        "ResNet50": ModelSpec(backbone="ResNet50", head=HEAD),
        "Xception": ModelSpec(backbone="Xception", head=HEAD),
    },
    recipe={"covid": 175, "normal": 100, "infection": 100},
    recipe_sources={"covid": ("cohen",), "normal": ("kermany",), "infection": ("kermany",)},
    reported={
        "figure2_vgg16_confusion": Reported(
            table=pd.DataFrame(
                [[39, 0, 0], [0, 15, 2], [0, 0, 19]],
                index=pd.Index(["covid", "normal", "infection"], name="true"),
                columns=pd.Index(["covid", "normal", "infection"], name="predicted"),
            ),
            cite="Figure 2",
            note="VGG16 on the 75-image test set, rebuilt from the text describing Figure 2: "
            "39 COVID-19 all right, 17 normal of which 15 right (88.2 %) and 2 called 'other "
            "infection', 19 other infection all right; 73/75 = 97.3 % accuracy. The paper's "
            "'2.7 % (n = 2)' is 2 of all 75 test images. 75 images is 20 % of 375, although "
            "the methods give 10 % for testing.",
        ),
        "accuracy": Reported(
            table=_ACCURACY,
            cite="Section 4, text under Figure 1",
            note="percent, as printed; the paper says 'ResNet' without a depth (ResNet50 "
            "here). The text calls them accuracies on the validation images; VGG16's 97.3 % "
            "is also its test accuracy (73/75).",
        ),
    },
    choices=(
        "ResNet: the paper names no depth and cites He et al. (2016), the original ResNet; "
        "we take ResNet50 (the authors' public notebook uses ResNet50V2, see ambiguities).",
        "Head, from the authors' public notebook (the paper only says the fully connected "
        "layers were trained): AveragePooling2D(2x2), Flatten, Dense(20, ReLU), Dropout(0.2), "
        "Dense(3, softmax). At 237x237 VGG16 gives 7x7x512 -> 3x3x512 -> 4,608 features.",
        "Split: 20 % of the images for testing (75 of 375, the size of the paper's test set "
        "and the authors' notebook's test_size=0.2), then 10 % of the rest for validation (30 "
        "of 300, Keras' validation_split=0.1). The validation images only draw the Figure 1 "
        "curves; nothing is chosen with them.",
        "Splits keep each patient on one side (patient-grouped, stratified by class); the "
        "authors split images at random, so one patient's images could be in training and test.",
        "Pixels go through each backbone's own preprocess_input, the scaling its ImageNet "
        "weights expect; the authors' notebook divides by 255 for every backbone.",
        "No learning-rate schedule: the authors' ReduceLROnPlateau has min_lr equal to the "
        "starting rate (1e-3), so it can never lower it.",
        "'Other infection': the paper takes 100 images of lungs infected by other viruses or "
        "by bacteria from Kermany's set, without saying how many of each. The course draws them "
        "from Kermany's bacterial and viral pneumonia images pooled together, so the mix "
        "follows the source (about two bacterial images per viral one in Kermany's set); the "
        "chapter prints the run's mix.",
        "Images are stretched to 237x237 without keeping the aspect ratio, as the authors' "
        "notebook resizes them (237 px was the smallest COVID-19 image).",
        "The 3 x 3 grid of 2x2 pools needs a 2x2 feature map; below 64 px input (smoke runs) "
        "the pool shrinks to the map's size.",
    ),
    ambiguities=(
        "Split sizes: the methods give 10 % of the images for validation and 10 % for "
        "testing, yet the results test on 75 images, 20 % of 375. The authors' notebook "
        "holds out 20 % for testing and then 10 % of the remaining 300 for validation.",
        "The test set is unbalanced (39 COVID-19, 17 normal, 19 other infection) where 20 % "
        "of each class would be 35 / 20 / 20: the images were drawn at random, not by class.",
        "Accuracies: the text calls 95.9 %, 94.6 % and 97.3 % validation accuracies, but "
        "97.3 % is also the VGG16 test accuracy (73/75). 95.9 % and 94.6 % are not k/75 "
        "(72/75 = 96.0 %, 71/75 = 94.7 %) nor k/30 for any whole k, so they do not come from "
        "the 75 test images or the 30 validation images of the authors' notebook. That "
        "notebook reports 94.7 % for Xception and 96.0 % for ResNet on the test set: the two "
        "models swap places.",
        "ResNet depth: the paper says 'ResNet' and cites the original ResNet paper; the "
        "authors' notebook uses ResNet50V2.",
        "The models are compared, and VGG16 chosen, on the same images whose accuracy is then "
        "reported as the generalisation result.",
        "The head (layers, sizes, dropout) and any pixel scaling are not described in the paper.",
        "Cohen's collection holds several images of some patients (follow-ups on "
        "different days); the random image split can put one patient in training and test.",
        "The normal and other-infection images are children's X-rays from one hospital, the "
        "COVID-19 images adults' from many (often figures from papers): class and source "
        "coincide.",
        "Figure 2's text says 88.2 % of normal images were right with 'n = 17': 17 is the "
        "number of normal test images, 15 of them right; the '2.7 % (n = 2)' errors are 2 of "
        "all 75 images, not of the normal ones (2 of 17 = 11.8 %).",
        "The paper says the Xception and ResNet models overfitted while the authors' notebook "
        "says its curves show no overfitting; the curves themselves (Figure 1) are not in "
        "the text.",
    ),
)
