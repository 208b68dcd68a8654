"""Chapter 09 "Shortcuts and leaks": what a classifier can use instead of the disease.

Roberts et al. (2021) and DeGrave, Janizek, Lee (2021) showed that COVID-19 classifiers trained on
mixed-source data learn *where an image comes from*: adult COVID-19 images copied from papers
and web case reports versus children's radiographs from one hospital. This module holds the tools
of the chapter "Shortcuts and leaks" (with :mod:`covidlab.images` and :mod:`covidlab.leakage`,
which other chapters share):

- :func:`statistics_features` and :func:`statistics_experiment`: classifiers of trivial file and
  intensity statistics (:func:`covidlab.images.image_statistics_table`);
- :func:`lung_mask` / :func:`border_mask` / :func:`mask_dataset`: blank the central lung fields,
  or keep only a thin outer border strip, inside a ``tf.data`` pipeline;
- :func:`small_cnn`: the one small CNN used for whole, blanked and border-only images;
- :func:`pixel_features` and :func:`run_leakage`: image-level versus patient-level splits
  (:func:`covidlab.leakage.leakage_experiment`);
- :func:`headline_intervals`: each paper's headline number and test size
  (:data:`covidlab.papers.HEADLINES`) with its Wilson interval;
- :func:`reporting_checklist`: which reporting items each paper covers;
- the chapter's runs, one call each: :func:`chapter_settings`, :func:`load_chapter_data`,
  :func:`statistics_experiment`, :func:`cnn_experiment`, :func:`run_leakage` and their figures.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab import metrics, papers, profiles
from covidlab.images import CATEGORICAL_STATISTICS, NUMERIC_STATISTICS
from covidlab.leakage import LEAKED, fit_on_features, leakage_experiment, leakage_summary
from covidlab.metrics import confusion_from_labels, wilson_interval

if TYPE_CHECKING:  # TensorFlow is imported lazily: the statistics need only numpy and PIL
    import keras
    import matplotlib.figure
    import tensorflow as tf


def statistics_features(table: pd.DataFrame) -> pd.DataFrame:
    """The numeric feature matrix: numeric statistics plus one-hot file format and pixel mode."""
    categorical = pd.get_dummies(table[list(CATEGORICAL_STATISTICS)], dtype=float)
    return pd.concat([table[list(NUMERIC_STATISTICS)].astype(float), categorical], axis=1)


def grouped_cv_predict(
    estimator: object,
    features: pd.DataFrame | np.ndarray,
    labels: Sequence[str],
    groups: Sequence[str],
    *,
    n_splits: int = 5,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold predictions with patient-grouped, stratified k-fold (scikit-learn).

    Every image is predicted by a model that saw no image of its patient.
    """
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

    folds = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return cross_val_predict(
        estimator, features, np.asarray(labels), groups=np.asarray(groups), cv=folds
    )


def compare_with_chance(low: float, high: float, chance: float) -> str:
    """Where an interval lies relative to a chance level: above, below, or "includes chance".

    An interval that includes chance is a result too: the data cannot tell this model from
    guessing (in a shortcut experiment, the absence of a clue can be the finding).
    """
    if low > chance:
        return f"above chance ({chance:g})"
    if high < chance:
        return f"below chance ({chance:g})"
    return f"includes chance ({chance:g})"


def score_predictions(
    y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str], *, chance: float = 0.5
) -> tuple[dict[str, object], np.ndarray]:
    """One row of a results table and the confusion matrix behind it.

    The row: accuracy with its 95 % Wilson interval, balanced accuracy (mean per-class
    sensitivity), the number correct and tested, and :func:`compare_with_chance`.
    """
    cm = confusion_from_labels(y_true, y_pred, classes)
    row: dict[str, object] = metrics.accuracy_with_interval(cm)
    row["balanced accuracy"] = metrics.balanced_accuracy(cm)
    row["interval vs chance"] = compare_with_chance(row["ci_low"], row["ci_high"], chance)
    return row, cm


