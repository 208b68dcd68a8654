"""COVIDX-Net: Hemdan, Shouman, Karar (2020), arXiv:2003.11055.

Seven Keras backbones compared on 25 COVID-19 + 25 "normal" images (Cohen + Rosebrock), one
80/20 hold-out split. The text gives the settings (224x224, SGD, learning rate 1e-3, batch 7,
50 epochs) and one result (VGG19 and DenseNet201 best, F1 0.89 for normal and 0.91 for
COVID-19); its Tables 2 and 3 are not in the text. What the paper leaves open and how the
course decided it is in ``SPEC.choices``; what it contradicts in ``SPEC.ambiguities``.

Besides the spec, the module holds what the chapter needs about this paper's data:

- :data:`COHEN_PATIENTS` and :func:`dataset_list`: the 50 files of Rosebrock's copy with their
  patients, so patient leakage can be counted without downloading any image;
- :func:`load_dataset`: the run's manifest and its requested / available / used table, with the
  missing "normal" files replaced by stand-ins of the same kind when ``top_up_normal``;
- :func:`sibling_leak` and :func:`split_comparison`: image-level against patient-level splits;
- :func:`matrices_with_f1` and :func:`comparison_table`: the paper's F1 values read back as a
  confusion matrix, and the seven backbones beside the paper's claims.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from itertools import product
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from covidlab.heads import Head
from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

if TYPE_CHECKING:
    import keras

    from covidlab.profiles import RunConfig
    from covidlab.recipes import RecipeResult
    from covidlab.train import RunResult

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


#: The two ways of drawing the 20 % test set: by image, as the paper did, or by patient.
SPLITS = {"image-level": None, "patient-level": "patient_id"}

# Abstract and Section 3: the two best models share one pair of F1 scores.
_HEADLINE = pd.DataFrame(
    {"f1 normal": [0.89, 0.89], "f1 covid": [0.91, 0.91]},
    index=pd.Index(["VGG19", "DenseNet201"], name="model"),
)

#: What the text says about each model; Tables 2-3, which held the numbers, are not in it.
PAPER_SAYS = {
    "VGG19": "best (with DenseNet201): F1 0.89 normal, 0.91 COVID-19",
    "DenseNet201": "best (with VGG19): F1 0.89 normal, 0.91 COVID-19",
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
    recipe_sources={"normal": ("rosebrock",), "covid": ("cohen",)},
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
        "With 5 + 5 test images, F1 0.89 and 0.91 is one misclassified normal image (9 of 10 "
        "correct); the paper gives no interval (Wilson 95 %: 60 %-98 %).",
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


# --- Run settings and cost ----------------------------------------------------------------


def resolve(
    profile: str | None = None, *, seed: int = 0, backbones: Iterable[str] | None = None
) -> RunConfig:
    """``covidlab.profiles.resolve`` for this chapter.

    ``backbones`` None takes the profile's default (:data:`covidlab.profiles.PROFILE_MODELS`:
    MobileNetV2 on smoke, VGG19 and MobileNetV2 on demo, all seven on paper; on a 2-core CPU
    DenseNet201 alone takes several minutes for a demo run).
    Every profile keeps the paper's batch of 7 (40 training images are cheap at any size).
    Smoke runs eagerly: one epoch of a few steps costs less than tracing a graph. Demo trains
    the paper's 50 epochs (300 steps), where a traced graph is about four times faster than
    eager execution (MobileNetV2 at 64 px on the course's 2-core CPU: 83 s against 370 s).
    """
    from covidlab import profiles

    name = profiles.default_profile() if profile is None else profile
    chosen = tuple(backbones) if backbones else None
    overrides = {"batch_size": SPEC.batch_size, "models": chosen, "seed": seed}
    if name == "smoke":
        overrides["run_eagerly"] = True
    return profiles.resolve(SPEC, name, **overrides)


def paper_cost_table(
    names: Iterable[str] | None = None, n_images: int = 40, epochs: int = 50, gpu: str = "T4"
) -> pd.DataFrame:
    """Parameters and training cost of each model as the paper trains it: 224x224, 40 images,
    50 epochs (Hemdan et al. 2020, Section 3).

    Builds every model at 224x224 with random weights (the counts do not depend on them), one
    at a time. Columns: parameters (total, trainable, non-trainable), forward GFLOP per image,
    training TFLOP and GPU minutes from :func:`covidlab.cost.estimate_cost`.
    """
    import keras

    from covidlab import cost, models

    rows = []
    for name in names or SPEC.models:
        keras.backend.clear_session()
        model = SPEC.build_model(name)
        estimate = cost.estimate_cost(model, n_images=n_images, epochs=epochs, gpu=gpu)
        counts = models.parameter_counts(model)
        rows.append(
            {
                "model": name,
                "backbone": BACKBONE_OF[name],
                "parameters": counts["total"],
                "trainable": counts["trainable"],
                "non-trainable": counts["non_trainable"],
                "forward GFLOP / image": round(estimate.forward_flops_per_image / 1e9, 2),
                "training TFLOP": round(estimate.total_flops / 1e12, 1),
                f"{gpu} minutes": round(estimate.gpu_seconds / 60, 1),
            }
        )
        del model
    keras.backend.clear_session()
    return pd.DataFrame(rows).set_index("model")


# --- The data ----------------------------------------------------------------------------------


def dataset_list() -> pd.DataFrame:
    """The 50 files of Rosebrock's copy as a manifest of names, with their patients.

    ``path`` is the bare file name (no image is needed to count patients); ``label`` is
    Rosebrock's folder (the paper's class), ``true_label`` what the file name says the image
    is, ``patient_id`` Cohen's patient (:data:`COHEN_PATIENTS`) or Kermany's (from the file
    name, as :func:`covidlab.sources.read_kermany` reads it).
    """
    from covidlab.recipes import rosebrock_list
    from covidlab.sources import parse_kermany_name

    listing = rosebrock_list()
    patients, sources = [], []
    for folder, name in zip(listing["folder"], listing["filename"], strict=True):
        if folder == "covid":
            patients.append(COHEN_PATIENTS[name])
            sources.append("cohen")
        else:
            parsed = parse_kermany_name(name)
            if parsed is None:
                raise ValueError(f"{name} in Rosebrock's list is not a Kermany file name")
            patients.append(f"kermany-{parsed[1]}")
            sources.append("kermany")
    return pd.DataFrame(
        {
            "path": listing["filename"],
            "label": listing["folder"],
            "patient_id": patients,
            "source": sources,
            "true_label": listing["true_label"],
        }
    )


def patients_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """Images per patient for each class: patients, images, and the largest patient."""
    per_patient = manifest.groupby(["label", "patient_id"]).size()
    table = per_patient.groupby(level="label").agg(
        patients="size",
        images="sum",
        patients_with_several_images=lambda s: int((s > 1).sum()),
        most_images_of_one_patient="max",
    )
    return table.loc[[c for c in SPEC.classes if c in table.index]]


def load_dataset(config: RunConfig, *, top_up_normal: bool = True) -> RecipeResult:
    """The run's manifest and its requested / available / used table.

    Synthetic images for the smoke profile. Otherwise Rosebrock's 25 + 25 files from the
    sources (``covidlab.recipes.build_recipe``); with ``top_up_normal`` the listed "normal"
    files that the sources lack are replaced by other Kermany images of the same kinds, so
    the class keeps its size and its mix of normal, bacterial and viral images. The stand-ins
    have ``in_list`` False and a row of their own in the table.
    """
    from covidlab import profiles

    result = profiles.load_recipe(config)
    if config.data == "synthetic":
        result.manifest = result.manifest.assign(true_label=result.manifest["label"], in_list=False)
        return result
    result.manifest["in_list"] = True
    if top_up_normal:
        result = top_up_normal_class(result, profiles.sources_dir(config), seed=config.seed)
    return result


def top_up_normal_class(result: RecipeResult, sources_dir: str | Path, *, seed: int = 0):
    """Replace the listed "normal" files the sources lack by Kermany images of the same kinds.

    Rosebrock's "normal" folder holds 7 normal, 12 bacterial and 6 viral images (by file
    name). For each kind, the shortfall is drawn (patients first, seeded) from the Kermany
    images that are not in the list and whose patient is not already used. Returns a new
    :class:`~covidlab.recipes.RecipeResult`; unchanged when nothing is missing.
    """
    from covidlab.recipes import RecipeResult, draw_patients_first, rosebrock_list, source_pool

    manifest = result.manifest
    listing = rosebrock_list()
    wanted = listing.loc[listing["folder"] == "normal", "true_label"].value_counts()
    have = manifest.loc[manifest["label"] == "normal", "true_label"].value_counts()
    missing = (wanted - have.reindex(wanted.index, fill_value=0)).clip(lower=0)
    if missing.sum() == 0:
        return result
    pool = source_pool(sources_dir)
    pool = pool[
        (pool["source"] == "kermany")
        & ~pool["path"].map(lambda p: Path(p).name).isin(set(listing["filename"]))
        & ~pool["patient_id"].isin(set(manifest["patient_id"]))
    ]
    rng = np.random.default_rng(seed)
    drawn = [
        draw_patients_first(pool[pool["true_label"] == kind], int(n), rng)
        for kind, n in missing.items()
        if n > 0
    ]
    added = pd.concat(drawn).assign(label="normal", in_list=False)
    counts = added["true_label"].value_counts().sort_index()
    row = {
        "class": "normal",
        "drawn_from": "Kermany stand-ins (not in the list)",
        "requested": int(missing.sum()),
        "available": len(pool),
        "used": len(added),
        "true_labels": ", ".join(f"{k} {v}" for k, v in counts.items()),
        "note": "replace the listed 'normal' files missing from these sources, same kinds",
    }
    table = pd.concat([result.table, pd.DataFrame([row])], ignore_index=True)
    combined = pd.concat([manifest, added[list(manifest.columns.intersection(added.columns))]])
    notes = [*result.notes, f"{len(added)} stand-in 'normal' images added ({row['true_labels']})"]
    return RecipeResult(result.name, combined.reset_index(drop=True), table, notes)


# --- Patient leakage -------------------------------------------------------------------------


def sibling_leak(
    manifest: pd.DataFrame, test_fraction: float = 0.2, seeds: Iterable[int] = range(100)
) -> pd.DataFrame:
    """Count test images whose patient also has an image in training, for both kinds of split.

    One row per seed and split (:data:`SPLITS`): test images, COVID-19 test images, and test
    images with a same-patient sibling in the training set. No image is read.
    """
    from covidlab.data import holdout_split

    rows = []
    for seed, (split, group) in product(seeds, SPLITS.items()):
        train_df, test_df = holdout_split(manifest, test_fraction, seed=seed, group=group)
        sibling = test_df["patient_id"].isin(set(train_df["patient_id"]))
        rows.append(
            {
                "seed": seed,
                "split": split,
                "n_test": len(test_df),
                "n_test_covid": int((test_df["label"] == "covid").sum()),
                "test_images_with_sibling_in_train": int(sibling.sum()),
            }
        )
    return pd.DataFrame(rows)


def sibling_leak_summary(counts: pd.DataFrame) -> pd.DataFrame:
    """Per split: mean / min / max leaked test images and the share of splits that leak."""
    column = "test_images_with_sibling_in_train"
    grouped = counts.groupby("split", sort=False)
    return pd.DataFrame(
        {
            "splits drawn": grouped.size(),
            "test images (mean)": grouped["n_test"].mean(),
            "leaked test images (mean)": grouped[column].mean(),
            "leaked (min)": grouped[column].min(),
            "leaked (max)": grouped[column].max(),
            "splits with a leak": grouped[column].apply(lambda s: (s > 0).mean()),
        }
    )


def split_comparison(
    build_model: Callable[[], keras.Model],
    manifest: pd.DataFrame,
    config: RunConfig,
    seeds: Iterable[int],
    *,
    reuse: Mapping[tuple[int, str], RunResult] | None = None,
) -> pd.DataFrame:
    """Train one model under an image-level and a patient-level 80/20 split, for each seed.

    The seed draws the split and initialises the model. ``reuse`` maps ``(seed, split)`` to a
    run already trained on exactly that split with that seed and ``config`` (the chapter's
    patient-level run of its own seed), which is then not trained again.

    Returns one row per seed and split: ``score`` (the test set's balanced accuracy, the
    column ``covidlab.shortcuts.leakage_summary`` pairs; the two kinds of split give test
    sets of different class mixes, which plain accuracy would mix into the gap), accuracy,
    test images, correct predictions, test images called COVID-19, leaked test images,
    whether the run was reused, and its test ``confusion`` matrix (for ``results.record_run``).
    """
    from covidlab.data import holdout_split
    from covidlab.metrics import balanced_accuracy
    from covidlab.train import train_and_evaluate

    reuse = dict(reuse or {})
    rows = []
    for seed, (split, group) in product(seeds, SPLITS.items()):
        train_df, test_df = holdout_split(manifest, config.test_fraction, seed=seed, group=group)
        run = reuse.get((seed, split))
        if run is None:
            run = train_and_evaluate(
                build_model, train_df, test_df, dataclasses.replace(config, seed=seed), verbose=0
            )
        elif int(run.confusion.sum()) != len(test_df):
            raise ValueError(
                f"the run reused for seed {seed}, {split} split tested {int(run.confusion.sum())} "
                f"images, but that split's test set has {len(test_df)}: it is not the same split"
            )
        rows.append(
            {
                "seed": seed,
                "split": split,
                "score": balanced_accuracy(run.confusion),
                "accuracy": run.accuracy,
                "correct": int(np.trace(run.confusion)),
                "n_test": len(test_df),
                "predicted covid": int(run.confusion[:, 1].sum()),
                "test_images_with_sibling_in_train": int(
                    test_df["patient_id"].isin(set(train_df["patient_id"])).sum()
                ),
                "reused": (seed, split) in reuse,
                "confusion": run.confusion.tolist(),
            }
        )
    return pd.DataFrame(rows)


# --- The paper's numbers and this run's ------------------------------------------------------


def matrices_with_f1(
    f1_normal: float = 0.89, f1_covid: float = 0.91, n_test: int = 10, decimals: int = 2
) -> list[np.ndarray]:
    """Every 2x2 confusion matrix of ``n_test`` images whose F1 scores round to the given ones.

    Rows are true classes, columns predictions, in ``SPEC.classes`` order (normal, covid).
    With the paper's 10 test images two matrices give 0.89 and 0.91, both with 9 of 10
    correct: ``[[4, 1], [0, 5]]`` (5 + 5 test images, one normal called COVID-19) and
    ``[[4, 0], [1, 5]]`` (4 + 6, one COVID-19 image called normal).
    """
    from covidlab.metrics import f1_score

    found = []
    for a, b, c in product(range(n_test + 1), repeat=3):
        d = n_test - a - b - c
        if d < 0:
            continue
        cm = np.array([[a, b], [c, d]])
        f1 = np.round(f1_score(cm), decimals)
        if f1[0] == round(f1_normal, decimals) and f1[1] == round(f1_covid, decimals):
            found.append(cm)
    return found


def comparison_table(
    confusions: Mapping[str, np.ndarray],
    parameters: Mapping[str, Mapping[str, int]] | None = None,
    run: str = "",
) -> pd.DataFrame:
    """The models side by side: parameters, accuracy with its Wilson interval, F1 per class.

    ``confusions`` maps a model name of ``SPEC.models`` to its test confusion matrix (rows:
    normal, covid); ``parameters`` to ``covidlab.models.parameter_counts``. ``predicted
    covid`` counts the test images called COVID-19: 0 or all of them means the model gives
    every image the same class. ``balanced accuracy`` is the mean of the two recalls: the
    test sets are small and not balanced, and it gives a one-class model 0.5. The last column
    is what the paper says about the model (:data:`PAPER_SAYS`).
    """
    from covidlab import metrics

    rows = []
    for name, cm in confusions.items():
        cm = np.asarray(cm)
        correct, total = int(np.trace(cm)), int(cm.sum())
        low, high = metrics.wilson_interval(correct, total)
        f1 = metrics.f1_score(cm)
        row = {"model": name, "backbone": BACKBONE_OF.get(name, name)}
        if parameters is not None:
            row["parameters"] = parameters[name]["total"]
            row["trainable"] = parameters[name]["trainable"]
        row.update(
            {
                "test images": total,
                "predicted covid": int(cm[:, 1].sum()),
                "correct": correct,
                "accuracy": metrics.accuracy(cm),
                "95% CI": f"{low:.2f}-{high:.2f}",
                "balanced accuracy": metrics.balanced_accuracy(cm),
                "f1 normal": float(f1[0]),
                "f1 covid": float(f1[1]),
                "paper (text)": PAPER_SAYS.get(name, ""),
            }
        )
        if run:
            row["run"] = run
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")
