"""Aboughazala & Mohammed (2020): ResNet-50, COVID-19 vs normal, 10-fold cross-validation.

The paper fine-tunes an ImageNet ResNet-50 whose 1000-class output is replaced by a new
2-class fully connected layer and softmax, on 147 images at 224x224 for 30 epochs, and reports
the metrics of each of ten folds and of their summed ("overlapped") confusion matrix in its
Table 1. Optimizer, learning rate and batch size are not given: ``choices`` says what this
course uses and why; ``ambiguities`` lists what the paper leaves open or contradicts.
"""

from __future__ import annotations

import pandas as pd

from covidlab.architectures import Head
from covidlab.papers.spec import COHEN_MARCH_2020, Headline, ModelSpec, PaperSpec, Part, Reported

CLASSES = ("normal", "covid")

#: Table 1 treats COVID-19 as the positive class (its sensitivity is the COVID-19 sensitivity).
POSITIVE = "covid"

#: Table 1's columns, in the paper's order.
TABLE1_COLUMNS = ("sensitivity", "specificity", "precision", "f1", "accuracy")

#: Images in a test fold of the paper, which prints no fold sizes: 147 split ten ways as evenly
#: as possible gives folds of 14 or 15 images; fold 6 held 15 (``table1_derived_confusion``).
PAPER_FOLD_SIZES = (14, 15)


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
    headline=Headline(
        model="ResNet50",
        result="ResNet-50 accuracy, summed 10-fold CV",
        value=0.9932,
        correct=146,
        n_test=147,
        source="Table 1, 'Overlapped' row; 147 images",
    ),
    plan={"covid": (Part(("covid",)),), "normal": (Part(("normal",)),)},
    cohen_snapshot=COHEN_MARCH_2020,  # 74 COVID-19 images: the March 2020 snapshot has enough
    checklist={
        "patient-level split": "no",
        "external test set": "no",
        "confidence intervals": "no",
        "class balance stated": "yes",
        "preprocessing fully specified": "partial",
        "code and data released": "no",
    },
    checklist_note=(
        "10-fold CV with random partitions, patients not mentioned; no external set; no "
        "intervals; 74 COVID / 73 normal stated; only 'resampled to 224x224'; no code or data link."
    ),
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
