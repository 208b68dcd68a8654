"""All five methods, one fair test: training and scoring (the chapters' tables and figures are
in :mod:`covidlab.chapters.benchmark` and :mod:`covidlab.chapters.external`).

Each paper's headline method is trained with its own backbone, head, freezing, optimizer,
learning rate and batch size (from :mod:`covidlab.papers`; input size and epochs adapted to the
profile by :func:`covidlab.profiles.resolve`), but on **one** common dataset, **one**
patient-disjoint hold-out split and **the same three classes**: covid / normal / pneumonia.

Why three classes: it is the task two of the papers set themselves (Apostolopoulos, CoroNet's
3-class model) and Soares' "other infection" is the same class; it asks the question a clinic
would (COVID-19 or another pneumonia?), which a COVID-vs-normal task hides; and the
binary papers' COVID-vs-rest numbers follow from it by the one-vs-rest reduction, reported as
``covid_sensitivity`` / ``covid_specificity``. The data: Apostolopoulos' Dataset_2 recipe
(COVID-19 from Cohen; pneumonia = Kermany bacterial + viral; normal from Kermany).

Every trained model is also tested on the external set of :mod:`covidlab.external_set` (X-rays from
two collections no recipe trains on): each record's ``external`` key holds its COVID-19
sensitivity and specificity there, and the leaderboard's ``external`` column their mean.

Run from a shell::

    python -m covidlab.benchmark --profile demo --out results.json
    python -m covidlab.benchmark --profile smoke --methods coronet soares --out smoke.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covidlab import external_set, metrics, papers, profiles

CLASSES = ("covid", "normal", "pneumonia")
RECIPE = "apostolopoulos_dataset2"
TEST_FRACTION = 0.3


@dataclass(frozen=True)
class Method:
    """One paper's headline model: which paper, which of its models."""

    paper_key: str
    model_name: str

    @property
    def label(self) -> str:
        return f"{papers.get(self.paper_key).short_name} ({self.model_name})"


#: The headline model of each paper (the one its abstract reports, ``PaperSpec.headline``).
METHODS = {key: Method(key, papers.get(key).headline.model) for key in papers.ALL}


#: The benchmark's own demo recipe for COVIDX-Net, on top of its chapter's
#: (:data:`covidlab.profiles.DEMO_RECIPES`: the paper's 50 epochs of plain SGD at its learning
#: rate 1e-3, set for a chapter with 40 training images). On the common training set (139
#: images) those 50 epochs took longer than the four other methods together. Measured there
#: (seed 0, balanced accuracy on the common test set, VGG19 from random weights, plain SGD):
#: at 1e-3, 15 epochs 0.44 (92 % of the images given to one class), 25 epochs 0.71, 30 epochs
#: 0.78 (about 140 s on 2 cores), 50 epochs 0.85; at 5e-3, 15 epochs 0.81 (about 60 s);
#: SGD with momentum 0.9 at 1e-3, 15 epochs 0.63. The optimizer stays the paper's.
DEMO_RECIPE = {"covidx_net": {"epochs": 15, "learning_rate": 0.005}}

#: What a smoke run trains when no methods are named: the two cheapest (a smoke run of all five
#: takes over a minute on a 2-core CPU; name them with ``methods=`` / ``--methods``).
SMOKE_METHODS = ("covidx_net", "soares")


def default_methods(profile: str) -> tuple[str, ...]:
    """The methods a run trains when none are named: all five, except on the smoke profile."""
    return SMOKE_METHODS if profile == "smoke" else tuple(METHODS)


