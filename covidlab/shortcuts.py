"""Shortcuts and leaks: what a classifier can use instead of the disease.

Roberts et al. (2021) and DeGrave, Janizek, Lee (2021) showed that COVID-19 classifiers trained on
mixed-source data learn *where an image comes from*: adult COVID-19 images copied from papers
and web case reports versus children's radiographs from one hospital. This module holds the tools
of the chapter "Shortcuts and leaks":

- :func:`image_statistics_table`: trivial file and intensity statistics per image (size, aspect,
  file format, pixel mode, brightness, border darkness), no disease information at all;
- :func:`lung_mask` / :func:`border_mask` / :func:`mask_dataset`: blank the central lung fields,
  or keep only a thin outer border strip, inside a ``tf.data`` pipeline;
- :func:`small_cnn`: the one small CNN used for whole, blanked and border-only images;
- :func:`pixel_features` and :func:`leakage_experiment`: image-level versus patient-level splits;
- :data:`HEADLINES` and :func:`headline_intervals`: each paper's headline number and test size,
  with its Wilson interval;
- :data:`REPORTING_CHECKLIST`: which reporting items each paper covers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from PIL import Image

from covidlab.metrics import wilson_interval

if TYPE_CHECKING:  # TensorFlow is imported lazily: the statistics need only numpy and PIL
    import keras
    import matplotlib.figure
    import tensorflow as tf

# ----------------------------------------------------------------------------------------------
# Trivial image statistics
# ----------------------------------------------------------------------------------------------

#: Numeric columns of :func:`image_statistics` used as classifier features.
NUMERIC_STATISTICS = (
    "width",
    "height",
    "aspect_ratio",
    "mean_intensity",
    "std_intensity",
    "border_intensity",
)
#: Categorical columns, one-hot encoded by :func:`statistics_features`.
CATEGORICAL_STATISTICS = ("file_format", "pixel_mode")


def image_statistics(path: str | Path, border_fraction: float = 0.05) -> dict[str, object]:
    """Disease-free statistics of one image file.

    ``width``, ``height`` and ``aspect_ratio`` (width / height) of the stored file, its
    ``file_format`` (JPEG, PNG) and ``pixel_mode`` (L, RGB, RGBA, I;16), and on the grey-level
    image scaled to [0, 1]: ``mean_intensity``, ``std_intensity`` and ``border_intensity``, the
    mean of the outer strip ``border_fraction`` of the width/height wide (dark borders, black
    padding, white page margins of paper figures).
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            file_format, pixel_mode = image.format, image.mode
            width, height = image.size
            grey = np.asarray(image.convert("F"), dtype=np.float32)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"cannot read image {path}: {error}. Check the file exists and is a PNG or JPEG."
        ) from error
    top = max(1, round(border_fraction * height))
    side = max(1, round(border_fraction * width))
    scale = 65535.0 if grey.max() > 255 else 255.0
    grey = grey / scale
    strip = np.ones_like(grey, dtype=bool)
    strip[top:-top, side:-side] = False
    return {
        "width": width,
        "height": height,
        "aspect_ratio": width / height,
        "file_format": file_format,
        "pixel_mode": pixel_mode,
        "mean_intensity": float(grey.mean()),
        "std_intensity": float(grey.std()),
        "border_intensity": float(grey[strip].mean()),
    }


def image_statistics_table(manifest: pd.DataFrame, border_fraction: float = 0.05) -> pd.DataFrame:
    """:func:`image_statistics` of every image of a manifest, beside its label and patient."""
    rows = [image_statistics(path, border_fraction) for path in manifest["path"]]
    stats = pd.DataFrame(rows, index=manifest.index)
    return pd.concat([manifest[["label", "patient_id", "source"]], stats], axis=1)


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


