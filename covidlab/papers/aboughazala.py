"""Aboughazala & Mohammed (2020): ResNet-50, COVID-19 vs normal, 10-fold cross-validation.

The paper fine-tunes an ImageNet ResNet-50 whose 1000-class output is replaced by a new
2-class fully connected layer and softmax, on 147 images at 224x224 for 30 epochs, and reports
the metrics of each of ten folds and of their summed ("overlapped") confusion matrix in its
Table 1. Optimizer, learning rate and batch size are not given: ``choices`` says what this
course uses and why; ``ambiguities`` lists what the paper leaves open or contradicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab.heads import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

if TYPE_CHECKING:
    from covidlab.profiles import RunConfig
    from covidlab.recipes import RecipeResult

CLASSES = ("normal", "covid")

#: Table 1 treats COVID-19 as the positive class (its sensitivity is the COVID-19 sensitivity).
POSITIVE = "covid"

#: Table 1's columns, in the paper's order.
TABLE1_COLUMNS = ("sensitivity", "specificity", "precision", "f1", "accuracy")

#: Images in a test fold of the paper, which prints no fold sizes: 147 split ten ways as evenly
#: as possible gives folds of 14 or 15 images; fold 6 held 15 (``table1_derived_confusion``).
PAPER_FOLD_SIZES = (14, 15)


def table1(
    fold_confusions: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    *,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """This run's Table 1: one row per fold and an "overlapped" row (the folds summed).

    Sensitivity, specificity, precision, F1 and accuracy take COVID-19 as the positive class,
    as Aboughazala & Mohammed (2020, Table 1) do. Two columns the paper lacks say how much each
    row can tell: ``correct / tested`` and the Wilson interval of the accuracy.
    """
    from covidlab import metrics

    positive = list(classes).index(POSITIVE)
    matrices = [np.asarray(cm) for cm in fold_confusions]
    labels = [str(fold) for fold in range(1, len(matrices) + 1)] + ["overlapped"]
    rows = []
    for cm in [*matrices, metrics.summed_confusion(matrices)]:
        counts = metrics.one_vs_rest(cm, positive)
        correct, tested = int(np.trace(cm)), int(cm.sum())
        row = {name: float(getattr(counts, name)) for name in TABLE1_COLUMNS}
        row["correct / tested"] = f"{correct} / {tested}"
        row[_ci_column(confidence)] = _interval_text(
            metrics.wilson_interval(correct, tested, confidence)
        )
        rows.append(row)
    return pd.DataFrame(rows, index=pd.Index(labels, name="fold"))


def paper_table1(*, confidence: float = 0.95) -> pd.DataFrame:
    """The paper's Table 1 with the same two extra columns as :func:`table1`.

    Fold sizes are not printed. Fold 6 and the overlapped row come from the matrices derived
    from Table 1 (``table1_derived_confusion``); the nine perfect folds are taken to hold 14 or
    15 images (an even split), so their interval is given for both sizes.
    """
    from covidlab import metrics

    table = SPEC.reported["table1_folds"].table.copy()
    derived = SPEC.reported["table1_derived_confusion"].table
    ci = _ci_column(confidence)
    perfect = " or ".join(
        _interval_text(metrics.wilson_interval(n, n, confidence)) for n in PAPER_FOLD_SIZES
    )
    table["correct / tested"] = "all of " + " or ".join(map(str, PAPER_FOLD_SIZES))
    table[ci] = perfect
    for fold in derived.index.unique("fold"):
        cm = derived.loc[fold].to_numpy()
        correct, tested = int(np.trace(cm)), int(cm.sum())
        table.loc[fold, "correct / tested"] = f"{correct} / {tested}"
        table.loc[fold, ci] = _interval_text(metrics.wilson_interval(correct, tested, confidence))
    return table


def table1_comparison(
    fold_confusions: Sequence[np.ndarray],
    classes: Sequence[str] = CLASSES,
    *,
    run: str,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """The paper's Table 1 above this run's, same columns; ``run`` labels this run's rows."""
    reported = SPEC.reported["table1_folds"]
    return pd.concat(
        {
            f"paper ({reported.cite})": paper_table1(confidence=confidence),
            f"this run ({run})": table1(fold_confusions, classes, confidence=confidence),
        },
        names=["source"],
    )