# ----------------------------------------------------------------------------------------------
# Lung blanking and border strips
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A central region of the image in fractions of height (top, bottom) and width (left, right).

    ``shape`` is "rectangle" or "ellipse" (the ellipse inscribed in the rectangle).
    """

    top: float
    bottom: float
    left: float
    right: float
    shape: str = "rectangle"

    def __post_init__(self) -> None:
        if not (0 <= self.top < self.bottom <= 1 and 0 <= self.left < self.right <= 1):
            raise ValueError(
                "region fractions must satisfy 0 <= top < bottom <= 1 and 0 <= left < right <= 1: "
                f"{self}"
            )
        if self.shape not in ("rectangle", "ellipse"):
            raise ValueError(f"shape must be 'rectangle' or 'ellipse', not {self.shape!r}")


#: The lung fields of a frontal radiograph after resizing to a square: a central rectangle from
#: 15 % to 85 % of the height and of the width. Checked by eye on the chapter's images: on PA/AP
#: views it covers most of both lungs, the heart and the mediastinum (the lowest lung tips can
#: show below it), leaving the shoulders, neck, image corners and any border text.
LUNG_FIELDS = Region(top=0.15, bottom=0.85, left=0.15, right=0.85)

#: Width of the border strip (fraction of the height / width on each side) kept by
#: :func:`border_mask`.
BORDER_WIDTH = 0.08


def _region_inside(image_size: tuple[int, int], region: Region) -> np.ndarray:
    height, width = image_size
    rows = (np.arange(height) + 0.5) / height
    cols = (np.arange(width) + 0.5) / width
    r, c = np.meshgrid(rows, cols, indexing="ij")
    if region.shape == "rectangle":
        return (r >= region.top) & (r < region.bottom) & (c >= region.left) & (c < region.right)
    centre_r, centre_c = (region.top + region.bottom) / 2, (region.left + region.right) / 2
    radius_r, radius_c = (region.bottom - region.top) / 2, (region.right - region.left) / 2
    return ((r - centre_r) / radius_r) ** 2 + ((c - centre_c) / radius_c) ** 2 <= 1


def lung_mask(image_size: tuple[int, int], region: Region = LUNG_FIELDS) -> np.ndarray:
    """Multiplicative mask (H, W, 1) float32: 0 inside ``region`` (blanked), 1 elsewhere."""
    return (~_region_inside(image_size, region)).astype(np.float32)[..., None]


def border_mask(image_size: tuple[int, int], width: float = BORDER_WIDTH) -> np.ndarray:
    """Multiplicative mask (H, W, 1) float32: 1 on the outer strip ``width`` wide, 0 inside."""
    if not 0 < width < 0.5:
        raise ValueError(f"border width must be between 0 and 0.5 of the image, not {width}")
    inner = Region(top=width, bottom=1 - width, left=width, right=1 - width)
    return lung_mask(image_size, inner)


def apply_mask(images: np.ndarray | tf.Tensor, mask: np.ndarray) -> np.ndarray | tf.Tensor:
    """Multiply an image (H, W, C) or batch (N, H, W, C) by a mask; works on numpy and tf."""
    return images * mask


def mask_dataset(dataset: tf.data.Dataset, mask: np.ndarray) -> tf.data.Dataset:
    """Apply ``mask`` to every image of an ``(images, labels)`` dataset
    (:func:`covidlab.images.make_dataset`)."""
    import tensorflow as tf

    constant = tf.constant(mask, dtype=tf.float32)
    return dataset.map(
        lambda images, labels: (apply_mask(images, constant), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def small_cnn(input_shape: tuple[int, int, int], num_classes: int, *, seed: int = 0) -> keras.Model:
    """A small CNN trained from scratch (three conv blocks, ~25k parameters).

    Cheap enough to train on a CPU in seconds; used unchanged on whole, lung-blanked and
    border-only images so only the input differs. Takes pixels in [0, 255].
    """
    import keras

    initializer = keras.initializers.GlorotUniform(seed=seed)
    inputs = keras.Input(shape=input_shape)
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(
            filters, 3, padding="same", activation="relu", kernel_initializer=initializer
        )(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", kernel_initializer=initializer)(
        x
    )
    return keras.Model(inputs, outputs, name="small_cnn")


def cnn_cross_validate(
    manifest: pd.DataFrame,
    classes: Sequence[str],
    image_size: tuple[int, int],
    *,
    mask: np.ndarray | None = None,
    n_splits: int = 3,
    epochs: int = 8,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    run_eagerly: bool = False,
) -> pd.DataFrame:
    """Out-of-fold predictions of :func:`small_cnn`, patient-grouped k-fold, images times ``mask``.

    The same folds (``data.kfold_splits`` with ``seed``), model, optimizer (Adam) and epochs
    for every mask, so two calls differ only in what the network sees. Returns one row per image:
    ``path``, ``patient_id``, ``fold``, ``true``, ``predicted``. ``run_eagerly`` skips graph
    tracing, faster for a handful of images (see :mod:`covidlab.profiles`).
    """
    from covidlab import data, images, train

    frames = []
    for fold, (train_df, test_df) in enumerate(data.kfold_splits(manifest, n_splits, seed=seed)):
        train.set_seed(seed + fold)
        train_ds = images.make_dataset(
            train_df, classes, image_size, batch_size=batch_size, shuffle=True, seed=seed
        )
        test_ds = images.make_dataset(test_df, classes, image_size, batch_size=batch_size)
        if mask is not None:
            train_ds, test_ds = mask_dataset(train_ds, mask), mask_dataset(test_ds, mask)
        model = small_cnn((*image_size, 3), len(classes), seed=seed + fold)
        train.compile_classifier(model, "adam", learning_rate, run_eagerly=run_eagerly)
        train.fit(model, train_ds, epochs=epochs, verbose=0)
        y_true, y_prob = train.predict(model, test_ds)
        frames.append(
            pd.DataFrame(
                {
                    "path": test_df["path"].to_numpy(),
                    "patient_id": test_df["patient_id"].to_numpy(),
                    "fold": fold,
                    "true": np.asarray(classes)[np.asarray(y_true)],
                    "predicted": np.asarray(classes)[np.argmax(y_prob, axis=1)],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def _sample_per_label(manifest: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """Up to ``n`` random rows of each label, labels in sorted order."""
    groups = [g.sample(min(n, len(g)), random_state=seed) for _, g in manifest.groupby("label")]
    return pd.concat(groups, ignore_index=True)


def plot_masked_examples(
    manifest: pd.DataFrame,
    image_size: tuple[int, int],
    masks: dict[str, np.ndarray | None],
    *,
    n_per_class: int = 2,
    seed: int = 0,
    caption: str | None = None,
) -> matplotlib.figure.Figure:
    """A few images per class (rows) as each mask leaves them (columns); only images whose
    licence lets the book show them (:func:`covidlab.viz.showable`)."""
    from covidlab.viz import add_caption, load_showable, new_figure, showable

    picks = _sample_per_label(showable(manifest), n_per_class, seed)
    images = load_showable(picks, image_size)
    fig, axes = new_figure(len(picks), len(masks), figsize=(2.2 * len(masks), 2.2 * len(picks)))
    for row, image in enumerate(images):
        for col, (name, mask) in enumerate(masks.items()):
            shown = image if mask is None else apply_mask(image, mask)
            ax = axes[row, col]
            ax.imshow(shown.astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(name, fontsize=9)
            if col == 0:
                ax.set_ylabel(picks["label"].iloc[row], fontsize=9)
    return add_caption(fig, caption)


# ----------------------------------------------------------------------------------------------
# The chapter's data: COVID (Cohen) against Kermany, and COVID against other findings in Cohen
# ----------------------------------------------------------------------------------------------


def source_shortcut_manifest(
    sources_dir: str | Path, *, max_per_class: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """Frontal COVID-19 X-rays from Cohen ("covid") against Kermany images ("other").

    "other" draws equally from Kermany's normal, bacterial and viral images, as many as there
    are COVID images (or ``max_per_class``), so chance is 50 %. Nothing but the source tells
    the classes apart in the statistics this chapter feeds to a classifier.
    """
    from covidlab import sources

    sources_dir = Path(sources_dir)
    cohen = sources.frontal_xrays(sources.read_cohen(sources_dir / "covid-chestxray-dataset"))
    covid = cohen[cohen["label"] == "covid"]
    if max_per_class is not None and len(covid) > max_per_class:
        covid = covid.sample(max_per_class, random_state=seed)
    kermany = sources.read_kermany(sources_dir / "chest_xray")
    per_type = -(-len(covid) // 3)
    other = (
        _sample_per_label(kermany, per_type, seed)
        .head(len(covid))
        .assign(finding=lambda df: df["label"], label="other")
    )
    columns = ["path", "label", "patient_id", "source", "finding", "license"]
    return pd.concat([covid[columns], other[columns]], ignore_index=True)


def cohen_findings_manifest(sources_dir: str | Path) -> pd.DataFrame:
    """Cohen's frontal X-rays only, labelled "covid" or "other" (SARS, ARDS, streptococcus, ...).

    One source, so no source shortcut; several patients have more than one image.
    """
    from covidlab import sources

    cohen = sources.frontal_xrays(sources.read_cohen(Path(sources_dir) / "covid-chestxray-dataset"))
    cohen = cohen[~cohen["label"].isin(["unknown"])]
    labelled = cohen.assign(label=np.where(cohen["label"] == "covid", "covid", "other"))
    columns = ["path", "label", "patient_id", "source", "finding", "license"]
    return labelled[columns].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Patient leakage
# ----------------------------------------------------------------------------------------------


def pixel_features(manifest: pd.DataFrame, image_size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Downsampled grey-level pixels in [0, 1], one row per image (for a cheap linear model)."""
    from covidlab.images import load_image

    rows = [load_image(path, image_size)[..., 0].ravel() / 255.0 for path in manifest["path"]]
    return np.stack(rows).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Small test sets: each paper's headline number and how many images it rests on