def accuracy_with_interval(y_true: Sequence, y_pred: Sequence) -> dict[str, float]:
    """Accuracy, number correct, number of images and the 95 % Wilson interval."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    correct = int((y_true == y_pred).sum())
    low, high = wilson_interval(correct, len(y_true))
    return {
        "accuracy": correct / len(y_true),
        "correct": correct,
        "n": len(y_true),
        "ci_low": low,
        "ci_high": high,
    }


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
    """Apply ``mask`` to every image of an ``(images, labels)`` dataset (``data.make_dataset``)."""
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
    from covidlab import data, train

    frames = []
    for fold, (train_df, test_df) in enumerate(data.kfold_splits(manifest, n_splits, seed=seed)):
        train.set_seed(seed + fold)
        train_ds = data.make_dataset(
            train_df, classes, image_size, batch_size=batch_size, shuffle=True, seed=seed
        )
        test_ds = data.make_dataset(test_df, classes, image_size, batch_size=batch_size)
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
    columns = ["path", "label", "patient_id", "source", "finding"]
    return pd.concat([covid[columns], other[columns]], ignore_index=True)


def cohen_findings_manifest(sources_dir: str | Path) -> pd.DataFrame:
    """Cohen's frontal X-rays only, labelled "covid" or "other" (SARS, ARDS, streptococcus, ...).

    One source, so no source shortcut; several patients have more than one image.
    """
    from covidlab import sources

    cohen = sources.frontal_xrays(sources.read_cohen(Path(sources_dir) / "covid-chestxray-dataset"))
    cohen = cohen[~cohen["label"].isin(["unknown"])]
    labelled = cohen.assign(label=np.where(cohen["label"] == "covid", "covid", "other"))
    return labelled[["path", "label", "patient_id", "source", "finding"]].reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# Patient leakage
# ----------------------------------------------------------------------------------------------


def pixel_features(manifest: pd.DataFrame, image_size: tuple[int, int] = (32, 32)) -> np.ndarray:
    """Downsampled grey-level pixels in [0, 1], one row per image (for a cheap linear model)."""
    from covidlab.data import load_image

    rows = [load_image(path, image_size)[..., 0].ravel() / 255.0 for path in manifest["path"]]
    return np.stack(rows).astype(np.float32)


def leakage_experiment(
    manifest: pd.DataFrame,
    features: np.ndarray,
    make_estimator: Callable[[], object],
    *,
    seeds: Sequence[int] = range(10),
    test_fraction: float = 0.3,
    score: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> pd.DataFrame:
    """Score one model under an image-level and a patient-level split, for several seeds.

    The image-level split (``data.holdout_split(group=None)``) may put images of one patient in
    both training and test sets; the patient-level split (``group="patient_id"``) cannot. Returns
    one row per seed and split with the score (balanced accuracy by default), the test size and
    how many test images have a patient in the training set.
    """
    from sklearn.metrics import balanced_accuracy_score

    from covidlab.data import holdout_split

    score = score or balanced_accuracy_score
    manifest = manifest.reset_index(drop=True).assign(feature_row=lambda df: np.arange(len(df)))
    rows = []
    for seed in seeds:
        for split_name, group in (("image-level", None), ("patient-level", "patient_id")):
            train_df, test_df = holdout_split(manifest, test_fraction, seed=seed, group=group)
            # the splits renumber their rows: find each image's features by its original row
            estimator = make_estimator().fit(features[train_df["feature_row"]], train_df["label"])
            predicted = estimator.predict(features[test_df["feature_row"]])
            shared = test_df["patient_id"].isin(set(train_df["patient_id"]))
            rows.append(
                {
                    "seed": seed,
                    "split": split_name,
                    "score": score(test_df["label"], predicted),
                    "n_test": len(test_df),
                    "test_images_with_patient_in_train": int(shared.sum()),
                }
            )
    return pd.DataFrame(rows)


def leakage_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, sd and standard error of the mean per split and of the paired gap.

    The gap is image-level minus patient-level score of the same seed.
    """
    wide = results.pivot(index="seed", columns="split", values="score")
    wide["gap"] = wide["image-level"] - wide["patient-level"]
    summary = wide.agg(["mean", "std", "count"]).T.rename(columns={"std": "sd"})
    summary["se"] = summary["sd"] / np.sqrt(summary["count"])
    return summary.drop(columns="count")


# ----------------------------------------------------------------------------------------------
# Small test sets: each paper's headline number and how many images it rests on
# ----------------------------------------------------------------------------------------------

