"""All five methods, one fair test.

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

Every trained model is also tested on the external set of :mod:`covidlab.external` (X-rays from
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

from covidlab import external, metrics, papers, profiles

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


#: The headline model of each paper (the one its abstract reports).
METHODS = {
    "covidx_net": Method("covidx_net", "VGG19"),
    "soares": Method("soares", "VGG16"),
    "aboughazala": Method("aboughazala", "ResNet50"),
    "apostolopoulos": Method("apostolopoulos", "MobileNetV2"),
    "coronet": Method("coronet", "CoroNet"),
}


#: The benchmark's own cap on the epochs of every method whose backbone trains, on the demo
#: profile. It binds only for COVIDX-Net, whose demo recipe (:data:`covidlab.profiles.DEMO_RECIPES`)
#: is the paper's 50 epochs of plain SGD, set for a chapter with 40 training images; on the
#: common training set (139 images) 50 epochs were the slowest part of the benchmark (longer
#: than the four other methods together). Measured there (seed 0, balanced accuracy on the common
#: test set, share of the most predicted class): 15 epochs 0.44 (92 % one class), 20 epochs 0.49
#: (89 %), 25 epochs 0.71, 30 epochs 0.78, 35 epochs 0.86, 50 epochs 0.85; about 8 CPU-seconds
#: an epoch. 30 epochs keep a model that learned, at 3/5 of the cost. A frozen base (Soares)
#: trains only its head, on features computed once: its epochs cost seconds and are not capped.
DEMO_MAX_EPOCHS = 30

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


def trains_backbone(key: str) -> bool:
    """Whether method ``key`` trains (part of) its backbone, rather than a head on a frozen one."""
    method = METHODS[key]
    model = papers.get(method.paper_key).models[method.model_name]
    return model.base_trainable or model.layer_cutoff is not None


def method_config(key: str, profile: str, *, seed: int = 0) -> profiles.RunConfig:
    """The run settings of method ``key``: its paper's (:func:`covidlab.profiles.resolve`) on
    the common classes, with the benchmark's epoch cap on demo (:data:`DEMO_MAX_EPOCHS`) for a
    method whose backbone trains (:func:`trains_backbone`)."""
    method = METHODS[key]
    config = profiles.resolve(
        method.paper_key, profile, seed=seed, classes=CLASSES, models=(method.model_name,)
    )
    if profile == "demo" and config.epochs > DEMO_MAX_EPOCHS and trains_backbone(key):
        config = dataclasses.replace(
            config,
            epochs=DEMO_MAX_EPOCHS,
            notes=f"{config.notes}; epochs capped at {DEMO_MAX_EPOCHS} by the benchmark",
        )
    return config


def settings_table(
    profile: str, methods: Sequence[str] | None = None, *, seed: int = 0
) -> pd.DataFrame:
    """What each method keeps from its paper and what the profile changes, one row each."""
    rows = {}
    for key in methods or default_methods(profile):
        method, spec = METHODS[key], papers.get(key)
        config = method_config(key, profile, seed=seed)
        frozen = spec.models[method.model_name]
        rows[method.label] = {
            "backbone": frozen.backbone,
            "input": f"{config.image_size[0]}x{config.image_size[1]} ({config.resize})",
            "epochs (paper)": spec.epochs,
            "epochs (this run)": config.epochs,
            "batch": config.batch_size,
            "optimizer": config.optimizer,
            "learning rate": config.learning_rate,
            "weights": config.weights or "none (random)",
        }
    return pd.DataFrame(rows).T


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
        return spec.build_model(
            method.model_name,
            input_shape=(*config.image_size, 3),
            weights=config.weights,
            num_classes=len(CLASSES),
        )

    run = train.train_and_evaluate(build, train_df, test_df, config, verbose=0)
    counts = models.parameter_counts(run.model)
    record = _record(method, config, run.confusion, counts, run.wall_seconds)
    if external_df is not None:
        record["external"] = external.predict(run.model, external_df, config).to_json()
    return record


def _record(method: Method, config, cm: np.ndarray, counts: dict, wall_seconds: float) -> dict:
    correct, total = int(np.trace(cm)), int(cm.sum())
    low, high = metrics.wilson_interval(correct, total)
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
        "n_test": total,
        "correct": correct,
        "accuracy": correct / total,
        "balanced_accuracy": metrics.balanced_accuracy(cm),
        "ci_low": low,
        "ci_high": high,
        "covid_sensitivity": covid.sensitivity,
        "covid_specificity": covid.specificity,
        "per_class": json.loads(per_class.to_json(orient="index")),
        "largest_class_share": float(predicted.max() / total),
        "confusion": cm.tolist(),
        "parameters": counts,
        "wall_seconds": wall_seconds,
    }


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
    :func:`covidlab.external.harmonise`, which removes the trivial cues between sources
    (chapter 10, exercise 1).
    """
    methods = list(methods or default_methods(profile))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    start = time.perf_counter()
    manifest, data_text = load_common_data(profile, seed=seed)
    train_df, test_df = common_split(manifest, seed=seed)
    external_df, external_text = external.load(profile, seed=seed)
    external_files = [Path(path).name for path in external_df["path"]]
    if harmonise:
        train_df, test_df, external_df = (
            external.harmonise(frame) for frame in (train_df, test_df, external_df)
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
    """Write the results as JSON (atomically: a temporary file, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(results, indent=2))
    temporary.replace(path)
    return path


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
    the benchmark, e.g. another epoch cap, or one without the external test). Two runs at once
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
                if "external" in record
            }
            same = all(done.get(label) == settings for label, settings in wanted.items())
            current = results["profile"] == profile and "external_patients" in results
            if current and results.get("seed") == seed and same:
                print(f"read {path.name}, written by an earlier run (delete it to train again)")
                return results
        results = run_benchmark(profile, methods, seed=seed)
        write_results(results, path)
    print(f"wrote {path.name} in the data folder's benchmark/ (read back by later runs)")
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
    of test images given to the most predicted class. The text of each claim is in
    :func:`claims_table`.
    """
    from covidlab.shortcuts import HEADLINES

    claims = HEADLINES.set_index("paper")
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
                "covid sensitivity": record["covid_sensitivity"],
                "covid specificity": record["covid_specificity"],
                "largest class share": share,
                "external": _external_balanced(record),
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


#: The leaderboard's score columns and its cost columns (two tables read better than one).
SCORE_COLUMNS = [
    "method",
    "balanced accuracy",
    "accuracy",
    "ci_low",
    "ci_high",
    "covid sensitivity",
    "covid specificity",
    "largest class share",
    "external",
    "paper's claim",
]
COST_COLUMNS = ["method", "input", "epochs", "parameters", "trainable", "wall s"]


def _external_balanced(record: dict) -> float:
    """Mean of the external COVID-19 sensitivity and specificity (NaN without the test)."""
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
            f"trained backbones capped at {DEMO_MAX_EPOCHS} epochs: a demo recipe, not the "
            "papers' settings"
        ),
        "paper": "each paper's input size, epochs and ImageNet weights on the full sources",
    }[profile]
    return (
        f"Profile: {profile} | methods: {', '.join(METHODS[m].label for m in methods)} | "
        f"classes: {' / '.join(CLASSES)} | {RECIPE} recipe, patient-disjoint hold-out "
        f"{TEST_FRACTION:.0%} test, seed {seed} | {changes}"
    )


