"""Tests for covidlab.data: manifests and patient-aware splits."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from manifests import manifest as _manifest

from covidlab import data

CLASSES = ["covid", "normal", "bacterial", "viral"]


# ---------------------------------------------------------------- manifests


def test_validate_manifest_names_missing_columns():
    with pytest.raises(ValueError, match=r"patient_id.*source"):
        data.validate_manifest(pd.DataFrame({"path": ["a.png"], "label": ["covid"]}))


def test_validate_manifest_rejects_empty_values_and_missing_files(tmp_path):
    df = _manifest([tmp_path / "a.png"], ["covid"], patients=[None])
    with pytest.raises(ValueError, match="patient_id"):
        data.validate_manifest(df)
    df = _manifest([tmp_path / "absent.png"], ["covid"])
    data.validate_manifest(df)  # files are not checked unless asked
    with pytest.raises(ValueError, match="absent.png"):
        data.validate_manifest(df, check_files=True)


def test_manifest_round_trip_stores_relative_paths(tmp_path):
    inside = tmp_path / "images" / "a.png"
    outside = tmp_path.parent / "elsewhere.png"
    df = _manifest([inside, outside], ["covid", "normal"], patients=["1", "002"])
    df["view"] = ["PA", None]
    csv_path = data.write_manifest(df, tmp_path / "manifest.csv")

    stored = pd.read_csv(csv_path, dtype=str)
    assert stored["path"].tolist() == ["images/a.png", str(outside)]

    moved = tmp_path / "moved"
    moved.mkdir()
    os.replace(csv_path, moved / "manifest.csv")
    back = data.read_manifest(moved / "manifest.csv")
    assert back["path"].tolist() == [str(moved / "images" / "a.png"), str(outside)]
    assert back["patient_id"].tolist() == ["1", "002"]  # ids stay strings, zeros kept
    assert back["view"].iloc[0] == "PA"


def test_write_manifest_is_atomic(tmp_path, monkeypatch):
    csv_path = tmp_path / "manifest.csv"
    df = _manifest([tmp_path / "a.png"], ["covid"])
    data.write_manifest(df, csv_path)
    before = csv_path.read_bytes()

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail)
    with pytest.raises(OSError, match="disk full"):
        data.write_manifest(_manifest([tmp_path / "b.png"], ["normal"]), csv_path)
    assert csv_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.csv"]


def test_read_manifest_names_the_file_when_columns_are_missing(tmp_path):
    csv_path = tmp_path / "bad.csv"
    pd.DataFrame({"filename": ["a.png"], "label": ["covid"]}).to_csv(csv_path, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv.*path"):
        data.read_manifest(csv_path)


def test_merge_labels_and_class_counts():
    df = _manifest(["a", "b", "c", "d"], ["covid", "bacterial", "viral", "normal"])
    merged = data.merge_labels(df, {"bacterial": "pneumonia", "viral": "pneumonia"})
    assert data.class_counts(merged).to_dict() == {"covid": 1, "normal": 1, "pneumonia": 2}
    assert df["label"].tolist() == ["covid", "bacterial", "viral", "normal"]  # copy


def test_labels_to_indices_and_unknown_labels():
    indices = data.labels_to_indices(["viral", "covid", "viral"], CLASSES)
    assert indices.tolist() == [3, 0, 3]
    with pytest.raises(ValueError, match="'fungal'"):
        data.labels_to_indices(["covid", "fungal"], CLASSES)
    assert set(CLASSES) <= set(data.CLASS_NAMES_DISPLAY)


def test_importing_data_does_not_import_tensorflow():
    code = "import sys, covidlab.data; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


def test_written_manifests_are_readable_by_everyone(tmp_path):
    csv_path = data.write_manifest(_manifest([tmp_path / "a.png"], ["covid"]), tmp_path / "m.csv")
    assert csv_path.stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------- folders written atomically


def test_a_folder_written_atomically_appears_only_when_complete(tmp_path):
    target = tmp_path / "cache" / "images"
    with data.folder_written_atomically(target) as staging:
        (staging / "a.png").write_text("a")
        assert staging.parent == target.parent and not target.exists()
    assert (target / "a.png").read_text() == "a"
    assert target.stat().st_mode & 0o777 == 0o755  # not owner-only, as mkdtemp makes it
    assert [p.name for p in target.parent.iterdir()] == ["images"]  # no staging folder left


def test_a_failed_folder_leaves_neither_target_nor_staging(tmp_path):
    target = tmp_path / "images"
    with pytest.raises(RuntimeError, match="half-way"):
        with data.folder_written_atomically(target) as staging:
            (staging / "a.png").write_text("a")
            raise RuntimeError("half-way")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_another_process_finished_first_is_kept(tmp_path):
    target = tmp_path / "images"
    with data.folder_written_atomically(target) as staging:
        (staging / "ours.png").write_text("ours")
        target.mkdir()  # the other process renames its folder into place meanwhile
        (target / "theirs.png").write_text("theirs")
    assert [p.name for p in target.iterdir()] == ["theirs.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["images"]


def test_replace_puts_the_new_folder_in_place_of_the_old_one(tmp_path):
    target = tmp_path / "images"
    target.mkdir()
    (target / "old.png").write_text("old")
    with data.folder_written_atomically(target, replace=True) as staging:
        (staging / "new.png").write_text("new")
        assert (target / "old.png").is_file()  # the old folder stays readable meanwhile
    assert [p.name for p in target.iterdir()] == ["new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["images"]


# ---------------------------------------------------------------- splits


@pytest.fixture
def multi_image_manifest() -> pd.DataFrame:
    """24 patients per class, 1 to 4 images each (no files needed for splitting)."""
    rows = []
    rng = np.random.default_rng(0)
    for label in CLASSES:
        for patient in range(24):
            for image in range(rng.integers(1, 5)):
                rows.append((f"/x/{label}/{patient}-{image}.png", label, f"{label}-{patient}"))
    return pd.DataFrame(rows, columns=["path", "label", "patient_id"]).assign(source="test")


def test_holdout_split_keeps_patients_apart_and_classes_balanced(multi_image_manifest):
    df = multi_image_manifest
    train, test = data.holdout_split(df, 0.25, seed=0)
    assert len(train) + len(test) == len(df)
    assert set(train["path"]).isdisjoint(test["path"])
    data.assert_patient_disjoint(train, test)
    patients_in_test = test.groupby("label")["patient_id"].nunique()
    assert patients_in_test.to_dict() == dict.fromkeys(CLASSES, 6)  # 25% of 24 per class
    again, _ = data.holdout_split(df, 0.25, seed=0)
    pd.testing.assert_frame_equal(train, again)
    other_seed, _ = data.holdout_split(df, 0.25, seed=1)
    assert set(other_seed["patient_id"]) != set(train["patient_id"])


def test_kfold_splits_cover_every_image_once_without_shared_patients(multi_image_manifest):
    df = multi_image_manifest
    folds = data.kfold_splits(df, 4, seed=0)
    assert len(folds) == 4
    test_paths = [path for _, test in folds for path in test["path"]]
    assert sorted(test_paths) == sorted(df["path"])
    overall = df["label"].value_counts(normalize=True)
    for train, test in folds:
        data.assert_patient_disjoint(train, test)
        assert len(train) + len(test) == len(df)
        share = test["label"].value_counts(normalize=True)
        assert (share - overall).abs().max() < 0.1


def test_image_level_splits_leak_patients(multi_image_manifest):
    df = multi_image_manifest
    train, test = data.holdout_split(df, 0.25, seed=0, group=None)
    with pytest.raises(data.PatientLeakError) as error:
        data.assert_patient_disjoint(train, test)
    shared = set(train["patient_id"]) & set(test["patient_id"])
    assert error.value.shared_ids == sorted(shared)
    assert sorted(shared)[0] in str(error.value)
    folds = data.kfold_splits(df, 4, seed=0, group=None)
    assert any(set(a["patient_id"]) & set(b["patient_id"]) for a, b in folds)


def test_holdout_split_rejects_bad_fraction(multi_image_manifest):
    with pytest.raises(ValueError, match="test_fraction"):
        data.holdout_split(multi_image_manifest, 1.5, seed=0)
