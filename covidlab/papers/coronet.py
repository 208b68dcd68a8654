"""CoroNet: Khan, Shah, Bhat (2020), Xception + Flatten + Dropout + Dense(256), 4/3/2 classes.

The paper trains one 4-class model (COVID-19, normal, bacterial and viral pneumonia) with
4-fold cross-validation and derives a 3-class model (the two pneumonias merged) and a binary
model (COVID-19 against the rest) from it by replacing the output layer and training on.
Reported numbers are stored as printed (percent) and cited to their table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab.heads import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

if TYPE_CHECKING:
    import keras

# The three tasks of Table V and the label merges that turn the 4-class data into each.
CLASS_SETS: dict[str, tuple[str, ...]] = {
    "4-class": ("covid", "normal", "bacterial", "viral"),
    "3-class": ("covid", "normal", "pneumonia"),
    "binary": ("covid", "other"),
}
LABEL_MERGES: dict[str, dict[str, str]] = {
    "4-class": {},
    "3-class": {"bacterial": "pneumonia", "viral": "pneumonia"},
    "binary": {"normal": "other", "bacterial": "other", "viral": "other"},
}

# The paper gives no epoch count for the 3-class and binary fine-tuning; our choice (a quarter
# of the 80 epochs of the 4-class model), see ``choices`` and :func:`fine_tune_epochs`.
FINE_TUNE_EPOCHS = 20

# The size the text states; Table II's 5x5x2048 Xception output needs 135-166 px instead.
TEXT_INPUT_SIZE = (224, 224)

_METRICS = ["precision", "recall", "specificity", "f1", "accuracy"]

# Table II: layer, type, output shape, parameters (Khan et al. 2020).
_TABLE_II = pd.DataFrame(
    [
        ("xception", "Model", "5 x 5 x 2048", 20_861_480),
        ("flatten", "Flatten", "51200", 0),
        ("dropout", "Dropout", "51200", 0),
        ("dense", "Dense", "256", 13_107_456),
        ("dense_1", "Dense", "4", 1_028),
    ],
    columns=["layer", "type", "output shape", "params"],
)
_TABLE_II_TOTALS = pd.Series(
    {"total": 33_969_964, "trainable": 33_915_436, "non_trainable": 54_528}, name="params"
)

# Table III: macro-averaged metrics of the 4-class model on each fold, in percent.
_TABLE_III = pd.DataFrame(
    [
        (88.0, 87.7, 95.7, 87.6, 87.3),
        (90.8, 90.7, 96.7, 90.7, 90.0),
        (88.9, 89.0, 96.2, 88.9, 89.1),
        (92.5, 92.2, 97.3, 92.1, 92.26),
        (90.0, 89.92, 96.4, 89.8, 89.6),
    ],
    columns=_METRICS,
    index=pd.Index(["fold 1", "fold 2", "fold 3", "fold 4", "average"], name="fold"),
)

# Table IV: per-class metrics of the 4-class model averaged over the folds, in percent.
_TABLE_IV = pd.DataFrame(
    [
        (93.17, 98.25, 97.9, 95.61),
        (95.25, 93.5, 98.1, 94.3),
        (86.85, 85.9, 95.0, 86.3),
        (84.1, 82.1, 94.8, 83.1),
    ],
    columns=_METRICS[:-1],
    index=pd.Index(CLASS_SETS["4-class"], name="class"),
)

# Table V: the three tasks, in percent.
_TABLE_V = pd.DataFrame(
    [
        (90.0, 89.92, 96.4, 89.8, 89.6),
        (95.0, 96.9, 97.5, 95.6, 95.0),
        (98.3, 99.3, 98.6, 98.5, 99.0),
    ],
    columns=_METRICS,
    index=pd.Index(list(CLASS_SETS), name="task"),
)

# Table V rests on one test set, described in the text: 29 COVID-19, 72 normal and 120 pneumonia
# images (221). The binary model is taken to be tested on the same images: 29 COVID-19 and 192
# others (the paper does not say otherwise).
TASK_TEST_SET = {"covid": 29, "normal": 72, "pneumonia": 120}

# How many decimals Table V prints for the binary row (its accuracy is printed as "99").
_BINARY_DECIMALS = {"precision": 1, "recall": 1, "specificity": 1, "f1": 1, "accuracy": 0}

# Table VI: CoroNet fine-tuned and tested on Dataset-2 of Ozturk et al. (2020): about 157
# COVID-19 images (Cohen's collection) and 500 normal and 500 pneumonia images from the NIH
# ChestX-ray8 database (Wang et al. 2017). Percent; the third class is printed as
# "Pneumonia Bacterial" although Dataset-2's class is pneumonia.
_TABLE_VI = pd.DataFrame(
    [
        (97.0, 89.0, 99.6, 93.0),
        (92.0, 85.0, 97.7, 89.0),
        (87.0, 95.0, 88.7, 91.0),
        (92.0, 90.0, 95.3, 91.0),
    ],
    columns=_METRICS[:-1],
    index=pd.Index(["covid", "normal", "pneumonia", "average"], name="class"),
)
DATASET_2_ACCURACY = 90.21  # Table VI, overall accuracy, percent


SPEC = PaperSpec(
    key="coronet",
    short_name="CoroNet",
    citation="khan2020coronet",
    title="CoroNet: A deep neural network for detection and diagnosis of COVID-19 "
    "from chest x-ray images",
    task="COVID-19 / normal / bacterial / viral pneumonia",
    classes=CLASS_SETS["4-class"],
    # Table II's counts, not the text's 224x224: only inputs of 135-166 px give Xception a
    # 5x5x2048 output (and the 51,200 inputs of the 256-unit layer). See ``ambiguities``.
    input_size=(150, 150),
    resize="stretch",
    optimizer="adam",
    learning_rate=1e-4,
    batch_size=10,
    epochs=80,
    protocol="kfold",
    n_splits=4,
    models={
        "CoroNet": ModelSpec(
            "Xception",
            # Flatten -> Dropout(0.5) -> Dense(256, relu) -> softmax, Table II's order.
            Head(pooling="flatten", hidden_units=(256,), dropout=0.5),
            base_trainable=True,
        )
    },
    recipe={"covid": 284, "normal": 310, "bacterial": 330, "viral": 327},
    recipe_sources={
        "covid": ("cohen",),
        "normal": ("kermany",),
        "bacterial": ("kermany",),
        "viral": ("kermany",),
    },
    reported={
        "layers": Reported(_TABLE_II, "Table II", "output shape without the batch axis"),
        "parameters": Reported(_TABLE_II_TOTALS.to_frame(), "Table II", "totals under the table"),
        "per_fold": Reported(_TABLE_III, "Table III", "4-class, macro averages, percent"),
        "per_class": Reported(_TABLE_IV, "Table IV", "4-class, averaged over folds, percent"),
        "tasks": Reported(_TABLE_V, "Table V", "percent; binary row is COVID-19 as positive"),
        "dataset_2": Reported(
            _TABLE_VI,
            "Table VI",
            "percent; Dataset-2 of Ozturk et al. (2020), 3 classes, overall accuracy "
            f"{DATASET_2_ACCURACY} %; needs NIH ChestX-ray8 images, which the course's sources "
            "do not include",
        ),
    },
    choices=(
        "Input 150x150: the size whose Xception output (5x5x2048) reproduces every count in "
        "Table II; the authors' public notebook uses 150x150 too.",
        "Dropout rate 0.5 and ReLU on the 256-unit layer: the paper gives neither; both are in "
        "the authors' public notebook.",
        "Dropout placed between Flatten and Dense(256), the order of Table II's rows.",
        "Pixels go through Xception's own preprocess_input (scale to [-1, 1]), the scaling the "
        "ImageNet weights expect; the paper only says the images were resized.",
        "No augmentation: the paper describes none (the authors' notebook has heavy "
        "augmentation, which the paper never mentions).",
        "Folds are split by patient (StratifiedGroupKFold) so no patient is in training and "
        "test; the paper splits images at random.",
        "3-class and binary models: the trained 4-class model of each fold with a new output "
        "layer, trained on the same fold's training images with merged labels and tested on "
        "its test images, all layers trainable, Adam 1e-4, batch 10, for a quarter of the "
        "4-class epochs: 20 of 80 in the paper profile (the paper gives no epoch count).",
        "Table V is set beside macro averages for the 4- and 3-class models and COVID-19 as the "
        "positive class for the binary model, the conventions the printed numbers fit.",
    ),
    ambiguities=(
        "Input size: the text resizes to 224x224, but Table II's 5x5x2048 Xception output, "
        "51,200 flattened features and 33,969,964 parameters need an input of 135-166 px; at "
        "224x224 the output is 7x7x2048 and the model has 46,552,876 parameters.",
        "The text says all 33,969,964 parameters are trainable and 54,528 are not; Table II "
        "says 33,915,436 trainable (the 54,528 are batch-normalisation statistics).",
        "Dropout rate and the activation of the 256-unit layer are not stated.",
        "Data counts: Table I sums to 1,251 images, the text speaks of 1,300; the counts given "
        "for the Kaggle set (1,203 normal, 660 bacterial, 931 viral) are not those of its "
        "public release; about 290 COVID-19 images were available and 284 used, with no list.",
        "Cohen's collection holds several images of many patients and lateral views; the paper "
        "neither filters views nor keeps a patient's images in one fold.",
        "The folds are drawn at random by image; with 1,251 images each test fold has 312 or "
        "313 images, yet Table III's 87.3 % and 92.26 % are not k/312 or k/313 for any k.",
        "Class imbalance is handled by under-sampling the Kaggle classes only; COVID-19 stays "
        "the smallest class (284 of 1,251).",
        "The 3-class model was 'fine-tuned' from the 4-class one without saying which layers "
        "trained, for how many epochs, or on which images.",
        "The 3-class test set (29 COVID-19, 72 normal, 120 pneumonia) is not a fold of Table "
        "I's data (a fold would hold about 71 COVID-19 images), so Table V's 3-class and "
        "binary rows come from a single split whose origin is not described, not from the "
        "4-fold cross-validation of the 4-class row.",
        "The binary model's classes are listed as COVID-19, normal and pneumonia; we read it "
        "as COVID-19 against everything else.",
        "The overall 4-class accuracy is given as 89.6 % and as 89.5 %, the 3-class accuracy "
        "as 95 % and 94.59 % (not k/221 for any k, on a 221-image test set); the recall "
        "formula has TP + FN in the numerator (a typo).",
        "Table III's precision, recall and F1 are averages over classes, the binary row of "
        "Table V is not (its recall and specificity differ, which class-averaging a 2x2 "
        "matrix cannot give).",
        "Table V's binary row contradicts itself: its F1 of 98.5 % is not the harmonic mean "
        "2PR/(P + R) = 98.80 % of its own precision and recall; a recall of 99.3 % is not k/29 "
        "for any k (28/29 = 96.55 %, 29/29 = 100 %), a specificity of 98.6 % not k/192, and "
        "with at most 29 COVID-19 images a precision of 98.3 % cannot occur (TP/(TP + FP) is "
        "100 % or at most 29/30 = 96.7 %). Only its accuracy (219/221 = 99.1 %) fits the "
        "221-image test set (see binary_row_check).",
        "A second experiment (Table VI, 90.21 %) fine-tunes CoroNet on Dataset-2 of Ozturk et "
        "al. (2020), whose normal and pneumonia images come from the NIH ChestX-ray8 database; "
        "how it was split, and for how long it was fine-tuned, is not said.",
    ),
)


def fine_tune_epochs(epochs: int) -> int:
    """Fine-tuning epochs for a run whose 4-class model trains ``epochs`` epochs.

    Keeps our paper-profile ratio (:data:`FINE_TUNE_EPOCHS` = 20 of 80) at any scale, with at
    least one epoch: 80 -> 20, 4 -> 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    return max(1, round(epochs * FINE_TUNE_EPOCHS / SPEC.epochs))