def baseline_summary(table: pd.DataFrame, baseline: float) -> str:
    """Markdown: which methods clear the dotted line with their whole interval, and the largest
    share of test images any method gives to one class (1.0: a model that answers one class)."""
    above = table[table["ci_low"] > baseline]["method"].tolist()
    text = (
        f"Always answering the most frequent test class scores **{baseline:.2f}** (the dotted "
        f"line). {len(above)} of the {len(table)} methods score above it with their whole "
        "interval"
    )
    text += f" ({', '.join(above)})." if above else "."
    if "largest class share" in table:
        worst = table.loc[table["largest class share"].idxmax()]
        text += (
            f" The most one-sided method, {worst['method']}, gives "
            f"{100 * worst['largest class share']:.0f} % of the test images to one class (a "
            "model that had learned nothing and answered one class would give 100 %)."
        )
    return text


def claims_table(results: dict) -> pd.DataFrame:
    """What each paper's own headline number measures (:data:`covidlab.shortcuts.HEADLINES`),
    for the methods of ``results``: a narrow table to read beside :func:`leaderboard`."""
    from covidlab.shortcuts import HEADLINES

    claims = HEADLINES.set_index("paper")
    rows = {}
    for record in results["results"]:
        claim = claims.loc[record["paper"]]
        rows[record["method"]] = {
            "paper's claim": claim["value"],
            "test images": int(claim["n_test"]),
            "what it measures": claim["result"],
        }
    return pd.DataFrame(rows).T


