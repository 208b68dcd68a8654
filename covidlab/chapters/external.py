"""Chapter 10 (the external test): what the external set holds, and each method's answers on
it beside its internal test, read from the results of :mod:`covidlab.benchmark` (which trains
the models and scores them on :mod:`covidlab.external_set`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from covidlab import external_set, papers


def group_table(external: pd.DataFrame) -> pd.DataFrame:
    """Images (= patients) per group, with the course label and the licence field."""
    licences = external.groupby("group")["license"].agg(
        lambda values: (
            ", ".join(sorted({str(v) for v in values if str(v).strip()})) or "(none given)"
        )
    )
    table = external.groupby("group").agg(
        label=("label", "first"), source=("source", "first"), images=("path", "size")
    )
    return table.assign(licence=licences).reset_index()


def _paper(record: dict) -> str:
    """The paper's short name (the backbone is in chapter 11's tables), for narrow tables."""
    return papers.get(record["paper"]).short_name


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
        internal = external_set.internal_covid_vs_normal(record["confusion"], results["classes"])
        for test, scores in (("internal", internal), ("external", record["external"])):
            rows[(_paper(record), test)] = {
                "sensitivity": _interval(scores, "sensitivity"),
                "specificity": _interval(scores, "specificity"),
            }
    table = pd.DataFrame(rows).T
    table.index.names = ["method", "test"]
    return table


def external_group_table(results: dict) -> pd.DataFrame:
    """What each method answered for the images of each external group (counts per class)."""
    frames = {
        _paper(record): pd.DataFrame(record["external"]["by_group"])
        .T.sort_index()
        .rename(columns=lambda name: f"said {name}")
        for record in results["results"]
    }
    return pd.concat(frames, names=["method", "group"])


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
        frame[_paper(record)] = record["external"]["predicted"]
    examples = frame.groupby("group").head(n_per_group).sort_values(["group", "patient"])
    return examples.set_index(["group", "patient"])


def plot_external(results: dict, *, caption: str | None = None):
    """COVID-19 sensitivity and specificity of every method, internal (circles) against
    external (squares), each with its 95 % Wilson interval."""
    from covidlab.viz import add_caption, new_figure

    records = results["results"]
    fig, axes = new_figure(1, 2, figsize=(7.2, 0.5 * len(records) + 1.8), sharey=True)
    y = np.arange(len(records))[::-1]
    for ax, name, title in zip(
        axes[0],
        ("sensitivity", "specificity"),
        ("COVID-19 sensitivity", "specificity (normal not called COVID-19)"),
        strict=True,
    ):
        for offset, test, marker in ((0.14, "internal", "o"), (-0.14, "external", "s")):
            scores = [
                external_set.internal_covid_vs_normal(r["confusion"], results["classes"])
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
        ax.set_yticks(y, [_paper(r) for r in records], fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)


def external_findings(results: dict) -> str:
    """Markdown: for each method, whether its external sensitivity and specificity fall below
    its internal ones by more than the intervals allow (read from this run's numbers)."""
    lines = []
    for record in results["results"]:
        internal = external_set.internal_covid_vs_normal(record["confusion"], results["classes"])
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
