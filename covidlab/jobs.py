"""Long runs as jobs: one (paper, model, fold) at a time, resumable, shardable, one JSON each.

A paper-profile run of Apostolopoulos & Mpesiana (2020) is 10 folds x 5 backbones, hours on a
GPU. Run as one process, a Colab disconnect loses every finished fold. Here each
(paper, model, fold) is a *job* that writes its own result file, atomically, when it ends:

- a job whose file exists is skipped, so re-running the same command continues the run;
- within a job, ``keras.callbacks.BackupAndRestore`` saves the training state after every
  epoch, so a killed job continues from its last finished epoch (its history is kept in a
  CSV log beside the backup, so the result still lists every epoch);
- ``shard(jobs, index, count)`` splits the job list deterministically between machines,
  processes or GPUs; ``covidlab report`` merges the files again.

The file format is the one :mod:`covidlab.results` reads (``results/<profile>/<paper>/``).

>>> [job.name for job in plan("coronet", profiles.resolve("coronet", "smoke"))]  # doctest: +SKIP
['CoroNet-fold1', 'CoroNet-fold2']
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from covidlab import papers
from covidlab.run_config import RunConfig


@dataclass(frozen=True, order=True)
class Job:
    """One model of one paper trained and tested once: a fold of k-fold CV, or the hold-out."""

    paper: str
    model: str
    fold: int | None  # 1-based; None for a hold-out protocol

    @property
    def name(self) -> str:
        return self.model if self.fold is None else f"{self.model}-fold{self.fold}"


def plan(paper_key: str, config: RunConfig) -> list[Job]:
    """Every job of a run: each model of ``config.models`` times each fold (or the hold-out)."""
    folds = [None] if config.n_splits is None else list(range(1, config.n_splits + 1))
    return [Job(paper_key, model, fold) for model in config.models for fold in folds]


def select(
    jobs: Sequence[Job], *, models: Sequence[str] = (), folds: Sequence[int] = ()
) -> list[Job]:
    """The jobs of the named models and folds (all when none are named)."""
    return [
        job
        for job in jobs
        if (not models or job.model in models) and (not folds or job.fold in folds)
    ]


def shard(jobs: Sequence[Job], index: int, count: int) -> list[Job]:
    """Shard ``index`` of ``count`` (1-based, as Slurm array tasks count): every ``count``-th
    job of the sorted list. Shards are disjoint and together hold every job, whatever order
    the jobs came in."""
    if count < 1 or not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count}: need 1 <= I <= N (e.g. --shard 2/4)")
    return sorted(jobs)[index - 1 :: count]


def result_path(out_dir: str | os.PathLike, config: RunConfig, job: Job) -> Path:
    """``<out_dir>/<profile>/<paper>/<job name>.json``."""
    return Path(out_dir) / config.profile / job.paper / f"{job.name}.json"


def manifest_hash(manifest: pd.DataFrame) -> str:
    """sha256 of the sorted (file name, label, patient) rows: the same images give the same
    hash on every machine, wherever the files live."""
    rows = sorted(
        f"{Path(path).name}\t{label}\t{patient}"
        for path, label, patient in zip(
            manifest["path"], manifest["label"], manifest["patient_id"], strict=True
        )
    )
    return hashlib.sha256("\n".join(rows).encode()).hexdigest()


def split_for(job: Job, manifest: pd.DataFrame, config: RunConfig):
    """The (train, validation, test) sets of ``job``, from ``config.seed`` (the split every
    chapter uses): its fold of the patient-grouped k-fold split, or the hold-out split, with
    a validation set taken from the training side when the paper had one
    (``config.validation_fraction``; otherwise validation is None)."""
    from covidlab import data

    if job.fold is not None:
        train_df, test_df = data.kfold_splits(manifest, config.n_splits, seed=config.seed)[
            job.fold - 1
        ]
        return train_df, None, test_df
    if config.validation_fraction:
        return data.train_validation_test_split(
            manifest, config.test_fraction, config.validation_fraction, seed=config.seed
        )
    train_df, test_df = data.holdout_split(manifest, config.test_fraction, seed=config.seed)
    return train_df, None, test_df


def train_job(
    job: Job,
    manifest: pd.DataFrame,
    config: RunConfig,
    *,
    callbacks: Sequence = (),
    strategy=None,
    verbose: int | str = 0,
):
    """Train and test one job in memory: ``(RunResult, result)``, ``result`` being the content
    of its JSON file.

    The job's split (:func:`split_for`) and the paper's model as :func:`covidlab.models.
    build_paper_model` builds it at the profile's input size and weights. Chapters train
    through this function (:func:`run_paper`) and so does ``covidlab run`` (:func:`run_job`),
    so both give the same result for the same profile, data and seed.
    """
    from covidlab import models, train

    spec = papers.get(job.paper)
    train_df, validation_df, test_df = split_for(job, manifest, config)

    def build():
        return models.build_paper_model(
            spec,
            job.model,
            input_shape=(*config.image_size, 3),
            weights=config.weights,
            num_classes=len(config.classes),
        )

    run = train.train_and_evaluate(
        build,
        train_df,
        test_df,
        config,
        validation_df=validation_df,
        verbose=verbose,
        callbacks=callbacks,
        strategy=strategy,
    )
    result = {
        "paper": job.paper,
        "model": job.model,
        "fold": job.fold,
        "profile": config.profile,
        "classes": list(config.classes),
        "confusion": run.confusion.tolist(),
        "y_true": run.y_true.tolist(),
        "y_prob": run.y_prob.tolist(),
        "history": {key: [float(v) for v in values] for key, values in run.history.items()},
        "n_train": len(train_df),
        "n_validation": 0 if validation_df is None else len(validation_df),
        "n_test": len(test_df),
        "wall_seconds": run.wall_seconds,
        "settings": {k: _plain(v) for k, v in dataclasses.asdict(config).items()},
        "provenance": provenance(manifest, strategy),
    }
    return run, result


def write_result(out_dir: str | os.PathLike, config: RunConfig, job: Job, result: dict) -> Path:
    """Write a job's result file (:func:`result_path`) atomically; return its path."""
    from covidlab.data import write_file_atomically

    return write_file_atomically(
        result_path(out_dir, config, job), lambda handle: json.dump(result, handle)
    )


