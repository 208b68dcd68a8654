"""Synthetic chest X-rays: images and a stand-in for the sources, so every chapter runs offline.

**The images are synthetic and carry no medical meaning.** :func:`synthetic_manifest` writes
chest-X-ray-like PNGs whose classes differ by a drawn pattern (the smoke profile's data);
:func:`synthetic_sources` lays them out like the real downloads (Cohen's and Kermany's
folders and metadata), so the recipes and the data chapter run on them too.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from covidlab.data import MANIFEST_COLUMNS, write_manifest
from covidlab.download import SOURCES
from covidlab.images import size_pair
from covidlab.recipes import rosebrock_list

# Merged classes draw each patient's pattern from their parts.
_MIXTURES = {
    "pneumonia": ("bacterial", "viral"),
    "infection": ("bacterial", "viral"),
    "other": ("normal", "bacterial", "viral"),
}
_LUNG_CENTRES_X = (0.31, 0.69)  # image left and right lung, as fractions of the width


def _stable_hash(text: str) -> int:
    """A hash of ``text`` that is the same in every Python process (unlike ``hash``)."""
    return zlib.crc32(text.encode("utf-8"))


def _ellipse(y: np.ndarray, x: np.ndarray, cy: float, cx: float, ry: float, rx: float):
    """Soft-edged ellipse mask in [0, 1]."""
    r = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2
    return 1.0 / (1.0 + np.exp(np.clip((r - 1.0) * 10.0, -50, 50)))


def _blob(y: np.ndarray, x: np.ndarray, cy: float, cx: float, sy: float, sx: float):
    return np.exp(-0.5 * (((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))


def _opacity(pattern: str, y: np.ndarray, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Extra brightness (grey levels) that a class adds inside the lungs."""
    if pattern == "normal":
        return np.zeros_like(y)
    if pattern == "covid":  # bilateral, peripheral, lower-zone patches
        field = np.zeros_like(y)
        for side, centre in zip((-1, 1), _LUNG_CENTRES_X, strict=True):
            for _ in range(3):
                cx = centre + side * rng.uniform(0.04, 0.09)
                cy = rng.uniform(0.45, 0.72)
                field += _blob(y, x, cy, cx, rng.uniform(0.05, 0.07), rng.uniform(0.035, 0.05))
        return 100.0 * np.minimum(field, 1.0)
    if pattern == "bacterial":  # one dense lobar consolidation
        cx = _LUNG_CENTRES_X[rng.integers(2)] + rng.uniform(-0.03, 0.03)
        return 120.0 * np.minimum(1.3 * _blob(y, x, rng.uniform(0.45, 0.6), cx, 0.13, 0.09), 1.0)
    if pattern == "viral":  # diffuse fine interstitial texture
        speckle = rng.random(y.shape) > 0.55
        return 35.0 + 40.0 * speckle
    # Any other class name: stripes and spots fixed by the name, so each gets its own look.
    own = np.random.default_rng(_stable_hash(pattern))
    angle, frequency = own.uniform(0, np.pi), own.uniform(6, 14)
    stripes = 0.5 + 0.5 * np.sin(2 * np.pi * frequency * (x * np.cos(angle) + y * np.sin(angle)))
    spots = sum(
        _blob(y, x, own.uniform(0.35, 0.75), own.choice(_LUNG_CENTRES_X), 0.05, 0.05)
        for _ in range(2)
    )
    return 35.0 * stripes + 60.0 * np.minimum(spots, 1.0) + rng.normal(0, 3, y.shape)


