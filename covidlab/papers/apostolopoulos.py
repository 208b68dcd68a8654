"""Apostolopoulos & Mpesiana (2020): five backbones with layer cut-offs, 10-fold CV.

The paper's facts as data (:data:`SPEC`, Table 1's cut-offs and heads, Tables 2-6 in
``SPEC.reported``, the two datasets in :data:`DATASETS`) and the few computations its chapter
needs: the two accuracies of Tables 2 and 5 from a 3x3 confusion matrix
(:func:`two_accuracies`), the paper's own arithmetic re-done (:func:`check_reported`), the
score of a model that never says COVID-19 (:func:`always_predict`), and where each cut-off
lands in Keras' layer list (:func:`cutoff_summary`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab import metrics
from covidlab.heads import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

if TYPE_CHECKING:
    import keras

    from covidlab.profiles import RunConfig
    from covidlab.recipes import RecipeResult

# Table 1: layer cut-off (non-trainable layers from the input) and the head per backbone.
SPEC = PaperSpec(
    key="apostolopoulos",
    short_name="Apostolopoulos",
    citation="apostolopoulos2020covid",
    title="Covid-19: automatic detection from X-ray images utilizing transfer learning "
    "with convolutional neural networks",
    task="COVID-19 / pneumonia / normal",
    classes=("covid", "pneumonia", "normal"),
    input_size=(200, 266),
    resize="pad",
    optimizer="adam",
    learning_rate=1e-3,
    batch_size=64,
    epochs=10,
    protocol="kfold",
    n_splits=10,
    models={
        "VGG19": ModelSpec("VGG19", Head(pooling="avg", hidden_units=(1024,)), True, 18),
        "MobileNetV2": ModelSpec(
            "MobileNetV2", Head(pooling="avg", hidden_units=(1000, 750), dropout=0.5), True, 10
        ),
        "InceptionV3": ModelSpec(
            "InceptionV3", Head(pooling="avg", hidden_units=(1000,)), True, 249
        ),
        "Xception": ModelSpec(
            "Xception", Head(pooling="avg", hidden_units=(1000, 750), dropout=0.5), True, 120
        ),
        "InceptionResNetV2": ModelSpec("InceptionResNetV2", Head(pooling="avg"), True, 730),
    },
    recipe={"covid": 224, "pneumonia": 700, "normal": 504},
    recipe_sources={"covid": ("cohen",), "pneumonia": ("kermany",), "normal": ("kermany",)},
    reported={
        "table2_metrics": Reported(
            table=pd.DataFrame(
                {
                    "accuracy_2class": [98.75, 97.40, 86.13, 85.57, 84.38],
                    "accuracy_3class": [93.48, 92.85, 92.85, 92.85, 92.85],
                    "sensitivity": [92.85, 99.10, 12.94, 0.08, 0.01],
                    "specificity": [98.75, 97.09, 99.70, 99.99, 99.83],
                },
                index=pd.Index(
                    ["VGG19", "MobileNetV2", "InceptionV3", "Xception", "InceptionResNetV2"],
                    name="model",
                ),
            ),
            cite="Table 2",
            note="Dataset_1, percentages as printed; sensitivity and specificity are for "
            "COVID-19 against the rest. The paper truncates to two decimals (MobileNet v2: "
            "222/224 = 99.107 % is printed 99.10). Recomputed from Tables 3-4: VGG19 "
            "sensitivity 208/224, specificity 1189/1204 and 3-class accuracy 1335/1428 = 93.48 % "
            "reproduce, but its 2-class accuracy is (208 + 1189)/1428 = 97.83 %, not 98.75 "
            "(98.75 is its specificity, repeated). MobileNet v2 sensitivity, specificity and "
            "2-class accuracy 1391/1428 = 97.40 % reproduce, but its 3-class accuracy is "
            "(222 + 495 + 646)/1428 = 95.45 %, not 92.85 (the value printed for four networks, "
            "equal to VGG19's sensitivity 208/224). No matrix is given for the other three; "
            "their sensitivities 0.08 % and 0.01 % and specificities 99.70 % and 99.99 % are "
            "not k/224 or k/1204 for any whole k (perhaps averages over folds). The paper marks "
            "those specificities with * as not meaningful. 'Inception' is taken as InceptionV3.",
        ),
        "table3_confusion": Reported(
            table=pd.DataFrame(
                [
                    [222, 2, 0],
                    [8, 495, 1],
                    [27, 27, 646],
                    [222, 3, 13],
                    [8, 460, 36],
                    [7, 26, 667],
                ],
                index=pd.MultiIndex.from_product(
                    [["MobileNetV2", "VGG19"], ["covid", "pneumonia", "normal"]],
                    names=["model", "true"],
                ),
                columns=pd.Index(["covid", "pneumonia", "normal"], name="predicted"),
            ),
            cite="Table 3",
            note="Dataset_1, 10-fold CV pooled. Stored transposed: rows are the true class "
            "(the paper prints predicted labels as rows). Numbers as printed, with two "
            "inconsistencies. (1) The 'pneumonia' and 'normal' labels look swapped: their "
            "totals are 504 and 700, while the text has 700 pneumonia and 504 normal images; "
            "this does not change COVID-19 counts or the 3-class accuracy. (2) VGG19's "
            "COVID-19 -> COVID-19 cell is printed 222 (as for MobileNet v2), which makes 238 "
            "COVID-19 images; Table 4's TP = 208 gives the 224 of the text and reproduces "
            "Table 2. The abstract says 1427 images; 224 + 700 + 504 = 1428.",
        ),
        "table4_covid_counts": Reported(
            table=pd.DataFrame(
                {"tp": [208, 222], "fp": [15, 35], "tn": [1189, 1169], "fn": [16, 2]},
                index=pd.Index(["VGG19", "MobileNetV2"], name="model"),
            ),
            cite="Table 4",
            note="COVID-19 against the rest, from Table 3. MobileNet v2 is exactly the "
            "one-vs-rest reduction of its Table 3 matrix; for VGG19 FP, TN and FN agree but "
            "TP is 208 here and 222 in Table 3 (208 is the value consistent with 224 COVID-19 "
            "images and with Table 2).",
        ),
        "table5_metrics": Reported(
            table=pd.DataFrame(
                {
                    "accuracy_2class": [96.78],
                    "accuracy_3class": [94.72],
                    "sensitivity": [98.66],
                    "specificity": [96.46],
                },
                index=pd.Index(["MobileNetV2"], name="model"),
            ),
            cite="Table 5",
            note="Dataset_2 (224 COVID-19, 714 bacterial + viral pneumonia, 504 normal), "
            "percentages as printed. From Table 6: sensitivity 221/224 = 98.66 %, specificity "
            "1175/1218 = 96.46 % (truncated) and 3-class accuracy 1366/1442 = 94.72 % reproduce; "
            "the 2-class accuracy does not: (221 + 1175)/1442 = 96.81 %, and no whole number "
            "of correct images out of 1442 gives 96.78 % (1395 -> 96.74, 1396 -> 96.81). The "
            "abstract quotes 96.78 % as the best accuracy.",
        ),
        "table6_confusion": Reported(
            table=pd.DataFrame(
                [[221, 2, 1], [19, 472, 13], [24, 17, 673]],
                index=pd.Index(["covid", "pneumonia", "normal"], name="true"),
                columns=pd.Index(["covid", "pneumonia", "normal"], name="predicted"),
            ),
            cite="Table 6",
            note="Dataset_2, MobileNet v2. Stored transposed (rows = true class). As in "
            "Table 3 the 'pneumonia' and 'normal' totals (504, 714) are the reverse of the "
            "text's 714 pneumonia and 504 normal. FN = 3 matches the text.",
        ),
    },
    choices=(
        "Input 200 x 266 read as height 200, width 266 (landscape, like most Kermany images); "
        "each image is shrunk to fit with its aspect ratio kept and centred on black "
        "(tf.image.resize_with_pad).",
        "'Inception' is Keras' InceptionV3: reference [12] is the Inception-v4 paper, which "
        "Keras does not ship, and the cut-off 249 is the one of Keras' own InceptionV3 "
        "fine-tuning example.",
        "Layer cut-off = the first N layers of the backbone as Keras lists them "
        "(backbone.layers[:N], InputLayer included) are frozen, the rest train. The paper's "
        "numbers are kept even where, in Keras 3's lists, they fall inside a block (see "
        "CUTOFF_NOTES); for MobileNetV2, whose Keras 3 stem lost a padding layer, that freezes "
        "one 1,536-weight convolution more than the authors' Keras did.",
        "Global average pooling between the backbone and the head: the paper names no pooling; "
        "Keras' fine-tuning example that the InceptionV3 cut-off and VGG19's 1024 units echo "
        "uses it (flattening VGG19's 6 x 8 x 512 map would put 25 million weights in its "
        "first dense layer).",
        "Hidden layers use ReLU; heads with two hidden layers (MobileNetV2, Xception) get "
        "dropout 0.5 in front of each hidden layer (covidlab's Head convention). The paper "
        "mentions one dropout layer, with no rate or position.",
        "InceptionResNetV2 ('no' network): pooled features go straight to the softmax layer.",
        "Adam with Keras' default learning rate 1e-3 and categorical cross-entropy: the paper "
        "names Adam only.",
        "Pixels scaled by each backbone's own preprocess_input (what its ImageNet weights "
        "expect); no augmentation, none being described.",
        "10 folds split by patient (StratifiedGroupKFold), so no patient is in a training and a "
        "test fold; fold matrices are summed and every metric is computed from the summed "
        "matrix, as Tables 3-4 are.",
        "COVID-19 images: Cohen's frontal X-rays, distinct patients first; the Kaggle "
        "collection the paper also cites is not pinned anywhere and is not used. Pneumonia "
        "and normal images: Kermany. Dataset_2 adds viral pneumonia (400 bacterial + 314 "
        "viral) and, as in the paper, is classified by MobileNetV2 only.",
        "Percentages are computed exactly and shown with Wilson 95 % intervals; the paper "
        "truncates to two decimals.",
    ),
    ambiguities=(
        "The input size is given as 200x266 without saying which side is the height, and the "
        "added black background is said to have a 1:1.5 ratio although 266/200 = 1.33.",
        "What a 'layer' is for the cut-off is not defined. The numbers match Keras' layer "
        "lists, which count input, padding, batch-normalisation, activation, pooling and merge "
        "layers: in Keras 3, 249 (InceptionV3) and 730 (InceptionResNetV2) end exactly at a "
        "block, 18 (VGG19), 10 (MobileNetV2) and 120 (Xception) stop inside one; MobileNetV2's "
        "10 ended at a block in the Keras of 2020, whose MobileNetV2 had one layer more.",
        "The 'Neural Network' column gives hidden-layer sizes but not the pooling before them, "
        "their activation, the dropout rate or where the single dropout layer goes.",
        "Learning rate, loss, pixel scaling and augmentation are not stated; the claim that "
        "every convolution is followed by ReLU does not hold for MobileNetV2 (ReLU6, linear "
        "projections) or Xception.",
        "'Inception' and 'MobileNet v2' cite the Inception-v4 and MobileNet (v1) papers.",
        "The abstract counts 1,427 images; 224 + 700 + 504 = 1,428, the total of Tables 3-4.",
        "The COVID-19 images come from Cohen's collection and a Kaggle collection with no list "
        "of files, views or patients; where the normal images come from is not said.",
        "How the ten folds were drawn (stratified? by patient?) is not described; patients with "
        "several images may sit in training and test folds.",
        "Table 2: VGG19's 2-class accuracy repeats its specificity (Table 4 gives 97.83 %); "
        "MobileNetV2's 3-class accuracy is 92.85 % although its Table 3 matrix gives 95.45 %; "
        "92.85 % is printed for four networks.",
        "Table 2: with COVID-19 sensitivities of 12.94 %, 0.08 % and 0.01 %, InceptionV3, "
        "Xception and InceptionResNetV2 cannot reach a 3-class accuracy of 92.85 % (at most "
        "86.3 %, 84.3 % and 84.3 %); Xception's and InceptionResNetV2's 2-class accuracies "
        "do not follow from their sensitivity and specificity either.",
        "Tables 3 and 6: the 'pneumonia' and 'normal' labels are swapped (their totals are 504 "
        "and 700 / 714, the text has 700 / 714 pneumonia and 504 normal), and VGG19's "
        "COVID-19 cell is 222 where Table 4 (and 224 COVID-19 images) need 208.",
        "The text says MobileNetV2 beats VGG19 in specificity; it is better in sensitivity "
        "(99.1 % vs 92.9 %) and worse in specificity (97.1 % vs 98.8 %).",
        "Table 5's 2-class accuracy 96.78 % is not a whole number of images out of 1,442; "
        "Table 6 gives 96.81 %. The text calls Table 5 'Table 4'.",
        "Percentages are truncated, not rounded (222/224 = 99.107 % is printed 99.10).",
    ),
)


# --- The two datasets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """One of the paper's two datasets.

    ``counts``: images per class; ``composition``: what a merged class is made of;
    ``variant``: the :mod:`covidlab.recipes` variant that rebuilds it; ``models``: the
    backbones the paper classified it with; ``reported``: keys of ``SPEC.reported``.
    """

    name: str
    variant: str | None
    counts: dict[str, int]
    composition: dict[str, dict[str, int]]
    models: tuple[str, ...]
    reported: tuple[str, ...]


#: Dataset_1 (bacterial pneumonia only) and Dataset_2 (bacterial + viral), "Dataset of the study".
DATASETS = {
    "Dataset_1": Dataset(
        name="Dataset_1",
        variant=None,
        counts=dict(SPEC.recipe),
        composition={"pneumonia": {"bacterial": 700}},
        models=tuple(SPEC.models),
        reported=("table2_metrics", "table3_confusion", "table4_covid_counts"),
    ),
    "Dataset_2": Dataset(
        name="Dataset_2",
        variant="dataset2",
        counts={"covid": 224, "pneumonia": 714, "normal": 504},
        composition={"pneumonia": {"bacterial": 400, "viral": 314}},
        models=("MobileNetV2",),  # "the MobileNet v2 setup of the first experiment was retained"
        reported=("table5_metrics", "table6_confusion"),
    ),
}


def load_dataset(config: RunConfig, dataset: str = "Dataset_1") -> RecipeResult:
    """The manifest and requested / available / used table of one dataset under ``config``.

    Synthetic images for the smoke profile (``config.max_per_class`` per class; the table
    still shows the paper's counts). Otherwise the recipe from the sources; when
    ``config.max_per_class`` is set (demo) the recipe is scaled so that COVID-19 gets that
    many images and the other classes keep the paper's proportions, because the class
    imbalance is part of what this paper's numbers mean.
    """
    from covidlab import profiles

    info = DATASETS[dataset]
    if config.data == "synthetic":
        offset = list(DATASETS).index(dataset)  # different synthetic images per dataset
        config = dataclasses.replace(config, seed=config.seed + offset)
        return profiles.load_recipe(config, variant=info.variant, requested=info.counts)
    scale = 1.0
    if config.max_per_class is not None:
        scale = min(1.0, config.max_per_class / info.counts["covid"])
    return profiles.load_recipe(config, variant=info.variant, requested=info.counts, scale=scale)


def example_images(manifest: pd.DataFrame, n_per_class: int = 3, seed: int = 0) -> pd.DataFrame:
    """A few images per class to show the padding on, real ones whenever possible.

    The run's own images when they are real; for a synthetic run, Dataset_1's classes drawn
    from the unpacked sources when they can be found (:func:`covidlab.download.locate_sources`,
    no image checks, so it takes a second), else the synthetic images.
    """
    from covidlab import download, recipes

    if (manifest["source"] == "synthetic").all():
        try:
            pool = recipes.source_pool(download.locate_sources())
        except FileNotFoundError:
            pool = None
        if pool is not None:
            plan = {"covid": "covid", "bacterial": "pneumonia", "normal": "normal"}
            pool = pool[pool["true_label"].isin(plan)]
            manifest = pool.assign(label=pool["true_label"].map(plan))
    shuffled = manifest.sample(frac=1.0, random_state=seed)
    return shuffled.groupby("label", sort=False).head(n_per_class).reset_index(drop=True)


# --- The paper's metrics ----------------------------------------------------------------------


def two_accuracies(
    cm: np.ndarray, classes: tuple[str, ...] | list[str], positive: str = "covid"
) -> dict[str, float | int | tuple[float, float]]:
    """Tables 2 and 5 from a 3x3 confusion matrix (rows = true class), with Wilson intervals.

    ``accuracy_3class`` is the share of images on the diagonal; ``accuracy_2class`` counts
    only COVID-19 against the rest (a normal image called pneumonia is still right), which
    is (TP + TN) / n of :func:`covidlab.metrics.one_vs_rest` (Apostolopoulos & Mpesiana
    2020, "Metrics", Eqs. 1-3). Values are fractions; ``*_ci`` are 95 % Wilson intervals.
    """
    matrix = np.asarray(cm)
    counts = metrics.one_vs_rest(matrix, list(classes).index(positive))
    n, correct = int(matrix.sum()), int(np.trace(matrix))
    return {
        "tp": counts.tp,
        "fp": counts.fp,
        "tn": counts.tn,
        "fn": counts.fn,
        "accuracy_2class": counts.accuracy,
        "accuracy_2class_ci": metrics.wilson_interval(counts.tp + counts.tn, n),
        "accuracy_3class": metrics.accuracy(matrix),
        "accuracy_3class_ci": metrics.wilson_interval(correct, n),
        "sensitivity": counts.sensitivity,
        "sensitivity_ci": metrics.wilson_interval(counts.tp, counts.tp + counts.fn),
        "specificity": counts.specificity,
        "specificity_ci": metrics.wilson_interval(counts.tn, counts.tn + counts.fp),
    }


METRIC_COLUMNS = ("accuracy_2class", "accuracy_3class", "sensitivity", "specificity")


def always_predict(counts: dict[str, int], predicted: str) -> np.ndarray:
    """The confusion matrix of a model that answers ``predicted`` for every image.

    ``counts`` maps each class (in order) to its number of images, e.g.
    ``DATASETS["Dataset_1"].counts``. With ``predicted="pneumonia"`` it never says COVID-19:
    its COVID-19 specificity is 100 % and its 2-class accuracy the share of non-COVID images.
    """
    classes = list(counts)
    if predicted not in classes:
        raise ValueError(f"predicted={predicted!r} is not one of the classes {classes}")
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    matrix[:, classes.index(predicted)] = list(counts.values())
    return matrix


def truncate_percent(fraction: float, decimals: int = 2) -> float:
    """A fraction as a percentage cut (not rounded) to ``decimals``, as the paper prints them.

    >>> truncate_percent(222 / 224)   # Table 2 prints 99.10, rounding would give 99.11
    99.1
    """
    factor = 10**decimals
    return math.floor(round(fraction * 100 * factor, 6)) / factor


def paper_confusion(
    model: str = "MobileNetV2", dataset: str = "Dataset_1", *, corrected: bool = True
) -> pd.DataFrame:
    """The paper's 3x3 matrix (Table 3 or 6) as a DataFrame, rows = true class.

    ``corrected=True`` applies the two fixes the chapter argues for: the 'pneumonia' and
    'normal' labels swapped back (both axes, so the diagonal stays the diagonal), and, for
    VGG19, the COVID-19 cell set to Table 4's TP = 208.
    """
    key = DATASETS[dataset].reported[1]
    table = SPEC.reported[key].table
    printed = table.loc[model] if isinstance(table.index, pd.MultiIndex) else table
    matrix = printed.to_numpy().copy()
    if corrected:
        if model == "VGG19" and dataset == "Dataset_1":
            matrix[0, 0] = SPEC.reported["table4_covid_counts"].table.loc["VGG19", "tp"]
        order = [0, 2, 1]  # printed (covid, "pneumonia", "normal") are (covid, normal, pneumonia)
        matrix = matrix[np.ix_(order, order)]
    labels = list(SPEC.classes)
    return pd.DataFrame(
        matrix,
        index=pd.Index(labels, name="true"),
        columns=pd.Index(labels, name="predicted"),
    )


def check_reported() -> pd.DataFrame:
    """Re-do the paper's arithmetic: Tables 2 and 5 from the matrices of Tables 3, 4 and 6.

    One row per (dataset, model, metric): the printed percentage, the value the corrected
    matrix gives (:func:`paper_confusion`), that value truncated as the paper does, and
    whether the two agree.
    """
    rows = []
    for dataset, model, key in (
        ("Dataset_1", "VGG19", "table2_metrics"),
        ("Dataset_1", "MobileNetV2", "table2_metrics"),
        ("Dataset_2", "MobileNetV2", "table5_metrics"),
    ):
        recomputed = two_accuracies(paper_confusion(model, dataset).to_numpy(), SPEC.classes)
        for metric in METRIC_COLUMNS:
            printed = float(SPEC.reported[key].table.loc[model, metric])
            truncated = truncate_percent(recomputed[metric])
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": metric,
                    "printed": printed,
                    "from matrix": round(100 * recomputed[metric], 3),
                    "truncated": truncated,
                    "agrees": bool(np.isclose(printed, truncated)),
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "model", "metric"])


def implied_by_sensitivity_specificity(counts: dict[str, int] | None = None) -> pd.DataFrame:
    """What Table 2's sensitivity and specificity allow for its two accuracies.

    For every network of Table 2: the 2-class accuracy its sensitivity and specificity imply
    on Dataset_1 (224 COVID-19, 1,204 other images) and the highest 3-class accuracy its
    sensitivity allows (every missed COVID-19 image is a 3-class error too).
    """
    counts = counts or DATASETS["Dataset_1"].counts
    n_covid = counts["covid"]
    n_total = sum(counts.values())
    table = SPEC.reported["table2_metrics"].table
    sensitivity, specificity = table["sensitivity"] / 100, table["specificity"] / 100
    implied_2class = (sensitivity * n_covid + specificity * (n_total - n_covid)) / n_total
    max_3class = (n_total - (1 - sensitivity) * n_covid) / n_total
    return pd.DataFrame(
        {
            "printed 2-class": table["accuracy_2class"],
            "implied 2-class": (100 * implied_2class).round(2),
            "printed 3-class": table["accuracy_3class"],
            "highest possible 3-class": (100 * max_3class).round(2),
        }
    )


def paper_intervals(dataset: str = "Dataset_1") -> pd.DataFrame:
    """Wilson 95 % intervals around the paper's own percentages (Tables 2 and 5).

    The number of images behind each percentage follows from the dataset (sensitivity: the
    COVID-19 images; specificity: the others; accuracies: all). Where the paper gives no
    counts, the successes are the percentage times that number, rounded.
    """
    info = DATASETS[dataset]
    n_covid, n_total = info.counts["covid"], sum(info.counts.values())
    denominators = {
        "accuracy_2class": n_total,
        "accuracy_3class": n_total,
        "sensitivity": n_covid,
        "specificity": n_total - n_covid,
    }
    table = SPEC.reported[info.reported[0]].table
    rows = []
    for model, values in table.iterrows():
        for metric, n in denominators.items():
            low, high = metrics.wilson_interval(round(values[metric] / 100 * n), n)
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": metric,
                    "paper": values[metric],
                    "paper low": round(100 * low, 1),
                    "paper high": round(100 * high, 1),
                    "n": n,
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "model", "metric"])


def comparison_table(run: dict[tuple[str, str], np.ndarray]) -> pd.DataFrame:
    """The paper's Tables 2 and 5 beside this run's numbers, with Wilson 95 % intervals.

    ``run`` maps (dataset, model) to this run's summed 3x3 confusion matrix (rows = true
    class, classes in ``SPEC.classes`` order). Percentages; ``n (this run)`` is the number of
    images behind this run's value. The paper's intervals come from :func:`paper_intervals`.
    One block of rows per entry of ``run``, nothing else: a network the paper reports but this
    run did not train is not listed (:func:`paper_intervals` has the paper's rows), and one the
    paper did not report on that dataset gets empty paper columns.
    """
    paper = pd.concat([paper_intervals(name) for name in DATASETS])
    rows = []
    for (dataset, model), cm in run.items():
        ours = two_accuracies(cm, SPEC.classes)
        n_total, n_covid = int(np.sum(cm)), int(ours["tp"] + ours["fn"])
        denominators = {
            "accuracy_2class": n_total,
            "accuracy_3class": n_total,
            "sensitivity": n_covid,
            "specificity": n_total - n_covid,
        }
        for metric in METRIC_COLUMNS:
            key = (dataset, model, metric)
            reported = paper.loc[key] if key in paper.index else None
            low, high = ours[f"{metric}_ci"]
            rows.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "metric": metric,
                    "paper": "" if reported is None else reported["paper"],
                    "paper 95% CI": ""
                    if reported is None
                    else _interval(reported["paper low"], reported["paper high"]),
                    "this run": round(100 * ours[metric], 1),
                    "this run 95% CI": _interval(100 * low, 100 * high),
                    "n (this run)": denominators[metric],
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "model", "metric"])


def _interval(low: float, high: float) -> str:
    return f"{low:.1f}-{high:.1f}"


# --- Where the cut-offs land in Keras' layer lists --------------------------------------------

#: What each cut-off of Table 1 freezes in Keras 3's layer list (checked by the tests).
CUTOFF_NOTES = {
    "VGG19": "inside block 5: block5_conv1 frozen, block5_conv2-4 train (a block boundary "
    "would be 17, after block4_pool)",
    "MobileNetV2": "inside bottleneck block 1: its expansion convolution is frozen, its "
    "batch normalisation trains. In the Keras of 2020 (keras-applications 1.0.8, tf.keras "
    "2.0-2.3) the stem began with a ZeroPadding2D layer, Conv1_pad, and the first 10 layers "
    "ended exactly with the first bottleneck block (9 in Keras 3)",
    "InceptionV3": "at a block boundary: everything up to mixed8 frozen, the top two "
    "inception blocks (mixed9, mixed10) train, as in Keras' fine-tuning example",
    "Xception": "inside exit-flow block 13: its first separable convolution frozen, the "
    "second and block 14 train (the middle flow ends at 116, after add_10)",
    "InceptionResNetV2": "at a block boundary: blocks up to block8_7 frozen, block8_8 to "
    "block8_10 and conv_7b train",
}


def cutoff_summary(model: keras.Model, model_name: str) -> dict[str, object]:
    """Where Table 1's cut-off for ``model_name`` lands in the Keras backbone of ``model``.

    Returns the backbone's layer count, the cut-off, the last frozen and first trainable
    layer (name and type), how many frozen layers hold weights (convolutions, dense and
    batch-normalisation layers) and how many hold none (input, padding, activation, pooling,
    merge), the share of backbone parameters frozen, and :data:`CUTOFF_NOTES`.
    """
    from covidlab.models import frozen_layers_table

    cutoff = SPEC.models[model_name].layer_cutoff
    table = frozen_layers_table(model, cutoff)
    frozen = table[table["frozen"]]
    last, first = table.iloc[cutoff - 1], table.iloc[cutoff]
    return {
        "Keras layers": len(table),
        "cut-off": cutoff,
        "last frozen": f"{last['layer']} ({last['type']})",
        "first trainable": f"{first['layer']} ({first['type']})",
        "frozen with weights": int((frozen["params"] > 0).sum()),
        "frozen without weights": int((frozen["params"] == 0).sum()),
        "backbone params frozen": f"{frozen['params'].sum() / table['params'].sum():.1%}",
        "where it lands": CUTOFF_NOTES[model_name],
    }


def table1() -> pd.DataFrame:
    """Table 1 as this module builds it: cut-off and head of each backbone."""
    rows = {}
    for name, spec in SPEC.models.items():
        head = spec.head
        rows[name] = {
            "layer cut-off": spec.layer_cutoff,
            "hidden layers": " + ".join(map(str, head.hidden_units)) or "none",
            "pooling": head.pooling,
            "dropout": head.dropout if head.hidden_units and head.dropout else "none",
        }
    table = pd.DataFrame(rows).T
    table.index.name = "backbone"
    return table
