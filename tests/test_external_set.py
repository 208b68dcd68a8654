"""covidlab.external_set, the external test of chapter 10: what it holds, that no training
recipe touches it, and how a model's answers on it are scored."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlab import external_set, recipes, sources

ACTUALMED = "Actualmed-COVID-chestxray-dataset"


@pytest.fixture(scope="module")
def external_images(shared_data) -> pd.DataFrame:
    return external_set.external_test_set(shared_data / "sources")


@pytest.mark.shared_data
def test_external_set_is_frontal_one_image_per_patient_and_labelled(external_images):
    assert set(external_images["group"]) == {name for _, name in external_set.GROUPS.values()}
    assert set(external_images["label"]) == {"covid", "normal"}
    assert external_images["patient_id"].is_unique
    assert external_images["source"].isin(["actualmed", "figure1"]).all()
    views = external_images["view"].str.lower()
    assert views.isin([view.lower() for view in sources.FRONTAL_VIEWS]).all()
    assert (external_images.loc[external_images["source"] == "figure1", "label"] == "covid").all()
    assert external_images["sha256"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert "license" in external_images


@pytest.mark.shared_data
@pytest.mark.parametrize("recipe", recipes.RECIPES)
def test_external_set_shares_no_patient_and_no_file_with_a_training_recipe(
    external_images, shared_data, recipe
):
    manifest = recipes.build_recipe(recipe, shared_data / "sources").manifest
    assert not set(manifest["patient_id"]) & set(external_images["patient_id"])
    trained = {sources.file_sha256(path) for path in manifest["path"]}
    assert not trained & set(external_images["sha256"])


@pytest.mark.shared_data
def test_the_overlap_check_sees_a_recipe_that_draws_from_the_external_collections(
    external_images, shared_data
):
    """The check above can fail: chapter 01's exercise adds Figure1 and Actualmed COVID-19
    images to a recipe, and then patients are shared."""
    manifest = recipes.build_recipe(
        "apostolopoulos", shared_data / "sources", extra_covid_sources=True
    ).manifest
    assert set(manifest["patient_id"]) & set(external_images["patient_id"])


@pytest.mark.shared_data
def test_an_external_image_copied_into_a_training_source_is_left_out(shared_data, tmp_path):
    sources_dir = tmp_path / "sources"
    shutil.copytree(shared_data / "sources" / ACTUALMED, sources_dir / ACTUALMED)
    shutil.copytree(
        shared_data / "sources" / "Figure1-COVID-chestxray-dataset",
        sources_dir / "Figure1-COVID-chestxray-dataset",
    )
    complete = external_set.external_test_set(sources_dir)
    copied = complete["path"].iloc[0]
    target = sources_dir / "chest_xray" / "train" / "NORMAL" / "IM-0001-0001.png"
    target.parent.mkdir(parents=True)
    shutil.copyfile(copied, target)  # same bytes, another name, in a training source
    with pytest.warns(UserWarning, match="byte-identical to a training image"):
        reduced = external_set.external_test_set(sources_dir)
    assert len(reduced) == len(complete) - 1
    assert copied not in set(reduced["path"])


def test_missing_collection_names_the_file_and_the_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="covidlab-data download actualmed"):
        external_set.external_test_set(tmp_path)


def test_sensitivity_and_specificity_of_the_answers():
    result = external_set.ExternalResult(
        classes=("covid", "normal", "pneumonia"),
        groups=("A covid", "A covid", "A covid", "A normal", "A normal"),
        labels=("covid", "covid", "covid", "normal", "normal"),
        predicted=("covid", "pneumonia", "covid", "covid", "pneumonia"),
    )
    scores = result.covid_vs_normal()
    assert scores["sensitivity_counts"] == [2, 3] and scores["sensitivity"] == pytest.approx(2 / 3)
    # a normal image called pneumonia is not called COVID-19: it counts for specificity
    assert scores["specificity_counts"] == [1, 2]
    assert scores["specificity_low"] < 0.5 < scores["specificity_high"]
    assert result.by_group()["A normal"] == {"covid": 1, "normal": 0, "pneumonia": 1}


def test_internal_numbers_leave_the_pneumonia_row_out():
    classes = ("covid", "normal", "pneumonia")
    confusion = np.array([[8, 1, 1], [2, 6, 2], [5, 5, 0]])
    scores = external_set.internal_covid_vs_normal(confusion, classes)
    assert scores["sensitivity_counts"] == [8, 10]
    assert scores["specificity_counts"] == [8, 10]  # normal row: 10 images, 2 called covid


def _image(path, mode, size):
    pixels = np.random.default_rng(0).integers(0, 255, (size[1], size[0]))
    if mode == "I;16":
        Image.fromarray((pixels * 200).astype(np.uint16)).save(path)
    elif mode == "RGB":
        Image.fromarray(np.stack([pixels] * 3, axis=-1).astype(np.uint8)).save(path)
    else:
        Image.fromarray(pixels.astype(np.uint8)).save(path)


def test_harmonise_gives_one_format_one_size_and_equalised_grey(tmp_path):
    rows = []
    for i, (mode, size, suffix) in enumerate(
        [("RGB", (300, 200), ".jpg"), ("L", (120, 160), ".png"), ("I;16", (90, 90), ".png")]
    ):
        path = tmp_path / f"image{i}{suffix}"
        _image(path, mode, size)
        rows.append({"path": str(path), "label": "covid", "patient_id": f"p{i}", "source": "s"})
    manifest = pd.DataFrame(rows)
    out = external_set.harmonise(manifest, tmp_path / "harmonised")
    assert list(out["patient_id"]) == ["p0", "p1", "p2"]
    for path in out["path"]:
        with Image.open(path) as image:
            assert image.format == "PNG" and image.mode == "L"
            assert image.size == (external_set.HARMONISE_SIDE,) * 2
            histogram = np.asarray(image).ravel()
            assert histogram.min() < 20 and histogram.max() > 235  # equalised: full range
    written = [Path(path).stat().st_mtime_ns for path in out["path"]]
    again = external_set.harmonise(manifest, tmp_path / "harmonised")
    assert list(again["path"]) == list(out["path"])
    assert [Path(path).stat().st_mtime_ns for path in again["path"]] == written  # read back
    assert not [p for p in (tmp_path).iterdir() if p.name.startswith(".harmonised")]
