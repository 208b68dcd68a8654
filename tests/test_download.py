"""Downloads and archives: resumable, checksummed, atomic, and safe against hostile entries.

A loopback HTTP server (127.0.0.1, a free port) serves archives built by the tests; it can
honour or ignore ``Range``, drop the connection in the middle of a body, or serve a
truncated file. No test touches the network.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import zipfile
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from covidlab import download
from covidlab.download import (
    ArchiveError,
    ChecksumError,
    DownloadError,
    fetch,
    locate_sources,
    safe_extract,
)
from covidlab.sources import frontal_xrays, read_cohen, read_kermany

COMMIT = download.COHEN_COMMIT


class LoopbackServer:
    """Serves ``files`` (url path -> bytes); ``drops[path]`` = how many responses to cut short."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.drops: dict[str, int] = {}
        self.honour_range = True
        self.requests: list[tuple[str, str | None]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if range_header and server.honour_range:
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                rest = body[start:]
                if server.drops.get(self.path, 0) > 0:
                    server.drops[self.path] -= 1
                    self.wfile.write(rest[: len(rest) // 2])  # then hang up mid-body
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(rest)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path


@pytest.fixture
def server():
    loopback = LoopbackServer()
    loopback.thread.start()
    yield loopback
    loopback.httpd.shutdown()
    loopback.httpd.server_close()


def _png_bytes(value: int = 128) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), value).save(buffer, format="PNG")
    return buffer.getvalue()


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _mini_cohen_zip(top: str) -> bytes:
    """A GitHub-style zip of a two-image Cohen repository (early schema)."""
    metadata = (
        "Patientid,offset,sex,age,finding,survival,view,modality,date,location,filename,doi, url,"
        "license,clinical notes,other notes,\n"
        "1,0,F,50,COVID-19,,PA,X-ray,,,a.png,,,,,,\n"
        "2,0,M,60,SARS,,AP,X-ray,,,b.png,,,,,,\n"
    )
    return _zip(
        {
            f"{top}/metadata.csv": metadata.encode(),
            f"{top}/images/a.png": _png_bytes(10),
            f"{top}/images/b.png": _png_bytes(200),
        }
    )


def _zip_tree(folder: Path, top: str, keep=lambda path: True) -> bytes:
    """Zip ``folder`` under the top-level name ``top``, like GitHub's "Download ZIP"."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and keep(path):
                archive.write(path, f"{top}/{path.relative_to(folder).as_posix()}")
    return buffer.getvalue()


@pytest.fixture
def cohen_at(server, monkeypatch):
    """Point the ``cohen`` registry entry at the loopback server, serving ``body``."""

    def serve(body: bytes):
        url = server.serve(f"/cohen/{COMMIT}.zip", body)
        monkeypatch.setitem(download.SOURCES, "cohen", replace(download.SOURCES["cohen"], url=url))
        return url

    return serve


# --- download -----------------------------------------------------------------------------


def test_download_returns_the_sha256_and_writes_dest(server, tmp_path):
    body = bytes(range(256)) * 1000
    url = server.serve("/file.bin", body)
    digest = download.download(url, tmp_path / "file.bin", progress=False)
    assert digest == hashlib.sha256(body).hexdigest()
    assert (tmp_path / "file.bin").read_bytes() == body
    assert not (tmp_path / "file.bin.part").exists()


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    body = b"x" * 100_000 + b"y" * 100_000
    url = server.serve("/big.bin", body)
    server.drops["/big.bin"] = 1
    download.download(url, tmp_path / "big.bin", progress=False, retry_wait=0)
    assert (tmp_path / "big.bin").read_bytes() == body
    assert server.requests[0] == ("/big.bin", None)
    assert server.requests[1][1] == f"bytes={len(body) // 2}-"


def test_server_ignoring_range_restarts_from_scratch(server, tmp_path):
    body = bytes(range(256)) * 800
    url = server.serve("/norange.bin", body)
    server.drops["/norange.bin"] = 1
    server.honour_range = False
    download.download(url, tmp_path / "norange.bin", progress=False, retry_wait=0)
    assert (tmp_path / "norange.bin").read_bytes() == body


def test_connection_that_keeps_dropping_gives_a_clear_error(server, tmp_path):
    url = server.serve("/flaky.bin", b"z" * 50_000)
    server.drops["/flaky.bin"] = 100
    with pytest.raises(DownloadError, match=r"after 3 attempts.*re-run to resume"):
        download.download(url, tmp_path / "flaky.bin", progress=False, retries=2, retry_wait=0)
    assert not (tmp_path / "flaky.bin").exists()  # never half-written under its real name
    assert (tmp_path / "flaky.bin.part").exists()


def test_checksum_mismatch_removes_the_file(server, tmp_path):
    url = server.serve("/bad.bin", b"not what you expected")
    with pytest.raises(ChecksumError, match="expected 0000"):
        download.download(url, tmp_path / "bad.bin", sha256="0" * 64, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_http_404_is_not_retried(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download.download(server.url + "/nothing", tmp_path / "x", progress=False, retry_wait=0)
    assert len(server.requests) == 1


# --- safe_extract --------------------------------------------------------------------------


def _leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


@pytest.mark.parametrize("entry", ["../escape.txt", "top/../../escape.txt", "/etc/escape.txt"])
def test_zip_slip_entries_are_refused_by_name(tmp_path, entry):
    archive = tmp_path / "evil.zip"
    archive.write_bytes(_zip({"top/ok.txt": b"fine", entry: b"bad"}))
    with pytest.raises(ArchiveError, match="refusing to unpack") as error:
        safe_extract(archive, tmp_path / "out")
    assert repr(entry) in str(error.value) and str(archive) in str(error.value)
    assert _leftovers(tmp_path, {"evil.zip"}) == []
    assert not (tmp_path.parent / "escape.txt").exists()


def test_tar_symlink_escaping_the_target_is_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        link = tarfile.TarInfo("top/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
        handle.addfile(link)
    with pytest.raises(ArchiveError, match="'top/link' -> '../../outside' points outside"):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path, {"evil.tar.gz"}) == []


def test_tar_archive_extracts_with_its_root_folder_stripped(tmp_path):
    archive = tmp_path / "good.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        data = b"hello"
        info = tarfile.TarInfo("repo-abc/sub/file.txt")
        info.size = len(data)
        handle.addfile(info, io.BytesIO(data))
    target = safe_extract(archive, tmp_path / "repo", archive_root="repo-abc")
    assert (target / "sub" / "file.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("damage", ["truncate", "zero bytes", "flip data"])
def test_damaged_archive_says_delete_and_rerun_and_writes_nothing(tmp_path, damage):
    good = _mini_cohen_zip("top")
    archive = tmp_path / "damaged.zip"
    if damage == "truncate":
        archive.write_bytes(good[: len(good) // 2])
    elif damage == "zero bytes":
        archive.write_bytes(b"")
    else:  # corrupt a member's compressed bytes, keep the central directory intact
        start = good.index(b"metadata.csv") + len("metadata.csv")
        archive.write_bytes(
            good[:start] + bytes(b ^ 0xFF for b in good[start : start + 40]) + good[start + 40 :]
        )
    with pytest.raises(
        ArchiveError, match=r"damaged\.zip is truncated or corrupt: delete it and re-run"
    ):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path, {"damaged.zip"}) == []


def test_missing_archive_root_is_a_clear_error(tmp_path):
    archive = tmp_path / "other.zip"
    archive.write_bytes(_mini_cohen_zip("something-else"))
    with pytest.raises(ArchiveError, match="no folder 'expected-root' .it holds: something-else"):
        safe_extract(archive, tmp_path / "out", archive_root="expected-root")
    assert _leftovers(tmp_path, {"other.zip"}) == []


# --- fetch ---------------------------------------------------------------------------------


def test_fetch_downloads_records_checksum_and_second_run_is_a_no_op(cohen_at, server, tmp_path):
    body = _mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}")
    url = cohen_at(body)
    folder = fetch("cohen", tmp_path, progress=False)
    assert folder == tmp_path / "sources" / "covid-chestxray-dataset"
    assert read_cohen(folder)["label"].tolist() == ["covid", "sars"]
    lock = json.loads((tmp_path / "checksums.json").read_text())
    assert lock == {url: hashlib.sha256(body).hexdigest()}  # trust on first use
    marker = (folder / download.MARKER_NAME).read_text()
    requests = len(server.requests)

    assert fetch("cohen", tmp_path, progress=False) == folder
    assert len(server.requests) == requests
    assert (folder / download.MARKER_NAME).read_text() == marker
    assert download.verify(tmp_path)["cohen"].startswith("ok")


def test_fetch_checks_a_cached_archive_against_the_lock(cohen_at, server, tmp_path):
    cohen_at(_mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}"))
    folder = fetch("cohen", tmp_path, progress=False)
    archive = tmp_path / "downloads" / download.SOURCES["cohen"].archive_name
    archive.write_bytes(archive.read_bytes() + b"tampered")
    (folder / download.MARKER_NAME).unlink()
    assert download.verify(tmp_path)["cohen"].startswith("present, unverified")
    with pytest.raises(ChecksumError, match=r"delete it and re-run"):
        fetch("cohen", tmp_path, progress=False)


def test_fetch_of_a_truncated_archive_leaves_no_source_folder(cohen_at, tmp_path):
    good = _mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}")
    cohen_at(good[: len(good) - 30])
    with pytest.raises(ArchiveError, match="delete it and re-run"):
        fetch("cohen", tmp_path, progress=False)
    assert list((tmp_path / "sources").iterdir()) == []


def test_fetch_a_later_commit_uses_its_own_archive(server, monkeypatch, tmp_path):
    later = "6a42423" + "0" * 33
    source = download.SOURCES["cohen"].at_commit(later)
    url = server.serve("/later.zip", _mini_cohen_zip(f"covid-chestxray-dataset-{later}"))
    original = download.Source.at_commit
    monkeypatch.setattr(
        download.Source, "at_commit", lambda self, commit: replace(original(self, commit), url=url)
    )
    folder = fetch("cohen", tmp_path, commit=later, progress=False)
    assert source.archive_root == f"covid-chestxray-dataset-{later}"
    assert len(read_cohen(folder)) == 2


def test_unknown_source_name_lists_the_choices(tmp_path):
    with pytest.raises(KeyError, match="cohen, kermany, figure1, actualmed"):
        fetch("nih", tmp_path)


def test_locate_sources_prefers_the_data_dir_then_errors(tmp_path, monkeypatch):
    monkeypatch.setattr(download.config, "shared_data_dir", lambda: None)
    with pytest.raises(FileNotFoundError, match="covidlab-data download"):
        locate_sources(tmp_path)
    (tmp_path / "sources" / "covid-chestxray-dataset").mkdir(parents=True)
    (tmp_path / "sources" / "chest_xray").mkdir()
    assert locate_sources(tmp_path) == tmp_path / "sources"


# --- real shared copies, packed like the upstream downloads --------------------------------


@pytest.mark.shared_data
def test_fetch_a_github_style_zip_of_the_real_cohen_copy(shared_data, cohen_at, tmp_path):
    repo = shared_data / "sources" / "covid-chestxray-dataset"
    cohen_at(_zip_tree(repo, f"covid-chestxray-dataset-{COMMIT}"))
    folder = fetch("cohen", tmp_path, progress=False)
    with pytest.warns(UserWarning, match="4 images"):
        cohen = read_cohen(folder)
    assert len(cohen) == 154
    covid = frontal_xrays(cohen).query("label == 'covid'")
    assert covid["view"].value_counts().to_dict() == {"PA": 75, "AP Supine": 13, "AP": 8}


@pytest.mark.shared_data
def test_fetch_a_chestxray2017_style_zip(shared_data, server, monkeypatch, tmp_path):
    tree = shared_data / "sources"
    subset = {p for folder in tree.glob("chest_xray/*/*") for p in sorted(folder.iterdir())[:5]}
    body = _zip_tree(tree / "chest_xray", "chest_xray", keep=lambda path: path in subset)
    url = server.serve("/ChestXRay2017.zip", body)
    monkeypatch.setitem(download.SOURCES, "kermany", replace(download.SOURCES["kermany"], url=url))
    folder = fetch("kermany", tmp_path, progress=False)
    kermany = read_kermany(folder)
    assert len(kermany) == len(subset) == 20
    assert set(kermany["original_split"]) == {"train", "test"}