def majority_baseline(results: dict) -> float:
    """Accuracy of always answering the test set's most frequent class (the floor to beat)."""
    counts = results["test_counts"]
    return max(counts.values()) / sum(counts.values())


def interval_overlaps(table: pd.DataFrame) -> pd.DataFrame:
    """For each method of a :func:`leaderboard`, the other methods whose accuracy interval
    overlaps its own: methods that overlap cannot be ranked by this test set."""
    rows = {}
    for name, low, high in zip(table["method"], table["ci_low"], table["ci_high"], strict=True):
        others = [
            other
            for other, other_low, other_high in zip(
                table["method"], table["ci_low"], table["ci_high"], strict=True
            )
            if other != name and other_low <= high and low <= other_high
        ]
        rows[name] = {
            "overlapping intervals": len(others),
            "with": ", ".join(others) or "none",
        }
    return pd.DataFrame(rows).T


def ranking_summary(table: pd.DataFrame) -> str:
    """A Markdown paragraph reading the ranking through its intervals (for ``display``)."""
    best = table.iloc[0]
    overlaps = interval_overlaps(table)
    n_best = int(overlaps.loc[best["method"], "overlapping intervals"])
    ranked = int((overlaps["overlapping intervals"] == 0).sum())
    balanced = (
        f"balanced accuracy {best['balanced accuracy']:.2f} and "
        if "balanced accuracy" in table
        else ""
    )
    others = (
        f"overlaps those of {n_best} of the other {len(table) - 1} methods"
        if len(table) > 2
        else f"{'overlaps' if n_best else 'does not overlap'} the other method's"
    )
    text = (
        f"The top of the table is **{best['method']}**, with {balanced}accuracy "
        f"{best['accuracy']:.2f} (95 % interval {best['ci_low']:.2f}-{best['ci_high']:.2f}). "
        f"Its interval {others}"
    )
    if n_best:
        text += ": on this test set it is not measurably better than they are."
    else:
        text += ": on this test set it is measurably better than every other method."
    if ranked == len(table):
        text += " No two intervals overlap, so the order of the whole table is supported."
    else:
        text += (
            f" {len(table) - ranked} of the {len(table)} methods share an interval with at least "
            "one other: the data cannot put those in order, whatever the points say."
        )
    return text


def confusion_table(results: dict) -> pd.DataFrame:
    """Every method's confusion matrix in one table (rows: method and true class)."""
    classes = results["classes"]
    return pd.concat(
        {
            record["method"]: pd.DataFrame(
                record["confusion"],
                index=pd.Index(classes, name="true class"),
                columns=[f"predicted {name}" for name in classes],
            )
            for record in results["results"]
        },
        names=["method", "true class"],
    )


def per_class_table(results: dict) -> pd.DataFrame:
    """Per-class precision, sensitivity, specificity and F1 of every method."""
    return pd.concat(
        {record["method"]: pd.DataFrame(record["per_class"]).T for record in results["results"]},
        names=["method", "class"],
    )


def plot_leaderboard(
    table: pd.DataFrame, *, baseline: float | None = None, caption: str | None = None
):
    """This run's accuracy with its Wilson interval, its balanced accuracy, and each paper's
    own claim, one row per method of a :func:`leaderboard`.

    ``baseline`` (e.g. :func:`majority_baseline`) is drawn as a dotted line.
    """
    from covidlab.viz import add_caption, new_figure

    fig, axes = new_figure(figsize=(7.5, 0.6 * len(table) + 1.8))
    ax = axes[0, 0]
    y = np.arange(len(table))[::-1]
    ax.errorbar(
        table["accuracy"],
        y,
        xerr=[table["accuracy"] - table["ci_low"], table["ci_high"] - table["accuracy"]],
        fmt="o",
        capsize=4,
        label="accuracy, common 3-class test (95 % Wilson)",
    )
    if "balanced accuracy" in table:
        ax.scatter(
            table["balanced accuracy"],
            y - 0.18,
            marker="D",
            s=30,
            color="C2",
            label="balanced accuracy",
        )
    ax.scatter(table["paper's claim"], y, marker="*", s=120, color="C3", label="paper's own claim")
    ax.set_yticks(y, table["method"], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy / balanced accuracy on the common test set")
    if baseline is not None:
        ax.axvline(baseline, ls=":", color="grey", label="always the most frequent class")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)


# --- The external test (chapter 10) ----------------------------------------------------------