def _chest_xray(
    pattern: str,
    image_size: tuple[int, int],
    patient_rng: np.random.Generator,
    image_rng: np.random.Generator,
) -> np.ndarray:
    """One synthetic frontal 'radiograph' as a uint8 array (dark air, bright bone)."""
    height, width = image_size
    # The patient fixes body shape and position; each image adds a small shift and noise.
    shift_x = patient_rng.uniform(-0.03, 0.03) + image_rng.uniform(-0.01, 0.01)
    shift_y = patient_rng.uniform(-0.03, 0.03) + image_rng.uniform(-0.01, 0.01)
    scale = patient_rng.uniform(0.92, 1.08)
    exposure = patient_rng.uniform(-8, 8) + image_rng.uniform(-3, 3)
    y = ((np.arange(height) + 0.5) / height - 0.5 - shift_y)[:, None] / scale + 0.5
    x = ((np.arange(width) + 0.5) / width - 0.5 - shift_x)[None, :] / scale + 0.5
    y, x = np.broadcast_arrays(y, x)

    image = np.full((height, width), 12.0)
    body = _ellipse(y, x, 0.62, 0.5, 0.55, 0.46)
    image += (105.0 - image) * body
    lungs = sum(_ellipse(y, x, 0.48, cx, 0.28, 0.13) for cx in _LUNG_CENTRES_X)
    image += (45.0 - image) * lungs
    image += lungs * _opacity(pattern, y, x, patient_rng)
    spine = _ellipse(y, x, 0.6, 0.5, 0.55, 0.055)
    heart = _ellipse(y, x, 0.68, 0.56, 0.11, 0.12)
    for part, level in ((spine, 170.0), (heart, 150.0)):
        image += (level - image) * part
    image += exposure + image_rng.normal(0.0, 5.0, image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def synthetic_manifest(
    out_dir: str | os.PathLike,
    classes: Sequence[str],
    n_per_class: int,
    *,
    image_size: int | Sequence[int] = (64, 64),
    seed: int = 0,
    patients_per_class: int | None = None,
) -> pd.DataFrame:
    """Write synthetic, chest-X-ray-like grayscale PNGs and return their manifest.

    **These images are synthetic and carry no medical meaning.** They let every chapter run
    in seconds without downloads: a dark background, a body, two dark lungs, a bright spine
    and heart, plus a class pattern in the lungs that a small CNN picks up in a few epochs:
    ``covid`` bilateral peripheral patches, ``bacterial`` one dense blob, ``viral`` a diffuse
    fine texture, ``normal`` clear lungs. ``pneumonia``/``infection`` mix bacterial and
    viral patients, ``other`` mixes normal, bacterial and viral; any other name gets its own
    pattern derived from the name.

    Parameters
    ----------
    out_dir : str or Path
        Folder for ``<class>/<class>-NNN.png`` and ``manifest.csv`` (created if needed).
    classes : sequence of str
        Class names.
    n_per_class : int
        Images per class.
    image_size : int or (height, width)
        Size of the PNGs.
    seed : int
        Same seed, same bytes.
    patients_per_class : int, optional
        Number of patients per class; fewer than ``n_per_class`` gives several (near
        identical) images per patient, which makes leakage through image-level splits
        visible. Default: one image per patient.
    """
    if patients_per_class is None:
        patients_per_class = n_per_class
    if not 1 <= patients_per_class <= n_per_class:
        raise ValueError(
            f"patients_per_class must be between 1 and n_per_class={n_per_class}, "
            f"not {patients_per_class}."
        )
    out_dir = Path(out_dir)
    size = size_pair(image_size)
    rows = []
    for label in classes:
        (out_dir / label).mkdir(parents=True, exist_ok=True)
        label_key = _stable_hash(label)
        for image_index in range(n_per_class):
            patient = image_index % patients_per_class
            patient_rng = np.random.default_rng([seed, label_key, patient])
            image_rng = np.random.default_rng([seed, label_key, patient, image_index])
            parts = _MIXTURES.get(label, (label,))
            pattern = parts[patient_rng.integers(len(parts))]
            pixels = _chest_xray(pattern, size, patient_rng, image_rng)
            path = out_dir / label / f"{label}-{image_index:03d}.png"
            Image.fromarray(pixels).save(path)
            rows.append(
                {
                    "path": os.path.abspath(path),
                    "label": label,
                    "patient_id": f"synthetic-{label}-{patient:03d}",
                    "source": "synthetic",
                }
            )
    manifest = pd.DataFrame(rows, columns=list(MANIFEST_COLUMNS))
    write_manifest(manifest, out_dir / "manifest.csv")
    return manifest


# --- A stand-in for the sources ---------------------------------------------------------


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


#: (finding, view) of each synthetic image of the two COVID-Net collections: COVID-19 and
#: "No finding" rows, blank views and a blank finding, which the readers and the external test
#: (:mod:`covidlab.external`) have to sort out.
_AGCHUNG_ROWS = {
    "figure1": [("COVID-19", "AP erect")] * 3 + [("COVID-19", "")] * 2 + [("", "PA")],
    "actualmed": [("COVID-19", "AP")] * 3
    + [("COVID-19", "PA")]
    + [("No finding", "PA")] * 4
    + [("", "PA")],
}
_AGCHUNG_COLUMNS = (
    "patientid,offset,sex,age,finding,survival,temperature,pO2 saturation,view,modality"
).split(",")


def synthetic_sources(out_dir: str | Path, *, seed: int = 0, n_per_class: int = 30) -> Path:
    """Write a tiny synthetic copy of the Cohen and Kermany layouts; return the folder.

    **The images are synthetic** (:func:`synthetic_manifest`) and carry no
    medical meaning; only the layout is real: ``covid-chestxray-dataset/metadata.csv`` in
    Cohen's March 2020 schema (PA/AP/AP Supine/L X-rays, CT slices, SARS and Streptococcus
    rows, several images per patient) and ``chest_xray/{train,test}/{NORMAL,PNEUMONIA}`` with
    Kermany's file names. Rosebrock's 25 + 25 COVIDX-Net file names are among them, so every
    recipe can be built, and one Kermany image is stored twice under two names (Kermany ships
    such duplicates) for the duplicate check to find. Sizes vary like the real sources:
    Kermany landscape, Cohen anything. Figure1 and Actualmed get a few rows each in their own
    layouts (:data:`_AGCHUNG_ROWS`), without a licence, as upstream.
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
        agchung = synthetic_manifest(
            scratch / "agchung", ["covid", "normal"], 9, image_size=96, seed=seed + 1
        )
        _write_agchung(out_dir, agchung, rng)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out_dir


def _write_agchung(out_dir: Path, pixels: pd.DataFrame, rng) -> None:
    """Figure1 (Windows-1252 metadata, no file name column: ``images/<patientid>.jpg``) and
    Actualmed (an ``imagename`` column) with the rows of :data:`_AGCHUNG_ROWS`."""
    by_label = {label: frame["path"].tolist() for label, frame in pixels.groupby("label")}
    for name, rows in _AGCHUNG_ROWS.items():
        folder = out_dir / SOURCES[name].folder
        records = []
        for i, (finding, view) in enumerate(rows):
            patient = f"COVID-{i + 1:05d}" if name == "figure1" else f"ANON{i + 1}"
            image = f"{patient}.jpg" if name == "figure1" else f"CR.synthetic.{i + 1:03d}.png"
            source = by_label["normal" if finding == "No finding" else "covid"][i]
            side = int(rng.integers(80, 120))
            _save_resized(source, folder / "images" / image, (side, side))
            record = dict.fromkeys(_AGCHUNG_COLUMNS, "")
            record.update(patientid=patient, finding=finding, view=view, modality="X-ray")
            if name == "actualmed":
                record["imagename"] = image
            records.append(record)
        encoding = "cp1252" if name == "figure1" else "utf-8"
        pd.DataFrame(records).to_csv(folder / "metadata.csv", index=False, encoding=encoding)


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
