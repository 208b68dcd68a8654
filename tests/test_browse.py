"""The data chapter's helpers: the synthetic stand-in, the catalogue, patients, duplicates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from covidlab import profiles, recipes
from covidlab.chapters import browse
from covidlab.synthetic import synthetic_sources


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return synthetic_sources(tmp_path_factory.mktemp("sources"), seed=0)


@pytest.fixture(scope="module")
def catalogue(synthetic) -> pd.DataFrame:
    return browse.catalogue(synthetic)


def test_synthetic_sources_are_deterministic(synthetic, tmp_path) -> None:
    again = synthetic_sources(tmp_path / "again", seed=0)
    first = sorted(p.relative_to(synthetic) for p in synthetic.rglob("*") if p.is_file())
    second = sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert first == second
    assert (synthetic / "covid-chestxray-dataset" / "metadata.csv").read_bytes() == (
        again / "covid-chestxray-dataset" / "metadata.csv"
    ).read_bytes()


def test_every_recipe_builds_from_the_synthetic_sources(synthetic) -> None:
    results = browse.build_all_recipes(synthetic, seed=0)
    assert list(results) == list(recipes.RECIPES)
    counts = browse.recipe_counts(results)
    assert (counts["used"] <= counts["available"]).all()
    assert (counts["used"] <= counts["requested"]).all()
    # Rosebrock's 25 + 25 file names are all in the stand-in, with their true labels.
    covidx = counts[counts["recipe"] == "covidx_net"].set_index("class")
    assert covidx.loc["normal", "used"] == 25 and covidx.loc["covid", "used"] == 25
    truth = results["covidx_net"].manifest.query("label == 'normal'")["true_label"]
    assert truth.value_counts().to_dict() == {"bacterial": 12, "normal": 7, "viral": 6}
    assert isinstance(browse.plot_recipe_counts(counts, caption="test"), Figure)


def test_rosebrock_truth_counts_the_normal_folder() -> None:
    table = recipes.rosebrock_truth()
    assert table.loc["normal", "Normal"] == 7
    assert table.loc["normal", "Bacterial pneumonia"] == 12
    assert table.loc["normal", "Viral pneumonia"] == 6
    assert table.loc["All", "All"] == 50


def test_catalogue_lists_views_sizes_and_presence(catalogue) -> None:
    assert set(catalogue["source"]) == {"cohen", "kermany", "figure1", "actualmed"}
    assert catalogue["present"].all()
    assert (catalogue["width"] > 0).all() and (catalogue["height"] > 0).all()
    # No shrinking record in the stand-in: the original size is the file's size.
    assert (catalogue["original_width"] == catalogue["width"]).all()
    kermany = catalogue[catalogue["source"] == "kermany"]
    assert (kermany["aspect"] > 1).all()  # written landscape, as Kermany's are
    views = browse.view_counts(catalogue)
    assert views.loc[("cohen", "CT"), "Axial"] == 2
    assert views.loc[("cohen", "X-ray"), "L"] == 3
    assert views.loc[("kermany", "X-ray"), "(not recorded)"] == len(kermany)
    for plot in (browse.plot_image_sizes, browse.plot_views):
        assert isinstance(plot(catalogue, caption="test"), Figure)


def test_catalogue_marks_listed_but_absent_files(synthetic, tmp_path) -> None:
    copy = tmp_path / "copy"
    synthetic_sources(copy, seed=0)
    removed = next((copy / "covid-chestxray-dataset" / "images").glob("*.jpg"))
    removed.unlink()
    table = browse.catalogue(copy)
    absent = table[~table["present"]]
    assert [Path(p).name for p in absent["path"]] == [removed.name]
    assert absent["width"].isna().all()


def test_catalogue_reads_original_sizes_from_a_shrinking_record(tmp_path) -> None:
    sources_dir = synthetic_sources(tmp_path / "s", seed=0)
    image = next((sources_dir / "covid-chestxray-dataset" / "images").glob("*.jpg"))
    (sources_dir / "manifests").mkdir()
    pd.DataFrame(
        {
            "dataset": ["covid-chestxray-dataset"],
            "path": [f"images/{image.name}"],
            "orig_size": ["2000x1500"],
        }
    ).to_csv(sources_dir / "manifests" / "covid-chestxray-dataset-images.csv", index=False)
    table = browse.catalogue(sources_dir).set_index("path")
    row = table.loc[str(image.resolve())]
    assert (row["original_width"], row["original_height"]) == (2000, 1500)


def test_catalogue_names_the_folder_when_empty(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        browse.catalogue(tmp_path)


def test_patients_with_several_images(catalogue) -> None:
    cohen = catalogue[catalogue["source"] == "cohen"]
    several = browse.patients_with_several_images(cohen)
    counts = cohen["patient_id"].value_counts()
    assert set(several["patient_id"]) == set(counts[counts >= 2].index)
    assert several["images"].is_monotonic_decreasing
    figure = browse.plot_patient(cohen, several["patient_id"].iloc[0], caption="test")
    assert len([ax for ax in figure.axes if ax.images]) == several["images"].iloc[0]
    with pytest.raises(KeyError, match="nobody"):
        browse.plot_patient(cohen, "nobody")


def test_duplicates_and_split_overlap_find_the_planted_twin(catalogue) -> None:
    groups = browse.duplicate_groups(catalogue)
    assert len(groups) == 1
    assert groups.loc[0, "crosses_splits"] and not groups.loc[0, "crosses_sources"]
    overlap = browse.split_overlap(catalogue)
    assert len(overlap) == 1 and overlap.loc[0, "splits"] == "test, train"
    no_twin = catalogue[~catalogue["path"].str.contains("_bacteria_9")]
    assert browse.duplicate_groups(no_twin).empty


def test_patient_choices_follow_class_and_source(catalogue) -> None:
    covid = browse.patient_choices(catalogue, "covid", "all")
    assert {p.split("-")[0] for p in covid} == {"cohen", "figure1", "actualmed"}
    assert all(p.startswith("cohen-") for p in browse.patient_choices(catalogue, "covid", "cohen"))
    assert browse.patient_choices(catalogue, "covid", "kermany") == []
    assert len(browse.patient_choices(catalogue, "all", "all")) == catalogue["patient_id"].nunique()


def test_browser_updates_patients_when_the_class_changes(catalogue) -> None:
    pytest.importorskip("ipywidgets")
    box = browse.browser(catalogue, image_size=(32, 32))
    label, source, patient = box.children[0].children
    label.value = "normal"
    assert set(patient.options) == set(browse.patient_choices(catalogue, "normal", "all"))
    source.value = "cohen"
    assert list(patient.options) == []


@pytest.mark.shared_data
def test_demo_reads_the_shared_copy(shared_data) -> None:
    folder = profiles.sources_dir("demo")
    assert folder == shared_data / "sources"
    table = browse.catalogue(folder)
    absent = table[~table["present"]].groupby("source").size().to_dict()
    assert absent == {"actualmed": 184, "cohen": 4}  # as PROVENANCE.md lists
    # The shared copy shrank images to 512 px; the catalogue gives the original sizes back.
    present = table[table["present"]]
    assert present[["width", "height"]].max().max() <= 512
    assert present["original_width"].max() > 1000


def test_sources_table_lists_every_source() -> None:
    assert list(browse.sources_table()["source"]) == ["cohen", "kermany", "figure1", "actualmed"]
