"""Chapter 11 (the benchmark): the tables and figures that read the results of
:mod:`covidlab.benchmark`, the run itself (training, scoring, the results file) being shared
with chapter 10."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from covidlab import papers
from covidlab.benchmark import (
    METHODS,
    default_methods,
    method_config,
    never_predicted_text,
)


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


#: The leaderboard's score columns and its cost columns (two tables read better than one).
SCORE_COLUMNS = [
    "method",
    "balanced accuracy",
    "accuracy",
    "ci_low",
    "ci_high",
    "COVID-19 sensitivity",
    "COVID-19 specificity (vs normal and pneumonia)",
    "largest class share",
    "never predicts",
    "external (COVID-19 vs normal)",
    "paper's claim",
]
COST_COLUMNS = ["method", "input", "epochs", "parameters", "trainable", "wall s"]


def _with_missing_classes(row: pd.Series) -> str:
    """A leaderboard row's method, followed by the classes it never predicts, if any."""
    if row["never predicts"] == "none":
        return row["method"]
    return f"{row['method']}, which never predicts {row['never predicts']}"


def baseline_summary(table: pd.DataFrame, baseline: float) -> str:
    """Markdown: which methods clear the dotted line with their whole interval (naming the
    classes a method among them never predicts: clearing the line does not mean it learned
    every class), and the largest share of test images any method gives to one class (1.0: a
    model that answers one class)."""
    above = [_with_missing_classes(row) for _, row in table[table["ci_low"] > baseline].iterrows()]
    text = (
        f"Always answering the most frequent test class scores **{baseline:.2f}** (the dotted "
        f"line). {len(above)} of the {len(table)} methods score above it with their whole "
        "interval"
    )
    text += f" ({'; '.join(above)})." if above else "."
    if "largest class share" in table:
        worst = table.loc[table["largest class share"].idxmax()]
        text += (
            f" The most one-sided method, {_with_missing_classes(worst)}, gives "
            f"{100 * worst['largest class share']:.0f} % of the test images to one class (a "
            "model that had learned nothing and answered one class would give 100 %)."
        )
    return text


def claims_table(results: dict) -> pd.DataFrame:
    """What each paper's own headline number measures (:data:`covidlab.papers.HEADLINES`),
    for the methods of ``results``: a narrow table to read beside :func:`leaderboard`."""
    claims = papers.HEADLINES.set_index("paper")
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
        f"The top of the table is **{_with_missing_classes(best)}**, with {balanced}accuracy "
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


def never_predicted_note(results: dict) -> str:
    """Markdown: the methods that never predict some class on the common test, each with where
    its images of that class went and the cause where the run's settings show it
    (:func:`covidlab.benchmark.never_predicted_text`); or that every method predicts every
    class. Such a method has not learned that class, whatever its place in the leaderboard."""
    notes = [never_predicted_text(record) for record in results["results"]]
    notes = [f"- **Never predicts a class.** {note}" for note in notes if note]
    if not notes:
        return "Every method predicts each class for some test image."
    return "\n".join(notes)


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

    ``baseline`` (e.g. :func:`majority_baseline`) is drawn as a dotted line. A method that
    never predicts some class has it written under its name.
    """
    from covidlab.viz import add_caption, interval_rows

    names = [
        row["method"]
        if row["never predicts"] == "none"
        else f"{row['method']}\n(never predicts {row['never predicts']})"
        for _, row in table.iterrows()
    ]
    fig, ax, y = interval_rows(
        names,
        table["accuracy"],
        table["ci_low"],
        table["ci_high"],
        label="accuracy, common 3-class test (95 % Wilson)",
        margin=1.8,
        fontsize=8,
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
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("accuracy / balanced accuracy on the common test set")
    if baseline is not None:
        ax.axvline(baseline, ls=":", color="grey", label="always the most frequent class")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)
