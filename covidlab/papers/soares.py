"""Soares & Soares (2020): VGG16, ResNet and Xception with frozen bases, three classes."""

import pandas as pd

from covidlab.models import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

_HEAD = Head(pooling="avg")  # not specified in the paper; the chapter completes this entry

SPEC = PaperSpec(
    key="soares",
    short_name="Soares",
    citation="soares2020cnn",
    title="Automatic detection of COVID-19 cases on X-ray images using convolutional neural networks",
    task="COVID-19 / normal / other infection",
    classes=("covid", "normal", "infection"),
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
        "VGG16": ModelSpec(backbone="VGG16", head=_HEAD),
        "ResNet50": ModelSpec(backbone="ResNet50", head=_HEAD),
        "Xception": ModelSpec(backbone="Xception", head=_HEAD),
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
    },
)
