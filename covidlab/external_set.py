"""An external test set: chest X-rays from hospitals that no training recipe draws from.

Every paper tested on images from the collections it trained on. Models that learn where an
image came from rather than the disease look good on such a test and fail elsewhere
(DeGrave et al. 2021; Roberts et al. 2021). The COVID-Net team's two collections give a test
from elsewhere that the course can build from the same downloads:

- **Actualmed** (agchung/Actualmed-COVID-chestxray-dataset): X-rays of one hospital labelled
  COVID-19 or "No finding" (adults suspected of COVID-19 whose test was negative: the closest
  thing to an adult normal any of these collections holds);
- **Figure1** (agchung/Figure1-COVID-chestxray-dataset): COVID-19 X-rays shared on the Figure1
  case platform.

The training recipes of every paper take COVID-19 from Cohen's collection and normal and
pneumonia from Kermany's (:mod:`covidlab.recipes`), so neither collection here is seen in
training. :func:`external_test_set` checks it anyway, by file content (a byte-identical copy
of an image under another name) and by patient id.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from covidlab import metrics, sources
from covidlab.data import folder_written_atomically
from covidlab.download import SOURCES

#: The external groups: (source, label in the source's metadata) -> (course label, group name).
#: Actualmed's "No finding" becomes ``normal`` here, and only here: the training recipes take
#: their normal class from Kermany (see "Labels" in :mod:`covidlab.sources`), and what this
#: test asks of a model is whether it calls an adult's clear X-ray COVID-19.
GROUPS = {
    ("actualmed", "covid"): ("covid", "Actualmed COVID-19"),
    ("actualmed", "no finding"): ("normal", "Actualmed no finding"),
    ("figure1", "covid"): ("covid", "Figure1 COVID-19"),
}

#: Sources the training recipes draw from (every snapshot of Cohen's collection: a later one
#: unpacks beside the pinned one, its folder named with its commit).
TRAINING_SOURCES = ("cohen", "kermany")

#: Images per group on the smoke profile (synthetic, drawn with another seed than training).
SMOKE_PER_CLASS = 6
SMOKE_SEED_OFFSET = 1000

#: :func:`harmonise`: the share of each side cropped away, and the side of the square output.
HARMONISE_CROP = 0.08
HARMONISE_SIDE = 256

COLUMNS = ["path", "label", "patient_id", "source", "group", "view", "license", "sha256"]


def external_test_set(sources_dir: str | os.PathLike) -> pd.DataFrame:
    """The external test set read from ``sources_dir`` (the folder the downloads unpack into).

    Frontal X-rays only (:func:`covidlab.sources.frontal_xrays`; Figure1 rows with a blank view
    are left out, since a blank view may be a lateral one), one image per patient (the first
    by file name: every image is then an independent case for the intervals), labelled
    ``covid`` or ``normal`` (:data:`GROUPS`), with the source, its licence and the file's
    sha256 recorded. An image whose bytes also occur in a training source
    (:data:`TRAINING_SOURCES`) is dropped with a warning.
    """
    sources_dir = Path(sources_dir)
    parts = []
    for source, reader in (
        ("actualmed", sources.read_actualmed),
        ("figure1", sources.read_figure1),
    ):
        folder = sources_dir / SOURCES[source].folder
        if not (folder / "metadata.csv").is_file():
            raise FileNotFoundError(
                f"{folder / 'metadata.csv'} not found: the external test needs the {source} "
                f"collection; run `covidlab-data download {source}` (or `download all`)"
            )
        with warnings.catch_warnings():  # the offline copies lack most images; counted below
            warnings.simplefilter("ignore", sources.MissingImagesWarning)
            parts.append(sources.frontal_xrays(reader(folder)))
    frame = pd.concat(parts, ignore_index=True)
    keys = list(zip(frame["source"], frame["label"], strict=True))
    frame = frame[[key in GROUPS for key in keys]].copy()
    frame["group"] = [GROUPS[key][1] for key in zip(frame["source"], frame["label"], strict=True)]
    frame["label"] = [GROUPS[key][0] for key in zip(frame["source"], frame["label"], strict=True)]
    frame = frame.sort_values("path").drop_duplicates("patient_id").reset_index(drop=True)
    frame = sources.add_sha256(frame)
    seen = _training_hashes(sources_dir)
    shared = frame["sha256"].isin(seen)
    if shared.any():
        warnings.warn(
            f"{int(shared.sum())} external image(s) are byte-identical to a training image and "
            f"were left out: {', '.join(Path(p).name for p in frame.loc[shared, 'path'])}",
            stacklevel=2,
        )
    return frame.loc[~shared, COLUMNS].reset_index(drop=True)


def load(profile: str, *, seed: int = 0) -> tuple[pd.DataFrame, str]:
    """The external test set of ``profile`` and a one-line description of it.

    smoke: synthetic covid/normal images drawn with another seed than any training set
    (:data:`SMOKE_SEED_OFFSET`); demo / paper: :func:`external_test_set` from the profile's
    sources folder (:func:`covidlab.profiles.sources_dir`).
    """
    from covidlab import profiles

    smoke = {"max_per_class": SMOKE_PER_CLASS} if profile == "smoke" else {}
    config = profiles.resolve(
        "apostolopoulos",
        profile,
        seed=seed + SMOKE_SEED_OFFSET,
        classes=("covid", "normal"),
        **smoke,
    )
    if config.data == "synthetic":
        frame = synthetic_external_set(profiles.load_data(config))
        return frame, f"synthetic stand-in, {len(frame)} images"
    frame = external_test_set(profiles.sources_dir(config))
    return frame, f"Actualmed + Figure1, frontal, one image per patient, {len(frame)} images"


def synthetic_external_set(manifest: pd.DataFrame) -> pd.DataFrame:
    """The smoke profile's stand-in: ``manifest`` (synthetic covid/normal images drawn with a
    seed the training set does not use) with the external set's columns."""
    frame = manifest[manifest["label"].isin(["covid", "normal"])].copy()
    frame["source"] = "synthetic"
    frame["group"] = "synthetic " + frame["label"]
    frame["view"] = "PA"
    frame["license"] = "synthetic"
    frame["sha256"] = ""
    return frame[COLUMNS].reset_index(drop=True)


