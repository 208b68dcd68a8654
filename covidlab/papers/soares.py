"""Soares & Soares (2020): VGG16, ResNet and Xception with frozen bases, three classes.

The paper trains three ImageNet backbones whose convolutional layers stay frozen; only the
fully connected head learns. 375 images (175 COVID-19 from Cohen's collection, 100 normal and
100 "other infection" from Kermany's set), 237x237 RGB, Adam 1e-3, batch 15, 80 epochs. The
head and the split are not described in the paper; the authors' public notebook (their blog
"deepdados", Model 2, April 2020) fills both in, and this module follows it where it can.
Reported numbers are stored as printed (percent or counts) and cited to where they appear.
"""

from __future__ import annotations

import pandas as pd

from covidlab.architectures import Head
from covidlab.papers.spec import COHEN_LATER, Headline, ModelSpec, PaperSpec, Part, Reported

# The head of the authors' public notebook: AveragePooling2D(2x2), Flatten, Dense(20, ReLU),
# Dropout(0.2), Dense(3, softmax); the paper says only that the fully connected layers train.
HEAD = Head(pooling="flatten", pool_size=2, hidden_units=(20,), dropout=0.2, dropout_after=True)

CLASSES = ("covid", "normal", "infection")

#: The model the chapter's text is about: the paper's best, the only one it tests in full
#: (Figure 2).
HEADLINE_MODEL = "VGG16"

# The paper gives one accuracy per model in the text under Figure 1, in percent.
ACCURACY = pd.DataFrame(
    {"accuracy (%)": [95.9, 94.6, 97.3]},
    index=pd.Index(["Xception", "ResNet50", "VGG16"], name="model"),
)


SPEC = PaperSpec(
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
    headline=Headline(
        model=HEADLINE_MODEL,
        result="VGG16 test accuracy, 3 classes",
        value=0.973,
        correct=73,
        n_test=75,
        source="Section 4 and Figure 2: 73 of 75 test images",
    ),
    plan={
        "covid": (Part(("covid",)),),
        "normal": (Part(("normal",)),),
        "infection": (Part(("bacterial", "viral")),),
    },
    cohen_snapshot=COHEN_LATER,  # 175 COVID-19 images: more than 548bb58 holds
    checklist={
        "patient-level split": "no",
        "external test set": "no",
        "confidence intervals": "no",
        "class balance stated": "yes",
        "preprocessing fully specified": "partial",
        "code and data released": "yes",
    },
    checklist_note=(
        "Test set sampled at random from the images; no external set; no intervals; "
        "175/100/100 stated (yet 10 % test does not give 75 images); 237x237 RGB, no "
        "normalisation stated; code and data said to be on the authors' site."
    ),
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
            table=ACCURACY,
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
