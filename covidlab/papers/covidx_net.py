"""COVIDX-Net: Hemdan, Shouman, Karar (2020), arXiv:2003.11055.

Seven Keras backbones compared on 25 COVID-19 + 25 "normal" images (Cohen + Rosebrock), one
80/20 hold-out split. The text gives the settings (224x224, SGD, learning rate 1e-3, batch 7,
50 epochs) and one result (VGG19 and DenseNet201 best, F1 0.89 for normal and 0.91 for
COVID-19); its Tables 2 and 3 are not in the text. What the paper leaves open and how the
course decided it is in ``SPEC.choices``; what it contradicts in ``SPEC.ambiguities``.
Chapter 04's code is in :mod:`covidlab.chapters.covidx_net`.
"""

from __future__ import annotations

import pandas as pd

from covidlab.architectures import Head
from covidlab.papers.spec import COHEN_MARCH_2020, Headline, ModelSpec, PaperSpec, Reported

#: The paper's name of each model -> the ``keras.applications`` backbone this course builds.
#: "ResNetV2" names no depth; ResNet50V2 is the Keras ResNetV2 closest to the ResNet-50 the
#: other papers use (Hemdan et al. 2020, Section 2).
BACKBONE_OF = {
    "VGG19": "VGG19",
    "DenseNet201": "DenseNet201",
    "InceptionV3": "InceptionV3",
    "ResNetV2": "ResNet50V2",
    "InceptionResNetV2": "InceptionResNetV2",
    "Xception": "Xception",
    "MobileNetV2": "MobileNetV2",
}

# Not described in the paper: global average pooling and one softmax layer on the backbone,
# every layer trained (see ``choices``).
HEAD = Head(pooling="avg")

#: Rosebrock's COVID-19 files -> Cohen's patient, from ``metadata.csv`` at commit 548bb58
#: (column ``Patientid``, prefixed ``cohen-`` as :func:`covidlab.sources.read_cohen` does).
#: ``radiopedia-covid-19-pneumonia-2.jpg`` came from a later commit without a patient id; it
#: counts as a patient of its own.
COHEN_PATIENTS = {
    "1-s2.0-S0140673620303706-fx1_lrg.jpg": "cohen-11",
    "1-s2.0-S0929664620300449-gr2_lrg-a.jpg": "cohen-19",
    "1-s2.0-S0929664620300449-gr2_lrg-b.jpg": "cohen-19",
    "1-s2.0-S0929664620300449-gr2_lrg-c.jpg": "cohen-19",
    "1-s2.0-S0929664620300449-gr2_lrg-d.jpg": "cohen-19",
    "auntminnie-a-2020_01_28_23_51_6665_2020_01_28_Vietnam_coronavirus.jpeg": "cohen-2",
    "auntminnie-b-2020_01_28_23_51_6665_2020_01_28_Vietnam_coronavirus.jpeg": "cohen-2",
    "auntminnie-c-2020_01_28_23_51_6665_2020_01_28_Vietnam_coronavirus.jpeg": "cohen-2",
    "auntminnie-d-2020_01_28_23_51_6665_2020_01_28_Vietnam_coronavirus.jpeg": "cohen-2",
    "lancet-case2a.jpg": "cohen-6",
    "lancet-case2b.jpg": "cohen-6",
    "nCoV-radiol.2020200269.fig1-day7.jpeg": "cohen-12",
    "nejmc2001573_f1a.jpeg": "cohen-4",
    "nejmc2001573_f1b.jpeg": "cohen-4",
    "nejmoa2001191_f1-PA.jpeg": "cohen-13",
    "nejmoa2001191_f3-PA.jpeg": "cohen-13",
    "nejmoa2001191_f4.jpeg": "cohen-13",
    "nejmoa2001191_f5-PA.jpeg": "cohen-13",
    "radiol.2020200490.fig3.jpeg": "cohen-18",
    "radiopedia-covid-19-pneumonia-2.jpg": "radiopaedia-covid-19-pneumonia-2",
    "ryct.2020200028.fig1a.jpeg": "cohen-16",
    "ryct.2020200034.fig2.jpeg": "cohen-14",
    "ryct.2020200034.fig5-day0.jpeg": "cohen-15",
    "ryct.2020200034.fig5-day4.jpeg": "cohen-15",
    "ryct.2020200034.fig5-day7.jpeg": "cohen-15",
}

