"""Each paper's dataset rebuilt from the public sources.

``build_recipe("coronet", locate_sources())`` draws, for every class of the paper, the number
of images the paper reports (``covidlab.papers.get(key).recipe``) from the sources the paper
names, and returns the manifest together with a table that says, per class, how many images
were *requested* (the paper), *available* (at the pinned sources) and *used*. Where the
sources hold fewer images than the paper used, the table says so in ``note`` and the recipe
uses what exists: nothing is duplicated or invented.

Class mapping (source labels from :mod:`covidlab.sources`):

===========================  ===============================================================
covidx_net                   the 25 + 25 files of Rosebrock's public copy, by file name
                             (``resources/rosebrock_dataset_list.csv``); its "normal" folder
                             holds 7 normal, 12 bacterial and 6 viral images (``true_label``)
soares                       covid; normal; infection = Kermany bacterial + viral
aboughazala                  covid; normal
apostolopoulos               covid; pneumonia = bacterial only (Dataset_1); normal
apostolopoulos, "dataset2"   covid; pneumonia = 400 bacterial + 314 viral (Dataset_2); normal
coronet                      covid; normal; bacterial; viral
===========================  ===============================================================

COVID-19 images are Cohen's frontal X-rays (:func:`covidlab.sources.frontal_xrays`) from the
snapshot each paper's counts need (``PaperSpec.cohen_snapshot``); ``extra_covid_sources=True`` adds
the Figure1 and Actualmed COVID-19 X-rays, as the later papers' authors could. Images are
drawn without replacement with a seeded generator, distinct patients first (a second image of
a patient is only taken once every patient of the class has one), because a patient seen in
training and test inflates the score. Byte-identical duplicates and unreadable files (every
image is decoded, so a truncated JPEG is caught) are dropped before drawing, and reported.

:func:`plan_recipe` computes the same table from the metadata alone, without images: what a
download would give (``covidlab-data plan coronet``).
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from covidlab import config, papers
from covidlab.data import (
    display_name,
    validate_manifest,
    write_file_atomically,
    write_manifest,
)
from covidlab.download import COHEN_COMMIT, SOURCES, source_at
from covidlab.images import ImageDecodeError, check_image
from covidlab.papers import covidx_net
from covidlab.sources import (
    add_sha256,
    frontal_xrays,
    read_actualmed,
    read_cohen,
    read_figure1,
    read_kermany,
)

#: Variants a paper defines besides its main dataset (``PaperSpec.variant_plans``).
VARIANTS = {
    key: tuple(papers.get(key).variant_plans) for key in papers.ALL if papers.get(key).variant_plans
}

#: Every recipe ``covidlab-data build all`` makes: the five papers and their variants.
RECIPES = (
    "covidx_net",
    "soares",
    "aboughazala",
    "apostolopoulos",
    "apostolopoulos_dataset2",
    "coronet",
)

#: Rosebrock's ``true_label`` text -> course label.
_ROSEBROCK_LABELS = {
    "NORMAL": "normal",
    "PNEUMONIA-bacterial": "bacterial",
    "PNEUMONIA-viral": "viral",
}


TABLE_COLUMNS = ("class", "drawn_from", "requested", "available", "used", "true_labels", "note")


@dataclass
class RecipeResult:
    """A rebuilt dataset: the manifest and the requested / available / used table."""

    name: str
    manifest: pd.DataFrame
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    @property
    def shortfall(self) -> pd.DataFrame:
        """Rows of ``table`` where the sources could not supply what was asked for."""
        return self.table[self.table["note"].str.contains("short", na=False)]


@dataclass
class RecipePlan:
    """What a recipe would draw, computed from the metadata alone (:func:`plan_recipe`)."""

    name: str
    table: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def recipe_name(paper_key: str, variant: str | None = None) -> str:
    """``"apostolopoulos"`` + ``"dataset2"`` -> ``"apostolopoulos_dataset2"``."""
    if variant is None:
        return paper_key
    if variant not in VARIANTS.get(paper_key, ()):
        raise KeyError(
            f"{paper_key} has no variant {variant!r}; it has {VARIANTS.get(paper_key, ())}"
        )
    return f"{paper_key}_{variant}"


def build_recipe(
    paper_key: str,
    sources_dir: str | Path,
    *,
    variant: str | None = None,
    seed: int = 0,
    scale: float = 1.0,
    max_per_class: int | None = None,
    extra_covid_sources: bool = False,
    check_images: bool = True,
    cohen_commit: str | None = None,
) -> RecipeResult:
    """Rebuild one paper's dataset from the unpacked sources in ``sources_dir``.

    Parameters
    ----------
    paper_key
        A key of :data:`covidlab.papers.ALL`, or a name in :data:`RECIPES`
        (``"apostolopoulos_dataset2"`` is the same as ``variant="dataset2"``).
    sources_dir
        Folder holding ``covid-chestxray-dataset/``, ``chest_xray/``, ... (see
        :func:`covidlab.download.locate_sources`).
    variant
        A variant of the paper's dataset (:data:`VARIANTS`).
    seed
        Seed of the draw; the same seed gives the same manifest.
    scale, max_per_class
        Ask for ``round(scale * requested)`` images per class, at most ``max_per_class``
        (smaller runs; the table still shows the paper's number).
    extra_covid_sources
        Also draw COVID-19 images from Figure1 and Actualmed.
    check_images
        Drop empty, undecodable or truncated files (with a warning naming them) before
        drawing; every image is decoded once.
    cohen_commit
        The Cohen snapshot to draw COVID-19 images from. Default: the paper's
        (``PaperSpec.cohen_snapshot``) when ``sources_dir`` holds it, else the pinned one, and
        then a short COVID-19 row of the table says how to get the paper's.
    """
    name, paper_key, variant = _names(paper_key, variant)
    _check_caps(scale, max_per_class)
    spec = papers.get(paper_key)
    commit, missing_snapshot = _snapshot(paper_key, Path(sources_dir), cohen_commit)
    notes: list[str] = []
    if commit != COHEN_COMMIT:
        notes.append(f"COVID-19 images from Cohen's snapshot {commit[:7]}")
    pool = source_pool(sources_dir, extra_covid_sources=extra_covid_sources, cohen_commit=commit)
    pool = _clean_pool(pool, notes, check_images)
    chosen, rows = _draw(spec, variant, pool, seed, scale, max_per_class, missing_snapshot)
    manifest = pd.concat(chosen, ignore_index=True)
    columns = [
        "path",
        "label",
        "patient_id",
        "source",
        "true_label",
        "view",
        "original_split",
        "license",  # which images the book may show (covidlab.viz.showable)
        "sha256",
    ]
    manifest = validate_manifest(manifest[columns].reset_index(drop=True))
    return RecipeResult(name, manifest, pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), notes)


def plan_recipe(
    paper_key: str,
    sources_dir: str | Path,
    *,
    variant: str | None = None,
    seed: int = 0,
    scale: float = 1.0,
    max_per_class: int | None = None,
    extra_covid_sources: bool = False,
    cohen_commit: str | None = None,
) -> RecipePlan:
    """The requested / available / used table :func:`build_recipe` would give, from metadata.

    No image is opened: Cohen's (and Figure1's, Actualmed's) ``metadata.csv`` and Kermany's
    file names are enough, so the plan can be read before the images are downloaded. The
    paper's Cohen snapshot (``PaperSpec.cohen_snapshot``) is read from ``sources_dir`` when it is
    unpacked there, else from its ``metadata.csv`` in the course's shared data folder
    (``cohen-metadata-6a42423.csv``). ``available`` counts what the metadata lists; a build
    may find a few fewer (absent, unreadable or duplicate files). Parameters as for
    :func:`build_recipe`.
    """
    name, paper_key, variant = _names(paper_key, variant)
    _check_caps(scale, max_per_class)
    spec = papers.get(paper_key)
    commit = cohen_commit or papers.get(paper_key).cohen_snapshot
    metadata = _cohen_metadata(Path(sources_dir), commit)
    notes = [f"from the metadata alone: Cohen at {commit[:7]} ({metadata}), Kermany's file names"]
    pool = source_pool(
        sources_dir,
        extra_covid_sources=extra_covid_sources,
        cohen_commit=commit,
        check_files=False,
        cohen_metadata=metadata,
    )
    chosen, rows = _draw(spec, variant, pool, seed, scale, max_per_class, None)
    return RecipePlan(name, pd.DataFrame(rows, columns=list(TABLE_COLUMNS)), notes)


def source_pool(
    sources_dir: str | Path,
    *,
    extra_covid_sources: bool = False,
    cohen_commit: str = COHEN_COMMIT,
    check_files: bool = True,
    cohen_metadata: str | Path | None = None,
) -> pd.DataFrame:
    """Every image a recipe may draw from, with the source's own label in ``true_label``.

    COVID-19: Cohen's frontal X-rays at ``cohen_commit`` (plus Figure1 and Actualmed with
    ``extra_covid_sources``); normal, bacterial, viral: Kermany. ``check_files=False`` keeps
    rows whose image is absent (metadata only); ``cohen_metadata`` reads Cohen's rows from
    another ``metadata.csv``.
    """
    sources_dir = Path(sources_dir)
    cohen_dir = sources_dir / source_at("cohen", cohen_commit).folder
    with warnings.catch_warnings():  # missing images are expected in the offline copies
        warnings.simplefilter("ignore")
        covid = [
            frontal_xrays(read_cohen(cohen_dir, check_files=check_files, metadata=cohen_metadata))
        ]
        if extra_covid_sources:
            for reader, name in ((read_figure1, "figure1"), (read_actualmed, "actualmed")):
                frame = reader(sources_dir / SOURCES[name].folder, check_files=check_files)
                covid.append(frontal_xrays(frame, keep_unknown_view=True))
    covid_frame = pd.concat(covid, ignore_index=True)
    covid_frame = covid_frame[covid_frame["label"] == "covid"]
    kermany = read_kermany(sources_dir / SOURCES["kermany"].folder)
    pool = pd.concat([covid_frame, kermany], ignore_index=True)
    return pool.assign(true_label=pool["label"])[
        ["path", "label", "patient_id", "source", "true_label", "view", "original_split", "license"]
    ]


def draw_patients_first(candidates: pd.DataFrame, n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draw ``n`` rows without replacement, one per patient before any patient's second image.

    The order within each round is random (``rng``), so the draw is reproducible by seed.
    """
    shuffled = candidates.iloc[rng.permutation(len(candidates))]
    round_number = shuffled.groupby("patient_id", sort=False).cumcount().to_numpy()
    order = np.argsort(round_number, kind="stable")
    return shuffled.iloc[order[:n]]


