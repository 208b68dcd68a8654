"""Chapter 04 (COVIDX-Net, Hemdan et al. 2020): the helpers its notebook calls.

The paper's facts are in :mod:`covidlab.papers.covidx_net`. Here:

- :func:`dataset_list`: the 50 files of Rosebrock's copy with their patients
  (:data:`covidlab.papers.covidx_net.COHEN_PATIENTS`), so patient leakage can be counted
  without downloading any image;
- :func:`load_dataset`: the run's manifest and its requested / available / used table, with the
  missing "normal" files replaced by stand-ins of the same kind when ``top_up_normal``;
- :func:`sibling_leak` and :func:`split_comparison`: image-level against patient-level splits;
- :func:`matrices_with_f1` and :func:`paper_vs_run`: the paper's F1 values read back as a
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

from covidlab import leakage

if TYPE_CHECKING:
    import keras

    from covidlab.recipes import RecipeResult
    from covidlab.run_config import RunConfig
    from covidlab.train import RunResult

from covidlab.papers.covidx_net import (
    BACKBONE_OF,
    COHEN_PATIENTS,
    SPEC,
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
        model = models.build_paper_model(SPEC, name)
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

    :func:`covidlab.leakage.leakage_experiment` without a model: one row per seed and split,
    with test images, test images with a same-patient sibling in the training set
    (:data:`covidlab.leakage.LEAKED`) and COVID-19 test images. No image is read.
    """

    def covid_images(train_df, test_df, seed, split):
        return {"n_test_covid": int((test_df["label"] == "covid").sum())}

    return leakage.leakage_experiment(
        manifest, covid_images, seeds=seeds, test_fraction=test_fraction
    )


def sibling_leak_summary(counts: pd.DataFrame) -> pd.DataFrame:
    """Per split: mean / min / max leaked test images and the share of splits that leak."""
    column = leakage.LEAKED
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

    :func:`covidlab.leakage.leakage_experiment` with a Keras model trained on each split. The
    seed draws the split and initialises the model. ``reuse`` maps ``(seed, split)`` to a run
    already trained on exactly that split with that seed and ``config`` (the chapter's
    patient-level run of its own seed), which is then not trained again.

    Adds to each row: ``score`` (the test set's balanced accuracy, the column
    :func:`covidlab.leakage.leakage_summary` pairs; the two kinds of split give test sets of
    different class mixes, which plain accuracy would mix into the gap), accuracy, correct
    predictions, test images called COVID-19, whether the run was reused, and its test
    ``confusion`` matrix (for ``results.record_run``).
    """
    from covidlab.metrics import balanced_accuracy
    from covidlab.train import train_and_evaluate

    reuse = dict(reuse or {})

    def train_on_split(train_df, test_df, seed, split):
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
        return {
            "score": balanced_accuracy(run.confusion),
            "accuracy": run.accuracy,
            "correct": int(np.trace(run.confusion)),
            "predicted covid": int(run.confusion[:, 1].sum()),
            "reused": (seed, split) in reuse,
            "confusion": run.confusion.tolist(),
        }

    return leakage.leakage_experiment(
        manifest, train_on_split, seeds=seeds, test_fraction=config.test_fraction
    )


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


def paper_vs_run(
    confusions: Mapping[str, np.ndarray],
    parameters: Mapping[str, Mapping[str, int]] | None = None,
    run: str = "",
) -> pd.DataFrame:
    """The trained models, one row each: the paper's claims beside this run's numbers.

    Under "paper": what the text says about the model (``SPEC.reported["ranking"]``) and the
    F1 scores it gives for its two best (``SPEC.reported["headline"]``, empty for the others).
    Under "this run (``run``)": parameters, accuracy with its Wilson interval, balanced
    accuracy and the F1 of each class.

    ``confusions`` maps a model name of ``SPEC.models`` to its test confusion matrix (rows:
    normal, covid); ``parameters`` to ``covidlab.models.parameter_counts``. ``predicted
    covid`` counts the test images called COVID-19: 0 or all of them means the model gives
    every image the same class. ``balanced accuracy`` is the mean of the two recalls: the
    test sets are small and not balanced, and it gives a one-class model 0.5.
    """
    from covidlab import metrics

    rows = {}
    for name, cm in confusions.items():
        cm = np.asarray(cm)
        overall = metrics.accuracy_with_interval(cm)
        f1 = metrics.f1_score(cm)
        row = {"backbone": BACKBONE_OF.get(name, name)}
        if parameters is not None:
            row["parameters"] = parameters[name]["total"]
            row["trainable"] = parameters[name]["trainable"]
        rows[name] = {
            **row,
            "test images": overall["n"],
            "predicted covid": int(cm[:, 1].sum()),
            "correct": overall["correct"],
            "accuracy": overall["accuracy"],
            "95% CI": f"{overall['ci_low']:.2f}-{overall['ci_high']:.2f}",
            "balanced accuracy": metrics.balanced_accuracy(cm),
            "f1 normal": float(f1[0]),
            "f1 covid": float(f1[1]),
        }
    ours = pd.DataFrame.from_dict(rows, orient="index").rename_axis("model")
    paper = (
        SPEC.reported["ranking"]
        .table.join(SPEC.reported["headline"].table)
        .reindex(ours.index)
        .astype(object)
        .fillna("")
    )
    return metrics.paper_vs_run(paper, ours, run_label=metrics.run_label(run))