def _closest(percent: float, fractions) -> tuple[int, int]:
    """The (k, n) of ``fractions`` whose 100 k / n is nearest ``percent``."""
    return min(fractions, key=lambda kn: abs(100 * kn[0] / kn[1] - percent))


def binary_row_check(test_set: Mapping[str, int] = TASK_TEST_SET) -> pd.DataFrame:
    """Table V's binary row against what its own numbers and a 2x2 matrix of its test set allow.

    Khan et al. (2020) test the binary model on 29 COVID-19 and 192 other images (the 3-class
    test set, :data:`TASK_TEST_SET`). For each printed value (percent) the table gives the
    check, the nearest value the check can produce and whether that value rounds to the
    printed one: F1 against 2PR/(P + R) of the printed precision and recall, recall against
    k/29, specificity against k/192, precision against TP/(TP + FP) with TP <= 29, accuracy
    against k/221.
    """
    row = _TABLE_V.loc["binary"]
    positives = int(test_set["covid"])
    negatives = int(sum(test_set.values())) - positives
    total = positives + negatives
    p, r = row["precision"], row["recall"]
    checks = {
        "f1": ("2PR/(P + R) of the printed precision and recall", 2 * p * r / (p + r), ""),
    }
    candidates = {
        "recall": (f"k/{positives}", [(k, positives) for k in range(positives + 1)]),
        "specificity": (f"k/{negatives}", [(k, negatives) for k in range(negatives + 1)]),
        "precision": (
            f"TP/(TP + FP), TP <= {positives}",
            [(tp, tp + fp) for tp in range(1, positives + 1) for fp in range(negatives + 1)],
        ),
        "accuracy": (f"k/{total}", [(k, total) for k in range(total + 1)]),
    }
    for metric, (how, fractions) in candidates.items():
        k, n = _closest(row[metric], fractions)
        checks[metric] = (how, 100 * k / n, f"{k}/{n}")
    rows = []
    for metric in _METRICS:
        how, value, fraction = checks[metric]
        decimals = _BINARY_DECIMALS[metric]
        rows.append(
            {
                "metric": metric,
                "printed (%)": row[metric],
                "check": how,
                "nearest possible (%)": round(value, 2),
                "as a fraction": fraction,
                "fits": "yes" if round(value, decimals) == round(row[metric], decimals) else "no",
            }
        )
    return pd.DataFrame(rows).set_index("metric")