def run_job(
    job: Job,
    manifest: pd.DataFrame,
    config: RunConfig,
    out_dir: str | os.PathLike,
    *,
    strategy=None,
    verbose: int | str = "auto",
) -> dict:
    """Train and test one job and write its result file; return the result.

    Returns the existing result without training when the file is there. The training state
    is backed up after each epoch under ``<result>.backup/`` and removed once the result is
    written; a job killed in between continues from its last epoch when run again (the
    result's history then comes from the epoch log kept beside the backup).
    """
    import keras

    path = result_path(out_dir, config, job)
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    backup = path.with_name(f"{job.name}.backup")
    backup.mkdir(parents=True, exist_ok=True)
    log = backup / "history.csv"
    callbacks = [  # the log first: killed between the two, an epoch is re-run, never lost
        keras.callbacks.CSVLogger(str(log), append=True),
        keras.callbacks.BackupAndRestore(str(backup / "state")),
    ]
    started = time.perf_counter()
    _, result = train_job(
        job, manifest, config, callbacks=callbacks, strategy=strategy, verbose=verbose
    )
    result["history"] = _history(log)
    result["wall_seconds"] = time.perf_counter() - started
    write_result(out_dir, config, job, result)
    shutil.rmtree(backup, ignore_errors=True)
    return result


def run_jobs(
    jobs: Sequence[Job],
    manifest: pd.DataFrame,
    config: RunConfig,
    out_dir: str | os.PathLike,
    *,
    strategy=None,
    verbose: int | str = "auto",
) -> list[dict]:
    """:func:`run_job` for each job in turn, printing one line per job."""
    results = []
    for number, job in enumerate(jobs, start=1):
        path = result_path(out_dir, config, job)
        status = "done, skipped" if path.is_file() else "training"
        print(f"[{number}/{len(jobs)}] {job.paper} {job.name}: {status}", flush=True)
        results.append(run_job(job, manifest, config, out_dir, strategy=strategy, verbose=verbose))
    return results


