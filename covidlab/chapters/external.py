"""Chapter 10 (the external test): what the external set holds, and each method's answers on
it beside its internal test, read from the results of :mod:`covidlab.benchmark` (which trains
the models and scores them on :mod:`covidlab.external_set`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from covidlab import external_set, papers
from covidlab.benchmark import never_predicted_text

#: The classes the external test asks about: a model that never predicts one of them on its
#: internal test is left out of the shortcut evidence (:func:`answers_covid_and_normal`).
ASKED = ("covid", "normal")

#: Why a model that never predicts one of :data:`ASKED` says nothing about shortcuts here.
LEFT_OUT_BECAUSE = {
    "normal": (
        "As it never says normal, its specificity vs normal inside comes from calling the normal "
        "images something else, not from recognising them, and outside it could not call any "
        "external normal image normal, whatever the image's source."
    ),
    "covid": (
        "As it never says COVID-19, its COVID-19 sensitivity is zero inside and outside, "
        "whatever the image's source."
    ),
}


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


def answers_covid_and_normal(record: dict) -> bool:
    """Whether the model of a benchmark record predicts both COVID-19 and normal for some
    internal test image.

    One that never says "normal" takes its specificity vs normal inside from calling the normal
    images pneumonia, and calls no external normal image normal whatever its source; one that
    never says "COVID-19" has no sensitivity anywhere. Their numbers are no evidence of a
    shortcut, so the chapter leaves them out of that reading and says why
    (:data:`LEFT_OUT_BECAUSE`, :func:`external_findings`).
    """
    return not never_says(record)


def never_says(record: dict) -> list[str]:
    """The classes of :data:`ASKED` the model of a benchmark record never predicts on its
    internal test."""
    return [name for name in ASKED if name in record["classes_never_predicted"]]


def _said_normal(record: dict, classes: list[str]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Normal images called normal, inside and outside, each as (hits, images)."""
    normal = classes.index("normal")
    inside = record["confusion"][normal]
    outside = record["external"]
    labels, answers = np.array(outside["labels"]), np.array(outside["predicted"])
    said = int((answers[labels == "normal"] == "normal").sum())
    return (inside[normal], sum(inside)), (said, int((labels == "normal").sum()))


def _interval(scores: dict, name: str) -> str:
    hits, total = scores[f"{name}_counts"]
    if not total:
        return "no images"
    return (
        f"{scores[name]:.2f} ({scores[f'{name}_low']:.2f}-{scores[f'{name}_high']:.2f}), "
        f"{hits}/{total}"
    )