#: Headline result of each paper and the number of test predictions behind it. ``correct`` is
#: ``round(value * n_test)`` unless the paper gives the counts. Cross-validated numbers count
#: every image once (the summed folds).
HEADLINES = pd.DataFrame(
    [
        {
            "paper": "covidx_net",
            "result": "VGG19 / DenseNet201, COVID vs normal accuracy",
            "value": 0.90,
            "correct": 9,
            "n_test": 10,
            "source": "F1 0.89 (normal) and 0.91 (COVID) on a 20 % test set of 50 images; "
            "9 of 10 correct is the only split giving both F1s (Tables 2-3 are not in the text)",
        },
        {
            "paper": "soares",
            "result": "VGG16 test accuracy, 3 classes",
            "value": 0.973,
            "correct": 73,
            "n_test": 75,
            "source": "Section 4 and Figure 2: 73 of 75 test images",
        },
        {
            "paper": "aboughazala",
            "result": "ResNet-50 accuracy, summed 10-fold CV",
            "value": 0.9932,
            "correct": 146,
            "n_test": 147,
            "source": "Table 1, 'Overlapped' row; 147 images",
        },
        {
            "paper": "apostolopoulos",
            "result": "MobileNetV2 2-class accuracy, Dataset_2, 10-fold CV",
            "value": 0.9678,
            "correct": 1396,
            "n_test": 1442,
            "source": "Table 5 (96.78 %) and Table 6 (1442 images)",
        },
        {
            "paper": "coronet",
            "result": "4-class accuracy, 4-fold CV",
            "value": 0.896,
            "correct": 1121,
            "n_test": 1251,
            "source": "Table III average; Table I counts 284 + 310 + 330 + 327 = 1251 images",
        },
    ]
)


def headline_intervals(
    headlines: pd.DataFrame = HEADLINES, confidence: float = 0.95
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
    from covidlab.viz import add_caption, new_figure

    fig, axes = new_figure(figsize=(7, 0.6 * len(table) + 1.2))
    ax = axes[0, 0]
    y = np.arange(len(table))[::-1]
    ax.errorbar(
        table["value"],
        y,
        xerr=[table["value"] - table["ci_low"], table["ci_high"] - table["value"]],
        fmt="o",
        capsize=4,
    )
    ax.set_yticks(
        y, [f"{p}\n(n = {n})" for p, n in zip(table["paper"], table["n_test"], strict=True)]
    )
    ax.set_xlabel("headline accuracy with 95 % Wilson interval")
    ax.set_xlim(min(0.5, float(table["ci_low"].min()) - 0.02), 1.0)
    ax.grid(axis="x", alpha=0.3)
    return add_caption(fig, caption)


# ----------------------------------------------------------------------------------------------
# Reporting checklist (judged from the paper texts; items after Roberts et al. 2021)
# ----------------------------------------------------------------------------------------------

CHECKLIST_ITEMS = (
    "patient-level split",
    "external test set",
    "confidence intervals",
    "class balance stated",
    "preprocessing fully specified",
    "code and data released",
)

#: "yes", "partial" or "no" per paper and item, with the reason in ``REPORTING_NOTES``.
REPORTING_CHECKLIST = pd.DataFrame(
    {
        "covidx_net": ["no", "no", "no", "yes", "partial", "no"],
        "soares": ["no", "no", "no", "yes", "partial", "yes"],
        "aboughazala": ["no", "no", "no", "yes", "partial", "no"],
        "apostolopoulos": ["no", "no", "no", "yes", "partial", "partial"],
        "coronet": ["no", "partial", "no", "yes", "partial", "yes"],
    },
    index=list(CHECKLIST_ITEMS),
)

REPORTING_NOTES = {
    "covidx_net": "Images drawn at random for an 80/20 split, no mention of patients (Cohen has "
    "several images per patient); one 10-image test set; no intervals; 25 + 25 stated; resized to "
    "224x224 and 'normalized', normalisation not defined; no code link, data named only as "
    "'provided by Cohen and Rosebrock'.",
    "soares": "Test set sampled at random from the images; no external set; no intervals; "
    "175/100/100 stated (yet 10 % test does not give 75 images); 237x237 RGB, no "
    "normalisation stated; code and data said to be on the authors' site.",
    "aboughazala": "10-fold CV with random partitions, patients not mentioned; no external set; no "
    "intervals; 74 COVID / 73 normal stated; only 'resampled to 224x224'; no code or data link.",
    "apostolopoulos": "10-fold CV, patients not mentioned; no external set; no intervals; "
    "class counts stated for both datasets; 200x266 with black padding described, "
    "intensity scaling not; "
    "sources named (Cohen, Kermany, web collections), no code.",
    "coronet": "4-fold CV with random division of images; a second dataset (Ozturk et al.) "
    "shares the COVID images and the model was fine-tuned on it, so it is not an external "
    "test; no intervals; "
    "Table I gives counts (text says 1300 images, Table I sums to 1251); 224x224 stated but "
    "Table II implies another input; code, model and data on GitHub.",
}