def run_paper(
    paper_key: str,
    manifest: pd.DataFrame,
    config: RunConfig,
    *,
    out_dir: str | os.PathLike | None = None,
    keep_models: bool = False,
    verbose: int | str = 0,
) -> dict:
    """Every job of ``config`` trained in this process, as a chapter runs them:
    ``{model name: CVResult}`` for a k-fold paper (folds summed), ``{model name: RunResult}``
    for a hold-out one.

    Each job goes through :func:`train_job`, as in ``covidlab run``; with ``out_dir`` its
    result file is written too (the same file ``covidlab run`` writes, so ``covidlab report``
    reads a chapter's run). ``keep_models=False`` drops each trained model to free memory.
    """
    from covidlab import train

    by_model: dict[str, list] = {}
    for job in plan(paper_key, config):
        run, result = train_job(job, manifest, config, verbose=verbose)
        if out_dir is not None:
            write_result(out_dir, config, job, result)
        if not keep_models:
            run.model = None
        by_model.setdefault(job.model, []).append((run, result["n_train"]))
    if config.n_splits is None:
        return {model: runs[0][0] for model, runs in by_model.items()}
    return {
        model: train.summarise_folds([run for run, _ in runs], [n for _, n in runs])
        for model, runs in by_model.items()
    }


def provenance(manifest: pd.DataFrame, strategy=None) -> dict:
    """What produced a result: data, package and library versions, device."""
    import keras
    import tensorflow as tf

    from covidlab import __version__

    gpus = [device.name for device in tf.config.list_logical_devices("GPU")]
    return {
        "manifest_sha256": manifest_hash(manifest),
        "n_images": len(manifest),
        "covidlab": __version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "device": ", ".join(gpus) or f"CPU ({platform.machine()}, {os.cpu_count()} cores)",
        "strategy": type(strategy).__name__ if strategy is not None else "default",
        "mixed_precision": keras.mixed_precision.global_policy().name,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _history(log: Path) -> dict[str, list[float]]:
    """Every epoch's metrics from the CSV log, across restarts (the last row of an epoch wins)."""
    if not log.is_file():
        return {}
    with log.open(newline="", encoding="utf-8") as handle:
        rows = {int(row["epoch"]): row for row in csv.DictReader(handle) if row.get("epoch")}
    keys = [key for key in next(iter(rows.values()), {}) if key != "epoch"]

    def number(text: str | None) -> float:
        return float(text) if text not in (None, "", "NA") else float("nan")

    history = {key: [number(rows[epoch].get(key)) for epoch in sorted(rows)] for key in keys}
    return {key: values for key, values in history.items() if not all(v != v for v in values)}


def _plain(value):
    return list(value) if isinstance(value, tuple) else value


# ----------------------------------------------------------------------------------------------
# Merging the job files: covidlab report
# ----------------------------------------------------------------------------------------------


def report(
    paper_key: str, results_dir: str | os.PathLike, *, profile: str = "paper"
) -> dict[str, pd.DataFrame | str]:
    """Merge a run's job files: a per-fold table, the summed confusion matrix of each model,
    and this run beside the paper (accuracy and the COVID-19 sensitivity and specificity with
    95 % Wilson intervals). ``"missing"`` names the jobs of the paper's plan without a file.
    """
    from covidlab import metrics, profiles, results

    jobs = results.read_jobs(paper_key, profile, results_dir)
    if not jobs:
        raise FileNotFoundError(
            f"no job files in {Path(results_dir) / profile / paper_key}: run "
            f"`covidlab run {paper_key} --profile {profile} --out {results_dir}` first"
        )
    config = profiles.resolve(
        paper_key, profile, models=tuple(dict.fromkeys(j["model"] for j in jobs))
    )
    done = {(job["model"], job.get("fold")) for job in jobs}
    missing = [job.name for job in plan(paper_key, config) if (job.model, job.fold) not in done]
    per_fold, merged = [], []
    for model in dict.fromkeys(job["model"] for job in jobs):
        model_jobs = sorted(
            (j for j in jobs if j["model"] == model), key=lambda j: j.get("fold") or 0
        )
        classes = model_jobs[0]["classes"]
        for job in model_jobs:
            cm = job["confusion"]
            per_fold.append(
                {
                    "model": model,
                    "fold": job.get("fold") or "hold-out",
                    "test images": int(sum(map(sum, cm))),
                    "accuracy": metrics.accuracy(cm),
                    "balanced accuracy": metrics.balanced_accuracy(cm),
                    "wall s": round(job.get("wall_seconds", float("nan")), 1),
                }
            )
        summed = metrics.summed_confusion([j["confusion"] for j in model_jobs])
        summary = metrics.summary(summed, classes, positive="covid")
        merged.append(
            {
                "model": model,
                "folds": len(model_jobs),
                **{
                    name: _with_interval(summary, name)
                    for name in ("accuracy", "sensitivity", "specificity")
                },
                "confusion (rows true, columns predicted)": summed.tolist(),
                "classes": classes,
            }
        )
    return {
        "per_fold": pd.DataFrame(per_fold),
        "summary": pd.DataFrame(merged),
        "missing": ", ".join(missing),
    }


def _with_interval(summary: dict, name: str) -> str:
    low, high = summary[f"{name}_ci"]
    return f"{summary[name]:.3f} ({low:.3f}-{high:.3f})"


def main(argv: Sequence[str] | None = None) -> int:
    """``covidlab run`` and ``covidlab report``: the console script."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="covidlab", description="Run a paper's jobs (paper, model, fold) and merge them."
    )
    commands = parser.add_subparsers(required=True, dest="command")
    run = commands.add_parser("run", help="train the selected jobs, one JSON file each")
    run.add_argument("paper", choices=list(papers.ALL))
    run.add_argument("--profile", choices=("smoke", "demo", "paper"), default=None)
    run.add_argument(
        "--model", nargs="+", default=[], help="models to run (default: the profile's)"
    )
    run.add_argument("--fold", nargs="+", type=int, default=[], help="folds to run (1-based)")
    run.add_argument("--shard", default="1/1", help="I/N: run every N-th job from the I-th")
    run.add_argument("--out", type=Path, default=Path("results"), help="results folder")
    run.add_argument(
        "--strategy", choices=("default", "mirrored", "multiworker"), default="default"
    )
    run.add_argument("--mixed-precision", action="store_true", help="float16 compute (GPU)")
    run.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    merge = commands.add_parser("report", help="merge the job files of a paper")
    merge.add_argument("paper", choices=list(papers.ALL))
    merge.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    merge.add_argument("--profile", choices=("smoke", "demo", "paper"), default="paper")
    merge.add_argument("--format", choices=("md", "csv", "json"), default="md")
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run_command(args)
        return _report_command(args)
    except (OSError, ValueError, KeyError, RuntimeError) as error:
        print(f"covidlab {args.command}: error: {error}", file=sys.stderr)
        return 1


def _run_command(args) -> int:
    from covidlab import profiles

    index, _, count = args.shard.partition("/")
    if not (index.isdigit() and count.isdigit()):
        raise ValueError(f"--shard {args.shard!r}: write it as I/N, e.g. --shard 2/4")
    overrides = {"models": tuple(args.model)} if args.model else {}
    config = profiles.resolve(args.paper, args.profile, **overrides)
    bad_folds = [f for f in args.fold if config.n_splits is None or not 1 <= f <= config.n_splits]
    if bad_folds:
        folds = "none (hold-out)" if config.n_splits is None else f"1 to {config.n_splits}"
        raise ValueError(f"--fold {bad_folds}: {args.paper} on {config.profile} has folds {folds}")
    jobs = shard(select(plan(args.paper, config), folds=args.fold), int(index), int(count))
    if args.mixed_precision:
        import keras

        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = _strategy(args.strategy)
    print(profiles.describe(config))
    print(f"{len(jobs)} job(s) in shard {args.shard}: {', '.join(j.name for j in jobs) or 'none'}")
    manifest = profiles.load_data(config)
    run_jobs(
        jobs, manifest, config, args.out, strategy=strategy, verbose=0 if args.quiet else "auto"
    )
    return 0


def _strategy(name: str):
    if name == "default":
        return None
    import tensorflow as tf

    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.MultiWorkerMirroredStrategy()  # reads the cluster from TF_CONFIG


def _report_command(args) -> int:
    merged = report(args.paper, args.results, profile=args.profile)
    if args.format == "json":
        print(
            json.dumps(
                {
                    key: value.to_dict(orient="records")
                    if isinstance(value, pd.DataFrame)
                    else value
                    for key, value in merged.items()
                },
                indent=1,
            )
        )
    elif args.format == "csv":
        print(merged["per_fold"].to_csv(index=False), end="")
        print()
        print(merged["summary"].drop(columns=["classes"]).to_csv(index=False), end="")
    else:
        print(f"## {papers.get(args.paper).short_name}: {args.profile} profile\n")
        print(merged["per_fold"].to_markdown(index=False))
        print()
        print(merged["summary"].drop(columns=["classes"]).to_markdown(index=False))
    if merged["missing"]:
        print(
            f"\nmissing jobs (no result file yet): {merged['missing']}; run them with "
            f"`covidlab run {args.paper} --profile {args.profile} --out {args.results}`"
        )
    return 0
