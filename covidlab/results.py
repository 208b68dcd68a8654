"""Results of runs written to disk, read back for the chapters (the paper profile on a GPU).

A run on the ``paper`` profile takes GPU hours, so it is not part of the published book. Run on
a GPU, it writes one JSON file per job, a job being one (paper, model, fold), under
``results/<profile>/<paper>/``, for example ``results/paper/coronet/CoroNet-fold1.json``.
Committed to the repository, those files are read by the paper's chapter, which shows them
beside the paper's own numbers (:func:`profile_results`); without them it says the run has not
been made and how to make it. ``results/README.md`` describes the steps.

A job file holds at least::

    {"paper": "coronet", "model": "CoroNet", "fold": 1, "profile": "paper",
     "classes": ["covid", "normal", "bacterial", "viral"], "confusion": [[...], ...]}

``fold`` is null for a hold-out run. Other keys (settings, ``y_true``/``y_prob``, history,
wall time, provenance) are kept and ignored here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from covidlab import metrics
from covidlab.config import REPO_ROOT, data_dir

REQUIRED_KEYS = ("paper", "model", "profile", "classes", "confusion")

#: What a demo run must reach to be shown as a result (balanced accuracy of a chapter's headline
#: model, by number of classes), and the largest share of test images any model may give to
#: one class. Below these a model has not learned, and its numbers are not worth printing.
DEMO_TARGETS = {2: 0.85, 3: 0.65, 4: 0.55}
MAX_ONE_CLASS_SHARE = 0.9


def results_dir() -> Path:
    """``$COVIDLAB_RESULTS_DIR``, else the repository's ``results/`` (a clone or an editable
    install), else ``<data dir>/results`` (a plain ``pip install``, e.g. on Colab)."""
    if os.environ.get("COVIDLAB_RESULTS_DIR"):
        return Path(os.environ["COVIDLAB_RESULTS_DIR"]).expanduser()
    if (REPO_ROOT / "results").is_dir():
        return REPO_ROOT / "results"
    return data_dir() / "results"


def read_jobs(
    paper_key: str, profile: str = "paper", directory: str | os.PathLike | None = None
) -> list[dict]:
    """Every job file of ``paper_key`` under ``<directory>/<profile>/<paper_key>/``, sorted.

    Raises ValueError naming the file when one is not valid JSON or lacks a required key.
    """
    folder = Path(directory or results_dir()) / profile / paper_key
    jobs = []
    for path in sorted(folder.glob("*.json")):
        try:
            job = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(
                f"cannot read the result file {path}: {error}; delete it and re-run its job"
            ) from error
        missing = (
            [key for key in REQUIRED_KEYS if key not in job]
            if isinstance(job, dict)
            else ["a JSON object"]
        )
        if missing:
            raise ValueError(
                f"{path} is not a job result (missing {missing}); delete it and re-run its job"
            )
        jobs.append({**job, "file": path.name})
    return jobs


def profile_results(
    paper_key: str,
    *,
    profile: str = "paper",
    positive: str = "covid",
    directory: str | os.PathLike | None = None,
) -> pd.DataFrame | None:
    """One row per model: folds found, test images, accuracy with its 95 % Wilson interval,
    and the ``positive`` class's sensitivity and specificity, from the fold matrices summed.

    None when no job file exists (the run has not been made).
    """
    jobs = read_jobs(paper_key, profile, directory)
    if not jobs:
        return None
    rows = []
    for model, group in pd.DataFrame(jobs).groupby("model", sort=False):
        classes = list(group["classes"].iloc[0])
        confusion = metrics.summed_confusion([np.asarray(cm) for cm in group["confusion"]])
        scores = metrics.accuracy_with_interval(confusion)
        row = {
            "model": model,
            "jobs": len(group),
            "folds": ", ".join(str(f) for f in group.get("fold", pd.Series(dtype=object)).dropna()),
            "test images": scores["n"],
            "accuracy": scores["accuracy"],
            "95 % CI": f"{scores['ci_low']:.3f}-{scores['ci_high']:.3f}",
        }
        if positive in classes:
            counts = metrics.one_vs_rest(confusion, classes.index(positive))
            row[f"{positive} sensitivity"] = counts.sensitivity
            row[f"{positive} specificity"] = counts.specificity
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


def not_run_message(paper_key: str, profile: str = "paper") -> str:
    """Markdown for a chapter whose ``profile`` run has no result files yet."""
    return (
        f"> **The `{profile}` profile has not been run for this chapter yet.** No result files "
        f"were found in `results/{profile}/{paper_key}/`. The `{profile}` profile needs a GPU, "
        "ImageNet weights and the full sources, none of which the published book's build "
        "machine has. To run it: open this chapter in Colab with a GPU runtime, download the "
        'data (`!covidlab-data download`), set `PROFILE = "paper"` and run all cells; '
        "`results/README.md` says how to save the job files so that this table shows them."
    )


def profile_results_view(paper_key: str, *, profile: str = "paper", positive: str = "covid"):
    """What a chapter displays: the table of :func:`profile_results`, or, when the run has not
    been made, :func:`not_run_message` as Markdown."""
    from IPython.display import Markdown

    table = profile_results(paper_key, profile=profile, positive=positive)
    return Markdown(not_run_message(paper_key, profile)) if table is None else table.round(3)


def record_run(
    chapter: str,
    model: str,
    confusion,
    classes,
    *,
    profile: str,
    headline: bool = False,
    experiment: str = "",
    directory: str | os.PathLike | None = None,
) -> Path:
    """Write one trained model's test result where the book's tests read it.

    Each chapter records every model it trains (``headline=True`` for the one its text is
    about) under ``<data dir>/recorded/<profile>/``; after the book is built, the tests check
    that every headline model reached :data:`DEMO_TARGETS` and that no model answered one
    class for more than :data:`MAX_ONE_CLASS_SHARE` of its test images. Returns the file.
    """
    confusion = np.asarray(confusion)
    folder = Path(directory or data_dir() / "recorded") / profile
    folder.mkdir(parents=True, exist_ok=True)
    name = "--".join(part for part in (chapter, model, experiment) if part)
    path = folder / f"{''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)}.json"
    record = {
        "chapter": chapter,
        "model": model,
        "experiment": experiment,
        "profile": profile,
        "headline": headline,
        "classes": list(classes),
        "confusion": confusion.tolist(),
        "balanced_accuracy": metrics.balanced_accuracy(confusion),
        "largest_class_share": float(confusion.sum(axis=0).max() / confusion.sum()),
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, indent=1), encoding="utf-8")
    temporary.replace(path)
    return path


def recorded_runs(profile: str, directory: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every run recorded by :func:`record_run` for ``profile``, one row each."""
    folder = Path(directory or data_dir() / "recorded") / profile
    rows = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(folder.glob("*.json"))]
    return pd.DataFrame(rows)