def rosebrock_list() -> pd.DataFrame:
    """The 25 + 25 files of Rosebrock's copy of the COVIDX-Net data (Hemdan et al. 2020).

    Columns ``folder`` (Rosebrock's ``covid`` / ``normal``), ``filename`` and ``true_label``
    (the course label the file name implies) plus the provenance columns of the shipped CSV.
    """
    with resources.files("covidlab").joinpath("resources/rosebrock_dataset_list.csv").open() as f:
        raw = pd.read_csv(f, dtype=str)
    true = raw["true_label"].map(
        lambda text: _ROSEBROCK_LABELS.get(text, "covid" if "COVID" in text else text)
    )
    return raw.rename(columns={"rosebrock_folder": "folder"}).assign(true_label=true)


def write_recipe(result: RecipeResult, out_dir: str | Path) -> Path:
    """Write ``<out_dir>/<name>/manifest.csv`` and ``table.csv`` atomically; return the folder."""
    folder = Path(out_dir) / result.name
    write_manifest(result.manifest, folder / "manifest.csv")
    write_file_atomically(
        folder / "table.csv", lambda handle: result.table.to_csv(handle, index=False)
    )
    return folder


# --- helpers -------------------------------------------------------------------------------


def _names(paper_key: str, variant: str | None) -> tuple[str, str, str | None]:
    """(recipe name, paper key, variant) from either form of a recipe's name."""
    if paper_key in RECIPES and paper_key not in papers.ALL:  # e.g. "apostolopoulos_dataset2"
        paper_key, variant = paper_key.split("_", 1)
    return recipe_name(paper_key, variant), paper_key, variant


