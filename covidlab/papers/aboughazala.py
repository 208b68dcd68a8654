"""Aboughazala & Mohammed (2020): ResNet-50, COVID-19 vs normal, 10-fold cross-validation."""

import pandas as pd

from covidlab.models import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

SPEC = PaperSpec(
    key="aboughazala",
    short_name="Aboughazala",
    citation="aboughazala2020resnet",
    title="Automated detection of COVID-19 from chest X-ray images using ResNet-50",
    task="COVID-19 vs normal",
    classes=("normal", "covid"),
    input_size=(224, 224),
    resize="stretch",
    optimizer="adam",  # not given in the paper; the chapter says why
    learning_rate=1e-4,  # not given in the paper
    batch_size=16,  # not given in the paper
    epochs=30,
    protocol="kfold",
    n_splits=10,
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
)