def fold_confusion_table(
    fold_confusions: Sequence[np.ndarray], classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """Every fold's confusion matrix and their sum, stacked in one table (the paper's Figs. 4-7).

    Same layout as ``SPEC.reported["table1_derived_confusion"]``: rows (fold, true class),
    columns the predicted class.
    """
    from covidlab import metrics

    matrices = [np.asarray(cm) for cm in fold_confusions]
    labels = [str(fold) for fold in range(1, len(matrices) + 1)] + ["overlapped"]
    stacked = np.vstack([*matrices, metrics.summed_confusion(matrices)])
    return pd.DataFrame(
        stacked,
        index=pd.MultiIndex.from_product([labels, list(classes)], names=["fold", "true"]),
        columns=pd.Index(list(classes), name="predicted"),
    )


def summary_table(
    confusions: Mapping[str, np.ndarray], classes: Sequence[str] = CLASSES
) -> pd.DataFrame:
    """Per named matrix (e.g. the overlapped one): test images, balanced accuracy, accuracy and
    the COVID-19 sensitivity and specificity, each with its 95 % Wilson interval."""
    from covidlab import metrics

    return metrics.summary_table(confusions, classes)


def accuracy_intervals(
    counts: Mapping[str, tuple[int, int]], *, confidence: float = 0.95
) -> pd.DataFrame:
    """Accuracy and Wilson interval for named (correct, tested) pairs, one row each.

    e.g. ``{"a perfect fold of 15": (15, 15), "overlapped": (146, 147)}``; the ``width``
    column is how far apart the interval's ends are.
    """
    from covidlab import metrics

    rows = {}
    for name, (correct, tested) in counts.items():
        low, high = metrics.wilson_interval(correct, tested, confidence)
        rows[name] = {
            "correct": correct,
            "tested": tested,
            "accuracy": correct / tested if tested else 0.0,
            f"{confidence:.0%} CI low": low,
            f"{confidence:.0%} CI high": high,
            "width": high - low,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _ci_column(confidence: float) -> str:
    return f"accuracy {confidence:.0%} CI"


def _interval_text(interval: tuple[float, float]) -> str:
    return f"{interval[0]:.3f}-{interval[1]:.3f}"


SPEC = PaperSpec(
    key="aboughazala",
    short_name="Aboughazala",
    citation="aboughazala2020resnet",
    title="Automated detection of COVID-19 from chest X-ray images using ResNet-50",
    task="COVID-19 vs normal",
    classes=CLASSES,
    input_size=(224, 224),
    resize="stretch",
    # Optimizer, learning rate and batch size are not in the paper: see ``choices``.
    optimizer="adam",
    learning_rate=1e-4,
    batch_size=10,
    epochs=30,
    protocol="kfold",
    n_splits=10,
    # ResNet-50's own global average pooling, then one new Dense(2, softmax); every layer trains.
    models={
        "ResNet50": ModelSpec(backbone="ResNet50", head=Head(pooling="avg"), base_trainable=True)
    },
    recipe={"covid": 74, "normal": 73},
    recipe_sources={"covid": ("cohen",), "normal": ("kermany",)},
    reported={
        "table1_folds": Reported(
            table=pd.DataFrame(
                {
                    "sensitivity": [1.0] * 11,
                    "specificity": [1.0] * 5 + [0.875] + [1.0] * 4 + [0.9865],
                    "precision": [1.0] * 5 + [0.875] + [1.0] * 4 + [0.9865],
                    "f1": [1.0] * 5 + [0.9333] + [1.0] * 4 + [0.9932],
                    "accuracy": [1.0] * 5 + [0.9333] + [1.0] * 4 + [0.9932],
                },
                index=pd.Index([str(fold) for fold in range(1, 11)] + ["overlapped"], name="fold"),
            ),
            cite="Table 1",
            note="Per-fold metrics of the 10-fold CV; 'overlapped' is the sum of the ten fold "
            "matrices. The paper prints the matrices only as figures (Figs. 4-7); "
            "table1_derived_confusion gives the ones that reproduce this table. The text's "
            "'average accuracy 99.33 %' is the mean of the fold accuracies "
            "((9 + 0.9333)/10); the overlapped accuracy is 146/147 = 99.32 %. The text also "
            "cites a 'Table 3' (98.08 %) that the paper does not contain.",
        ),
        "table1_derived_confusion": Reported(
            table=pd.DataFrame(
                [[7, 1], [0, 7], [73, 1], [0, 73]],
                index=pd.MultiIndex.from_product(
                    [["6", "overlapped"], ["normal", "covid"]], names=["fold", "true"]
                ),
                columns=pd.Index(["normal", "covid"], name="predicted"),
            ),
            cite="Table 1 (matrices derived by us)",
            note="Not printed in the paper: the confusion matrices that reproduce Table 1, "
            "COVID-19 taken as the positive class. Fold 6: sensitivity 1 means FN = 0; "
            "specificity 0.875 = 7/8 and precision 0.875 = 7/8 give TN = 7, FP = 1, TP = 7, so "
            "15 images (7 COVID-19, 8 normal) with accuracy = F1 = 14/15 = 0.9333; no other "
            "matrix of at most 20 images fits. The other nine folds are perfect, so the "
            "overlapped matrix has the single error of fold 6: TP = 73, FN = 0, TN = 73, "
            "FP = 1 (specificity = precision = 73/74, accuracy = F1 = 146/147), the only "
            "147-image matrix matching all five values. It holds 73 COVID-19 and 74 normal "
            "images, the reverse of the text's 73 normal / 74 COVID-19. Reading normal as the "
            "positive class would fit the text's counts, but then one COVID-19 image is "
            "missed, contradicting the stated COVID-19 sensitivity of 100 %: the paper is "
            "inconsistent either way.",
        ),
    },
    choices=(
        "Head: ResNet-50 without its ImageNet top, its own global average pooling kept, and one "
        "new fully connected layer of 2 units with softmax. The paper replaces the last three "
        "layers by a new fully connected layer and softmax; in MATLAB's ResNet-50 (which the "
        "wording and the 'training progress' figure point to) those three layers are the "
        "1000-unit fully connected layer, its softmax and the classification output, so the "
        "pooling stays. No hidden layer, no dropout: none is mentioned.",
        "Fine-tuning: every layer trains, starting from the ImageNet weights. The paper keeps "
        "the pretrained layers and weights up to the new layer and says ResNet-50 is then "
        "updated on its data; it freezes nothing.",
        "Optimizer Adam, learning rate 1e-4, batches of 10 (none of them is given). MATLAB's "
        "transfer-learning examples, whose wording the paper follows, fine-tune with SGD with "
        "momentum 0.9 at a learning rate of 1e-4 and mini-batches of 10; we keep the learning "
        "rate and the batch size, and take Adam, the usual Keras setting for fine-tuning a "
        "whole ImageNet network at 1e-4 (CoroNet states it). The paper names no optimizer, so "
        "neither is its; MATLAB's is one setting away (optimizer='sgd', momentum=0.9).",
        "30 epochs, as stated (also MATLAB's default), no validation set, no early stopping: "
        "each fold's model after its last epoch is tested.",
        "Folds keep each patient on one side and are stratified by class (scikit-learn's "
        "StratifiedGroupKFold). The paper partitions images at random, which can put images of "
        "one patient in training and test.",
        "Data: 74 COVID-19 frontal X-rays from Cohen's collection, distinct patients first, and "
        "73 normal X-rays from Kermany's set, the counts the text gives. The paper names Cohen's "
        "collection and a CT study of its own group, not the source of its normal images.",
        "Preprocessing: images stretched to 224x224 and passed through ResNet-50's own "
        "preprocess_input (ImageNet mean subtraction) inside the model; no augmentation, as "
        "none is described.",
        "Metrics: COVID-19 is the positive class of Table 1, as the text's 'COVID-19 "
        "sensitivity' implies; the overlapped matrix is the sum of the fold matrices.",
    ),
    ambiguities=(
        "Class counts: the text gives 73 normal and 74 COVID-19 images, but the only 147-image "
        "matrix that fits Table 1's overlapped row with COVID-19 as positive has 73 COVID-19 "
        "and 74 normal images (TP 73, FP 1, TN 73, FN 0). With the text's counts one COVID-19 "
        "image is missed and COVID-19 sensitivity would be 73/74, not the 100 % claimed.",
        "Two accuracies: the text's average accuracy of 99.33 % is the mean of the ten fold "
        "accuracies; the overlapped matrix gives 146/147 = 99.32 %. The abstract calls 99.3 % "
        "an accuracy 'by the training dataset', although Table 1 reports test folds.",
        "A 'Table 3' with an average accuracy of 98.08 % is cited but the paper has no Table 3. "
        "98.08 % is the binary accuracy of Ozturk et al. (2020), a paper with an almost "
        "identical title whose results paragraph this one follows closely.",
        "The sentence on the overlapped matrix lists four values (100 %, 98.65 %, 99.32 %, "
        "99.32 %) for three metrics (sensitivity, specificity, F1).",
        "Optimizer, learning rate and batch size are not given, nor whether any layer was "
        "frozen, nor which images drew the fold-1 training curves (Fig. 8).",
        "Folds: images are partitioned at random, with no mention of patients. Cohen's "
        "collection holds several images of some patients, so a patient can be in a training "
        "and a test fold at once.",
        "Data: the sources cited are Cohen's collection and a CT paper of the authors' group; "
        "the normal X-rays have no named source and no file list is given. The figures call "
        "the normal images annotated by 'expert readers' without saying who.",
        "Fold sizes and matrices are shown only as figures; Table 1 implies fold 6 held 7 "
        "COVID-19 and 8 normal images with one normal image called COVID-19.",
        "The discussion credits the model with finding ground-glass opacities and consolidation "
        "and with localising lesions, but the paper shows no localisation (no activation maps) "
        "to support it.",
        "The abstract says three measures evaluate the model (accuracy, sensitivity, "
        "specificity); Table 1 gives five.",
    ),
)


def load_dataset(config: RunConfig) -> RecipeResult:
    """The manifest and requested / available / used table of the paper's 147 images.

    Synthetic images for the smoke profile (the table still shows the paper's counts);
    otherwise the recipe from the sources (``covidlab.recipes``), at most
    ``config.max_per_class`` images per class when the profile sets it (demo).
    """
    from covidlab import profiles

    return profiles.load_recipe(config)