# ----------------------------------------------------------------------------------------------


def headline_intervals(
    headlines: pd.DataFrame = papers.HEADLINES, confidence: float = 0.95
) -> pd.DataFrame:
    """Add the Wilson interval (low, high, width) of each headline number to the table."""
    table = headlines.copy()
    bounds = [
        wilson_interval(int(c), int(n), confidence)
        for c, n in zip(table["correct"], table["n_test"], strict=True)
    ]
    table["ci_low"] = [low for low, _ in bounds]
    table["ci_high"] = [high for _, high in bounds]
    table["ci_width"] = table["ci_high"] - table["ci_low"]
    return table


def plot_headline_intervals(
    table: pd.DataFrame, *, caption: str | None = None
) -> matplotlib.figure.Figure:
    """Each paper's headline number with its Wilson interval, labelled with the test size."""
    from covidlab.viz import add_caption, interval_rows

    fig, ax, _ = interval_rows(
        [f"{p}\n(n = {n})" for p, n in zip(table["paper"], table["n_test"], strict=True)],
        table["value"],
        table["ci_low"],
        table["ci_high"],
        width=7,
        margin=1.2,
    )
    ax.set_xlabel("headline accuracy with 95 % Wilson interval")
    ax.set_xlim(min(0.5, float(table["ci_low"].min()) - 0.02), 1.0)
    ax.grid(axis="x", alpha=0.3)
    return add_caption(fig, caption)


