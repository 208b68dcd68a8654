"""Parsers for the public sources the five papers drew from, one function per source.

Each reader takes the folder a download unpacks (the upstream layout, unchanged), reads the
upstream metadata as it is, and returns a *manifest*: one row per image with the columns
``path, label, patient_id, source`` (see :mod:`covidlab.data`) plus ``view``, ``modality``,
``finding`` (the upstream text) and ``original_split``. Filters are separate, named functions
(:func:`frontal_xrays`), in the spirit of torchxrayvision's dataset classes.

Labels
------
``label`` is the canonical course label of what the source says the image shows:

- Cohen, Figure1, Actualmed: the most specific part of ``finding``, lower-cased
  (``"Pneumonia/Viral/COVID-19"`` -> ``"covid"``, ``"SARS"`` -> ``"sars"``,
  ``"Pneumonia/Bacterial/Streptococcus"`` -> ``"streptococcus"``). A finding that lists
  COVID-19 with something else (``"COVID-19, ARDS"`` in later Cohen commits) is ``"covid"``:
  the patient has COVID-19, and the papers' COVID-19 class took such images.
  ``"No Finding"`` becomes ``"no finding"``, *not* ``"normal"``: these collections gather
  patients suspected of lung disease, and the papers took their normal class from Kermany.
  A blank finding becomes ``"unknown"``.
- The later Cohen schema's ``"Pneumonia/Bacterial"`` and ``"Pneumonia/Viral"`` (no organism
  named) become ``"adult bacterial"`` and ``"adult viral"``, *not* ``"bacterial"`` and
  ``"viral"``: those two labels belong to Kermany's children aged one to five from one
  hospital in Guangzhou, while Cohen's patients are adults (18 to 94 years at 6a42423) from
  case reports worldwide. One label for both would let a recipe mix two populations into
  one class without anyone deciding it, and a classifier would learn age and hospital
  instead of the disease.
- Kermany: ``"normal"``, ``"bacterial"`` or ``"viral"``, read from the file name, the only place
  Kermany records the pneumonia type (Kermany et al. 2018).

Patient ids
-----------
Prefixed with the source, so ids never collide across sources: ``cohen-<patientid>``,
``figure1-COVID-00003`` (Figure1's ``COVID-00003a``/``b`` are two images of one patient),
``actualmed-<patientid>``, ``kermany-person123`` / ``kermany-IM-0117`` /
``kermany-NORMAL2-IM-0315``. Kermany's ``personN`` is *not* prefixed with the split: the same
number occurs in train and test (and under both bacteria and virus); whether it is the same
child is undocumented, and treating it as one patient can only prevent leakage, never cause it.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

import pandas as pd

from covidlab.data import validate_manifest

Missing = Literal["warn", "error"]

#: Views kept by :func:`frontal_xrays`: posterior-anterior and the anterior-posterior variants
#: the Cohen, Figure1 and Actualmed metadata use. Lateral (``L``) views and CT slices
#: (``Axial``, ``Coronal``) are dropped. Compared case-insensitively (Cohen writes both
#: ``AP erect`` and ``AP Erect``).
FRONTAL_VIEWS = ("PA", "AP", "AP Supine", "AP semi erect", "AP erect")

IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")

_KERMANY_PNEUMONIA = re.compile(r"^(person\d+)_(bacteria|virus)_\d+", re.IGNORECASE)
_KERMANY_NORMAL = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)
_KERMANY_TYPES = {"bacteria": "bacterial", "virus": "viral"}


class MissingImagesWarning(UserWarning):
    """Images a source lists but lacks, or files outside its naming rules; they are skipped."""


class MetadataError(ValueError):
    """A metadata file has an unknown layout or lacks a required column."""


#: Kermany, Zhang & Goldbaum 2018, Mendeley Data doi:10.17632/rscbjbr9sj.2.
KERMANY_LICENSE = "CC BY 4.0"

#: Licences under which the book may show an image (scaled, with its source named): the open
#: ones, and the Creative Commons non-commercial ones, since the course is free and
#: non-commercial and showing a scaled copy is not an adaptation. A blank licence (Cohen's
#: journal figures and web cases; the Figure1 and Actualmed collections) is not one of them.
SHOWABLE_LICENSES = (
    "CC BY",
    "CC BY-SA",
    "CC BY-NC",
    "CC BY-NC-SA",
    "CC BY-NC-ND",
    "CC0",
    "Apache 2.0",
    "public domain",
)


def may_show(license: object, source: object = "") -> bool:  # noqa: A002 (the column's name)
    """Whether the book may show an image with this ``license`` (a ``license`` cell).

    Synthetic images (``source`` or ``license`` ``"synthetic"``) are the course's own.
    Versions are ignored: ``"CC BY-NC-SA 4.0"`` counts as ``"CC BY-NC-SA"``.
    """
    if "synthetic" in (source, license):
        return True
    text = str(license or "").strip()
    unversioned = re.sub(r"\s+\d+(\.\d+)*$", "", text)
    allowed = {name.casefold() for name in SHOWABLE_LICENSES}
    return text.casefold() in allowed or unversioned.casefold() in allowed


#: Findings that name a category but no organism, and the label each gets (see "Labels" in
#: the module docstring: Kermany's pediatric classes are called "bacterial" and "viral").
_UNSPECIFIED_FINDINGS = {
    "pneumonia/bacterial": "adult bacterial",
    "pneumonia/viral": "adult viral",
}


def label_from_finding(finding: object) -> str:
    """Canonical label of a free-text finding (the rules are in the module docstring)."""
    if not isinstance(finding, str) or not finding.strip():
        return "unknown"
    path = "/".join(part.strip() for part in finding.strip().lower().split("/"))
    if path in _UNSPECIFIED_FINDINGS:
        return _UNSPECIFIED_FINDINGS[path]
    leaf = path.split("/")[-1]
    if "covid-19" in (item.strip() for item in leaf.split(",")):  # "COVID-19, ARDS"
        return "covid"
    return leaf


def read_cohen(
    repo_dir: str | Path,
    *,
    check_files: bool = True,
    missing: Missing = "warn",
    metadata: str | Path | None = None,
) -> pd.DataFrame:
    """Read Cohen's COVID-19 image data collection (Cohen et al. 2020), either schema.

    The early schema (e.g. commit 548bb58, March 2020) has ``Patientid``, ``filename`` and
    ``" url"`` (with a leading space) and keeps every image in ``images/``; the later one has
    ``patientid``, a ``folder`` column and hierarchical findings
    (``Pneumonia/Viral/COVID-19``). Unknown extra columns are kept untouched.

    Parameters
    ----------
    repo_dir
        The unpacked repository (holds ``metadata.csv`` and ``images/``).
    check_files
        Drop rows whose image is absent (``False``: parse the metadata only).
    missing
        ``"warn"`` skips absent images with a :class:`MissingImagesWarning` listing them;
        ``"error"`` raises ``FileNotFoundError`` instead.
    metadata
        Another metadata CSV to read instead of ``repo_dir/metadata.csv``.
    """
    repo_dir = Path(repo_dir)
    csv_path = Path(metadata) if metadata is not None else repo_dir / "metadata.csv"
    raw = _read_csv(csv_path)
    raw.columns = [str(column).strip() for column in raw.columns]  # early " url" -> "url"
    patient_column = _first_present(raw, ("patientid", "Patientid"), csv_path, "patient id")
    _require(raw, ("finding", "view", "modality", "filename"), csv_path)
    raw = _drop_blank(raw, "filename", csv_path)
    folder = raw["folder"].fillna("images") if "folder" in raw else "images"
    frame = pd.DataFrame(
        {
            "path": [
                str((repo_dir / sub / name).resolve())
                for sub, name in zip(
                    _as_series(folder, raw.index), raw["filename"].astype(str), strict=True
                )
            ],
            "label": raw["finding"].map(label_from_finding),
            "patient_id": "cohen-" + raw[patient_column].astype(str).str.strip(),
            "source": "cohen",
            "view": raw["view"].fillna("").astype(str).str.strip(),
            "modality": raw["modality"].fillna("").astype(str).str.strip(),
            "finding": raw["finding"].fillna("").astype(str),
            "original_split": "",
            "license": (
                raw["license"].fillna("").astype(str).str.strip() if "license" in raw else ""
            ),
        }
    )
    extra = raw.drop(columns=[c for c in raw.columns if c in frame.columns])
    frame = pd.concat([frame, extra.add_prefix("meta_")], axis=1)
    return _keep_present(frame, csv_path, check_files, missing)


def read_figure1(
    repo_dir: str | Path, *, check_files: bool = True, missing: Missing = "warn"
) -> pd.DataFrame:
    """Read agchung's Figure1-COVID-chestxray-dataset (COVID-Net team, 2020).

    Its ``metadata.csv`` is Windows-1252, has no file name column (each image is
    ``images/<patientid>.jpg`` or ``.png``) and leaves most views and many findings blank.
    """
    repo_dir = Path(repo_dir)
    csv_path = repo_dir / "metadata.csv"
    raw = _read_csv(csv_path, encoding="cp1252")
    _first_present(raw, ("patientid",), csv_path, "patient id")
    _require(raw, ("finding", "view", "modality"), csv_path)
    raw = _drop_blank(raw, "patientid", csv_path)  # the id is the file name
    ids = raw["patientid"].astype(str).str.strip()
    paths = [_find_with_suffix(repo_dir / "images", name, (".jpg", ".png")) for name in ids]
    frame = _agchung_frame(raw, paths, "figure1", ids.str.replace(r"[a-z]$", "", regex=True))
    return _keep_present(frame, csv_path, check_files, missing)


def read_actualmed(
    repo_dir: str | Path, *, check_files: bool = True, missing: Missing = "warn"
) -> pd.DataFrame:
    """Read agchung's Actualmed-COVID-chestxray-dataset (CRLF CSV, ``imagename`` column).

    The shared offline copy holds only 54 of its 238 images; absent ones are skipped.
    """
    repo_dir = Path(repo_dir)
    csv_path = repo_dir / "metadata.csv"
    raw = _read_csv(csv_path)
    _first_present(raw, ("patientid",), csv_path, "patient id")
    _require(raw, ("finding", "view", "modality", "imagename"), csv_path)
    raw = _drop_blank(raw, "imagename", csv_path)
    paths = [str((repo_dir / "images" / name).resolve()) for name in raw["imagename"].astype(str)]
    frame = _agchung_frame(raw, paths, "actualmed", raw["patientid"].astype(str).str.strip())
    return _keep_present(frame, csv_path, check_files, missing)


def read_kermany(root: str | Path) -> pd.DataFrame:
    """Read Kermany's pediatric chest X-rays (Kermany et al. 2018, doi:10.17632/rscbjbr9sj.2).

    ``root`` is the ``chest_xray`` folder or a folder holding it (Mendeley's zip and Kaggle's
    copy, which nests a second ``chest_xray/chest_xray``, both work: the first layout found
    is read). Every ``<split>/{NORMAL,PNEUMONIA}`` folder is read (``train``, ``test``,
    ``val``); the split goes to ``original_split``. File names that follow none of Kermany's
    patterns are skipped with a warning.
    """
    tree = _kermany_tree(Path(root))
    rows, unknown = [], []
    for image in sorted(p for p in tree.glob("*/*/*") if p.suffix.lower() in IMAGE_SUFFIXES):
        split, folder = image.parent.parent.name, image.parent.name
        parsed = parse_kermany_name(image.name)
        if folder.upper() not in ("NORMAL", "PNEUMONIA") or parsed is None:
            unknown.append(str(image))
            continue
        label, patient = parsed
        if (label == "normal") != (folder.upper() == "NORMAL"):
            unknown.append(str(image))
            continue
        rows.append(
            {
                "path": str(image.resolve()),
                "label": label,
                "patient_id": f"kermany-{patient}",
                "source": "kermany",
                "view": "",
                "modality": "X-ray",
                "finding": folder,
                "original_split": split,
                "license": KERMANY_LICENSE,
            }
        )
    if unknown:
        warnings.warn(
            f"{len(unknown)} files in {tree} do not follow Kermany's naming or sit in the wrong "
            f"folder and were skipped: {', '.join(unknown[:10])}",
            MissingImagesWarning,
            stacklevel=2,
        )
    if not rows:
        raise FileNotFoundError(
            f"no Kermany images found under {tree}: expected <split>/NORMAL/IM-*.jpeg and "
            "<split>/PNEUMONIA/person*_bacteria_*.jpeg; re-run `covidlab-data download "
            "kermany`"
        )
    return validate_manifest(pd.DataFrame(rows))


def frontal_xrays(df: pd.DataFrame, *, keep_unknown_view: bool = False) -> pd.DataFrame:
    """Keep X-rays taken from the front (views in :data:`FRONTAL_VIEWS`).

    ``keep_unknown_view`` also keeps X-rays with a blank view (most Figure1 rows leave it
    blank; COVID-Net's COVIDx used them all).
    """
    views = df["view"].fillna("").str.strip().str.lower()
    keep = views.isin([view.lower() for view in FRONTAL_VIEWS])
    if keep_unknown_view:
        keep |= views.eq("")
    xray = df["modality"].fillna("").str.strip().str.lower().eq("x-ray")
    return df[keep & xray].reset_index(drop=True)


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def folder_sha256(folder: str | Path) -> dict[Path, str]:
    """sha256 of every image file under ``folder`` (:data:`IMAGE_SUFFIXES`), by path.

    The hashes are remembered in ``<data dir>/cache/sha256/`` (one JSON file per folder, with
    each file's size and modification time), so a second call reads only the files that
    changed: the external test set checks thousands of training images against its own, in
    every chapter that loads it. The cache file is replaced atomically; losing it costs time,
    never a wrong hash.
    """
    from covidlab.config import data_dir
    from covidlab.data import write_file_atomically

    folder = Path(folder).resolve()
    key = hashlib.sha256(str(folder).encode()).hexdigest()[:32]
    cache_file = data_dir() / "cache" / "sha256" / f"{key}.json"
    try:
        known = json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    hashes, current = {}, {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        status = path.stat()
        name = path.relative_to(folder).as_posix()
        entry = known.get(name)
        if entry is None or entry[:2] != [status.st_size, status.st_mtime_ns]:
            entry = [status.st_size, status.st_mtime_ns, file_sha256(path)]
        current[name] = entry
        hashes[path] = entry[2]
    if current != known:
        try:
            write_file_atomically(cache_file, lambda handle: json.dump(current, handle))
        except OSError:  # a read-only data folder: hash again next time
            pass
    return hashes


def add_sha256(manifest: pd.DataFrame) -> pd.DataFrame:
    """Return a copy with a ``sha256`` column (the hash of each file's bytes)."""
    out = manifest.copy()
    out["sha256"] = [file_sha256(path) for path in out["path"]]
    return out


def find_duplicates(manifest: pd.DataFrame) -> pd.DataFrame:
    """Rows whose file bytes occur more than once, grouped by ``sha256`` (column added).

    Byte-identical files under two names happen: Kermany ships some, and Cohen's figure
    panels are sometimes committed twice. A duplicate split across train and test inflates
    accuracy.
    """
    hashed = manifest if "sha256" in manifest else add_sha256(manifest)
    duplicated = hashed["sha256"].duplicated(keep=False)
    return hashed[duplicated].sort_values(["sha256", "path"]).reset_index(drop=True)


# --- helpers -------------------------------------------------------------------------------


def _read_csv(csv_path: Path, encoding: str = "utf-8") -> pd.DataFrame:
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"metadata file {csv_path} not found: download the source with `covidlab-data "
            "download` or point the reader at the unpacked repository folder"
        )
    try:
        # dtype=str: ids such as "COVID-00003a" and Cohen's numeric ids stay as written.
        return pd.read_csv(csv_path, encoding=encoding, dtype=str)
    except UnicodeDecodeError as error:
        raise MetadataError(f"{csv_path} is not {encoding} text ({error})") from error


def _first_present(raw: pd.DataFrame, names: Iterable[str], csv_path: Path, what: str) -> str:
    for name in names:
        if name in raw.columns:
            return name
    raise MetadataError(
        f"{csv_path}: unknown metadata schema, no {what} column (looked for "
        f"{', '.join(names)}; found {', '.join(map(str, raw.columns))}). Is this the right file?"
    )


def _require(raw: pd.DataFrame, columns: Iterable[str], csv_path: Path) -> None:
    absent = [column for column in columns if column not in raw.columns]
    if absent:
        raise MetadataError(
            f"{csv_path}: required column(s) {', '.join(absent)} missing; the file may be "
            "truncated or from an unsupported version of the source"
        )


def _drop_blank(raw: pd.DataFrame, column: str, csv_path: Path) -> pd.DataFrame:
    """Rows whose ``column`` (the image's file name) is filled in; the others are skipped
    with a :class:`MissingImagesWarning` naming them (without a name there is no image)."""
    blank = raw[column].fillna("").astype(str).str.strip().eq("")
    if blank.any():
        rows = [int(i) + 1 for i in raw.index[blank]]
        warnings.warn(
            f"{csv_path}: {len(rows)} row(s) have no {column!r}, so their images cannot be "
            f"found; skipped (data row(s) {', '.join(map(str, rows[:20]))}"
            f"{' ...' if len(rows) > 20 else ''})",
            MissingImagesWarning,
            stacklevel=3,
        )
    return raw[~blank].reset_index(drop=True)


def _as_series(value: pd.Series | str, index: pd.Index) -> pd.Series:
    return value if isinstance(value, pd.Series) else pd.Series(value, index=index)


def _find_with_suffix(folder: Path, stem: str, suffixes: tuple[str, ...]) -> str:
    for suffix in suffixes:
        if (folder / f"{stem}{suffix}").is_file():
            return str((folder / f"{stem}{suffix}").resolve())
    return str((folder / f"{stem}{suffixes[0]}").resolve())  # reported as missing later


def _agchung_frame(
    raw: pd.DataFrame, paths: list[str], source: str, patients: pd.Series
) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "path": paths,
            "label": raw["finding"].map(label_from_finding),
            "patient_id": f"{source}-" + patients,
            "source": source,
            "view": raw["view"].fillna("").astype(str).str.strip(),
            "modality": raw["modality"].fillna("").astype(str).str.strip(),
            "finding": raw["finding"].fillna("").astype(str),
            "original_split": "",
            "license": "",  # neither collection states a licence
        }
    )
    extra = raw.drop(columns=[c for c in raw.columns if c in frame.columns])
    return pd.concat([frame, extra.add_prefix("meta_")], axis=1)


