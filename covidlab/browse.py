"""Looking at the sources: which folder a profile reads, what is in it, and a browser.

The data chapter has no single paper, so it does not use :func:`covidlab.profiles.resolve`;
:func:`sources_dir` answers the one question it needs, "which sources folder does this profile
read?":

``smoke``
    A synthetic stand-in laid out like the real downloads (:func:`synthetic_sources`), so
    every step of the chapter runs in seconds. Its counts and pictures mean nothing.
``demo``
    The small real copy of the sources beside the project (``shared/data/sources``).
``paper``
    The full downloaded sources (``covidlab-data download all``) in
    :func:`covidlab.config.data_dir`.

:func:`catalogue` lists every image of every source found there (listed in the metadata or
not, present or not, with its size and view); the ``plot_*`` functions draw it, and
:func:`browser` browses it in a live Jupyter kernel.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from PIL import Image

from covidlab import config, profiles
from covidlab.data import synthetic_manifest
from covidlab.download import SOURCES, locate_sources
from covidlab.recipes import RECIPES, RecipeResult, build_recipe, rosebrock_list
from covidlab.sources import find_duplicates, read_actualmed, read_cohen, read_figure1, read_kermany
from covidlab.viz import add_caption, display_name, load_showable, new_figure, showable

#: What each profile reads, in words (used in banners and figure captions).
PROFILE_DATA = {
    "smoke": "synthetic stand-in for the sources",
    "demo": "shared mini copy of the sources",
    "paper": "downloaded sources",
}

#: Source metadata the catalogue keeps: Cohen's day (``offset``); the licence is in ``license``.
_META_KEPT = ("meta_offset",)

_READERS = {"cohen": read_cohen, "figure1": read_figure1, "actualmed": read_actualmed}


# --- Which folder ----------------------------------------------------------------------------


def sources_dir(profile: str | None = None, *, seed: int = 0) -> Path:
    """The sources folder a profile reads (see the module docstring).

    ``profile=None`` uses :func:`covidlab.profiles.default_profile`. ``smoke`` writes a fresh
    synthetic tree into a temporary folder on every call.
    """
    profile = _profile(profile)
    if profile == "smoke":
        return synthetic_sources(Path(tempfile.mkdtemp(prefix="covidlab-synthetic-")), seed=seed)
    if profile == "demo":
        shared = config.shared_data_dir()
        if shared is None or not (shared / "sources").is_dir():
            raise FileNotFoundError(
                "the demo profile reads the shared mini copy of the sources (shared/data/sources) "
                "and it was not found: set COVIDLAB_SHARED_DATA to the shared data folder, or run "
                "with PROFILE='smoke' (synthetic) or PROFILE='paper' (downloaded sources)"
            )
        return shared / "sources"
    found = locate_sources(config.data_dir())
    if found != config.data_dir() / "sources":
        warnings.warn(
            f"no downloaded sources in {config.data_dir() / 'sources'}; showing the small shared "
            f"copy ({found}) instead. Run `covidlab-data download all` for the full sources.",
            stacklevel=2,
        )
    return found


def tag(profile: str | None = None) -> str:
    """Short caption for figures and tables, e.g. ``"demo profile · shared mini copy ..."``."""
    profile = _profile(profile)
    return f"{profile} profile · {PROFILE_DATA[profile]}"


def describe(profile: str | None, folder: str | Path) -> str:
    """A one-line banner: the profile, what it reads and where.

    ``smoke`` names no folder: its stand-in lives in a fresh temporary folder whose name
    means nothing to a reader (and would change the page at every build).
    """
    profile = _profile(profile)
    where = "a temporary folder" if profile == "smoke" else folder
    return f"Profile: {profile} | data: {PROFILE_DATA[profile]} | sources folder: {where}"


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


def _profile(profile: str | None) -> str:
    if profile is None:
        return profiles.default_profile()
    if profile not in profiles.PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {profiles.PROFILES}")
    return profile


# --- A synthetic stand-in for the sources ----------------------------------------------------

_COHEN_COLUMNS = (
    "Patientid,offset,sex,age,finding,survival,view,modality,date,location,filename,doi, url,"
    "license,clinical notes,other notes"
).split(",")

# (finding, view, modality) of the synthetic Cohen rows after the Rosebrock ones: the mix of
# frontal, lateral and CT rows that makes the frontal-X-ray filter matter.
_COHEN_EXTRA_ROWS = (
    [("COVID-19", "AP", "X-ray")] * 4
    + [("COVID-19", "AP Supine", "X-ray")] * 3
    + [("COVID-19", "L", "X-ray")] * 3
    + [("COVID-19", "Axial", "CT")] * 2
    + [("SARS", "PA", "X-ray")] * 2
    + [("Streptococcus", "PA", "X-ray")]
)


def synthetic_sources(out_dir: str | Path, *, seed: int = 0, n_per_class: int = 30) -> Path:
    """Write a tiny synthetic copy of the Cohen and Kermany layouts; return the folder.

    **The images are synthetic** (:func:`covidlab.data.synthetic_manifest`) and carry no
    medical meaning; only the layout is real: ``covid-chestxray-dataset/metadata.csv`` in
    Cohen's March 2020 schema (PA/AP/AP Supine/L X-rays, CT slices, SARS and Streptococcus
    rows, several images per patient) and ``chest_xray/{train,test}/{NORMAL,PNEUMONIA}`` with
    Kermany's file names. Rosebrock's 25 + 25 COVIDX-Net file names are among them, so every
    recipe can be built, and one Kermany image is stored twice under two names (Kermany ships
    such duplicates) for the duplicate check to find. Sizes vary like the real sources:
    Kermany landscape, Cohen anything.
    """
    out_dir = Path(out_dir)
    rng = np.random.default_rng(seed)
    rosebrock = rosebrock_list()
    cohen_names = list(rosebrock.loc[rosebrock["folder"] == "covid", "filename"])
    n_covid = len(cohen_names) + len(_COHEN_EXTRA_ROWS)
    scratch = Path(tempfile.mkdtemp(prefix="pixels-", dir=out_dir.parent))
    try:
        pixels = pd.concat(
            [
                synthetic_manifest(
                    scratch / "covid",
                    ["covid"],
                    n_covid,
                    image_size=96,
                    seed=seed,
                    patients_per_class=n_covid * 2 // 3,
                ),
                synthetic_manifest(
                    scratch / "kermany",
                    ["normal", "bacterial", "viral"],
                    n_per_class,
                    image_size=96,
                    seed=seed,
                ),
            ],
            ignore_index=True,
        )
        _write_cohen(out_dir / SOURCES["cohen"].folder, pixels, cohen_names, rng)
        _write_kermany(out_dir / SOURCES["kermany"].folder, pixels, rosebrock, rng)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir


def _save_resized(source: str, target: Path, size: tuple[int, int]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(source) as image:
        image = image.convert("L").resize(size, Image.Resampling.BILINEAR)
        image.save(target, format="PNG" if target.suffix.lower() == ".png" else "JPEG")


def _write_cohen(folder: Path, pixels: pd.DataFrame, names: list[str], rng) -> None:
    covid = pixels[pixels["label"] == "covid"].reset_index(drop=True)
    kinds = [("COVID-19", "PA", "X-ray")] * len(names) + list(_COHEN_EXTRA_ROWS)
    names = names + [f"synthetic-cohen-{i:03d}.jpg" for i in range(len(_COHEN_EXTRA_ROWS))]
    patient = covid["patient_id"].str.rsplit("-", n=1).str[-1].astype(int) + 1
    rows = []
    for i, ((finding, view, modality), name) in enumerate(zip(kinds, names, strict=True)):
        width = int(rng.integers(70, 130))
        height = int(width * rng.uniform(0.75, 1.3))
        _save_resized(covid.loc[i, "path"], folder / "images" / name, (width, height))
        row = dict.fromkeys(_COHEN_COLUMNS, "")
        day = int((patient[:i] == patient[i]).sum()) * 4
        row.update(
            Patientid=str(patient[i]),
            offset=str(day),
            finding=finding,
            view=view,
            modality=modality,
            filename=name,
            license="synthetic",
        )
        rows.append(row)
    pd.DataFrame(rows, columns=_COHEN_COLUMNS).to_csv(folder / "metadata.csv", index=False)


def _write_kermany(folder: Path, pixels: pd.DataFrame, rosebrock: pd.DataFrame, rng) -> None:
    listed = rosebrock[rosebrock["folder"] == "normal"]
    patterns = {
        "normal": "IM-9{i:03d}-0001.jpeg",
        "bacterial": "person9{i:02d}_bacteria_{j}.jpeg",
        "viral": "person8{i:02d}_virus_{j}.jpeg",
    }
    for label, pattern in patterns.items():
        images = pixels[pixels["label"] == label].reset_index(drop=True)
        names = list(listed.loc[listed["true_label"] == label, "filename"])
        names += [pattern.format(i=i, j=1000 + i) for i in range(len(images) - len(names))]
        for i, name in enumerate(names):
            split = "test" if i % 7 == 6 else "train"
            sub = "NORMAL" if label == "normal" else "PNEUMONIA"
            height = int(rng.integers(70, 110))
            width = int(height * rng.uniform(1.1, 1.6))
            _save_resized(images.loc[i, "path"], folder / split / sub / name, (width, height))
    pneumonia = sorted((folder / "train" / "PNEUMONIA").glob("person9*_bacteria_*.jpeg"))
    twin = pneumonia[0].name.replace("_bacteria_", "_bacteria_9")  # same child, new number
    shutil.copyfile(pneumonia[0], folder / "test" / "PNEUMONIA" / twin)


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
    """Requested versus used images per class, one panel per recipe (from :func:`recipe_counts`)."""
    recipes = list(dict.fromkeys(counts["recipe"]))
    ncols = 3
    nrows = -(-len(recipes) // ncols)
    fig, axes = new_figure(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows))
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
        ax.bar_label(bars, fontsize="x-small")
        ax.set_xticks(x, labels, fontsize="x-small")
        ax.set_title(name, fontsize="medium")
    for ax in axes.flat[len(recipes) :]:
        ax.axis("off")
    axes.flat[0].set_ylabel("images")
    axes.flat[0].legend(fontsize="x-small")
    return add_caption(fig, caption)


def rosebrock_truth() -> pd.DataFrame:
    """Rosebrock's COVIDX-Net folders against what the file names say the images are."""
    listing = rosebrock_list()
    table = pd.crosstab(listing["folder"], listing["true_label"].map(display_name), margins=True)
    return table.rename_axis(index="Rosebrock's folder", columns="true label")


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