def _check_caps(scale: float, max_per_class: int | None) -> None:
    if not scale > 0:
        raise ValueError(f"scale must be above 0 (a share of the paper's counts), not {scale}")
    if max_per_class is not None and max_per_class < 1:
        raise ValueError(
            f"max_per_class must be at least 1 (the most images per class), not {max_per_class}"
        )


def _snapshot(paper_key: str, sources_dir: Path, commit: str | None) -> tuple[str, str | None]:
    """The Cohen commit to draw from, and why the paper's own is not used (None if it is)."""
    if commit is not None:
        return commit, None
    wanted = papers.get(paper_key).cohen_snapshot
    if wanted == COHEN_COMMIT or (sources_dir / source_at("cohen", wanted).folder).is_dir():
        return wanted, None
    return COHEN_COMMIT, (
        f"{papers.get(paper_key).short_name} needs Cohen's snapshot {wanted[:7]}, which is not "
        f"in {config.display_path(sources_dir)}: "
        f"`covidlab-data download cohen --commit {wanted[:7]}` "
        f"(`covidlab-data plan {paper_key}` shows what it holds)"
    )


def _cohen_metadata(sources_dir: Path, commit: str) -> Path:
    """The ``metadata.csv`` of Cohen's snapshot ``commit``: the unpacked snapshot's own, else
    the copy in the shared data folder (``cohen-metadata-<short commit>.csv``)."""
    candidates = [sources_dir / source_at("cohen", commit).folder / "metadata.csv"]
    shared = config.shared_data_dir()
    if shared is not None:
        candidates.append(shared / f"cohen-metadata-{commit[:7]}.csv")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no metadata.csv of Cohen's snapshot {commit[:7]} in {' or '.join(map(str, candidates))}: "
        f"`covidlab-data download cohen --commit {commit[:7]}`"
    )