# ----------------------------------------------------------------------------------------------
# Reporting checklist (judged from the paper texts; items after Roberts et al. 2021)
# ----------------------------------------------------------------------------------------------


def reporting_notes_markdown() -> str:
    """Each paper's ``checklist_note`` (the reasons for its checklist answers) as a Markdown
    list, one paper per item (for ``display``)."""
    return "\n".join(
        f"- **{papers.get(key).short_name}.** {papers.get(key).checklist_note}"
        for key in papers.ALL
    )


def headline_table() -> pd.DataFrame:
    """:func:`headline_intervals` as the chapter shows it: short paper names, rounded."""
    table = headline_intervals()
    table["paper"] = [papers.get(key).short_name for key in table["paper"]]
    columns = ["paper", "result", "value", "correct", "n_test", "ci_low", "ci_high", "ci_width"]
    return table[[*columns, "source"]].round(3)


# ----------------------------------------------------------------------------------------------
# The chapter's runs: settings per profile, data, and one call per experiment
# ----------------------------------------------------------------------------------------------

#: The two classes of both experiments. "other" is Kermany (source shortcut) or Cohen's other
#: findings (leakage).
CLASSES = ("covid", "other")

#: The chapter's settings per profile: the small CNN's input side and epochs, its
#: patient-grouped folds, and the repetitions (seeds) of the leakage experiment. Demo, measured
#: on the shared sample (2-core CPU, 3 folds, out-of-fold balanced accuracy): whole image 0.75,
#: lungs blanked 0.76, border only 0.90 at 64 px and 10 epochs, about 40 s of CPU for all three;
#: the leakage experiment (20 seeds of a logistic regression) about 15 s.
PROFILE_SETTINGS = {
    "smoke": {"image_side": 32, "epochs": 1, "cnn_folds": 2, "leakage_seeds": 3},
    "demo": {"image_side": 64, "epochs": 10, "cnn_folds": 3, "leakage_seeds": 20},
    "paper": {"image_side": 128, "epochs": 20, "cnn_folds": 5, "leakage_seeds": 20},
}


