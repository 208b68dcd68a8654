"""Manifests and patient-aware splits.

A *manifest* is a pandas DataFrame with one row per image and (at least) the columns in
``MANIFEST_COLUMNS``: ``path`` (absolute file path), ``label`` (a class name such as
``"covid"``), ``patient_id`` and ``source``. Every other module takes a manifest, so a
dataset built by hand, by a paper's recipe or by :func:`covidlab.synthetic.synthetic_manifest`
flows through the same code. Images are loaded by :mod:`covidlab.images`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold, train_test_split

MANIFEST_COLUMNS = ("path", "label", "patient_id", "source")

CLASS_NAMES_DISPLAY = {
    "covid": "COVID-19",
    "normal": "Normal",
    "bacterial": "Bacterial pneumonia",
    "viral": "Viral pneumonia",
    "pneumonia": "Pneumonia",
    "other": "Other (not COVID-19)",
    "infection": "Other infection",
}


def display_name(name: str) -> str:
    """The display name of a class, e.g. ``"covid"`` -> ``"COVID-19"``."""
    return CLASS_NAMES_DISPLAY.get(name, name)


#: Permissions of the files the course writes (manifests, tables, checksums): readable by
#: everyone, as ``open()`` would create them, not owner-only like ``tempfile.mkstemp``.
FILE_MODE = 0o644

#: Permissions of the folders :func:`folder_written_atomically` writes, for the same reason
#: (``tempfile.mkdtemp`` makes them owner-only).
FOLDER_MODE = 0o755


class PatientLeakError(ValueError):
    """The same patient appears on both sides of a split.

    ``shared_ids`` holds the patient ids found in both sets.
    """

    def __init__(self, shared_ids: Sequence[str]) -> None:
        self.shared_ids = sorted(shared_ids)
        shown = ", ".join(self.shared_ids[:10])
        more = f" and {len(self.shared_ids) - 10} more" if len(self.shared_ids) > 10 else ""
        super().__init__(
            f"{len(self.shared_ids)} patient(s) appear in both sets: {shown}{more}. "
            "Split by patient, e.g. holdout_split(..., group='patient_id')."
        )


# --------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------


def validate_manifest(df: pd.DataFrame, *, check_files: bool = False) -> pd.DataFrame:
    """Check that ``df`` is a manifest and return it with the required columns as strings.

    Parameters
    ----------
    df : DataFrame
        One row per image with the columns in ``MANIFEST_COLUMNS``.
    check_files : bool
        Also check that every ``path`` exists (slower on large manifests).

    Raises
    ------
    ValueError
        Naming the missing columns, the rows with empty required values, or the missing files.
    """
    missing = [column for column in MANIFEST_COLUMNS if column not in df.columns]
    if missing:
        raise ValueError(
            f"The manifest lacks the column(s) {missing}; a manifest needs "
            f"{list(MANIFEST_COLUMNS)} (it has {list(df.columns)}). "
            "Rename or add them, e.g. df.rename(columns=...)."
        )
    for column in MANIFEST_COLUMNS:
        empty = df.index[df[column].isna() | (df[column].astype(str).str.strip() == "")]
        if len(empty):
            raise ValueError(
                f"The manifest column {column!r} is empty in {len(empty)} row(s) "
                f"(index {list(empty[:5])}{' ...' if len(empty) > 5 else ''}). "
                "Fill those values or drop the rows."
            )
    df = df.astype({column: str for column in MANIFEST_COLUMNS})
    if check_files:
        absent = [path for path in df["path"] if not os.path.isfile(path)]
        if absent:
            raise ValueError(
                f"{len(absent)} image file(s) listed in the manifest do not exist, e.g. "
                f"{absent[:3]}. Fix the paths or drop those rows: "
                "df = df[df['path'].map(os.path.isfile)]."
            )
    return df


def read_manifest(csv_path: str | os.PathLike) -> pd.DataFrame:
    """Read a manifest CSV; relative paths are taken relative to the CSV's folder.

    Raises ``ValueError`` (see ``validate_manifest``) when a required column is missing.
    """
    csv_path = Path(csv_path)
    folder = Path(os.path.abspath(csv_path)).parent
    df = pd.read_csv(csv_path, dtype={column: str for column in MANIFEST_COLUMNS})
    try:
        df = validate_manifest(df)
    except ValueError as error:
        raise ValueError(f"{csv_path}: {error}") from None
    df["path"] = [
        path if os.path.isabs(path) else os.path.normpath(folder / path) for path in df["path"]
    ]
    return df


def write_manifest(df: pd.DataFrame, csv_path: str | os.PathLike) -> Path:
    """Write a manifest CSV atomically (a temporary file in the same folder, then a rename).

    Paths inside the CSV's folder are stored relative to it, so the folder can be moved or
    zipped as a whole. A failure leaves any previous file untouched. Returns the CSV path.
    """
    df = validate_manifest(df)
    csv_path = Path(csv_path)
    folder = Path(os.path.abspath(csv_path)).parent
    folder.mkdir(parents=True, exist_ok=True)

    def stored(path: str) -> str:
        absolute = Path(os.path.abspath(path))
        if absolute.is_relative_to(folder):
            return absolute.relative_to(folder).as_posix()
        return path

    df = df.assign(path=[stored(path) for path in df["path"]])
    return write_file_atomically(csv_path, lambda handle: df.to_csv(handle, index=False))


def write_file_atomically(
    path: str | os.PathLike, write: Callable[[IO], object], *, binary: bool = False
) -> Path:
    """Write a file by calling ``write(handle)``, atomically, readable by everyone.

    The content goes to a temporary file in the same folder, which is renamed over ``path``
    only when ``write`` returned, so a reader never sees half a file and a failure leaves any
    previous file untouched. The file gets :data:`FILE_MODE` (``tempfile.mkstemp`` alone
    would leave it owner-only). ``handle`` is a UTF-8 text file, or a bytes file with
    ``binary`` (e.g. for ``numpy.save``). Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    text = {} if binary else {"newline": "", "encoding": "utf-8"}
    try:
        with os.fdopen(handle, "wb" if binary else "w", **text) as temp_file:
            write(temp_file)
        os.chmod(temp_name, FILE_MODE)
        os.replace(temp_name, path)
    except BaseException:
        os.unlink(temp_name)
        raise
    return path