def _draw(spec, variant, pool, seed, scale, max_per_class, missing_snapshot):
    """Draw every class of the paper's dataset (or its ``variant``) from ``pool``: (drawn
    frames, table rows), following the paper's class plan (``PaperSpec.plan``)."""
    rng = np.random.default_rng(seed)
    if spec.key == "covidx_net":
        return _rosebrock_recipe(pool, spec.recipe, rng, scale, max_per_class)
    chosen, rows = [], []
    plan = spec.plan if variant is None else spec.variant_plans[variant]
    for label, parts in plan.items():
        for part in parts:
            requested = part.count if part.count is not None else spec.recipe[label]
            candidates = pool[pool["true_label"].isin(part.source_labels)]
            target = _target(requested, scale, max_per_class)
            picked = draw_patients_first(candidates, target, rng).assign(label=label)
            chosen.append(picked)
            drawn_from = "+".join(part.source_labels)
            row = _table_row(label, drawn_from, requested, target, candidates, picked)
            if missing_snapshot and "covid" in part.source_labels and row["available"] < target:
                row["note"] += f"; {missing_snapshot}"
            rows.append(row)
    return chosen, rows


def _target(requested: int, scale: float, max_per_class: int | None) -> int:
    target = round(requested * scale)
    return target if max_per_class is None else min(target, max_per_class)