def task_manifest(manifest: pd.DataFrame, task: str) -> pd.DataFrame:
    """The 4-class manifest relabelled for one of the tasks in :data:`CLASS_SETS`.

    Khan et al. (2020), Table V: "3-class" merges bacterial and viral into "pneumonia",
    "binary" puts everything that is not COVID-19 into "other".
    """
    from covidlab.data import merge_labels

    if task not in CLASS_SETS:
        raise KeyError(f"unknown CoroNet task {task!r}; choose from {list(CLASS_SETS)}")
    unknown = set(manifest["label"]) - set(CLASS_SETS["4-class"])
    if unknown:
        raise ValueError(
            f"labels {sorted(unknown)} are not CoroNet's 4 classes {CLASS_SETS['4-class']}"
        )
    return merge_labels(manifest, LABEL_MERGES[task]) if LABEL_MERGES[task] else manifest.copy()


def task_metrics(cm: np.ndarray, class_names: Sequence[str]) -> dict[str, float]:
    """Precision, recall, specificity, F1 and accuracy in the paper's convention (fractions).

    Macro averages over classes for multi-class matrices (Table III, Table V rows 1-2);
    COVID-19 as the positive class for the binary matrix (Table V row 3).
    """
    from covidlab import metrics

    names = list(class_names)
    if tuple(names) == CLASS_SETS["binary"]:
        counts = metrics.one_vs_rest(cm, names.index("covid"))
        return {
            "precision": float(counts.precision),
            "recall": float(counts.sensitivity),
            "specificity": float(counts.specificity),
            "f1": float(counts.f1),
            "accuracy": float(counts.accuracy),
        }
    table = metrics.classification_table(cm, names).loc["macro average"]
    return {
        "precision": float(table["precision"]),
        "recall": float(table["sensitivity"]),
        "specificity": float(table["specificity"]),
        "f1": float(table["f1"]),
        "accuracy": metrics.accuracy(cm),
    }