def load_common_data(profile: str, *, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The common manifest (classes :data:`CLASSES`) and a one-line description of it.

    smoke: synthetic images; demo / paper: Apostolopoulos' Dataset_2 recipe from the sources
    (:func:`covidlab.profiles.sources_dir`), capped per class on the demo profile.
    """
    config = profiles.resolve("apostolopoulos", profile, seed=seed, classes=CLASSES)
    if config.data == "synthetic":
        manifest = profiles.load_data(config)
        return manifest, f"synthetic, {len(manifest)} images"
    from covidlab import recipes

    result = recipes.build_recipe(
        RECIPE, profiles.sources_dir(config), seed=seed, max_per_class=config.max_per_class
    )
    manifest = result.manifest
    return manifest, f"{RECIPE} recipe ({config.data}), {len(manifest)} images"


def common_split(manifest: pd.DataFrame, *, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One patient-disjoint, class-stratified hold-out split shared by every method."""
    from covidlab.data import holdout_split

    return holdout_split(manifest, TEST_FRACTION, seed=seed, group="patient_id")


def demo_recipe_text(key: str) -> str:
    """What :data:`DEMO_RECIPE` changes for ``key``, e.g. "epochs 15, learning rate 0.005"."""
    changes = DEMO_RECIPE[key].items()
    return ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in changes)


def method_config(key: str, profile: str, *, seed: int = 0) -> profiles.RunConfig:
    """The run settings of method ``key``: its paper's (:func:`covidlab.profiles.resolve`) on
    the common classes, with the benchmark's own demo recipe (:data:`DEMO_RECIPE`) on demo."""
    method = METHODS[key]
    config = profiles.resolve(
        method.paper_key, profile, seed=seed, classes=CLASSES, models=(method.model_name,)
    )
    if profile == "demo" and key in DEMO_RECIPE:
        config = dataclasses.replace(
            config,
            **DEMO_RECIPE[key],
            notes=f"{config.notes}; the benchmark's demo recipe: {demo_recipe_text(key)}",
        )
    return config


def run_method(
    method: Method,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    profile: str,
    *,
    seed: int = 0,
    external_df: pd.DataFrame | None = None,
) -> dict:
    """Train one method on ``train_df``, evaluate on ``test_df`` (and on ``external_df``, an
    external test set of :mod:`covidlab.external`, when given); return one results record.

    Trains through :func:`covidlab.train.train_and_evaluate`, as the chapters do: the same
    session reset, seeding, output check and batch-norm recalibration (random weights).
    """
    from covidlab import models, train

    spec = papers.get(method.paper_key)
    config = method_config(method.paper_key, profile, seed=seed)

    def build():
        return models.build_paper_model(
            spec,
            method.model_name,
            input_shape=(*config.image_size, 3),
            weights=config.weights,
            num_classes=len(CLASSES),
        )

    run = train.train_and_evaluate(build, train_df, test_df, config, verbose=0)
    counts = models.parameter_counts(run.model)
    record = _record(method, config, run.confusion, counts, run.wall_seconds)
    if external_df is not None:
        record["external"] = external_set.predict(run.model, external_df, config).to_json()
    return record


def _record(method: Method, config, cm: np.ndarray, counts: dict, wall_seconds: float) -> dict:
    scores = metrics.accuracy_with_interval(cm)
    covid = metrics.one_vs_rest(cm, CLASSES.index("covid"))
    per_class = metrics.classification_table(cm, list(CLASSES))
    predicted = cm.sum(axis=0)
    return {
        "method": method.label,
        "paper": method.paper_key,
        "model": method.model_name,
        "backbone": papers.get(method.paper_key).models[method.model_name].backbone,
        "profile": config.profile,
        "input_size": list(config.image_size),
        "resize": config.resize,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "optimizer": config.optimizer,
        "learning_rate": config.learning_rate,
        "weights": config.weights,
        "n_test": scores["n"],
        "correct": scores["correct"],
        "accuracy": scores["accuracy"],
        "balanced_accuracy": metrics.balanced_accuracy(cm),
        "ci_low": scores["ci_low"],
        "ci_high": scores["ci_high"],
        "covid_sensitivity": covid.sensitivity,
        "covid_specificity": covid.specificity,
        "per_class": json.loads(per_class.to_json(orient="index")),
        "largest_class_share": float(predicted.max() / scores["n"]),
        "classes_never_predicted": metrics.classes_never_predicted(cm, CLASSES),
        "confusion": cm.tolist(),
        "parameters": counts,
        "wall_seconds": wall_seconds,
    }


