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

Run from a shell::

    python -m covidlab.benchmark --profile demo --out results.json
    python -m covidlab.benchmark --profile smoke --methods coronet soares --out smoke.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from covidlab import metrics, papers, profiles

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


def run_method(
    method: Method,
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    profile: str,
    *,
    seed: int = 0,
) -> dict:
    """Train one method on ``train_df``, evaluate on ``test_df``; return one results record.

    Trains through :func:`covidlab.train.train_and_evaluate`, as the chapters do: the same
    session reset, seeding, output check and batch-norm recalibration.
    """
    from covidlab import models, train

    spec = papers.get(method.paper_key)
    config = profiles.resolve(
        method.paper_key, profile, seed=seed, classes=CLASSES, models=(method.model_name,)
    )

    def build():
        return spec.build_model(
            method.model_name,
            input_shape=(*config.image_size, 3),
            weights=config.weights,
            num_classes=len(CLASSES),
        )

    run = train.train_and_evaluate(build, train_df, test_df, config, verbose=0)
    counts = models.parameter_counts(run.model)
    return _record(method, config, run.confusion, counts, run.wall_seconds)


def _record(method: Method, config, cm: np.ndarray, counts: dict, wall_seconds: float) -> dict:
    correct, total = int(np.trace(cm)), int(cm.sum())
    low, high = metrics.wilson_interval(correct, total)
    covid = metrics.one_vs_rest(cm, CLASSES.index("covid"))
    per_class = metrics.classification_table(cm, list(CLASSES))
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
        "confusion": cm.tolist(),
        "parameters": counts,
        "wall_seconds": wall_seconds,
    }


def run_benchmark(
    profile: str, methods: Sequence[str] | None = None, *, seed: int = 0, progress: bool = True
) -> dict:
    """Run the chosen methods (keys of :data:`METHODS`, default :func:`default_methods`)."""
    methods = list(methods or default_methods(profile))
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {list(METHODS)}")
    start = time.perf_counter()
    manifest, data_text = load_common_data(profile, seed=seed)
    train_df, test_df = common_split(manifest, seed=seed)
    results = []
    for key in methods:
        if progress:
            print(f"[{profile}] training {METHODS[key].label} ...", flush=True)
        results.append(run_method(METHODS[key], train_df, test_df, profile, seed=seed))
    return {
        "profile": profile,
        "data": data_text,
        "classes": list(CLASSES),
        "split": f"patient-disjoint hold-out, {TEST_FRACTION:.0%} test, seed {seed}",
        "n_train": len(train_df),
        "n_test": len(test_df),
        "test_counts": test_df["label"].value_counts().reindex(CLASSES, fill_value=0).to_dict(),
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

    The file is re-made when it holds another profile or seed, or lacks one of ``methods``.
    """
    path = Path(path) if path is not None else default_results_path(profile)
    wanted = {METHODS[m].label for m in (methods or default_methods(profile))}
    if path.is_file():
        results = read_results(path)
        done = {record["method"] for record in results["results"]}
        if results["profile"] == profile and results.get("seed") == seed and wanted <= done:
            print(f"read {path} (written by an earlier run)")
            return results
    results = run_benchmark(profile, methods, seed=seed)
    write_results(results, path)
    print(f"wrote {path}")
    return results


def leaderboard(results: dict) -> pd.DataFrame:
    """One row per method, best accuracy first, with the paper's own claim beside it."""
    from covidlab.shortcuts import HEADLINES

    claims = HEADLINES.set_index("paper")
    rows = []
    for record in results["results"]:
        claim = claims.loc[record["paper"]]
        rows.append(
            {
                "method": record["method"],
                "accuracy": record["accuracy"],
                "balanced accuracy": record.get("balanced_accuracy", np.nan),
                "ci_low": record["ci_low"],
                "ci_high": record["ci_high"],
                "covid sensitivity": record["covid_sensitivity"],
                "covid specificity": record["covid_specificity"],
                "input": "x".join(map(str, record["input_size"])),
                "epochs": record["epochs"],
                "parameters": record["parameters"]["total"],
                "trainable": record["parameters"]["trainable"],
                "wall s": round(record["wall_seconds"], 1),
                "paper's claim": claim["value"],
                "paper's claim is": claim["result"],
                "paper": record["paper"],
            }
        )
    table = pd.DataFrame(rows).sort_values("accuracy", ascending=False).reset_index(drop=True)
    table.index += 1
    return table


def majority_baseline(results: dict) -> float:
    """Accuracy of always answering the test set's most frequent class (the floor to beat)."""
    counts = results["test_counts"]
    return max(counts.values()) / sum(counts.values())


def plot_leaderboard(
    table: pd.DataFrame, *, baseline: float | None = None, caption: str | None = None
):
    """This run's accuracy with its Wilson interval beside each paper's own claim.

    ``baseline`` (e.g. :func:`majority_baseline`) is drawn as a dotted line.
    """
    from covidlab.viz import add_caption, new_figure

    fig, axes = new_figure(figsize=(7.5, 0.6 * len(table) + 1.5))
    ax = axes[0, 0]
    y = np.arange(len(table))[::-1]
    ax.errorbar(
        table["accuracy"],
        y,
        xerr=[table["accuracy"] - table["ci_low"], table["ci_high"] - table["accuracy"]],
        fmt="o",
        capsize=4,
        label="this run, common 3-class test (95 % Wilson)",
    )
    ax.scatter(table["paper's claim"], y, marker="*", s=120, color="C3", label="paper's own claim")
    ax.set_yticks(y, table["method"], fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy")
    if baseline is not None:
        ax.axvline(baseline, ls=":", color="grey", label="always the most frequent class")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)


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
    print(leaderboard(results).drop(columns=["paper's claim is", "paper"]).to_string())
    print(f"wrote {path} ({results['wall_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
