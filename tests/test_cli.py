"""``covidlab-data``: arguments checked, one-line errors, never a traceback, the plan command."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from covidlab import download
from covidlab.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return status, out, err


def _image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.full((30, 40), value % 256, dtype=np.uint8)
    pixels[0, 0] = value // 256
    Image.fromarray(pixels).save(path)


@pytest.fixture
def sources(tmp_path) -> Path:
    """A tiny sources folder; Cohen's metadata has a row without a file name."""
    root = tmp_path / "sources"
    cohen = root / "covid-chestxray-dataset"
    rows = ["patientid,finding,view,modality,folder,filename", "p0,COVID-19,PA,X-ray,images,"]
    for i in range(3):
        rows.append(f"p{i + 1},COVID-19,PA,X-ray,images,c{i}.png")
        _image(cohen / "images" / f"c{i}.png", i)
    (cohen / "metadata.csv").write_text("\n".join(rows) + "\n")
    for i in range(3):
        _image(root / "chest_xray" / "train" / "NORMAL" / f"IM-{i:04d}-0001.jpeg", 100 + i)
    return root


@pytest.mark.parametrize("cap", ["-3", "0", "two"])
def test_max_per_class_below_one_is_refused(capsys, sources, tmp_path, cap):
    status, out, err = _run(
        capsys, "build", "aboughazala", "--sources", str(sources), "--max-per-class", cap
    )
    assert status == 2
    assert f"--max-per-class: must be a whole number of at least 1, not '{cap}'" in err
    assert not (tmp_path / "recipes").exists()


def test_a_blank_file_name_in_metadata_is_skipped_not_a_traceback(capsys, sources, tmp_path):
    out_dir = tmp_path / "recipes"
    status, out, err = _run(
        capsys, "build", "aboughazala", "--sources", str(sources), "--out", str(out_dir)
    )
    assert status == 0
    manifest = out_dir / "aboughazala" / "manifest.csv"
    assert "cohen-p0," not in manifest.read_text()
    assert manifest.stat().st_mode & 0o777 == 0o644  # readable, like table.csv


def test_warnings_are_printed_on_one_line(capsys, tmp_path, monkeypatch):
    def warn(data_dir):
        import warnings

        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        return {"cohen": "ok"}

    monkeypatch.setattr(download, "verify", warn)
    status, out, err = _run(capsys, "verify", "--data-dir", str(tmp_path))
    assert status == 0 and err == "covidlab-data: warning: first line second line\n"


def test_verify_of_a_folder_that_does_not_exist_exits_1(capsys, tmp_path):
    status, out, err = _run(capsys, "verify", "--data-dir", str(tmp_path / "nowhere"))
    assert status == 1
    assert err.startswith("covidlab-data: error: data folder") and "nowhere" in err
    assert len(err.strip().splitlines()) == 1


def test_a_checksums_file_holding_a_list_is_one_line_naming_it(capsys, tmp_path):
    (tmp_path / "checksums.json").write_text("[]")
    status, out, err = _run(capsys, "verify", "--data-dir", str(tmp_path))
    assert status == 1
    assert str(tmp_path / "checksums.json") in err and "should map each download URL" in err
    assert len(err.strip().splitlines()) == 1


def test_a_bad_commit_is_one_line(capsys, tmp_path):
    status, out, err = _run(
        capsys, "download", "cohen", "--commit", "../../x", "--data-dir", str(tmp_path)
    )
    assert status == 1
    assert "'../../x' is not a full commit hash" in err


def test_an_unexpected_error_is_still_one_line(capsys, tmp_path, monkeypatch):
    def broken(data_dir):
        raise zipfile.BadZipFile("File is not a zip file")

    monkeypatch.setattr(download, "verify", broken)
    status, out, err = _run(capsys, "verify", "--data-dir", str(tmp_path))
    assert status == 1
    assert err.strip() == (
        "covidlab-data: error: BadZipFile: File is not a zip file (unexpected: please report it "
        "with the command you ran; COVIDLAB_DEBUG=1 shows the traceback)"
    )


@pytest.mark.shared_data
@pytest.mark.parametrize(("paper", "covid"), [("coronet", 284), ("apostolopoulos", 224)])
def test_plan_prints_requested_available_used_at_the_paper_profile(
    capsys, shared_data, tmp_path, monkeypatch, paper, covid
):
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path))  # nothing downloaded
    status, out, err = _run(capsys, "plan", paper, "--profile", "paper")
    assert status == 0
    assert f"{paper} at the paper profile" in out
    row = next(line.split() for line in out.splitlines() if line.split()[:1] == ["covid"])
    assert row[:5] == ["covid", "covid", str(covid), "478", str(covid)]
    assert "cohen-metadata-6a42423.csv" in out


def test_plan_of_the_smoke_profile_says_why_not(capsys):
    status, out, err = _run(capsys, "plan", "coronet", "--profile", "smoke")
    assert status == 1 and "synthetic images" in err
