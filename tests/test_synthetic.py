"""Tests for covidlab.synthetic: synthetic chest X-rays."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlab import data, synthetic

CLASSES = ["covid", "normal", "bacterial", "viral"]


# ---------------------------------------------------------------- synthetic images


def test_synthetic_manifest_writes_deterministic_pngs(tmp_path):
    df = synthetic.synthetic_manifest(
        tmp_path / "a", ["covid", "normal"], 6, image_size=(40, 48), seed=3, patients_per_class=2
    )
    assert len(df) == 12 and (df["source"] == "synthetic").all()
    assert all(os.path.isfile(p) for p in df["path"])
    assert set(df["patient_id"]) == {
        f"synthetic-{c}-00{i}" for c in ("covid", "normal") for i in (0, 1)
    }
    with Image.open(df["path"].iloc[0]) as image:
        assert image.mode == "L" and image.size == (48, 40)
    pd.testing.assert_frame_equal(data.read_manifest(tmp_path / "a" / "manifest.csv"), df)

    same = synthetic.synthetic_manifest(
        tmp_path / "b", ["covid", "normal"], 6, image_size=(40, 48), seed=3, patients_per_class=2
    )
    other = synthetic.synthetic_manifest(
        tmp_path / "c", ["covid", "normal"], 6, image_size=(40, 48), seed=4
    )

    def contents(manifest):
        return [Path(p).read_bytes() for p in manifest["path"]]

    assert contents(df) == contents(same)
    assert contents(df) != contents(other)


def _pixels(df: pd.DataFrame) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p), np.float32) for p in df["path"]])


def test_synthetic_classes_differ_where_they_should(tmp_path):
    df = synthetic.synthetic_manifest(tmp_path, CLASSES + ["fungal"], 12, seed=0)
    images = {label: _pixels(group) for label, group in df.groupby("label")}
    # Lung fields (rows 30..90%, columns either side of the spine) are darkest when normal.
    lungs = np.r_[8:26, 38:56]
    brightness = {k: v[:, 20:58][:, :, lungs].mean() for k, v in images.items()}
    assert brightness["normal"] + 10 < min(brightness[k] for k in ("covid", "bacterial", "viral"))
    # Bacterial consolidation is one-sided: the two lungs differ most.
    asymmetry = {
        k: np.abs(v[:, 20:58, 8:26] - v[:, 20:58, 38:56][:, :, ::-1]).mean()
        for k, v in images.items()
    }
    assert max(asymmetry, key=asymmetry.get) == "bacterial"
    # Viral texture is fine-grained: the most pixel-to-pixel variation inside the lungs.
    roughness = {
        k: np.abs(np.diff(v[:, 20:58][:, :, lungs], axis=2)).mean() for k, v in images.items()
    }
    assert max(roughness, key=roughness.get) == "viral"
    # An unknown class name gets its own pattern, the same every time.
    assert min(np.abs(images["fungal"].mean(0) - images[k].mean(0)).mean() for k in CLASSES) > 5


def test_synthetic_classes_are_learnable_on_new_patients(tmp_path):
    from sklearn.linear_model import LogisticRegression

    def features(seed):
        df = synthetic.synthetic_manifest(
            tmp_path / str(seed), CLASSES, 15, image_size=32, seed=seed
        )
        return _pixels(df).reshape(len(df), -1) / 255, df["label"]

    model = LogisticRegression(max_iter=2000).fit(*features(0))
    x_new, y_new = features(1)
    assert (model.predict(x_new) == y_new).mean() > 0.8


def test_synthetic_manifest_rejects_more_patients_than_images(tmp_path):
    with pytest.raises(ValueError, match="patients_per_class"):
        synthetic.synthetic_manifest(tmp_path, ["covid"], 3, patients_per_class=5)