def never_predicted_text(record: dict) -> str:
    """A few sentences on the classes the model of ``record`` never predicted on the common test
    (``classes_never_predicted``), where their test images went, and the cause as far as the
    run's settings show it; "" for a model that predicted every class.

    The cause this can name: a backbone frozen whole (``base_trainable`` false, no
    ``layer_cutoff``) with random weights. Its filters never change, and layer after layer they
    make the features of different images alike (chapter 07 measures it with
    :mod:`covidlab.frozen`), so the small trained head receives nearly the same signal for every
    image. With ImageNet weights (the ``paper`` profile) the same base is a trained feature
    extractor, so this says nothing about the paper's method.
    """
    missing = record["classes_never_predicted"]
    if not missing:
        return ""
    cm = np.asarray(record["confusion"])
    went = []
    for name in missing:
        row = cm[CLASSES.index(name)]
        answers = ", ".join(
            f"{other} {count}" for other, count in zip(CLASSES, row, strict=True) if count
        )
        went.append(f"its {row.sum()} {name} test images were called: {answers}")
    text = (
        f"{record['method']} never predicts {' or '.join(missing)} on the common internal test "
        f"({'; '.join(went)})."
    )
    spec = papers.get(record["paper"]).models[record["model"]]
    if record["weights"] is None and not spec.base_trainable and spec.layer_cutoff is None:
        counts = record["parameters"]
        text += (
            f" The cause: its {record['backbone']} base is frozen and its weights are random "
            f"(no ImageNet weights on the {record['profile']} profile), so only the head's "
            f"{counts['trainable']:,} of {counts['total']:,} parameters train, on features that "
            "are nearly the same for every image (chapter 07 measures this). It is a limit of "
            "this run, not a finding about the method: with ImageNet weights the frozen base "
            "would be a trained feature extractor."
        )
    else:
        text += " This run's settings do not explain it: the model did not learn that class."
    return text


def run_benchmark(
    profile: str,
    methods: Sequence[str] | None = None,
    *,
    seed: int = 0,
    progress: bool = True,
    harmonise: bool = False,
) -> dict:
    """Run the chosen methods (keys of :data:`METHODS`, default :func:`default_methods`).

    ``harmonise`` first converts every image (training, internal and external test) with
    :func:`covidlab.external_set.harmonise`, which removes the trivial cues between sources
    (chapter 10, exercise 1).
    """
    methods = list(methods or default_methods(profile))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    start = time.perf_counter()
    manifest, data_text = load_common_data(profile, seed=seed)
    train_df, test_df = common_split(manifest, seed=seed)
    external_df, external_text = external_set.load(profile, seed=seed)
    external_files = [Path(path).name for path in external_df["path"]]
    if harmonise:
        train_df, test_df, external_df = (
            external_set.harmonise(frame) for frame in (train_df, test_df, external_df)
        )
        data_text += "; harmonised (8-bit grey, borders cropped, equalised, one size)"
    results = []
    for key in methods:
        if progress:
            print(f"[{profile}] training {METHODS[key].label} ...", flush=True)
        results.append(
            run_method(METHODS[key], train_df, test_df, profile, seed=seed, external_df=external_df)
        )
    return {
        "profile": profile,
        "data": data_text,
        "classes": list(CLASSES),
        "split": f"patient-disjoint hold-out, {TEST_FRACTION:.0%} test, seed {seed}",
        "n_train": len(train_df),
        "n_test": len(test_df),
        "test_counts": test_df["label"].value_counts().reindex(CLASSES, fill_value=0).to_dict(),
        "external_data": external_text,
        "external_counts": external_df["group"].value_counts().sort_index().to_dict(),
        "external_files": external_files,
        "external_patients": list(external_df["patient_id"]),
        "seed": seed,
        "wall_seconds": time.perf_counter() - start,
        "results": results,
    }