def _interval(scores: dict, name: str) -> str:
    hits, total = scores[f"{name}_counts"]
    if not total:
        return "no images"
    return (
        f"{scores[name]:.2f} ({scores[f'{name}_low']:.2f}-{scores[f'{name}_high']:.2f}), "
        f"{hits}/{total}"
    )


def external_table(results: dict) -> pd.DataFrame:
    """Each method's COVID-19 sensitivity and specificity on its internal test set and on the
    external set, as "rate (95 % Wilson interval), hits/images".

    Internal: from the 3-class confusion matrix, COVID-19 images called COVID-19, and normal
    images not called COVID-19 (pneumonia rows left out: the external set has no pneumonia).
    """
    rows = {}
    for record in results["results"]:
        internal = external.internal_covid_vs_normal(record["confusion"], results["classes"])
        for test, scores in (("internal", internal), ("external", record["external"])):
            rows[(record["method"], test)] = {
                "COVID-19 sensitivity": _interval(scores, "sensitivity"),
                "specificity (normal)": _interval(scores, "specificity"),
            }
    table = pd.DataFrame(rows).T
    table.index.names = ["method", "test set"]
    return table


def external_group_table(results: dict) -> pd.DataFrame:
    """What each method answered for the images of each external group (counts per class)."""
    frames = {
        record["method"]: pd.DataFrame(record["external"]["by_group"])
        .T.sort_index()
        .rename(columns=lambda name: f"said {name}")
        for record in results["results"]
    }
    return pd.concat(frames, names=["method", "external group"])


def external_examples(results: dict, n_per_group: int = 3) -> pd.DataFrame:
    """The first ``n_per_group`` images of each external group (one per patient) and every
    method's answer."""
    first = results["results"][0]["external"]
    frame = pd.DataFrame(
        {
            "patient": results["external_patients"],
            "group": first["groups"],
            "label": first["labels"],
        }
    )
    for record in results["results"]:
        frame[record["method"]] = record["external"]["predicted"]
    examples = frame.groupby("group").head(n_per_group).sort_values(["group", "patient"])
    return examples.set_index(["group", "patient"])


def plot_external(results: dict, *, caption: str | None = None):
    """COVID-19 sensitivity and specificity of every method, internal (circles) against
    external (squares), each with its 95 % Wilson interval."""
    from covidlab.viz import add_caption, new_figure

    records = results["results"]
    fig, axes = new_figure(1, 2, figsize=(9, 0.55 * len(records) + 1.9), sharey=True)
    y = np.arange(len(records))[::-1]
    for ax, name, title in zip(
        axes[0],
        ("sensitivity", "specificity"),
        ("COVID-19 sensitivity", "specificity (normal not called COVID-19)"),
        strict=True,
    ):
        for offset, test, marker in ((0.14, "internal", "o"), (-0.14, "external", "s")):
            scores = [
                external.internal_covid_vs_normal(r["confusion"], results["classes"])
                if test == "internal"
                else r["external"]
                for r in records
            ]
            value = np.array([score[name] for score in scores])
            low = np.array([score[f"{name}_low"] for score in scores])
            high = np.array([score[f"{name}_high"] for score in scores])
            ax.errorbar(
                value,
                y + offset,
                xerr=[value - low, high - value],
                fmt=marker,
                capsize=3,
                label=f"{test} test",
            )
        ax.set_title(title, fontsize=9)
        ax.set_xlim(-0.02, 1.02)
        ax.set_yticks(y, [r["method"] for r in records], fontsize=8)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)


def external_findings(results: dict) -> str:
    """Markdown: for each method, whether its external sensitivity and specificity fall below
    its internal ones by more than the intervals allow (read from this run's numbers)."""
    lines = []
    for record in results["results"]:
        internal = external.internal_covid_vs_normal(record["confusion"], results["classes"])
        outside = record["external"]
        verdicts = []
        for name in ("sensitivity", "specificity"):
            if outside[f"{name}_high"] < internal[f"{name}_low"]:
                verdicts.append(f"{name} **drops** ({internal[name]:.2f} -> {outside[name]:.2f})")
            elif outside[f"{name}_low"] > internal[f"{name}_high"]:
                verdicts.append(f"{name} rises ({internal[name]:.2f} -> {outside[name]:.2f})")
            else:
                verdicts.append(
                    f"{name} {internal[name]:.2f} -> {outside[name]:.2f}, intervals overlap"
                )
        lines.append(f"- **{record['method']}**: " + "; ".join(verdicts) + ".")
    return "\n".join(lines)


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