def _table_row(label, drawn_from, requested, target, candidates, picked) -> dict:
    available, used = len(candidates), len(picked)
    if available < target:
        note = f"short: the sources hold {available} of the {target} asked for; all are used"
    elif target < requested:
        note = f"reduced to {target} (scale / max_per_class)"
    else:
        note = ""
    counts = picked["true_label"].value_counts().sort_index()
    return {
        "class": label,
        "drawn_from": drawn_from,
        "requested": requested,
        "available": available,
        "used": used,
        "true_labels": ", ".join(f"{k} {v}" for k, v in counts.items()),
        "note": note,
    }


def _clean_pool(pool: pd.DataFrame, notes: list[str], check_images: bool) -> pd.DataFrame:
    """Drop unreadable files and byte-identical duplicates, noting what was dropped."""
    if check_images:
        problems = {path: problem for path in pool["path"] if (problem := _image_problem(path))}
        if problems:
            listing = "; ".join(f"{path}: {problem}" for path, problem in problems.items())
            message = f"{len(problems)} unreadable image(s) skipped ({listing}); re-download them"
            warnings.warn(message, stacklevel=3)
            notes.append(message)
            pool = pool[~pool["path"].isin(problems)]
    pool = add_sha256(pool)
    duplicated = pool["sha256"].duplicated()
    if duplicated.any():
        notes.append(
            f"{int(duplicated.sum())} byte-identical duplicate(s) dropped: "
            + ", ".join(Path(p).name for p in pool.loc[duplicated, "path"])
        )
    return pool[~duplicated].reset_index(drop=True)


#: Verdicts of :func:`_image_problem` by (path, size, modification time): a chapter or a test
#: builds several recipes from one pool, and each image need only be decoded once.
_CHECKED: dict[tuple[str, int, int], str | None] = {}


def _image_problem(path: str) -> str | None:
    """Why ``path`` cannot be used as an image, or None when it can (decoded in full:
    ``Image.verify()`` does not read JPEG data, so it passes a truncated download)."""
    status = os.stat(path)
    if status.st_size == 0:
        return "empty file (0 bytes)"
    key = (str(path), status.st_size, status.st_mtime_ns)
    if key not in _CHECKED:
        try:
            check_image(path)
            _CHECKED[key] = None
        except ImageDecodeError as error:
            _CHECKED[key] = error.reason
    return _CHECKED[key]


def _rosebrock_recipe(pool, recipe, rng, scale, max_per_class):
    """COVIDX-Net: Rosebrock's 25 + 25 files found by name in Cohen and the Kermany tree."""
    listing = rosebrock_list()
    by_name = pool.assign(filename=pool["path"].map(lambda p: Path(p).name))
    chosen, rows = [], []
    for label in recipe:
        wanted = listing[listing["folder"] == label]
        found = by_name.merge(wanted[["filename"]], on="filename").drop(columns="filename")
        target = _target(len(wanted), scale, max_per_class)
        picked = draw_patients_first(found, target, rng).assign(label=label)
        chosen.append(picked)
        row = _table_row(
            label, "Rosebrock's list, by file name", recipe[label], target, found, picked
        )
        listed = wanted["true_label"].value_counts().sort_index()
        absent = sorted(set(wanted["filename"]) - set(Path(p).name for p in found["path"]))
        row["note"] = "; ".join(
            filter(
                None,
                [
                    row["note"],
                    f"the list's true labels: {', '.join(f'{k} {v}' for k, v in listed.items())}",
                    f"{len(absent)} listed file(s) not in these sources: {', '.join(absent)}"
                    if absent
                    else "",
                    covidx_net.MISSING_FILE
                    if "radiopedia-covid-19-pneumonia-2.jpg" in absent
                    else "",
                ],
            )
        )
        rows.append(row)
    return chosen, rows


def rosebrock_truth() -> pd.DataFrame:
    """Rosebrock's COVIDX-Net folders against what the file names say the images are."""
    listing = rosebrock_list()
    table = pd.crosstab(listing["folder"], listing["true_label"].map(display_name), margins=True)
    return table.rename_axis(index="Rosebrock's folder", columns="true label")
