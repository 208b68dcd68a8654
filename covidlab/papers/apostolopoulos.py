"""Apostolopoulos & Mpesiana (2020): five backbones with layer cut-offs, 10-fold CV.

The paper's facts as data: :data:`SPEC` (Table 1's cut-offs and heads, Tables 2-6 in
``SPEC.reported``), the two datasets in :data:`DATASETS` and where each cut-off lands in
Keras' layer list (:data:`CUTOFF_NOTES`). Chapter 07's code is in
:mod:`covidlab.chapters.apostolopoulos`.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from covidlab.architectures import Head
from covidlab.papers.spec import COHEN_LATER, Headline, ModelSpec, PaperSpec, Part, Reported

#: Dataset_2's pneumonia class: 714 images = 400 bacterial + 314 viral ("Dataset of the study").
DATASET_2_PNEUMONIA = {"bacterial": 400, "viral": 314}

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
        "VGG19": ModelSpec(
            backbone="VGG19",
            head=Head(pooling="avg", hidden_units=(1024,)),
            base_trainable=True,
            layer_cutoff=18,
        ),
        "MobileNetV2": ModelSpec(
            backbone="MobileNetV2",
            head=Head(pooling="avg", hidden_units=(1000, 750), dropout=0.5),
            base_trainable=True,
            layer_cutoff=10,
        ),
        "InceptionV3": ModelSpec(
            backbone="InceptionV3",
            head=Head(pooling="avg", hidden_units=(1000,)),
            base_trainable=True,
            layer_cutoff=249,
        ),
        "Xception": ModelSpec(
            backbone="Xception",
            head=Head(pooling="avg", hidden_units=(1000, 750), dropout=0.5),
            base_trainable=True,
            layer_cutoff=120,
        ),
        "InceptionResNetV2": ModelSpec(
            backbone="InceptionResNetV2",
            head=Head(pooling="avg"),
            base_trainable=True,
            layer_cutoff=730,
        ),
    },
    recipe={"covid": 224, "pneumonia": 700, "normal": 504},
    headline=Headline(
        model="MobileNetV2",
        result="MobileNetV2 2-class accuracy, Dataset_2, 10-fold CV",
        value=0.9678,
        correct=1396,
        n_test=1442,
        source="Table 5 (96.78 %) and Table 6 (1442 images)",
    ),
    plan={
        "covid": (Part(("covid",)),),
        "pneumonia": (Part(("bacterial",)),),  # Dataset_1: bacterial pneumonia only
        "normal": (Part(("normal",)),),
    },
    variant_plans={
        "dataset2": {
            "covid": (Part(("covid",)),),
            "pneumonia": tuple(Part((kind,), n) for kind, n in DATASET_2_PNEUMONIA.items()),
            "normal": (Part(("normal",)),),
        }
    },
    cohen_snapshot=COHEN_LATER,  # 224 COVID-19 images (both datasets)
    checklist={
        "patient-level split": "no",
        "external test set": "no",
        "confidence intervals": "no",
        "class balance stated": "yes",
        "preprocessing fully specified": "partial",
        "code and data released": "partial",
    },
    checklist_note=(
        "10-fold CV, patients not mentioned; no external set; no intervals; "
        "class counts stated for both datasets; 200x266 with black padding described, "
        "intensity scaling not; "
        "sources named (Cohen, Kermany, web collections), no code."
    ),
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
            "equal to VGG19's sensitivity 208/224). No matrix is given for the other three. Of "
            "their values, Inception's sensitivity 12.94 % (29/224) and InceptionResNetV2's "
            "specificity 99.83 % (1202/1204) are whole counts; Xception's sensitivity 0.08 %, "
            "InceptionResNetV2's 0.01 % and the specificities 99.70 % (Inception) and 99.99 % "
            "(Xception) are not k/224 or k/1204 for any whole k (perhaps averages over folds). "
            "The paper marks the three specificities with * as not meaningful. 'Inception' is "
            "taken as InceptionV3.",
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
        counts={"covid": 224, "pneumonia": sum(DATASET_2_PNEUMONIA.values()), "normal": 504},
        composition={"pneumonia": DATASET_2_PNEUMONIA},
        models=("MobileNetV2",),  # "the MobileNet v2 setup of the first experiment was retained"
        reported=("table5_metrics", "table6_confusion"),
    ),
}


METRIC_COLUMNS = ("accuracy_2class", "accuracy_3class", "sensitivity", "specificity")


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