#: Where COVIDX-Net's 25th COVID-19 file lives, for the note beside its recipe table.
MISSING_FILE = (
    "radiopedia-covid-19-pneumonia-2.jpg is only in Cohen's commit 47b9451, none of the "
    "snapshots the course downloads"
)

# Abstract and Section 3: the two best models share one pair of F1 scores.
_HEADLINE = pd.DataFrame(
    {"f1 normal": [0.89, 0.89], "f1 covid": [0.91, 0.91]},
    index=pd.Index(["VGG19", "DenseNet201"], name="model"),
)

#: What the text says about each model; Tables 2-3, which held the numbers, are not in it.
PAPER_SAYS = {
    "VGG19": "best, tied with DenseNet201",
    "DenseNet201": "best, tied with VGG19",
    "InceptionV3": "worst training and validation accuracy",
    "ResNetV2": "highest COVID-19 precision, worst on normal cases",
    "InceptionResNetV2": "highest COVID-19 precision, worst on normal cases",
    "Xception": "highest COVID-19 precision, worst on normal cases",
    "MobileNetV2": "highest COVID-19 precision, worst on normal cases",
}

#: The model the chapter's text is about: the first of the paper's two best models (Abstract
#: and Section 3; DenseNet201, the other, takes minutes per run on a CPU).
HEADLINE_MODEL = "VGG19"

_RANKING = pd.DataFrame({"what the text says": PAPER_SAYS}).rename_axis("model")