def _training_hashes(sources_dir: Path) -> set[str]:
    """sha256 of every image file in the training sources under ``sources_dir`` (remembered
    between calls: :func:`covidlab.sources.folder_sha256`)."""
    prefixes = tuple(SOURCES[name].folder for name in TRAINING_SOURCES)
    hashes = set()
    for folder in sorted(sources_dir.iterdir()):
        if folder.is_dir() and folder.name.startswith(prefixes):
            hashes.update(sources.folder_sha256(folder).values())
    return hashes


@dataclasses.dataclass(frozen=True)
class ExternalResult:
    """What one model said about every external image (``predicted`` holds class names)."""

    classes: tuple[str, ...]
    groups: tuple[str, ...]
    labels: tuple[str, ...]
    predicted: tuple[str, ...]

    def by_group(self) -> dict[str, dict[str, int]]:
        """Per group, how many images the model gave each class."""
        counts: dict[str, dict[str, int]] = {}
        for group, answer in zip(self.groups, self.predicted, strict=True):
            counts.setdefault(group, dict.fromkeys(self.classes, 0))[answer] += 1
        return counts

    def covid_vs_normal(self) -> dict:
        """COVID-19 sensitivity (COVID-19 images called COVID-19) and specificity (normal images
        not called COVID-19), each with its 95 % Wilson interval and its counts."""
        labels, said_covid = np.array(self.labels), np.array(self.predicted) == "covid"
        return covid_vs_normal_counts(
            int(said_covid[labels == "covid"].sum()),
            int((labels == "covid").sum()),
            int((~said_covid[labels == "normal"]).sum()),
            int((labels == "normal").sum()),
        )

    def to_json(self) -> dict:
        return {
            **self.covid_vs_normal(),
            "by_group": self.by_group(),
            "labels": list(self.labels),
            "groups": list(self.groups),
            "predicted": list(self.predicted),
        }