def image_row(
    rows: pd.DataFrame,
    *,
    image_size: tuple[int, int] = (160, 160),
    ncols: int = 4,
    title: str | None = None,
    caption: str | None = None,
) -> Figure:
    """The images of ``rows`` in a grid, each titled with its label, view and day.

    Raises ValueError when an image's licence does not let the book show it
    (:func:`covidlab.viz.load_showable`).
    """
    pixels = load_showable(rows, image_size, resize="pad")
    nrows = max(1, -(-len(rows) // ncols))
    fig, axes = new_figure(nrows, ncols, figsize=(2.6 * ncols, 2.9 * nrows + 0.4))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, item), image in zip(axes.flat, rows.iterrows(), pixels, strict=False):
        ax.imshow(image.astype(np.uint8))
        parts = [display_name(str(item["label"])), str(item.get("view", "") or "")]
        day = item.get("meta_offset")
        if isinstance(day, str) and day.strip():
            parts.append(f"day {day}")
        ax.set_title(
            "\n".join([" · ".join(p for p in parts if p), _short(Path(item["path"]).name)]),
            fontsize="x-small",
        )
    if title:
        fig.suptitle(title)
    return add_caption(fig, caption)


def _short(name: str, width: int = 30) -> str:
    half = (width - 1) // 2
    return name if len(name) <= width else f"{name[:half]}…{name[-half:]}"


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