def write_results(results: dict, path: str | Path) -> Path:
    """Write the results as JSON, atomically (:func:`covidlab.data.write_file_atomically`)."""
    from covidlab.data import write_file_atomically

    return write_file_atomically(path, lambda handle: json.dump(results, handle, indent=2))


def read_results(path: str | Path) -> dict:
    """Read a results file written by :func:`write_results`."""
    path = Path(path)
    try:
        results = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(
            f"cannot read benchmark results {path}: {error}. Re-create it with "
            f"`python -m covidlab.benchmark --profile <profile> --out {path}`."
        ) from error
    if "results" not in results or "profile" not in results:
        raise ValueError(f"{path} is not a benchmark results file (no 'results'/'profile' keys)")
    return results


def default_results_path(profile: str) -> Path:
    """Where a chapter keeps a profile's results: ``<data_dir>/benchmark/<profile>.json``."""
    from covidlab.config import data_dir

    return data_dir() / "benchmark" / f"{profile}.json"


def load_or_run(
    profile: str,
    methods: Sequence[str] | None = None,
    *,
    path: str | Path | None = None,
    seed: int = 0,
) -> dict:
    """Read the results file of ``profile``; run the benchmark first if it is missing.

    The file is re-made when it holds another profile or seed, lacks one of ``methods``, or
    was trained with other settings than :func:`method_config` gives now (an older version of
    the benchmark, e.g. another demo recipe, or one without the external test or the
    ``classes_never_predicted`` key). It prints nothing: the chapters say which run they show
    (profile, data, split) from the results themselves. Two runs at once
    (chapters 10 and 11 executed in parallel) do not both train: the second waits for the
    first under a lock beside the file, then reads what it wrote.
    """
    from covidlab.download import exclusive_lock

    path = Path(path) if path is not None else default_results_path(profile)
    keys = list(methods or default_methods(profile))
    wanted = {METHODS[key].label: _settings(method_config(key, profile, seed=seed)) for key in keys}
    with exclusive_lock(path.with_name(f".{path.name}.lock"), "benchmark run"):
        if path.is_file():
            results = read_results(path)
            done = {
                record["method"]: _settings(record)
                for record in results["results"]
                if "external" in record and "classes_never_predicted" in record
            }
            same = all(done.get(label) == settings for label, settings in wanted.items())
            current = results["profile"] == profile and "external_patients" in results
            if current and results.get("seed") == seed and same:
                return results
        results = run_benchmark(profile, methods, seed=seed, progress=False)
        write_results(results, path)
    return results


def _settings(config_or_record) -> tuple:
    """The training settings a results record was made with, comparable with a RunConfig."""
    get = (
        config_or_record.get
        if isinstance(config_or_record, dict)
        else lambda key: getattr(config_or_record, key if key != "input_size" else "image_size")
    )
    return (
        tuple(get("input_size")),
        get("epochs"),
        get("batch_size"),
        get("optimizer"),
        get("learning_rate"),
        get("weights"),
    )


