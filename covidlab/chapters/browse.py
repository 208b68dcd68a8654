"""Chapter 01 (the data): what is in the sources, and a browser.

The data chapter has no single paper, so it does not use :func:`covidlab.profiles.resolve`;
:func:`covidlab.profiles.sources_dir` answers the one question it needs, "which sources
folder does this profile read?" (a synthetic stand-in under ``smoke``).

:func:`catalogue` lists every image of every source found there (listed in the metadata or
not, present or not, with its size and view); the ``plot_*`` functions draw it, and
:func:`browser` browses it in a live Jupyter kernel.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from covidlab.data import display_name
from covidlab.download import SOURCES
from covidlab.recipes import RECIPES, RecipeResult, build_recipe
from covidlab.sources import find_duplicates, read_actualmed, read_cohen, read_figure1, read_kermany
from covidlab.viz import add_caption, image_row, new_figure, showable

#: Source metadata the catalogue keeps: Cohen's day (``offset``); the licence is in ``license``.
_META_KEPT = ("meta_offset",)

_READERS = {"cohen": read_cohen, "figure1": read_figure1, "actualmed": read_actualmed}


def sources_table() -> pd.DataFrame:
    """The registry of public sources (:data:`covidlab.download.SOURCES`) as a table."""
    return pd.DataFrame(
        [
            {
                "source": s.name,
                "folder": s.folder,
                "pinned commit": (s.commit or "")[:7] or "Mendeley v2",
                "licence": s.licence,
                "url": s.url,
            }
            for s in SOURCES.values()
        ]
    )


# --- Recipes ---------------------------------------------------------------------------------


def build_all_recipes(folder: str | Path, *, seed: int = 0) -> dict[str, RecipeResult]:
    """Every recipe of :data:`covidlab.recipes.RECIPES` built from ``folder``."""
    return {name: build_recipe(name, folder, seed=seed) for name in RECIPES}


def recipe_counts(results: Mapping[str, RecipeResult]) -> pd.DataFrame:
    """One row per recipe and class: requested (paper), available (sources), used."""
    return pd.concat(
        [
            result.table.assign(recipe=name)[
                ["recipe", "class", "drawn_from", "requested", "available", "used"]
            ]
            for name, result in results.items()
        ],
        ignore_index=True,
    )


def plot_recipe_counts(counts: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """Requested versus used images per class, one panel per recipe (from :func:`recipe_counts`).

    Two panels a row and one legend above them: three a row, shrunk to the page's text column,
    left the counts on the bars about 5 px high, and a legend inside the first panel hid a bar.
    """
    recipes = list(dict.fromkeys(counts["recipe"]))
    ncols = 2
    nrows = -(-len(recipes) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(4.2 * ncols, 2.9 * nrows))
    for ax, name in zip(axes.flat, recipes, strict=False):
        rows = counts[counts["recipe"] == name]
        labels = [
            display_name(c).replace(" ", "\n")
            + ("" if d in (c, "Rosebrock's list, by file name") else f"\n({d})")
            for c, d in zip(rows["class"], rows["drawn_from"], strict=True)
        ]
        x = np.arange(len(rows))
        ax.bar(x - 0.2, rows["requested"], 0.4, label="requested (paper)", color="lightgrey")
        bars = ax.bar(x + 0.2, rows["used"], 0.4, label="used", color="tab:blue")
        ax.bar_label(bars, fontsize="small")
        ax.set_xticks(x, labels, fontsize="small")
        ax.set_title(name, fontsize="medium")
        ax.margins(y=0.15)  # room for the count above the tallest bar
    for ax in axes.flat[len(recipes) :]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel("images")
    fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside upper center", ncols=2)
    return add_caption(fig, caption)


# --- What is in the sources ------------------------------------------------------------------


def catalogue(folder: str | Path) -> pd.DataFrame:
    """Every image the sources in ``folder`` list or hold, one row each.

    Columns: the manifest columns of :mod:`covidlab.sources` (``label`` is the source's own
    finding) plus ``present`` (False: listed in the metadata, file absent), ``width``,
    ``height``, ``aspect`` (width / height), ``mode``, and ``original_width`` /
    ``original_height``: the size before the shared mini copy shrank it (read from its
    ``manifests/``; equal to the file's size elsewhere).
    """
    folder = Path(folder)
    frames = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # absent files are kept and marked, not warned about
        for name, reader in _READERS.items():
            if (folder / SOURCES[name].folder / "metadata.csv").is_file():
                frames.append(reader(folder / SOURCES[name].folder, check_files=False))
    if (folder / SOURCES["kermany"].folder).is_dir():
        frames.append(read_kermany(folder / SOURCES["kermany"].folder))
    if not frames:
        raise FileNotFoundError(
            f"no source folders in {folder}: expected covid-chestxray-dataset/ or chest_xray/ "
            "(run `covidlab-data download all`)"
        )
    table = pd.concat(frames, ignore_index=True)
    table = table.drop(columns=[c for c in table if c.startswith("meta_") and c not in _META_KEPT])
    table["present"] = table["path"].map(lambda p: Path(p).is_file())
    sizes = [
        _image_info(p) if ok else (np.nan, np.nan, "")
        for p, ok in zip(table["path"], table["present"], strict=True)
    ]
    table["width"], table["height"], table["mode"] = (list(c) for c in zip(*sizes, strict=True))
    table["aspect"] = table["width"] / table["height"]
    original = _original_sizes(folder)
    keys = table["path"].map(lambda p: str(Path(p).resolve()))
    for axis in ("width", "height"):
        table[f"original_{axis}"] = keys.map(original.get(axis, {})).fillna(table[axis])
    return table


def _image_info(path: str) -> tuple[int, int, str]:
    with Image.open(path) as image:  # reads the header only
        return image.width, image.height, image.mode


def _original_sizes(folder: Path) -> dict[str, dict[str, int]]:
    """Sizes before shrinking, from the shared copy's ``manifests/*-images.csv`` (if any)."""
    sizes: dict[str, dict[str, int]] = {"width": {}, "height": {}}
    for csv in sorted((folder / "manifests").glob("*-images.csv")):
        records = pd.read_csv(csv, dtype=str)
        if not {"path", "orig_size"} <= set(records):
            continue
        roots = records["dataset"] if "dataset" in records else pd.Series("", index=records.index)
        for root, path, size in zip(roots, records["path"], records["orig_size"], strict=True):
            key = str((folder / root / path).resolve())
            width, height = (int(v) for v in size.split("x"))
            sizes["width"][key], sizes["height"][key] = width, height
    return sizes


def plot_image_sizes(table: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """Original width against height, and the aspect ratio, per source (from :func:`catalogue`)."""
    present = table[table["present"]]
    fig, axes = new_figure(1, 2, figsize=(10, 3.8))
    scatter, hist = axes[0]
    bins = np.linspace(0.5, 2.0, 31)
    for source, rows in present.groupby("source"):
        scatter.scatter(
            rows["original_width"],
            rows["original_height"],
            s=8,
            alpha=0.6,
            label=f"{source} ({len(rows)})",
        )
        aspect = (rows["original_width"] / rows["original_height"]).clip(0.5, 2.0)
        hist.hist(aspect, bins=bins, histtype="step", linewidth=1.5, label=source)
    top = float(np.nanmax(present[["original_width", "original_height"]].to_numpy()))
    scatter.plot([0, top], [0, top], color="grey", linestyle=":", linewidth=1)
    scatter.set_xlabel("original width (px)")
    scatter.set_ylabel("original height (px)")
    scatter.legend(fontsize="small")
    hist.axvline(1.0, color="grey", linestyle=":", linewidth=1)
    hist.set_xlabel("aspect ratio (width / height)")
    hist.set_ylabel("images")
    hist.legend(fontsize="small")
    return add_caption(fig, caption)


def view_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Images present per source, modality and view (a blank view is "(not recorded)")."""
    present = table[table["present"]]
    view = present["view"].replace("", "(not recorded)")
    return pd.crosstab([present["source"], present["modality"]], view)


def plot_views(table: pd.DataFrame, *, caption: str | None = None) -> Figure:
    """Stacked bars: the share of each source's images taken from each view."""
    counts = view_counts(table).groupby(level="source").sum()
    counts = counts.loc[:, counts.sum().sort_values(ascending=False).index]
    totals = counts.sum(axis=1)
    shares = 100 * counts.div(totals, axis=0)
    shares.index = [f"{source} ({total})" for source, total in totals.items()]
    fig, axes = new_figure(figsize=(7.5, 0.6 * len(shares) + 1.6))
    shares.plot.barh(stacked=True, ax=axes[0, 0], width=0.7, colormap="tab20")
    axes[0, 0].set_xlabel("share of the source's images (%)")
    axes[0, 0].set_xlim(0, 100)
    axes[0, 0].legend(title="view", fontsize="small", bbox_to_anchor=(1.02, 1), loc="upper left")
    return add_caption(fig, caption)


# --- Patients and duplicates -----------------------------------------------------------------


def patients_with_several_images(manifest: pd.DataFrame, *, minimum: int = 2) -> pd.DataFrame:
    """Patients with at least ``minimum`` images: their count, labels and views, most first."""
    present = manifest[manifest["present"]] if "present" in manifest else manifest
    grouped = present.groupby("patient_id").agg(
        images=("path", "size"),
        source=("source", "first"),
        labels=("label", lambda s: ", ".join(sorted(set(s)))),
        views=("view", lambda s: ", ".join(sorted(set(s.replace("", "(blank)"))))),
    )
    grouped = grouped[grouped["images"] >= minimum]
    return grouped.sort_values(["images", "labels"], ascending=[False, True]).reset_index()


def plot_patient(
    manifest: pd.DataFrame,
    patient_id: str,
    *,
    image_size: tuple[int, int] = (160, 160),
    max_images: int = 8,
    caption: str | None = None,
) -> Figure:
    """All images of one patient (at most ``max_images``), titled with view, day and label."""
    rows = manifest[manifest["patient_id"] == patient_id]
    if "present" in rows:
        rows = rows[rows["present"]]
    if rows.empty:
        raise KeyError(f"no image of patient {patient_id!r} in this manifest")
    if "meta_offset" in rows:  # Cohen: days since the first symptoms or admission
        rows = rows.assign(_day=pd.to_numeric(rows["meta_offset"], errors="coerce"))
        rows = rows.sort_values("_day", kind="stable")
    return image_row(
        rows.head(max_images), image_size=image_size, title=f"patient {patient_id}", caption=caption
    )


def duplicate_groups(manifest: pd.DataFrame) -> pd.DataFrame:
    """Byte-identical files (:func:`covidlab.sources.find_duplicates`), one row per group.

    ``crosses_sources`` / ``crosses_splits`` flag a group spread over several sources or
    original splits: the kind that puts one image in a training and a test set.
    """
    present = manifest[manifest["present"]] if "present" in manifest else manifest
    duplicates = find_duplicates(present)
    columns = [
        "sha256",
        "files",
        "sources",
        "splits",
        "labels",
        "crosses_sources",
        "crosses_splits",
    ]
    if duplicates.empty:
        return pd.DataFrame(columns=columns)
    split = duplicates["original_split"].fillna("") if "original_split" in duplicates else ""
    duplicates = duplicates.assign(
        name=duplicates["path"].map(lambda p: Path(p).name), original_split=split
    )
    groups = duplicates.groupby("sha256").agg(
        files=("name", ", ".join),
        sources=("source", lambda s: ", ".join(sorted(set(s)))),
        splits=("original_split", lambda s: ", ".join(sorted(set(s) - {""}))),
        labels=("label", lambda s: ", ".join(sorted(set(s)))),
    )
    groups["crosses_sources"] = groups["sources"].str.contains(",")
    groups["crosses_splits"] = groups["splits"].str.contains(",")
    groups = groups.reset_index()
    groups["sha256"] = groups["sha256"].str[:12]
    return groups[columns]


def split_overlap(manifest: pd.DataFrame) -> pd.DataFrame:
    """Patients whose images sit in more than one of the source's own splits (train/test/val)."""
    present = manifest[manifest["original_split"].fillna("") != ""]
    splits = present.groupby("patient_id")["original_split"].agg(lambda s: sorted(set(s)))
    several = splits[splits.map(len) > 1]
    counts = (
        present[present["patient_id"].isin(several.index)]
        .groupby("patient_id")
        .agg(images=("path", "size"), labels=("label", lambda s: ", ".join(sorted(set(s)))))
    )
    return counts.assign(splits=several.map(", ".join)).reset_index()


# --- A browser for a live kernel -------------------------------------------------------------


def patient_choices(manifest: pd.DataFrame, label: str, source: str) -> list[str]:
    """Patient ids with at least one image of ``label`` from ``source`` ("all": any), most
    images first."""
    rows = manifest
    if label != "all":
        rows = rows[rows["label"] == label]
    if source != "all":
        rows = rows[rows["source"] == source]
    counts = rows.groupby("patient_id").size()
    return list(counts.sort_values(ascending=False, kind="stable").index)


def browser(manifest: pd.DataFrame, *, image_size: tuple[int, int] = (160, 160)):
    """Dropdowns for class, source and patient that show the chosen patient's images.

    Needs ``ipywidgets`` and a live Jupyter kernel (on Colab it just works); a static page
    shows no widget. Only images whose licence lets the course show them are offered
    (:func:`covidlab.viz.showable`). Returns the widget box; display it as the last line of a
    cell.
    """
    try:
        import ipywidgets as widgets
        from IPython.display import display
    except ImportError as error:
        raise ImportError(
            "the image browser needs ipywidgets: pip install ipywidgets (Colab has it)"
        ) from error
    manifest = manifest[manifest["present"]] if "present" in manifest else manifest
    manifest = showable(manifest)
    label = widgets.Dropdown(
        options=["all", *sorted(manifest["label"].unique())], description="class"
    )
    source = widgets.Dropdown(
        options=["all", *sorted(manifest["source"].unique())], description="source"
    )
    patient = widgets.Dropdown(description="patient")
    output = widgets.Output()

    def update_patients(_=None) -> None:
        patient.options = patient_choices(manifest, label.value, source.value)

    def show(_=None) -> None:
        output.clear_output(wait=True)
        if patient.value is None:
            return
        with output:
            display(plot_patient(manifest, patient.value, image_size=image_size))

    label.observe(update_patients, names="value")
    source.observe(update_patients, names="value")
    patient.observe(show, names="value")
    update_patients()
    show()
    return widgets.VBox([widgets.HBox([label, source, patient]), output])
