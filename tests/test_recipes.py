"""Each paper's dataset rebuilt from the sources: counts, determinism, patients, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from covidlab import papers
from covidlab.cli import main
from covidlab.data import read_manifest
from covidlab.download import COHEN_COMMIT, COHEN_LATER_COMMIT
from covidlab.recipes import (
    RECIPES,
    TABLE_COLUMNS,
    build_recipe,
    draw_patients_first,
    plan_recipe,
    rosebrock_list,
    write_recipe,
)

COHEN_HEADER = "patientid,finding,view,modality,folder,filename"


def _image(path: Path, value: int, size: tuple[int, int] = (40, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size[1], size[0]), value % 256, dtype=np.uint8)
    pixels[0, 0] = value // 256  # every image's bytes differ
    Image.fromarray(pixels).save(path, format="JPEG" if path.suffix == ".jpeg" else "PNG")


@pytest.fixture
def mini_sources(tmp_path) -> Path:
    """A sources folder: Cohen (6 COVID images from 3 patients) and a small Kermany tree."""
    root = tmp_path / "sources"
    cohen = root / "covid-chestxray-dataset"
    rows = [COHEN_HEADER]
    for i, patient in enumerate(["p1", "p1", "p1", "p1", "p2", "p3"]):
        rows.append(f"{patient},COVID-19,PA,X-ray,images,c{i}.png")
        _image(cohen / "images" / f"c{i}.png", i + 1)
    (cohen / "metadata.csv").write_text("\n".join(rows) + "\n")
    value = 100
    for name in [f"IM-{n:04d}-0001.jpeg" for n in range(6)] + ["IM-0000-0002.jpeg"]:
        _image(root / "chest_xray" / "train" / "NORMAL" / name, value := value + 7)
    for n in range(6):
        for kind in ("bacteria", "virus"):
            name = f"person{n}_{kind}_{n}.jpeg"
            _image(root / "chest_xray" / "train" / "PNEUMONIA" / name, value := value + 7)
    return root


def test_draw_takes_distinct_patients_first():
    candidates = pd.DataFrame(
        {"path": [f"x{i}" for i in range(7)], "patient_id": ["a"] * 5 + ["b", "c"]}
    )
    for seed in range(10):
        drawn = draw_patients_first(candidates, 3, np.random.default_rng(seed))
        assert sorted(drawn["patient_id"]) == ["a", "b", "c"]
    assert len(draw_patients_first(candidates, 99, np.random.default_rng(0))) == 7


def test_recipe_prefers_distinct_patients_and_reports_shortfall(mini_sources):
    result = build_recipe("aboughazala", mini_sources, max_per_class=3)
    covid = result.manifest.query("label == 'covid'")
    assert sorted(covid["patient_id"]) == ["cohen-p1", "cohen-p2", "cohen-p3"]
    table = result.table.set_index("class")
    assert table.loc["covid", ["requested", "available", "used"]].tolist() == [74, 6, 3]
    assert "reduced to 3" in table.loc["covid", "note"]

    full = build_recipe("aboughazala", mini_sources)
    assert full.table.set_index("class").loc["covid", "used"] == 6
    assert (
        "short: the sources hold 6 of the 74"
        in full.shortfall.set_index("class").loc["covid", "note"]
    )


def test_same_seed_same_manifest_other_seed_other_draw(mini_sources):
    def paths(seed):
        result = build_recipe("soares", mini_sources, seed=seed, max_per_class=4)
        return result.manifest["path"].tolist()

    assert paths(0) == paths(0)
    assert any(paths(0) != paths(seed) for seed in range(1, 6))


def test_scale_shrinks_every_class(mini_sources):
    table = build_recipe("coronet", mini_sources, scale=0.01).table
    assert table["used"].tolist() == [3, 3, 3, 3]  # round(0.01 * 284, 310, 330, 327)


def test_corrupt_and_empty_images_are_skipped_with_a_message(mini_sources):
    normal = mini_sources / "chest_xray" / "train" / "NORMAL"
    (normal / "IM-0000-0001.jpeg").write_bytes(b"")
    (normal / "IM-0001-0001.jpeg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.warns(UserWarning, match="2 unreadable image") as record:
        result = build_recipe("aboughazala", mini_sources)
    message = str(record[0].message)
    assert "IM-0000-0001.jpeg: empty file (0 bytes)" in message
    assert "IM-0001-0001.jpeg: not a readable image" in message
    assert not result.manifest["path"].str.contains("IM-000[01]-0001").any()
    assert result.table.set_index("class").loc["normal", "available"] == 5
    assert any("unreadable" in note for note in result.notes)


def test_a_truncated_jpeg_is_skipped_with_a_warning_naming_it(mini_sources):
    """A download cut short keeps a valid JPEG header: only decoding the data finds it."""
    normal = mini_sources / "chest_xray" / "train" / "NORMAL"
    noisy = np.random.default_rng(0).integers(0, 255, (120, 160), dtype=np.uint8)
    Image.fromarray(noisy).save(normal / "IM-0003-0001.jpeg")
    whole = (normal / "IM-0003-0001.jpeg").read_bytes()
    (normal / "IM-0003-0001.jpeg").write_bytes(whole[: len(whole) // 2])
    with pytest.warns(UserWarning, match=r"IM-0003-0001\.jpeg: not a readable image .*truncated"):
        result = build_recipe("aboughazala", mini_sources)
    assert not result.manifest["path"].str.contains("IM-0003-0001").any()


@pytest.mark.parametrize("cap", [0, -3])
def test_max_per_class_must_be_at_least_one(mini_sources, cap):
    with pytest.raises(ValueError, match="max_per_class must be at least 1"):
        build_recipe("aboughazala", mini_sources, max_per_class=cap)


def test_recipe_files_are_readable_by_everyone(mini_sources, tmp_path):
    folder = write_recipe(build_recipe("aboughazala", mini_sources), tmp_path / "recipes")
    for name in ("manifest.csv", "table.csv"):
        assert (folder / name).stat().st_mode & 0o777 == 0o644, name


# --- which Cohen snapshot each paper draws from ---------------------------------------------


def test_papers_needing_more_covid_images_than_548bb58_use_the_later_snapshot():
    needs = {key: papers.get(key).recipe["covid"] for key in papers.ALL}
    assert needs == {
        "covidx_net": 25,
        "soares": 175,
        "aboughazala": 74,
        "apostolopoulos": 224,
        "coronet": 284,
    }
    pinned_holds = 96  # frontal COVID-19 X-rays at 548bb58
    for key, count in needs.items():
        later = key != "covidx_net" and count > pinned_holds  # COVIDX-Net: its own file list
        snapshot = papers.get(key).cohen_snapshot  # the commits covidlab.download fetches
        assert snapshot == (COHEN_LATER_COMMIT if later else COHEN_COMMIT), key


def _later_snapshot(sources: Path, covid_images: int) -> Path:
    """The later Cohen snapshot beside the pinned one, with ``covid_images`` patients."""
    folder = sources / "covid-chestxray-dataset-6a42423"
    rows = [COHEN_HEADER]
    for i in range(covid_images):
        rows.append(f"L{i},Pneumonia/Viral/COVID-19,AP Supine,X-ray,images,later{i}.png")
        _image(folder / "images" / f"later{i}.png", 1000 + i)
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_coronet_draws_from_the_later_snapshot_when_it_is_there(mini_sources):
    _later_snapshot(mini_sources, 9)
    result = build_recipe("coronet", mini_sources)
    covid = result.manifest.query("label == 'covid'")
    assert len(covid) == 9 and covid["path"].str.contains("dataset-6a42423").all()
    assert "COVID-19 images from Cohen's snapshot 6a42423" in result.notes
    pinned = build_recipe("aboughazala", mini_sources)  # 74 is enough at 548bb58
    assert not pinned.manifest["path"].str.contains("6a42423").any()


def test_without_the_later_snapshot_the_short_row_says_how_to_get_it(mini_sources):
    result = build_recipe("coronet", mini_sources)
    note = result.table.set_index("class").loc["covid", "note"]
    assert note.startswith("short: the sources hold 6 of the 284")
    assert "`covidlab-data download cohen --commit 6a42423`" in note
    capped = build_recipe("coronet", mini_sources, max_per_class=3)  # not short: no advice
    assert "download" not in capped.table.set_index("class").loc["covid", "note"]


def test_plan_needs_no_images(mini_sources):
    for image in (mini_sources / "covid-chestxray-dataset" / "images").iterdir():
        image.unlink()
    plan = plan_recipe("aboughazala", mini_sources)
    table = plan.table.set_index("class")
    assert table.loc["covid", ["requested", "available", "used"]].tolist() == [74, 6, 6]
    assert table.loc["normal", ["requested", "available", "used"]].tolist() == [73, 7, 7]
    assert plan.table.columns.tolist() == list(TABLE_COLUMNS)


def test_duplicate_files_are_drawn_once(mini_sources):
    normal = mini_sources / "chest_xray" / "train" / "NORMAL"
    (normal / "IM-0077-0001.jpeg").write_bytes((normal / "IM-0002-0001.jpeg").read_bytes())
    result = build_recipe("aboughazala", mini_sources)
    assert result.manifest["sha256"].is_unique
    assert any("1 byte-identical duplicate" in note for note in result.notes)


def test_write_recipe_round_trips_and_leaves_no_temp_files(mini_sources, tmp_path):
    result = build_recipe("apostolopoulos", mini_sources, variant="dataset2")
    folder = write_recipe(result, tmp_path / "recipes")
    assert folder.name == "apostolopoulos_dataset2"
    assert sorted(p.name for p in folder.iterdir()) == ["manifest.csv", "table.csv"]
    back = read_manifest(folder / "manifest.csv")
    assert back["path"].tolist() == result.manifest["path"].tolist()
    assert pd.read_csv(folder / "table.csv").columns.tolist() == list(TABLE_COLUMNS)


def test_unknown_variant_is_a_clear_error(mini_sources):
    with pytest.raises(KeyError, match="soares has no variant 'dataset2'"):
        build_recipe("soares", mini_sources, variant="dataset2")


def test_rosebrock_list_normal_folder_is_mostly_pneumonia():
    listing = rosebrock_list()
    assert listing["folder"].value_counts().to_dict() == {"covid": 25, "normal": 25}
    normal = listing.query("folder == 'normal'")["true_label"].value_counts().to_dict()
    assert normal == {"normal": 7, "bacterial": 12, "viral": 6}  # sample/PROVENANCE.md


# --- from the real shared sources ----------------------------------------------------------


@pytest.fixture(scope="module")
def shared_recipes(shared_data):
    sources = shared_data / "sources"
    return {name: build_recipe(name, sources, seed=0) for name in RECIPES}


@pytest.mark.shared_data
@pytest.mark.parametrize("name", RECIPES)
def test_every_recipe_builds_from_the_shared_sources(shared_recipes, name):
    result = shared_recipes[name]
    spec = papers.get(name.split("_dataset")[0])
    assert result.table.columns.tolist() == list(TABLE_COLUMNS)
    assert set(result.manifest["label"]) == set(spec.classes)
    assert (result.table["used"] <= result.table["available"]).all()
    assert (result.table["used"] <= result.table["requested"]).all()
    used = result.table.groupby("class")["used"].sum()
    assert result.manifest["label"].value_counts().sort_index().equals(used.sort_index())
    short = result.table["available"] < result.table["requested"]
    assert result.table.loc[short, "note"].str.startswith("short").all()
    assert result.manifest["path"].map(lambda p: Path(p).is_file()).all()


@pytest.mark.shared_data
def test_shared_counts_per_paper(shared_recipes):
    def used(name):
        return shared_recipes[name].table.set_index("class")["used"].to_dict()

    # 96 frontal COVID-19 X-rays in Cohen at 548bb58; 300 images per Kermany label.
    assert used("soares") == {"covid": 96, "normal": 100, "infection": 100}
    assert used("aboughazala") == {"covid": 74, "normal": 73}
    assert used("coronet") == {"covid": 96, "normal": 300, "bacterial": 300, "viral": 300}
    dataset2 = shared_recipes["apostolopoulos_dataset2"].manifest.query("label == 'pneumonia'")
    assert dataset2["true_label"].value_counts().to_dict() == {"bacterial": 300, "viral": 300}
    dataset1 = shared_recipes["apostolopoulos"].manifest.query("label == 'pneumonia'")
    assert set(dataset1["true_label"]) == {"bacterial"}


@pytest.mark.shared_data
def test_aboughazala_covid_images_come_from_distinct_patients_first(shared_recipes, shared_data):
    covid = shared_recipes["aboughazala"].manifest.query("label == 'covid'")
    # 66 Cohen patients have a frontal COVID-19 X-ray: all 66 appear before any repeats.
    assert covid["patient_id"].nunique() == 66


@pytest.mark.shared_data
def test_covidx_net_rebuilt_by_file_name_with_true_labels(shared_recipes):
    result = shared_recipes["covidx_net"]
    listing = rosebrock_list()
    names = result.manifest["path"].map(lambda p: Path(p).name)
    expected = dict(zip(listing["filename"], listing["folder"], strict=True))
    assert (result.manifest["label"] == names.map(expected)).all()
    normal = result.manifest.query("label == 'normal'")
    # Of the five listed "normal" files in the shared copy, only two are normal.
    assert normal["true_label"].value_counts().to_dict() == {
        "normal": 2,
        "viral": 2,
        "bacterial": 1,
    }
    table = result.table.set_index("class")
    assert table.loc["covid", "used"] == 24
    assert "radiopedia-covid-19-pneumonia-2.jpg" in table.loc["covid", "note"]
    assert "bacterial 12, normal 7, viral 6" in table.loc["normal", "note"]


@pytest.mark.shared_data
def test_extra_covid_sources_add_figure1_and_actualmed(shared_data):
    result = build_recipe("coronet", shared_data / "sources", extra_covid_sources=True)
    covid = result.manifest.query("label == 'covid'")
    assert covid["source"].value_counts().to_dict() == {"cohen": 96, "figure1": 35, "actualmed": 26}


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "covid"), [("coronet", 284), ("apostolopoulos", 224), ("soares", 175)]
)
def test_paper_profile_plan_gets_the_papers_covid_count_from_the_later_metadata(
    shared_data, name, covid
):
    """The shared copy of 6a42423's metadata.csv lists 478 frontal COVID-19 X-rays."""
    plan = plan_recipe(name, shared_data / "sources")
    row = plan.table.set_index("class").loc["covid"]
    assert (row["requested"], row["available"], row["used"]) == (covid, 478, covid)
    assert row["note"] == ""
    assert "cohen-metadata-6a42423.csv" in plan.notes[0]