def replace_folder(source: Path, target: Path, *, aside: str) -> None:
    """Rename folder ``source`` to ``target``, replacing what is there: an existing ``target``
    is first moved aside to ``.<target>.stale-<aside>`` (``aside`` unique to this run, e.g.
    its staging folder's name; ``covidlab.download`` clears such names after a killed run)
    and then removed."""
    stale = None
    if target.exists():
        stale = target.with_name(f".{target.name}.stale-{aside}")
        os.replace(target, stale)
    os.replace(source, target)
    if stale is not None:
        shutil.rmtree(stale)


@contextlib.contextmanager
def folder_written_atomically(
    folder: str | os.PathLike, *, replace: bool = False
) -> Iterator[Path]:
    """Fill a folder under a temporary name beside it, renamed to ``folder`` when the block ends.

    Yields the staging folder (``.<name>.partial-*`` in the same parent), so a reader never
    sees a half-written ``folder``. On an error the staging folder is removed and ``folder``
    left as it was. If ``folder`` exists when the block ends (another process finished it
    first), that one is kept and ours removed; with ``replace``, ours takes its place.
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.partial-"))
    try:
        yield staging
        os.chmod(staging, FOLDER_MODE)
        if replace:
            replace_folder(staging, folder, aside=staging.name)
        else:
            try:
                staging.rename(folder)
            except OSError:
                if not folder.is_dir():
                    raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def class_counts(manifest: pd.DataFrame) -> pd.Series:
    """Number of images per label, sorted by label name."""
    return manifest["label"].value_counts().sort_index()


def merge_labels(manifest: pd.DataFrame, mapping: Mapping[str, str]) -> pd.DataFrame:
    """Return a copy with labels renamed by ``mapping``; labels not in it are kept.

    Example: ``merge_labels(df, {"bacterial": "pneumonia", "viral": "pneumonia"})`` gives the
    three classes of Apostolopoulos & Mpesiana (2020).
    """
    return manifest.assign(label=manifest["label"].map(lambda label: mapping.get(label, label)))


def labels_to_indices(labels: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    """Class index of each label in ``classes`` order.

    Raises
    ------
    ValueError
        Naming the labels that are not in ``classes``.
    """
    position = {name: index for index, name in enumerate(classes)}
    labels = list(labels)
    unknown = sorted({label for label in labels if label not in position})
    if unknown:
        raise ValueError(
            f"Label(s) {unknown} are not among the classes {list(classes)}. "
            "Add them to `classes`, merge them with merge_labels(), or drop those rows."
        )
    return np.array([position[label] for label in labels], dtype=np.int64)


# --------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------


def assert_patient_disjoint(
    a: pd.DataFrame, b: pd.DataFrame, *, column: str = "patient_id"
) -> None:
    """Raise ``PatientLeakError`` (listing the ids) if a patient is in both ``a`` and ``b``."""
    shared = set(a[column].astype(str)) & set(b[column].astype(str))
    if shared:
        raise PatientLeakError(sorted(shared))


def holdout_split(
    manifest: pd.DataFrame,
    test_fraction: float,
    *,
    seed: int,
    group: str | None = "patient_id",
    stratify: str | None = "label",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a manifest into train and test sets, keeping each patient on one side.

    The patients (not the images) are split with scikit-learn's ``train_test_split``,
    stratified by each patient's most frequent label, so about ``test_fraction`` of the
    patients of every class go to the test set. ``group=None`` splits images instead: then
    one patient's images can land on both sides, the leak that inflated many early COVID-19
    results (Roberts et al. 2021).

    Returns
    -------
    (train, test) : DataFrames with a fresh index, rows in manifest order.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be between 0 and 1, not {test_fraction}.")
    manifest = validate_manifest(manifest)
    if group is None:
        strata = manifest[stratify] if stratify else None
        _, test_rows = train_test_split(
            np.arange(len(manifest)), test_size=test_fraction, random_state=seed, stratify=strata
        )
        is_test = np.isin(np.arange(len(manifest)), test_rows)
    else:
        if stratify:
            per_group = manifest.groupby(group)[stratify].agg(lambda s: s.mode().iloc[0])
        else:
            per_group = manifest.groupby(group).size()
        _, test_groups = train_test_split(
            per_group.index.to_numpy(),
            test_size=test_fraction,
            random_state=seed,
            stratify=per_group.to_numpy() if stratify else None,
        )
        is_test = manifest[group].isin(test_groups).to_numpy()
    train = manifest[~is_test].reset_index(drop=True)
    test = manifest[is_test].reset_index(drop=True)
    if group is not None:
        assert_patient_disjoint(train, test, column=group)
    return train, test


def train_validation_test_split(
    manifest: pd.DataFrame,
    test_fraction: float,
    validation_fraction: float,
    *,
    seed: int,
    group: str | None = "patient_id",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(train, validation, test): the test set first, then validation from the rest.

    ``test_fraction`` of all patients go to the test set; ``validation_fraction`` of the
    *remaining* ones to validation, as Keras' ``validation_split`` takes it from what
    ``fit`` receives (Soares & Soares 2020: 75 test images of 375, then 30 of the other 300).
    Each split is :func:`holdout_split`, keeping each patient on one side (``group=None``
    splits images). On tiny sets either fraction is raised so that every class can have one
    patient on each side.
    """
    rest, test = holdout_split(
        manifest, _at_least_one_per_class(manifest, test_fraction, group), seed=seed, group=group
    )
    train, validation = holdout_split(
        rest, _at_least_one_per_class(rest, validation_fraction, group), seed=seed, group=group
    )
    return train, validation, test