SPEC = PaperSpec(
    key="covidx_net",
    short_name="COVIDX-Net",
    citation="hemdan2020covidxnet",
    title="COVIDX-Net: A Framework of Deep Learning Classifiers to Diagnose COVID-19 in "
    "X-Ray Images",
    task="COVID-19 vs normal",
    classes=("normal", "covid"),
    input_size=(224, 224),
    resize="stretch",
    optimizer="sgd",
    learning_rate=1e-3,
    batch_size=7,
    epochs=50,
    protocol="holdout",
    test_fraction=0.2,
    validation_fraction=None,
    models={
        name: ModelSpec(backbone=backbone, head=HEAD, base_trainable=True)
        for name, backbone in BACKBONE_OF.items()
    },
    recipe={"normal": 25, "covid": 25},
    headline=Headline(
        model=HEADLINE_MODEL,
        result="VGG19 / DenseNet201, COVID vs normal accuracy",
        value=0.9,
        correct=9,
        n_test=10,
        source="F1 0.89 (normal) and 0.91 (COVID) on a 20 % test set of 50 images; "
        "9 of 10 correct is the only split giving both F1s (Tables 2-3 are not in the text)",
    ),
    # Its own file list, 25 + 25 files by name: 24 of the 25 COVID-19 files are in 548bb58; the
    # 25th is only in commit 47b9451 (MISSING_FILE).
    cohen_snapshot=COHEN_MARCH_2020,
    checklist={
        "patient-level split": "no",
        "external test set": "no",
        "confidence intervals": "no",
        "class balance stated": "yes",
        "preprocessing fully specified": "partial",
        "code and data released": "no",
    },
    checklist_note=(
        "Images drawn at random for an 80/20 split, no mention of patients (Cohen has "
        "several images per patient); one 10-image test set; no intervals; 25 + 25 stated; "
        "resized to 224x224 and 'normalized', normalisation not defined; no code link, data "
        "named only as 'provided by Cohen and Rosebrock'."
    ),
    reported={
        "headline": Reported(
            _HEADLINE,
            "Abstract and Section 3",
            "the only numbers in the text; Tables 2 (per-model settings) and 3 (per-model "
            "metrics) are not in the text this course works from",
        ),
        "ranking": Reported(
            _RANKING,
            "Section 3 (text)",
            "the ranking in words; InceptionV3's 'worst' refers to the training curves (Fig. 3)",
        ),
    },
    choices=(
        "Head: the paper describes none. Each backbone (without its ImageNet top) is followed "
        "by global average pooling and one Dense(2, softmax) layer. It adds the fewest "
        "parameters (2 x channels + 2), so the seven models differ only in their backbone; it "
        "works at any input size, so smoke and demo runs build the same model smaller; and it "
        "is the Keras transfer-learning default.",
        "Every layer trains (fine-tuning). Of the four ways of using a CNN the paper lists, it "
        "ties fine-tuning to small datasets, which is its own situation; it speaks of 'tuned' "
        "models converging over 50 epochs; and SGD at 1e-3 without momentum is a gentle "
        "fine-tuning rate. A frozen base would also leave the smoke and demo runs (random "
        "weights) with random features: with batch normalisation they are almost constant.",
        "'ResNetV2' is built as Keras' ResNet50V2; the paper names no depth.",
        "DenseNet201, as the framework figure and the results say (the architecture section "
        "and the conclusion say DenseNet121).",
        "Split: 40 training and 10 test images (80/20), as the text states twice. The 40 are "
        "not halved again into training and validation: that would leave 20 training images, "
        "contradicting '40 images for training'; with a fixed 50 epochs nothing is tuned on a "
        "validation set, which in the paper only drew the curves of Fig. 3.",
        "The test set is drawn by patient (data.holdout_split, group='patient_id'), so no "
        "patient's images are on both sides; the chapter also runs the paper's image-level "
        "split to show the difference.",
        "Images are stretched to 224x224 and scaled with each backbone's own preprocess_input "
        "(the paper's 'normalized intensities', unspecified); labels one-hot; no augmentation.",
        "Plain SGD (no momentum, no decay): the paper names SGD and nothing else.",
        "Data: Rosebrock's 25 + 25 files found by name in Cohen's collection and Kermany's "
        "set. Where a listed file is missing (the course's small offline copy), "
        "load_dataset(top_up_normal=True) adds other Kermany images of the same kinds "
        "(normal, bacterial, viral) to the 'normal' class; it never adds COVID-19 images.",
        "Results: accuracy with a 95 % Wilson interval and per-class precision, recall and F1 "
        "from the confusion matrix of the test images.",
    ),
    ambiguities=(
        "The classifier head on top of each backbone is not described, nor which layers train.",
        "'ResNetV2' is named without a depth (ResNet50V2, 101V2 and 152V2 all exist in Keras).",
        "DenseNet201 in the framework figure and the results, DenseNet121 in the architecture "
        "description (121 layers, ImageNet weights) and in the conclusion.",
        "The split: 80 % training and 20 % testing, then the 80 % is split again 'into equal "
        "training and validation sets', yet 40 images (all of the 80 %) are said to train "
        "the models.",
        "A 'cross validation estimator' is said to produce the confusion matrix, but the "
        "protocol described is one random 80/20 hold-out.",
        "Tables 2 and 3, with the per-model settings and metrics, are not in the text; only "
        "the F1 scores of the two best models (0.89 normal, 0.91 COVID-19) are.",
        "F1 0.89 and 0.91 on 10 test images mean 9 of 10 correct: with 5 + 5 test images one "
        "normal image called COVID-19, with 4 normal and 6 COVID-19 one COVID-19 image called "
        "normal (the test split's class counts are not given); the paper gives no interval "
        "(Wilson 95 %: 60 %-98 %).",
        "The 'normal' class is not normal: by file name 12 of Rosebrock's 25 'normal' images "
        "are bacterial and 6 viral pneumonia (his sampling drew from the whole Kaggle tree).",
        "The 25 COVID-19 images come from 12 patients (figure panels a-d, day 0/4/7 series); "
        "a random image split puts images of one patient in training and test.",
        "True negatives are defined as an 'incorrectly measured number of regular instances'; "
        "a true negative is a correctly classified negative.",
        "The images are called 'image patches' at test time, but no patching is described.",
        "The conclusion mentions 'DenseNet121' and spells the framework 'CVOIDX-Net'.",
    ),
)
