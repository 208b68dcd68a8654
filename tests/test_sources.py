"""Source parsers: both Cohen schemas, Kermany's file names, Figure1 and Actualmed quirks.

Synthetic mini repositories check each rule; the real shared copies check the counts in
``shared/data/sources/PROVENANCE.md``.
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pytest
from PIL import Image

from covidlab import sources
from covidlab.sources import (
    FRONTAL_VIEWS,
    MetadataError,
    MissingImagesWarning,
    find_duplicates,
    frontal_xrays,
    label_from_finding,
    read_actualmed,
    read_cohen,
    read_figure1,
    read_kermany,
)

EARLY_HEADER = (
    "Patientid,offset,sex,age,finding,survival,view,modality,date,location,filename,doi, url,"
    "license,clinical notes,other notes,"
)
LATER_HEADER = "patientid,offset,finding,view,modality,folder,filename,url,brand_new_column"


def _image(path: Path, value: int = 100) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (16, 12), value).save(path)
    return path


def _early_repo(root: Path) -> Path:
    rows = [
        "7,0,F,40,COVID-19,,PA,X-ray,,,a.png,,http://x,,,,",
        "7,3,F,40,COVID-19,,AP Supine,X-ray,,,b.png,,http://x,,,,",
        "8,0,M,70,SARS,,L,X-ray,,,c.png,,http://x,,,,",
        "9,0,M,55,COVID-19,,Axial,CT,,,ct.png,,http://x,,,,",
        "10,0,M,55,COVID-19,,PA,X-ray,,,gone.png,,http://x,,,,",
    ]
    (root / "metadata.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "metadata.csv").write_text("\n".join([EARLY_HEADER, *rows]) + "\n")
    for value, name in enumerate(["a.png", "b.png", "c.png", "ct.png"]):
        _image(root / "images" / name, 40 * value)
    return root


def test_early_schema_reads_patients_labels_and_skips_a_missing_image(tmp_path):
    repo = _early_repo(tmp_path / "cohen")
    with pytest.warns(MissingImagesWarning, match=r"1 images listed in .*metadata.csv.*gone\.png"):
        cohen = read_cohen(repo)
    assert cohen["patient_id"].tolist() == ["cohen-7", "cohen-7", "cohen-8", "cohen-9"]
    assert cohen["label"].tolist() == ["covid", "covid", "sars", "covid"]
    assert cohen["source"].eq("cohen").all()
    assert Path(cohen["path"][0]) == (repo / "images" / "a.png").resolve()
    assert "meta_url" in cohen  # the early " url" header, stripped of its leading space


def test_missing_image_can_be_an_error(tmp_path):
    repo = _early_repo(tmp_path / "cohen")
    with pytest.raises(FileNotFoundError, match=r"gone\.png.*missing='warn'"):
        read_cohen(repo, missing="error")


def test_later_schema_uses_folder_and_hierarchical_findings(tmp_path):
    repo = tmp_path / "cohen"
    rows = [
        "2,0,Pneumonia/Viral/COVID-19,PA,X-ray,images,a.jpg,http://x,new",
        "3,0,Pneumonia/Bacterial/Streptococcus,AP Erect,X-ray,images,b.jpg,http://x,new",
        "4,0,No Finding,PA,X-ray,images,c.jpg,http://x,",
        "5,0,Pneumonia/Viral/COVID-19,Axial,CT,volumes,v.nii.gz,http://x,",
    ]
    repo.mkdir()
    (repo / "metadata.csv").write_text("\n".join([LATER_HEADER, *rows]) + "\n")
    cohen = read_cohen(repo, check_files=False)
    assert cohen["label"].tolist() == ["covid", "streptococcus", "no finding", "covid"]
    assert Path(cohen["path"][3]) == (repo / "volumes" / "v.nii.gz").resolve()
    assert cohen["meta_brand_new_column"].tolist()[:2] == ["new", "new"]  # unknown: kept
    assert frontal_xrays(cohen)["label"].tolist() == ["covid", "streptococcus", "no finding"]


def test_unknown_schema_names_the_file(tmp_path):
    (tmp_path / "metadata.csv").write_text(
        "id,finding,view,modality,filename\n1,COVID-19,PA,X-ray,a.png\n"
    )
    with pytest.raises(
        MetadataError, match=r"metadata\.csv: unknown metadata schema, no patient id"
    ):
        read_cohen(tmp_path)


def test_missing_required_column_names_it(tmp_path):
    (tmp_path / "metadata.csv").write_text(
        "patientid,finding,modality,filename\n1,COVID-19,X-ray,a.png\n"
    )
    with pytest.raises(MetadataError, match=r"metadata\.csv: required column\(s\) view missing"):
        read_cohen(tmp_path)


def test_missing_metadata_file_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="covidlab-data"):
        read_cohen(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("finding", "label"),
    [
        ("COVID-19", "covid"),
        ("Pneumonia/Viral/COVID-19", "covid"),
        ("Pneumonia/Viral/SARS", "sars"),
        ("No Finding", "no finding"),
        ("No finding", "no finding"),
        ("", "unknown"),
        (None, "unknown"),
        # later Cohen commits: COVID-19 with a complication is still COVID-19
        ("COVID-19, ARDS", "covid"),
        ("Pneumonia/Viral/COVID-19, ARDS", "covid"),
        # the later schema's adult pneumonia without an organism is not Kermany's pediatric class
        ("Pneumonia/Bacterial", "adult bacterial"),
        ("Pneumonia/Viral", "adult viral"),
        ("Pneumonia/Bacterial/Streptococcus", "streptococcus"),
    ],
)
def test_label_from_finding(finding, label):
    assert label_from_finding(finding) == label


def test_blank_file_names_in_metadata_are_skipped_and_named(tmp_path):
    cohen = tmp_path / "cohen"
    (cohen / "metadata.csv").parent.mkdir()
    (cohen / "metadata.csv").write_text(
        "patientid,finding,view,modality,folder,filename\n"
        "1,COVID-19,PA,X-ray,images,\n"
        "2,COVID-19,PA,X-ray,images,b.png\n"
    )
    _image(cohen / "images" / "b.png")
    with pytest.warns(MissingImagesWarning, match=r"1 row\(s\) have no 'filename'.*row\(s\) 1\)"):
        assert read_cohen(cohen)["patient_id"].tolist() == ["cohen-2"]

    actualmed = tmp_path / "actualmed"
    (actualmed / "metadata.csv").parent.mkdir()
    (actualmed / "metadata.csv").write_text(
        "patientid,finding,view,modality,imagename\r\n1,COVID-19,PA,X-ray,\r\n"
    )
    with pytest.warns(MissingImagesWarning, match="no 'imagename'"):
        assert read_actualmed(actualmed, check_files=False).empty

    figure1 = tmp_path / "figure1"
    (figure1 / "metadata.csv").parent.mkdir()
    (figure1 / "metadata.csv").write_text("patientid,finding,view,modality\n,COVID-19,PA,X-ray\n")
    with pytest.warns(MissingImagesWarning, match="no 'patientid'"):
        assert read_figure1(figure1, check_files=False).empty


def test_frontal_views_are_case_insensitive_and_exclude_lateral_and_ct(tmp_path):
    repo = _early_repo(tmp_path / "cohen")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingImagesWarning)
        frontal = frontal_xrays(read_cohen(repo))
    assert frontal["view"].tolist() == ["PA", "AP Supine"]
    assert "AP erect" in FRONTAL_VIEWS and "L" not in FRONTAL_VIEWS


def _kermany_tree(root: Path) -> Path:
    names = {
        "train/NORMAL": [
            "IM-0117-0001.jpeg",
            "NORMAL2-IM-0315-0001.jpeg",
            "IM-0033-0001-0001.jpeg",
        ],
        "train/PNEUMONIA": ["person1_bacteria_2.jpeg", "person1_virus_3.jpeg"],
        "test/PNEUMONIA": ["person1_bacteria_9.jpeg", "person22_virus_50.jpeg"],
        "val/NORMAL": ["IM-0999-0001.jpeg"],
    }
    paths = [
        root / "chest_xray" / folder / name for folder, files in names.items() for name in files
    ]
    for value, path in enumerate(paths):
        _image(path, 20 * value)  # every image different
    return root


def test_kermany_labels_patients_and_splits_from_file_names(tmp_path):
    kermany = read_kermany(_kermany_tree(tmp_path))
    kermany.index = kermany["path"].map(lambda path: Path(path).name)
    assert kermany.loc["person1_virus_3.jpeg", "label"] == "viral"
    assert kermany.loc["person1_bacteria_9.jpeg", "label"] == "bacterial"
    assert kermany.loc["person1_bacteria_9.jpeg", "original_split"] == "test"
    # The same personN in train and test, bacteria and virus: one patient id.
    assert (
        kermany.loc[["person1_bacteria_2.jpeg", "person1_bacteria_9.jpeg"], "patient_id"]
        .eq("kermany-person1")
        .all()
    )
    assert kermany.loc["person1_virus_3.jpeg", "patient_id"] == "kermany-person1"
    assert kermany.loc["NORMAL2-IM-0315-0001.jpeg", "patient_id"] == "kermany-NORMAL2-IM-0315"
    assert kermany.loc["IM-0033-0001-0001.jpeg", "patient_id"] == "kermany-IM-0033"
    assert set(kermany["original_split"]) == {"train", "test", "val"}


def test_kermany_skips_unexpected_names_with_a_warning(tmp_path):
    root = _kermany_tree(tmp_path)
    _image(root / "chest_xray" / "train" / "NORMAL" / "holiday.jpeg")
    _image(root / "chest_xray" / "train" / "NORMAL" / "person5_virus_1.jpeg")  # wrong folder
    with pytest.warns(MissingImagesWarning, match="2 files .* skipped: .*holiday.jpeg"):
        kermany = read_kermany(root / "chest_xray")  # the chest_xray folder itself works too
    assert len(kermany) == 8


def test_kermany_without_its_layout_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no Kermany layout.*covidlab-data download"):
        read_kermany(tmp_path)


def test_find_duplicates_groups_byte_identical_files(tmp_path):
    root = _kermany_tree(tmp_path)
    normal = root / "chest_xray" / "train" / "NORMAL"
    shutil.copy(normal / "IM-0117-0001.jpeg", normal / "IM-0500-0001.jpeg")
    duplicates = find_duplicates(read_kermany(root))
    assert sorted(Path(p).name for p in duplicates["path"]) == [
        "IM-0117-0001.jpeg",
        "IM-0500-0001.jpeg",
    ]
    assert duplicates["sha256"].nunique() == 1


# --- the real shared copies ---------------------------------------------------------------


@pytest.mark.shared_data
def test_real_cohen_early_schema_counts_match_provenance(shared_data):
    with pytest.warns(MissingImagesWarning, match="4 images .*covid-19-pneumonia-14-PA.png"):
        cohen = read_cohen(shared_data / "sources" / "covid-chestxray-dataset")
    assert len(cohen) == 154
    covid = frontal_xrays(cohen).query("label == 'covid'")
    assert covid["view"].value_counts().to_dict() == {"PA": 75, "AP Supine": 13, "AP": 8}
    assert frontal_xrays(cohen).query("label == 'sars'").shape[0] == 11
    assert find_duplicates(cohen).empty


@pytest.mark.shared_data
def test_real_cohen_later_schema_parses_without_images(shared_data):
    cohen = read_cohen(
        shared_data / "sources" / "covid-chestxray-dataset",
        metadata=shared_data / "cohen-metadata-6a42423.csv",
        check_files=False,
    )
    assert len(cohen) == 950
    assert cohen["label"].value_counts()["covid"] == 584
    assert cohen["path"].str.contains("/volumes/").sum() == 21
    frontal_covid = frontal_xrays(cohen).query("label == 'covid'")
    assert len(frontal_covid) == 478 and frontal_covid["patient_id"].nunique() == 295
    adult = cohen[cohen["finding"].isin(["Pneumonia/Bacterial", "Pneumonia/Viral"])]
    assert set(adult["label"]) == {"adult bacterial"}  # no Pneumonia/Viral rows at 6a42423
    assert not cohen["label"].isin(["bacterial", "viral"]).any()  # Kermany's labels only


@pytest.mark.shared_data
def test_real_kermany_counts_match_provenance(shared_data):
    kermany = read_kermany(shared_data / "sources")
    counts = kermany.groupby(["original_split", "label"]).size().to_dict()
    assert counts == {
        ("train", "normal"): 255,
        ("train", "bacterial"): 291,
        ("train", "viral"): 245,
        ("test", "normal"): 45,
        ("test", "bacterial"): 9,
        ("test", "viral"): 55,
    }
    assert find_duplicates(kermany).empty  # the mirror was de-duplicated (PROVENANCE)


@pytest.mark.shared_data
def test_real_figure1_is_cp1252_without_a_filename_column(shared_data):
    figure1 = read_figure1(shared_data / "sources" / "Figure1-COVID-chestxray-dataset")
    assert len(figure1) == 55
    assert figure1["path"].str.endswith(".png").sum() == 5
    assert "figure1-COVID-00003" in set(figure1["patient_id"])  # 00003a and 00003b
    assert figure1["patient_id"].nunique() == 48


@pytest.mark.shared_data
def test_real_actualmed_skips_the_absent_images(shared_data):
    with pytest.warns(MissingImagesWarning, match="184 images"):
        actualmed = read_actualmed(shared_data / "sources" / "Actualmed-COVID-chestxray-dataset")
    assert len(actualmed) == 54
    assert actualmed["label"].value_counts()["covid"] == 26


def test_folder_hashes_are_remembered_and_redone_only_for_changed_files(tmp_path, monkeypatch):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    folder = tmp_path / "kermany"
    (folder / "sub").mkdir(parents=True)
    for name, content in (("a.png", b"one"), ("sub/b.jpeg", b"two"), ("notes.txt", b"x")):
        (folder / name).write_bytes(content)
    hashed = []
    real = sources.file_sha256
    monkeypatch.setattr(sources, "file_sha256", lambda path: hashed.append(path) or real(path))

    first = sources.folder_sha256(folder)
    assert {path.name: digest for path, digest in first.items()} == {
        "a.png": real(folder / "a.png"),
        "b.jpeg": real(folder / "sub" / "b.jpeg"),
    }
    assert len(hashed) == 2
    assert sources.folder_sha256(folder) == first and len(hashed) == 2  # read back
    (folder / "a.png").write_bytes(b"changed")
    os.utime(folder / "a.png", ns=(5, 5))
    (folder / "sub" / "b.jpeg").unlink()
    changed = sources.folder_sha256(folder)
    assert [path.name for path in hashed[2:]] == ["a.png"]
    assert {path.name: digest for path, digest in changed.items()} == {
        "a.png": real(folder / "a.png")
    }
    for cache_file in (tmp_path / "data" / "cache" / "sha256").glob("*.json"):
        cache_file.write_text("{broken")
    assert sources.folder_sha256(folder) == changed