def leaderboard(results: dict) -> pd.DataFrame:
    """One row per method, best balanced accuracy first, with the paper's own claim beside it.

    ``accuracy`` comes with its 95 % Wilson interval (``ci_low``, ``ci_high``); balanced
    accuracy (the mean per-class sensitivity) beside it, since a model that answers one class
    for everything scores 1/3 there whatever the class mix; ``largest class share`` is the share
    of test images given to the most predicted class, and ``never predicts`` the classes the
    method gave no test image to (:func:`covidlab.metrics.classes_never_predicted`; "none" for a
    method that predicts all three). ``COVID-19 specificity (vs normal and pneumonia)`` is the
    one-vs-rest specificity: every image that is not COVID-19 counts, unlike chapter 10's
    specificity vs normal. ``external (COVID-19 vs normal)`` is the mean of the external
    COVID-19 sensitivity and specificity vs normal. The text of each claim is in
    :mod:`covidlab.chapters.benchmark` (``claims_table``).
    """
    claims = papers.HEADLINES.set_index("paper")
    rows = []
    for record in results["results"]:
        cm = np.asarray(record["confusion"]) if "confusion" in record else None
        balanced = record.get("balanced_accuracy")
        if balanced is None and cm is not None:
            balanced = metrics.balanced_accuracy(cm)
        share = record.get("largest_class_share")
        if share is None and cm is not None:
            share = float(cm.sum(axis=0).max() / cm.sum())
        rows.append(
            {
                "method": record["method"],
                "balanced accuracy": balanced,
                "accuracy": record["accuracy"],
                "ci_low": record["ci_low"],
                "ci_high": record["ci_high"],
                "COVID-19 sensitivity": record["covid_sensitivity"],
                "COVID-19 specificity (vs normal and pneumonia)": record["covid_specificity"],
                "largest class share": share,
                "never predicts": ", ".join(record["classes_never_predicted"]) or "none",
                "external (COVID-19 vs normal)": _external_balanced(record),
                "input": "x".join(map(str, record["input_size"])),
                "epochs": record["epochs"],
                "parameters": record["parameters"]["total"],
                "trainable": record["parameters"]["trainable"],
                "wall s": round(record["wall_seconds"], 1),
                "paper's claim": claims.loc[record["paper"], "value"],
                "paper": record["paper"],
            }
        )
    table = pd.DataFrame(rows)
    key = "balanced accuracy" if table["balanced accuracy"].notna().all() else "accuracy"
    order = [key] if key == "accuracy" else [key, "accuracy"]
    table = table.sort_values(order, ascending=False).reset_index(drop=True)
    table.index += 1
    return table.dropna(axis=1, how="all")


def _external_balanced(record: dict) -> float:
    """Mean of the external COVID-19 sensitivity and specificity vs normal (NaN without the
    test)."""
    scores = record.get("external")
    if not scores:
        return np.nan
    return (scores["sensitivity"] + scores["specificity"]) / 2


def describe(profile: str, methods: Sequence[str] | None = None, *, seed: int = 0) -> str:
    """The chapter's banner: profile, methods, classes, split, and what the profile changes."""
    methods = list(methods or default_methods(profile))
    changes = {
        "smoke": "synthetic images, tiny inputs, one epoch: the numbers mean nothing",
        "demo": (
            "real images of the shared sample, random weights, reduced inputs and data, "
            + "; ".join(f"{METHODS[key].label}: {demo_recipe_text(key)}" for key in DEMO_RECIPE)
            + ": a demo recipe, not the papers' settings"
        ),
        "paper": "each paper's input size, epochs and ImageNet weights on the full sources",
    }[profile]
    return (
        f"Profile: {profile} | methods: {', '.join(METHODS[m].label for m in methods)} | "
        f"classes: {' / '.join(CLASSES)} | {RECIPE} recipe, patient-disjoint hold-out "
        f"{TEST_FRACTION:.0%} test, seed {seed} | {changes}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m covidlab.benchmark", description="All five methods, one fair test."
    )
    parser.add_argument("--profile", choices=profiles.PROFILES, default=None)
    parser.add_argument("--out", default="benchmark-results.json", help="results JSON file")
    parser.add_argument("--methods", nargs="+", choices=list(METHODS), default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    profile = args.profile or profiles.default_profile()
    results = run_benchmark(profile, args.methods, seed=args.seed)
    path = write_results(results, args.out)
    print(leaderboard(results).drop(columns=["paper"]).round(3).to_string())
    print(f"wrote {path} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