def _at_least_one_per_class(manifest: pd.DataFrame, fraction: float, group: str | None) -> float:
    """``fraction``, raised where needed so that a stratified split can give every class one
    patient (tiny smoke sets: 10 % of 19 images would be fewer images than classes)."""
    n_units = manifest[group].nunique() if group else len(manifest)
    return max(fraction, manifest["label"].nunique() / n_units)


def kfold_splits(
    manifest: pd.DataFrame,
    n_splits: int,
    *,
    seed: int,
    group: str | None = "patient_id",
) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """``n_splits`` (train, test) pairs; every image is in exactly one test fold.

    Uses scikit-learn's ``StratifiedGroupKFold`` (labels balanced across folds, each patient
    in one fold); ``group=None`` uses ``StratifiedKFold`` on images, which lets a patient's
    images sit in train and test at once.
    """
    manifest = validate_manifest(manifest)
    placeholder = np.zeros(len(manifest))
    if group is None:
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(placeholder, manifest["label"])
    else:
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = splitter.split(placeholder, manifest["label"], groups=manifest[group])
    splits = []
    for train_rows, test_rows in folds:
        train = manifest.iloc[train_rows].reset_index(drop=True)
        test = manifest.iloc[test_rows].reset_index(drop=True)
        if group is not None:
            assert_patient_disjoint(train, test, column=group)
        splits.append((train, test))
    return splits