@pytest.mark.shared_data
def test_covidx_net_plan_keeps_its_file_list_and_says_where_the_25th_file_is(shared_data):
    plan = plan_recipe("covidx_net", shared_data / "sources")
    covid = plan.table.set_index("class").loc["covid"]
    assert covid["used"] == 24
    assert "only in Cohen's commit 47b9451" in covid["note"]


@pytest.mark.shared_data
@pytest.mark.parametrize("name", RECIPES)
def test_demo_draws_are_those_of_the_pinned_snapshot(shared_data, name):
    """The shared sources hold only 548bb58, so the demo draws exactly what it drew before."""
    default = build_recipe(name, shared_data / "sources", max_per_class=50)
    pinned = build_recipe(
        name, shared_data / "sources", max_per_class=50, cohen_commit=COHEN_COMMIT
    )
    assert default.manifest["path"].tolist() == pinned.manifest["path"].tolist()
    assert default.table.equals(pinned.table)


@pytest.mark.shared_data
def test_cli_builds_every_recipe_offline(shared_data, tmp_path, capsys):
    status = main(
        ["build", "all", "--sources", str(shared_data / "sources"), "--out", str(tmp_path)]
    )
    assert status == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(RECIPES)
    assert "short: the sources hold 96 of the 224" in capsys.readouterr().out


def test_recipe_manifests_carry_each_image_licence(shared_data):
    """The book shows only images whose licence allows it, so every recipe row keeps one."""
    from covidlab import recipes, viz

    result = recipes.build_recipe("coronet", shared_data / "sources", max_per_class=20)
    assert "license" in result.manifest
    kermany = result.manifest[result.manifest["source"] == "kermany"]
    assert set(kermany["license"]) == {"CC BY 4.0"}
    shown = viz.showable(result.manifest)
    assert set(shown["source"]) == {"cohen", "kermany"}, "some Cohen images are showable too"
    assert len(shown) < len(result.manifest), "and some (blank licence) are not"