def _keep_present(
    frame: pd.DataFrame, csv_path: Path, check_files: bool, missing: Missing
) -> pd.DataFrame:
    if check_files:
        present = frame["path"].map(lambda p: Path(p).is_file()).astype(bool)  # also if empty
        absent = frame.loc[~present, "path"].map(lambda p: Path(p).name).tolist()
        if absent and missing == "error":
            raise FileNotFoundError(
                f"{len(absent)} images listed in {csv_path} are missing: {', '.join(absent)}. "
                "Re-download the source, or pass missing='warn' to skip them"
            )
        if absent:
            warnings.warn(
                f"{len(absent)} images listed in {csv_path} are missing and were skipped: "
                f"{', '.join(absent[:20])}{' ...' if len(absent) > 20 else ''}",
                MissingImagesWarning,
                stacklevel=3,
            )
        frame = frame[present]
    return validate_manifest(frame.reset_index(drop=True))


def _kermany_tree(root: Path) -> Path:
    for candidate in (root, root / "chest_xray", root / "chest_xray" / "chest_xray"):
        if any(
            (candidate / split / "NORMAL").is_dir() or (candidate / split / "PNEUMONIA").is_dir()
            for split in ("train", "test", "val")
        ):
            return candidate
    raise FileNotFoundError(
        f"no Kermany layout (chest_xray/<split>/NORMAL|PNEUMONIA) found in {root}: unpack "
        "ChestXRay2017.zip there or run `covidlab-data download kermany`"
    )


def parse_kermany_name(name: str) -> tuple[str, str] | None:
    """``(label, patient key)`` from a Kermany file name, or None when it is not one.

    ``person12_bacteria_46.jpeg`` gives ``("bacterial", "person12")``,
    ``IM-0115-0001.jpeg`` gives ``("normal", "IM-0115")`` and
    ``NORMAL2-IM-0115-0001.jpeg`` gives ``("normal", "NORMAL2-IM-0115")``.
    """
    if match := _KERMANY_PNEUMONIA.match(name):
        return _KERMANY_TYPES[match.group(2).lower()], match.group(1).lower()
    if match := _KERMANY_NORMAL.match(name):
        return "normal", match.group(1).upper()
    return None