@dataclass(frozen=True)
class ChapterSettings:
    """What one run of the chapter uses; built by :func:`chapter_settings`."""

    profile: str
    image_size: tuple[int, int]
    epochs: int
    cnn_folds: int
    leakage_seeds: tuple[int, ...]
    seed: int = 0
    learning_rate: float = 1e-3
    batch_size: int = 16

    @property
    def data(self) -> str:
        """ "synthetic", "shared sample" or "full sources" (:data:`covidlab.profiles.DATA`)."""
        return profiles.DATA[self.profile]

    @property
    def run_eagerly(self) -> bool:
        """Smoke runs a handful of images: eager mode skips graph tracing (see profiles)."""
        return self.profile == "smoke"

    def tag(self) -> str:
        """A short label for every table and figure of the run."""
        side = "x".join(map(str, self.image_size))
        return (
            f"{self.profile} profile · {self.data} data · small CNN {side}, "
            f"{self.epochs} epoch{'s' * (self.epochs != 1)}, random weights"
        )

    def leakage_tag(self) -> str:
        """The label of the leakage experiment's table and figure (its model is not the CNN)."""
        return (
            f"{self.profile} profile · {self.data} data · logistic regression on "
            f"{LEAKAGE_PIXELS[0]}x{LEAKAGE_PIXELS[1]} pixels · {len(self.leakage_seeds)} seeds"
        )

    def describe(self) -> str:
        """The chapter's banner."""
        meaning = (
            "synthetic images: the mechanics only, the numbers mean nothing"
            if self.profile == "smoke"
            else "real images; a CPU-sized run, not a published protocol"
        )
        return (
            f"Profile: {self.profile} | data: {self.data} | small CNN input "
            f"{self.image_size[0]}x{self.image_size[1]}, {self.epochs} "
            f"epoch{'s' * (self.epochs != 1)}, adam lr "
            f"{self.learning_rate:g}, batch {self.batch_size}, {self.cnn_folds} patient-grouped "
            f"folds | leakage: {len(self.leakage_seeds)} seeds | {meaning}"
        )


def chapter_settings(
    profile: str | None = None,
    *,
    seed: int = 0,
    image_side: int | None = None,
    epochs: int | None = None,
    leakage_seeds: int | None = None,
) -> ChapterSettings:
    """The settings of ``profile`` (None: ``$COVIDLAB_PROFILE``), any of them overridden."""
    profile = profiles.check_profile(profile)
    defaults = PROFILE_SETTINGS[profile]
    side = image_side or defaults["image_side"]
    return ChapterSettings(
        profile=profile,
        image_size=(side, side),
        epochs=epochs or defaults["epochs"],
        cnn_folds=defaults["cnn_folds"],
        leakage_seeds=tuple(range(leakage_seeds or defaults["leakage_seeds"])),
        seed=seed,
    )