def per_fold_table(confusions: Sequence[np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """Table III's layout for this run: one row of :func:`task_metrics` per fold, plus average."""
    rows = {f"fold {i}": task_metrics(cm, class_names) for i, cm in enumerate(confusions, 1)}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.loc["average"] = table.mean()
    table.index.name = "fold"
    return table


def per_class_table(confusions: Sequence[np.ndarray], class_names: Sequence[str]) -> pd.DataFrame:
    """Table IV's layout for this run: each class's metrics averaged over the folds."""
    from covidlab import metrics

    tables = [
        metrics.classification_table(cm, class_names).drop(index="macro average")
        for cm in confusions
    ]
    mean = pd.concat(tables).groupby(level=0, sort=False).mean()
    return mean.rename(columns={"sensitivity": "recall"})[_METRICS[:-1]]


def summary_table(confusions: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Per task of :data:`CLASS_SETS`: test images, balanced accuracy (the chapter's headline
    measure), accuracy and the COVID-19 sensitivity and specificity (COVID-19 against the other
    classes), each with its 95 % Wilson interval. ``confusions`` maps a task to its matrix."""
    from covidlab import metrics

    return metrics.summary_table(confusions, {name: CLASS_SETS[name] for name in confusions})


def table_ii_comparison(model: keras.Model) -> pd.DataFrame:
    """Each row of Table II beside the matching layer of ``model``, then the three totals.

    Layers are matched in order from the backbone on (the input and the pixel preprocessing
    come before it and have no row in the paper). ``match`` is "✓" when the output shape and
    the parameter count both agree.
    """
    from covidlab import models

    backbone = models.find_backbone(model)
    layers = list(model.layers)
    ours = layers[layers.index(backbone) :] if backbone is not None else layers
    rows = []
    for i, paper in _TABLE_II.iterrows():
        layer = ours[i] if i < len(ours) else None
        shape = " x ".join(str(d) for d in layer.output.shape[1:]) if layer else "-"
        params = layer.count_params() if layer else 0
        same = shape == paper["output shape"] and params == paper["params"]
        rows.append(
            (
                paper["layer"],
                layer.name if layer else "-",
                paper["output shape"],
                shape,
                int(paper["params"]),
                params,
                same,
            )
        )
    counts = models.parameter_counts(model)
    for key, value in _TABLE_II_TOTALS.items():
        label = f"{key.replace('_', '-')} parameters"
        rows.append((label, "", "", "", int(value), counts[key], counts[key] == value))
    table = pd.DataFrame(
        rows,
        columns=[
            "paper layer",
            "our layer",
            "paper output shape",
            "our output shape",
            "paper params",
            "our params",
            "match",
        ],
    )
    table["match"] = table["match"].map({True: "✓", False: "✗"})
    return table


def table_v_comparison(confusions: Mapping[str, np.ndarray], run: str = "") -> pd.DataFrame:
    """Table V beside this run, in percent: the paper's row, ours, and our accuracy's 95 % CI.

    ``confusions`` maps a task of :data:`CLASS_SETS` to this run's confusion matrix (e.g. the
    folds summed). The interval is Wilson's (1927) on the number of correct test images;
    ``paper in CI`` says whether the paper's accuracy lies inside it.
    """
    from covidlab import metrics

    rows = []
    for task, cm in confusions.items():
        ours = task_metrics(cm, CLASS_SETS[task])
        low, high = metrics.wilson_interval(int(np.trace(cm)), int(np.sum(cm)))
        paper = _TABLE_V.loc[task]
        row = {"task": task, "test images": int(np.sum(cm))}
        for metric in _METRICS:
            row[f"{metric} (paper)"] = paper[metric]
            row[f"{metric} (ours)"] = round(100 * ours[metric], 1)
        row["accuracy 95% CI (ours)"] = f"{100 * low:.1f}-{100 * high:.1f}"
        row["paper in CI"] = "yes" if low <= paper["accuracy"] / 100 <= high else "no"
        row["run"] = run
        rows.append(row)
    return pd.DataFrame(rows).set_index("task")