def covid_vs_normal_counts(
    covid_hits: int, covid_total: int, normal_hits: int, normal_total: int
) -> dict:
    """Sensitivity and specificity with intervals from counts (a NaN rate for an empty class)."""
    out = {}
    for name, hits, total in (
        ("sensitivity", covid_hits, covid_total),
        ("specificity", normal_hits, normal_total),
    ):
        low, high = metrics.wilson_interval(hits, total) if total else (np.nan, np.nan)
        rate = hits / total if total else np.nan
        out.update({name: rate, f"{name}_low": low, f"{name}_high": high})
        out[f"{name}_counts"] = [hits, total]
    return out


def internal_covid_vs_normal(confusion: np.ndarray, classes: tuple[str, ...] | list[str]) -> dict:
    """The same two numbers on the internal test set, read from its confusion matrix: COVID-19
    images called COVID-19, and normal images not called COVID-19 (the other classes' rows,
    e.g. pneumonia, are left out: the external set has none)."""
    cm = np.asarray(confusion)
    covid, normal = list(classes).index("covid"), list(classes).index("normal")
    return covid_vs_normal_counts(
        int(cm[covid, covid]),
        int(cm[covid].sum()),
        int(cm[normal].sum() - cm[normal, covid]),
        int(cm[normal].sum()),
    )


def predict(model, external: pd.DataFrame, config) -> ExternalResult:
    """Run ``model`` (trained with ``config``: classes, input size, resize) on ``external``."""
    from covidlab import train

    _, y_prob = train.predict_manifest(model, external, config)
    classes = tuple(config.classes)
    return ExternalResult(
        classes=classes,
        groups=tuple(external["group"]),
        labels=tuple(external["label"]),
        predicted=tuple(classes[i] for i in y_prob.argmax(axis=1)),
    )


def harmonise(manifest: pd.DataFrame, out_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """Copies of the images of ``manifest`` with the trivial cues between sources removed, and
    the manifest pointing at them (every other column kept).

    Each image is converted to 8-bit grayscale (16-bit images scaled, colour averaged),
    cropped by :data:`HARMONISE_CROP` of its width and height on every side (borders, rulers,
    burnt-in text), histogram-equalised (exposure and contrast) and resized to
    :data:`HARMONISE_SIDE` pixels square (size and aspect ratio), then saved as PNG (format).
    The copies go to ``out_dir`` (default: ``<data dir>/harmonised/<hash of the file list>``),
    written to a temporary folder first and renamed into place
    (:func:`covidlab.data.folder_written_atomically`), so that two runs never read
    half-written files; a second call reads them back.
    """
    from covidlab.config import data_dir

    key = hashlib.sha256(
        "\n".join([*manifest["path"], f"{HARMONISE_CROP}/{HARMONISE_SIDE}"]).encode()
    ).hexdigest()[:16]
    folder = Path(out_dir) if out_dir is not None else data_dir() / "harmonised" / key
    names = [f"{i:05d}.png" for i in range(len(manifest))]
    if not folder.is_dir():
        with folder_written_atomically(folder) as staging:
            for path, name in zip(manifest["path"], names, strict=True):
                _harmonise_one(path).save(staging / name)
    out = manifest.copy()
    out["path"] = [str(folder / name) for name in names]
    return out


def _harmonise_one(path: str) -> Image.Image:
    with Image.open(path) as image:
        if image.mode in ("I", "I;16", "I;16B", "I;16L"):
            pixels = np.asarray(image, dtype=np.float32)
            gray = Image.fromarray((255 * pixels / max(pixels.max(), 1)).astype(np.uint8))
        else:
            gray = image.convert("L")
    width, height = gray.size
    dx, dy = round(HARMONISE_CROP * width), round(HARMONISE_CROP * height)
    cropped = gray.crop((dx, dy, width - dx, height - dy))
    return ImageOps.equalize(cropped).resize((HARMONISE_SIDE, HARMONISE_SIDE), Image.BILINEAR)
