"""CoroNet: Khan, Shah, Bhat (2020), Xception + Flatten + Dropout + Dense(256), 4/3/2 classes.

The paper trains one 4-class model (COVID-19, normal, bacterial and viral pneumonia) with
4-fold cross-validation and derives a 3-class model (the two pneumonias merged) and a binary
model (COVID-19 against the rest) from it by replacing the output layer and training on.
Reported numbers are stored as printed (percent) and cited to their table.
"""

from __future__ import annotations

import pandas as pd

from covidlab.architectures import Head
from covidlab.papers.spec import COHEN_LATER, Headline, ModelSpec, PaperSpec, Part, Reported

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

METRICS = ["precision", "recall", "specificity", "f1", "accuracy"]

# Table II: layer, type, output shape, parameters (Khan et al. 2020).
TABLE_II = pd.DataFrame(
    [
        ("xception", "Model", "5 x 5 x 2048", 20_861_480),
        ("flatten", "Flatten", "51200", 0),
        ("dropout", "Dropout", "51200", 0),
        ("dense", "Dense", "256", 13_107_456),
        ("dense_1", "Dense", "4", 1_028),
    ],
    columns=["layer", "type", "output shape", "params"],
)
TABLE_II_TOTALS = pd.Series(
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
    columns=METRICS,
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
    columns=METRICS[:-1],
    index=pd.Index(CLASS_SETS["4-class"], name="class"),
)

# Table V: the three tasks, in percent.
TABLE_V = pd.DataFrame(
    [
        (90.0, 89.92, 96.4, 89.8, 89.6),
        (95.0, 96.9, 97.5, 95.6, 95.0),
        (98.3, 99.3, 98.6, 98.5, 99.0),
    ],
    columns=METRICS,
    index=pd.Index(list(CLASS_SETS), name="task"),
)

# The test set the text states for the 3-class model: 29 COVID-19, 72 normal and 120 pneumonia
# images (221). The paper gives none for the binary model; binary_row_check asks what Table V's
# binary row would need if it was tested on the same images (29 COVID-19, 192 others).
TASK_TEST_SET = {"covid": 29, "normal": 72, "pneumonia": 120}

# How many decimals Table V prints for the binary row (its accuracy is printed as "99").
BINARY_DECIMALS = {"precision": 1, "recall": 1, "specificity": 1, "f1": 1, "accuracy": 0}

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
    columns=METRICS[:-1],
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
            backbone="Xception",
            # Flatten -> Dropout(0.5) -> Dense(256, relu) -> softmax, Table II's order.
            head=Head(pooling="flatten", hidden_units=(256,), dropout=0.5),
            base_trainable=True,
        )
    },
    recipe={"covid": 284, "normal": 310, "bacterial": 330, "viral": 327},
    headline=Headline(
        model="CoroNet",
        result="4-class accuracy, 4-fold CV",
        value=0.896,
        correct=1121,
        n_test=1251,
        source="Table III average; Table I counts 284 + 310 + 330 + 327 = 1251 images",
    ),
    plan={label: (Part((label,)),) for label in ("covid", "normal", "bacterial", "viral")},
    cohen_snapshot=COHEN_LATER,  # 284 COVID-19 images
    checklist={
        "patient-level split": "no",
        "external test set": "partial",
        "confidence intervals": "no",
        "class balance stated": "yes",
        "preprocessing fully specified": "partial",
        "code and data released": "yes",
    },
    checklist_note=(
        "4-fold CV with random division of images; a second dataset (Ozturk et al.) "
        "shares the COVID images and the model was fine-tuned on it, so it is not an external "
        "test; no intervals; "
        "Table I gives counts (text says 1300 images, Table I sums to 1251); 224x224 stated but "
        "Table II implies another input; code, model and data on GitHub."
    ),
    reported={
        "layers": Reported(TABLE_II, "Table II", "output shape without the batch axis"),
        "parameters": Reported(TABLE_II_TOTALS.to_frame(), "Table II", "totals under the table"),
        "per_fold": Reported(_TABLE_III, "Table III", "4-class, macro averages, percent"),
        "per_class": Reported(_TABLE_IV, "Table IV", "4-class, averaged over folds, percent"),
        "tasks": Reported(TABLE_V, "Table V", "percent; binary row is COVID-19 as positive"),
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
        "I's data (a fold would hold about 71 COVID-19 images), so Table V's 3-class row comes "
        "from a single split whose origin is not described, not from the 4-fold "
        "cross-validation of the 4-class row; the binary model's test set is not stated at "
        "all.",
        "The binary model's classes are listed as COVID-19, normal and pneumonia; we read it "
        "as COVID-19 against everything else.",
        "The overall 4-class accuracy is given as 89.6 % and as 89.5 %, the 3-class accuracy "
        "as 95 % and 94.59 % (not k/221 for any k, on a 221-image test set); the recall "
        "formula has TP + FN in the numerator (a typo).",
        "Table III's precision, recall and F1 are averages over classes, the binary row of "
        "Table V is not (its recall and specificity differ, which class-averaging a 2x2 "
        "matrix cannot give).",
        "Table V's binary row contradicts itself: its F1 of 98.5 % is not the harmonic mean "
        "2PR/(P + R) = 98.80 % of its own precision and recall, whatever the test set. If the "
        "binary model was tested on the 3-class test set's 221 images (29 COVID-19, 192 "
        "others), the rest does not fit either: a recall of 99.3 % is not k/29 for any k "
        "(28/29 = 96.55 %, 29/29 = 100 %), a specificity of 98.6 % not k/192, and with at most "
        "29 COVID-19 images a precision of 98.3 % cannot occur (TP/(TP + FP) is 100 % or at "
        "most 29/30 = 96.7 %); only the accuracy (219/221 = 99.1 %) would (see "
        "binary_row_check).",
        "A second experiment (Table VI, 90.21 %) fine-tunes CoroNet on Dataset-2 of Ozturk et "
        "al. (2020), whose normal and pneumonia images come from the NIH ChestX-ray8 database; "
        "how it was split, and for how long it was fine-tuned, is not said.",
    ),
)