def load_chapter_data(
    settings: ChapterSettings, *, workdir: str | Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two manifests: (source shortcut, leakage).

    Real images (demo, paper): :func:`source_shortcut_manifest` and
    :func:`cohen_findings_manifest` from the sources (:func:`covidlab.download.locate_sources`).
    Smoke: synthetic images with the same classes and several images per patient, written to
    ``workdir`` (default: a new temporary folder); their classes differ by a drawn pattern,
    not by source.
    """
    from covidlab import synthetic

    if settings.profile == "smoke":
        root = Path(workdir or tempfile.mkdtemp(prefix="covidlab-shortcuts-"))
        source = synthetic.synthetic_manifest(
            root / "source",
            CLASSES,
            24,
            image_size=(64, 64),
            seed=settings.seed,
            patients_per_class=12,
        )
        cohen = synthetic.synthetic_manifest(
            root / "cohen",
            CLASSES,
            24,
            image_size=(64, 64),
            seed=settings.seed + 1,
            patients_per_class=10,
        )
        return source, cohen
    from covidlab import download, sources

    sources_dir = download.locate_sources()
    with warnings.catch_warnings():  # Cohen lists 4 images it lacks (see the data chapter)
        warnings.simplefilter("ignore", sources.MissingImagesWarning)
        source = source_shortcut_manifest(sources_dir, seed=settings.seed)
        cohen = cohen_findings_manifest(sources_dir)
    return source, cohen


def dataset_table(source: pd.DataFrame, cohen: pd.DataFrame) -> pd.DataFrame:
    """Images, patients and images per class of the chapter's two datasets."""
    rows = {}
    for name, manifest in (
        ("source shortcut: Cohen COVID-19 vs Kermany", source),
        ("leakage: Cohen COVID-19 vs Cohen other findings", cohen),
    ):
        counts = manifest["label"].value_counts()
        rows[name] = {
            "images": len(manifest),
            "patients": manifest["patient_id"].nunique(),
            **{f"{label} images": int(counts.get(label, 0)) for label in CLASSES},
            "images per patient (max)": int(manifest["patient_id"].value_counts().max()),
        }
    return pd.DataFrame(rows).T


@dataclass
class ExperimentResult:
    """A results table (one row per model: :func:`score_predictions`) and each model's
    confusion matrix, keyed like the table's index (for ``results.record_run``)."""

    table: pd.DataFrame
    confusions: dict[str, np.ndarray] = field(default_factory=dict)
    classes: tuple[str, ...] = CLASSES


def _results(rows: Mapping[str, tuple[dict, np.ndarray]], classes: Sequence[str]):
    table = pd.DataFrame({name: row for name, (row, _) in rows.items()}).T
    numeric = ["accuracy", "balanced accuracy", "ci_low", "ci_high"]
    table[numeric] = table[numeric].astype(float)
    table[["correct", "n"]] = table[["correct", "n"]].astype(int)
    order = ["accuracy", "ci_low", "ci_high", "balanced accuracy", "correct", "n"]
    table = table[[*order, "interval vs chance"]]
    return ExperimentResult(table, {name: cm for name, (_, cm) in rows.items()}, tuple(classes))


#: The statistics the "intensity only" model keeps: they survive converting every file to
#: one format and pixel mode.
INTENSITY_STATISTICS = ("mean_intensity", "std_intensity", "border_intensity")


def statistics_experiment(
    stats: pd.DataFrame, *, seed: int = 0, n_splits: int = 5
) -> ExperimentResult:
    """Three classifiers of trivial statistics, scored out of fold (patient-grouped k-fold).

    A logistic regression on all statistics (:func:`statistics_features`), one on the
    intensity statistics only (:data:`INTENSITY_STATISTICS`), and a depth-2 decision tree on
    all of them (:func:`tree_rules` prints its rules).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    features = statistics_features(stats)
    models = {
        "logistic regression, all statistics": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            list(features.columns),
        ),
        "logistic regression, intensity only (mean, std, border)": (
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
            list(INTENSITY_STATISTICS),
        ),
        "decision tree (depth 2), all statistics": (
            DecisionTreeClassifier(max_depth=2, random_state=seed),
            list(features.columns),
        ),
    }
    rows = {}
    for name, (model, columns) in models.items():
        predicted = grouped_cv_predict(
            model,
            features[columns],
            stats["label"],
            stats["patient_id"],
            n_splits=n_splits,
            seed=seed,
        )
        rows[name] = score_predictions(list(stats["label"]), list(predicted), CLASSES)
    return _results(rows, CLASSES)


def tree_rules(stats: pd.DataFrame, *, seed: int = 0, drop_prefixes: Sequence[str] = ()) -> str:
    """The rules of a depth-2 decision tree fitted on all images' statistics, as text.

    ``drop_prefixes`` leaves out features, e.g. ``("file_format", "pixel_mode")`` for files
    all converted to one format.
    """
    from sklearn.tree import DecisionTreeClassifier, export_text

    features = statistics_features(stats)
    features = features[[c for c in features if not c.startswith(tuple(drop_prefixes))]]
    tree = DecisionTreeClassifier(max_depth=2, random_state=seed).fit(features, stats["label"])
    return export_text(tree, feature_names=list(features.columns))


def chapter_masks(image_size: tuple[int, int]) -> dict[str, np.ndarray | None]:
    """The three inputs of the CNN experiment: whole image, lungs blanked, border only."""
    return {
        "whole image": None,
        "lungs blanked": lung_mask(image_size),
        "border only": border_mask(image_size),
    }


def cnn_experiment(
    manifest: pd.DataFrame,
    settings: ChapterSettings,
    masks: Mapping[str, np.ndarray | None] | None = None,
) -> ExperimentResult:
    """:func:`small_cnn` under each mask (default :func:`chapter_masks`), same folds and seed.

    Each row scores the out-of-fold predictions of all images (:func:`cnn_cross_validate`).
    """
    masks = chapter_masks(settings.image_size) if masks is None else masks
    rows = {}
    for name, mask in masks.items():
        predictions = cnn_cross_validate(
            manifest,
            CLASSES,
            settings.image_size,
            mask=mask,
            n_splits=settings.cnn_folds,
            epochs=settings.epochs,
            batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            seed=settings.seed,
            run_eagerly=settings.run_eagerly,
        )
        rows[f"small CNN, {name}"] = score_predictions(
            list(predictions["true"]), list(predictions["predicted"]), CLASSES
        )
    return _results(rows, CLASSES)


def plot_accuracy_intervals(
    table: pd.DataFrame,
    *,
    chance: float = 0.5,
    xlabel: str = "accuracy with 95 % Wilson interval",
    caption: str | None = None,
) -> matplotlib.figure.Figure:
    """One row per model of a results table: accuracy and its interval; chance dashed."""
    from covidlab.viz import add_caption, interval_rows

    fig, ax, _ = interval_rows(
        table.index,
        table["accuracy"],
        table["ci_low"],
        table["ci_high"],
        row_height=0.45,
        margin=1.6,
        fontsize=8,
    )
    ax.axvline(chance, ls="--", color="grey", label=f"chance ({chance:g})")
    ax.set_xlim(min(0.3, float(table["ci_low"].min()) - 0.05), 1.0)
    ax.set_xlabel(xlabel)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, frameon=False)
    return add_caption(fig, caption)


#: The leakage experiment's model: a regularised logistic regression on 32x32 grey pixels,
#: classes weighted to balance ("other" is the small class in Cohen's collection).
LEAKAGE_PIXELS = (32, 32)


def leakage_model() -> object:
    """A fresh estimator for :func:`leakage_experiment` (logistic regression, balanced)."""
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=0.1, max_iter=3000, class_weight="balanced")


def run_leakage(
    manifest: pd.DataFrame, settings: ChapterSettings, *, test_fraction: float = 0.3
) -> pd.DataFrame:
    """:func:`covidlab.leakage.leakage_experiment` with :func:`leakage_model` on
    :data:`LEAKAGE_PIXELS` pixels."""
    features = pixel_features(manifest, LEAKAGE_PIXELS)
    return leakage_experiment(
        manifest,
        fit_on_features(manifest, features, leakage_model),
        seeds=settings.leakage_seeds,
        test_fraction=test_fraction,
    )


def leakage_table(results: pd.DataFrame, *, chance: float = 0.5) -> pd.DataFrame:
    """:func:`leakage_summary` with its 95 % interval, each row compared with chance (the
    splits) or with zero (the gap)."""
    table = leakage_summary(results, confidence=0.95)
    table["interval vs chance"] = [
        compare_with_chance(low, high, 0.0 if name == "gap" else chance).replace(
            "chance (0)", "zero"
        )
        for name, low, high in zip(table.index, table["ci_low"], table["ci_high"], strict=True)
    ]
    means = results.groupby("split")[["n_test", LEAKED]].mean()
    columns = ("test images (mean)", "of them, patient also in training (mean)")
    for column, values in zip(columns, means.reindex(table.index).T.to_numpy(), strict=True):
        # the gap row has no test set of its own: an empty cell, not NaN
        table[column] = ["" if np.isnan(value) else f"{value:.1f}" for value in values]
    return table


def leakage_confusions(results: pd.DataFrame) -> dict[str, np.ndarray]:
    """The confusion matrices of :func:`leakage_experiment`, summed over seeds, per split."""
    return {
        split: metrics.summed_confusion([np.asarray(cm) for cm in group["confusion"]])
        for split, group in results.groupby("split")
    }


def plot_leakage(
    results: pd.DataFrame, *, chance: float = 0.5, caption: str | None = None
) -> matplotlib.figure.Figure:
    """Each seed's two scores joined by a line, with a box per split; chance dashed."""
    from covidlab.viz import add_caption, new_figure

    fig, axes = new_figure(figsize=(6, 3.2))
    ax = axes[0, 0]
    wide = results.pivot(index="seed", columns="split", values="score")
    for _, row in wide.iterrows():
        ax.plot([0, 1], [row["image-level"], row["patient-level"]], color="grey", alpha=0.4)
    ax.boxplot([wide["image-level"], wide["patient-level"]], positions=[0, 1], widths=0.3)
    ax.set_xticks([0, 1], ["image-level split", "patient-level split"])
    ax.axhline(chance, ls="--", color="grey", label=f"chance ({chance:g})")
    ax.set_ylabel("balanced accuracy")
    ax.legend(loc="lower left", fontsize=8)
    return add_caption(fig, caption)


def _verdicts(table: pd.DataFrame) -> dict[str, str]:
    """``above`` / ``includes`` / ``below`` per row of a results table."""
    return {name: str(value).split()[0] for name, value in table["interval vs chance"].items()}


def shortcut_findings(table: pd.DataFrame) -> str:
    """What this run's source-shortcut rows say, row by row, as Markdown.

    Written from the intervals (:func:`compare_with_chance`), so the text follows the run:
    a row whose interval includes chance is read as "no usable clue found with these
    settings", which for the lungs-blanked CNN is what a dataset without a shortcut would give.
    """
    verdict = _verdicts(table)
    above = [name for name, v in verdict.items() if v == "above"]
    lines = [
        f"- **{len(above)} of {len(table)}** models score above chance with their whole 95 % "
        "interval."
    ]
    whole = verdict.get("small CNN, whole image")
    if whole is not None and whole != "above":
        lines.append(
            "- The whole-image CNN did **not** learn with these settings (its interval includes "
            "chance): the masked rows below have nothing to be compared with; more epochs or "
            "images would be needed."
        )
    blanked = verdict.get("small CNN, lungs blanked")
    if blanked == "above":
        lines.append(
            "- With the lungs **blanked**, the CNN still scores above chance: what it uses lies "
            "outside the lung fields (corners, body size, text and markers, exposure)."
        )
    elif blanked is not None:
        lines.append(
            "- With the lungs **blanked**, the CNN's interval includes chance: with these "
            "settings it found no clue outside the lungs. That is what a dataset without a "
            "source shortcut should give, so here chance is the finding; it is not proof that "
            "no shortcut exists (the statistics and border rows test for one directly)."
        )
    border = verdict.get("small CNN, border only")
    if border == "above":
        lines.append(
            "- Seeing **only the border** (an outer frame, no anatomy to speak of), the CNN "
            "scores above chance: the frame of an image tells where it comes from."
        )
    elif border is not None:
        lines.append(
            "- Seeing only the border, the CNN's interval includes chance: the frame alone did "
            "not give it a usable clue in this run."
        )
    seeing_less = _masked_rows_above_the_whole_image(table) if whole == "above" else []
    if seeing_less:
        lines.append(
            f"- Seeing less did better: the interval of the {' and the '.join(seeing_less)} "
            "CNN lies wholly above the whole-image one. A likely reason: a small CNN trained "
            "briefly from random weights on a few hundred images does not find every clue it "
            "could use, and with the anatomy hidden the clue that remains, the image's frame, is "
            "easier to find. Read the masked rows as evidence that a shortcut exists, not as a "
            "ranking of what each part of the image is worth."
        )
    statistics = [name for name in verdict if not name.startswith("small CNN")]
    if statistics and all(verdict[name] == "above" for name in statistics):
        lines.append(
            "- Every classifier of **file statistics** scores above chance: size, format and "
            "grey levels alone, no pixel of a lung, tell the classes apart."
        )
    return "\n".join(lines)


def _masked_rows_above_the_whole_image(table: pd.DataFrame) -> list[str]:
    """The masked CNN rows ("lungs blanked", "border only") whose 95 % interval lies wholly
    above the whole-image CNN's."""
    whole = "small CNN, whole image"
    if whole not in table.index or not {"ci_low", "ci_high"} <= set(table.columns):
        return []
    return [
        name.removeprefix("small CNN, ")
        for name in ("small CNN, lungs blanked", "small CNN, border only")
        if name in table.index and table.loc[name, "ci_low"] > table.loc[whole, "ci_high"]
    ]


def leakage_findings(table: pd.DataFrame) -> str:
    """What this run's leakage table says (:func:`leakage_table`), as Markdown."""
    verdict = _verdicts(table)
    image, patient, gap = (verdict.get(k) for k in ("image-level", "patient-level", "gap"))
    lines = []
    if patient == "above":
        lines.append(
            "- Split **by patient**, the model scores above chance: it learned something that "
            "carries over to patients it has never seen."
        )
    else:
        lines.append(
            "- Split **by patient**, the model's interval includes chance: a linear model of "
            "32x32 pixels learns almost nothing that carries over to unseen patients. That is "
            "the honest score of this model on this task, and it is what the image-level "
            "split hides."
        )
    if image == "above":
        lines.append(
            "- Split **by image**, the same model scores above chance: part of that score "
            "comes from test images whose patient it saw in training."
        )
    if gap == "above":
        lines.append(
            "- The **gap** (image-level minus patient-level, seed by seed) is above zero with "
            "its whole interval: leakage inflates the score."
        )
    else:
        lines.append(
            "- The **gap**'s interval includes zero: with these seeds the data cannot show "
            "that leakage inflates the score."
        )
    return "\n".join(lines)


def combine(*experiments: ExperimentResult) -> ExperimentResult:
    """Several experiments' results as one (their tables stacked, in order)."""
    confusions = {}
    for experiment in experiments:
        confusions.update(experiment.confusions)
    table = pd.concat([experiment.table for experiment in experiments])
    return ExperimentResult(table, confusions, experiments[0].classes)


def reporting_checklist() -> pd.DataFrame:
    """:data:`covidlab.papers.REPORTING_CHECKLIST` with the papers' short names as columns."""
    return papers.REPORTING_CHECKLIST.rename(columns=lambda key: papers.get(key).short_name)