def external_table(results: dict) -> pd.DataFrame:
    """Each method's COVID-19 sensitivity and specificity vs normal on its internal test set and
    on the external set, as "rate (95 % Wilson interval), hits/images", and how many normal
    images it called normal.

    Internal: from the 3-class confusion matrix, COVID-19 images called COVID-19, and normal
    images not called COVID-19 (pneumonia rows left out: the external set has no pneumonia).
    Specificity vs normal counts a normal image called pneumonia as a success; the last column
    shows how many were actually called normal.
    """
    rows = {}
    for record in results["results"]:
        internal = external_set.internal_covid_vs_normal(record["confusion"], results["classes"])
        said_normal = _said_normal(record, results["classes"])
        for test, scores, (hits, images) in (
            ("internal", internal, said_normal[0]),
            ("external", record["external"], said_normal[1]),
        ):
            rows[(_paper(record), test)] = {
                "COVID-19 sensitivity": _interval(scores, "sensitivity"),
                "specificity vs normal": _interval(scores, "specificity"),
                "normal called normal": f"{hits}/{images}",
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


def _plot_label(record: dict) -> str:
    """The paper's short name, with the asked classes it never predicts written under it."""
    missing = never_says(record)
    if not missing:
        return _paper(record)
    return f"{_paper(record)}\n(never predicts {' or '.join(missing)})"


def plot_external(results: dict, *, caption: str | None = None):
    """COVID-19 sensitivity and specificity vs normal of every method, internal (circles)
    against external (squares), each with its 95 % Wilson interval. A method that never
    predicts COVID-19 or normal internally has it written under its name."""
    from covidlab.viz import add_caption, new_figure

    records = results["results"]
    fig, axes = new_figure(1, 2, figsize=(7.2, 0.5 * len(records) + 1.8), sharey=True)
    y = np.arange(len(records))[::-1]
    for ax, name, title in zip(
        axes[0],
        ("sensitivity", "specificity"),
        ("COVID-19 sensitivity", "specificity vs normal\n(normal images not called COVID-19)"),
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
        ax.set_yticks(y, [_plot_label(r) for r in records], fontsize=9)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncol=2, fontsize=8, frameon=False)
    return add_caption(fig, caption)


def _verdict(internal: dict, outside: dict, name: str) -> str:
    """Whether the external interval of ``name`` lies wholly below the internal one ("drops"),
    wholly above it ("rises"), or overlaps it ("overlap")."""
    if outside[f"{name}_high"] < internal[f"{name}_low"]:
        return "drops"
    if outside[f"{name}_low"] > internal[f"{name}_high"]:
        return "rises"
    return "overlap"


def external_findings(results: dict) -> str:
    """Markdown: for each method, whether its external COVID-19 sensitivity and specificity vs
    normal fall below its internal ones by more than the intervals allow (read from this run's
    numbers), with its normal images called normal inside and outside; a method that never
    predicts COVID-19 or normal internally is named as left out of the evidence, with the
    reason (:func:`answers_covid_and_normal`)."""
    lines = []
    for record in results["results"]:
        if not answers_covid_and_normal(record):
            lines.append(
                f"- **{record['method']}: left out of the evidence.** "
                + " ".join(
                    [never_predicted_text(record)]
                    + [LEFT_OUT_BECAUSE[name] for name in never_says(record)]
                )
            )
            continue
        internal = external_set.internal_covid_vs_normal(record["confusion"], results["classes"])
        outside = record["external"]
        verdicts = []
        for name, title in (
            ("sensitivity", "COVID-19 sensitivity"),
            ("specificity", "specificity vs normal"),
        ):
            change = f"{internal[name]:.2f} -> {outside[name]:.2f}"
            said = {
                "drops": f"{title} **drops** ({change})",
                "rises": f"{title} rises ({change})",
                "overlap": f"{title} {change}, intervals overlap",
            }
            verdicts.append(said[_verdict(internal, outside, name)])
        (inside, n_inside), (outside_hits, n_outside) = _said_normal(record, results["classes"])
        verdicts.append(
            f"normal called normal {inside}/{n_inside} inside, {outside_hits}/{n_outside} outside"
        )
        lines.append(f"- **{record['method']}**: " + "; ".join(verdicts) + ".")
    return "\n".join(lines)


def _span(values) -> str:
    """ "0.93" for equal values, "0.87-1.00" for a range."""
    low, high = f"{min(values):.2f}", f"{max(values):.2f}"
    return low if low == high else f"{low}-{high}"


def _count_span(values) -> str:
    """ "3" for equal counts, "0-4" for a range."""
    low, high = min(values), max(values)
    return str(low) if low == high else f"{low}-{high}"


def reading_summary(results: dict) -> str:
    """Markdown: the run read as a whole, every number from ``results``.

    Only the methods that predict both COVID-19 and normal on their internal test count
    (:func:`answers_covid_and_normal`; the others are named, with the reason in
    :func:`external_findings`): the range of their internal COVID-19 sensitivity and
    specificity vs normal, how many internal normal images they call normal, the same outside,
    what they answer for the external normal images, and for how many of them the specificity
    vs normal drops by more than the intervals allow.
    """
    classes = results["classes"]
    text = "".join(
        f"Left out: {record['method']}, which never predicts {' or '.join(never_says(record))} "
        "on its internal test (see section 3). "
        for record in results["results"]
        if not answers_covid_and_normal(record)
    )
    kept = [record for record in results["results"] if answers_covid_and_normal(record)]
    if not kept:
        return text + "No model is left to read: this run gives no evidence either way."
    inside = [external_set.internal_covid_vs_normal(r["confusion"], classes) for r in kept]
    outside = [r["external"] for r in kept]
    said_normal = [_said_normal(r, classes) for r in kept]
    first = outside[0]
    normal_groups = sorted(
        {
            group
            for group, label in zip(first["groups"], first["labels"], strict=True)
            if label == "normal"
        }
    )
    called_covid = [sum(o["by_group"][g]["covid"] for g in normal_groups) for o in outside]
    n_normal_outside = first["specificity_counts"][1]
    drops = [
        r["method"]
        for r, i, o in zip(kept, inside, outside, strict=True)
        if _verdict(i, o, "specificity") == "drops"
    ]
    moved = [
        r["method"]
        for r, i, o in zip(kept, inside, outside, strict=True)
        if _verdict(i, o, "sensitivity") != "overlap"
    ]
    many = len(kept) > 1
    models = f"the {len(kept)} " if many else "the "
    models += ("other " if text else "") + ("models" if many else "model")
    they, call, their = ("they", "call", "their") if many else ("it", "calls", "its")
    text += (
        f"Inside ({models}): specificity vs normal {_span([s['specificity'] for s in inside])}, "
        f"COVID-19 sensitivity {_span([s['sensitivity'] for s in inside])}. A normal image "
        f"called pneumonia counts as a success for specificity vs normal, though: {they} {call} "
        f"{_count_span([inner[0] for inner, _ in said_normal])} of the "
        f"{said_normal[0][0][1]} internal normal images normal. Outside, {their} COVID-19 "
        f"sensitivity is {_span([s['sensitivity'] for s in outside])} "
        + (
            f"({'for every model, ' if many else ''}its interval overlaps the internal one)"
            if not moved
            else f"(measurably different from inside for {', '.join(moved)})"
        )
        + f", and {their} specificity vs normal {_span([s['specificity'] for s in outside])}: "
        f"of the {n_normal_outside} external normal images ({', '.join(normal_groups)}) {they} "
        f"{call} {_count_span(called_covid)} COVID-19 and "
        f"{_count_span([outer[0] for _, outer in said_normal])} normal. "
    )
    if len(drops) == len(kept):
        text += (
            f"For {'every one of them' if many else 'it'} the external interval of the "
            "specificity vs normal lies below the internal one: a real drop, not the draw of a "
            "few images."
        )
    elif drops:
        text += (
            f"For {len(drops)} of them ({', '.join(drops)}) the external interval of the "
            "specificity vs normal lies below the internal one, a real drop; for the others the "
            "intervals overlap and this test is too small to tell."
        )
    else:
        text += (
            "No external interval of the specificity vs normal lies below its internal one: "
            "this test sees no drop."
        )
    if min(called_covid) > n_normal_outside / 2:
        text += (
            " A high external sensitivity means little from a model that calls most of the "
            "external normal images COVID-19."
        )
    return text
