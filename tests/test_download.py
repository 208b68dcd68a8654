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
import time
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
    """Serves ``files`` (url path -> bytes) like a real file server, with faults on request.

    Honours ``Range`` (206 with ``Content-Range``; 416 past the end) and ``If-Range`` against
    ``etags[path]``. Faults: ``drops[path]`` responses cut short mid-body (``on_drop`` runs
    after each), ``honour_range = False``, ``wrong_start`` (a 206 that starts at byte 0
    whatever was asked), ``short_length[path]`` responses that announce and send only half
    the file, ``no_length[path]`` responses without ``Content-Length`` closed at half,
    ``refuse[path]`` an HTTP status to answer, ``content_types[path]`` a Content-Type, and
    ``chunk_delay`` seconds between 16 KiB chunks (so that two clients overlap).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.etags: dict[str, str] = {}
        self.drops: dict[str, int] = {}
        self.short_length: dict[str, int] = {}
        self.no_length: dict[str, int] = {}
        self.refuse: dict[str, int] = {}
        self.content_types: dict[str, str] = {}
        self.on_drop = lambda path: None
        self.honour_range = True
        self.wrong_start = False
        self.chunk_delay = 0.0
        self.requests: list[tuple[str, str | None]] = []
        self.headers: list[dict[str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                range_header = self.headers.get("Range")
                server.requests.append((self.path, range_header))
                server.headers.append(dict(self.headers))
                body = server.files.get(self.path)
                if self.path in server.refuse:
                    self.send_error(server.refuse[self.path])
                    return
                if body is None:
                    self.send_error(404)
                    return
                etag = server.etags.get(self.path)
                if_range = self.headers.get("If-Range")
                use_range = range_header and server.honour_range
                if use_range and if_range is not None and if_range != etag:
                    use_range = False  # the file changed: send all of it
                start = 0
                if use_range:
                    start = int(range_header.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    if server.wrong_start:
                        start = 0
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                if etag:
                    self.send_header("ETag", etag)
                if self.path in server.content_types:
                    self.send_header("Content-Type", server.content_types[self.path])
                rest = body[start:]
                if server.short_length.get(self.path, 0) > 0:
                    server.short_length[self.path] -= 1
                    rest = rest[: len(rest) // 2]
                no_length = server.no_length.get(self.path, 0) > 0
                if no_length:
                    server.no_length[self.path] -= 1
                    rest = rest[: len(rest) // 2]
                else:
                    self.send_header("Content-Length", str(len(rest)))
                self.end_headers()
                drop = server.drops.get(self.path, 0) > 0
                if drop:
                    server.drops[self.path] -= 1
                    rest = rest[: len(rest) // 2]  # then hang up mid-body
                try:
                    for offset in range(0, len(rest), 1 << 14):
                        self.wfile.write(rest[offset : offset + (1 << 14)])
                        if server.chunk_delay:
                            time.sleep(server.chunk_delay)
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if drop or no_length:
                    self.close_connection = True
                if drop:
                    server.on_drop(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def serve(self, path: str, body: bytes) -> str:
        self.files[path] = body
        return self.url + path

    def count(self, path: str) -> int:
        return sum(1 for requested, _ in self.requests if requested == path)


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
    monkeypatch.setitem(
        download.SOURCES,
        "kermany",
        replace(download.SOURCES["kermany"], url=url, sha256=None, size=None),
    )
    folder = fetch("kermany", tmp_path, progress=False)
    kermany = read_kermany(folder)
    assert len(kermany) == len(subset) == 20
    assert set(kermany["original_split"]) == {"train", "test"}


# --- a download is checked before it is trusted ---------------------------------------------


@pytest.mark.parametrize("fault", ["short_length", "no_length"])
def test_a_cut_short_first_download_is_deleted_and_never_trusted(cohen_at, server, tmp_path, fault):
    """A body that HTTP calls complete but that is not: no checksum is recorded for it."""
    body = _mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}")
    url = cohen_at(body)
    getattr(server, fault)[f"/cohen/{COMMIT}.zip"] = 1
    with pytest.raises(ArchiveError, match="was deleted: re-run to download it again"):
        fetch("cohen", tmp_path, progress=False)
    assert not (tmp_path / "checksums.json").exists()
    assert not (tmp_path / "downloads" / download.SOURCES["cohen"].archive_name).exists()

    folder = fetch("cohen", tmp_path, progress=False)  # the re-run simply works
    assert len(read_cohen(folder)) == 2
    lock = json.loads((tmp_path / "checksums.json").read_text())
    assert lock == {url: hashlib.sha256(body).hexdigest()}


def test_a_resumed_answer_that_starts_elsewhere_is_not_spliced_in(server, tmp_path):
    body = bytes(range(256)) * 1000
    url = server.serve("/big.bin", body)
    server.drops["/big.bin"] = 1
    server.wrong_start = True  # a 206 for bytes 0-, whatever was asked
    digest = download.download(url, tmp_path / "big.bin", progress=False, retry_wait=0)
    assert (tmp_path / "big.bin").read_bytes() == body
    assert digest == hashlib.sha256(body).hexdigest()


def test_resume_sends_if_range_so_a_changed_file_comes_whole(server, tmp_path):
    old, new = b"a" * 100_000, b"b" * 120_000
    url = server.serve("/data.zip", old)
    server.etags["/data.zip"] = '"v1"'
    server.drops["/data.zip"] = 1

    def upstream_changes(path):
        server.files[path], server.etags[path] = new, '"v2"'

    server.on_drop = upstream_changes
    download.download(url, tmp_path / "data.zip", progress=False, retry_wait=0)
    assert server.headers[1].get("If-Range") == '"v1"'
    assert (tmp_path / "data.zip").read_bytes() == new  # not half old, half new


@pytest.mark.parametrize("stale", ["longer", "as long"])
def test_a_stale_part_at_least_as_long_as_the_file_is_not_taken_as_complete(
    server, tmp_path, stale
):
    body = bytes(range(256)) * 400
    url = server.serve("/file.bin", body)
    junk = b"\x00" * (len(body) + 10 if stale == "longer" else len(body))
    (tmp_path / "file.bin.part").write_bytes(junk)  # left by another run, of another file
    download.download(url, tmp_path / "file.bin", progress=False, retry_wait=0)
    assert (tmp_path / "file.bin").read_bytes() == body


def test_a_known_size_catches_a_body_shorter_than_the_file(server, tmp_path):
    body = bytes(range(256)) * 400
    url = server.serve("/sized.bin", body)
    server.short_length["/sized.bin"] = 1  # announces and sends half, as if complete
    download.download(url, tmp_path / "sized.bin", size=len(body), progress=False, retry_wait=0)
    assert (tmp_path / "sized.bin").read_bytes() == body
    assert server.requests[1][1] == f"bytes={len(body) // 2}-"  # resumed


# --- two runs at once --------------------------------------------------------------------------


def _run_together(*calls):
    """Run ``calls`` in threads at once; return their results (an exception is re-raised)."""
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 (handed to the test thread)
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def test_two_downloads_of_one_file_take_turns_and_the_file_is_sound(server, tmp_path):
    body = bytes(range(256)) * 2000
    url = server.serve("/shared.bin", body)
    server.chunk_delay = 0.005
    dest = tmp_path / "shared.bin"
    digests = _run_together(*[lambda: download.download(url, dest, progress=False)] * 2)
    assert digests == [hashlib.sha256(body).hexdigest()] * 2
    assert dest.read_bytes() == body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared.bin"]  # no .part, no lock


def test_fetches_at_once_download_once_and_record_every_checksum(server, monkeypatch, tmp_path):
    cohen = _mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}")
    figure1_root = f"Figure1-COVID-chestxray-dataset-{download.FIGURE1_COMMIT}"
    figure1 = _zip({f"{figure1_root}/metadata.csv": b"patientid,finding,view,modality\n"})
    for name, body in (("cohen", cohen), ("figure1", figure1)):
        url = server.serve(f"/{name}.zip", body)
        monkeypatch.setitem(download.SOURCES, name, replace(download.SOURCES[name], url=url))
    server.chunk_delay = 0.01

    def fetch_one(name):
        return lambda: fetch(name, tmp_path, progress=False)

    _run_together(fetch_one("cohen"), fetch_one("cohen"), fetch_one("figure1"))
    assert server.count("/cohen.zip") == 1  # the second fetch waited, then found it done
    lock = json.loads((tmp_path / "checksums.json").read_text())
    assert lock == {
        server.url + "/cohen.zip": hashlib.sha256(cohen).hexdigest(),
        server.url + "/figure1.zip": hashlib.sha256(figure1).hexdigest(),
    }
    assert download.verify(tmp_path)["cohen"].startswith("ok")


def test_a_killed_extraction_leaves_nothing_behind_after_the_next_fetch(cohen_at, tmp_path):
    cohen_at(_mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}"))
    leftover = tmp_path / "sources" / ".covid-chestxray-dataset.partial-killed"
    (leftover / "images").mkdir(parents=True)
    (leftover / "images" / "half.png").write_bytes(b"\x89PNG")
    fetch("cohen", tmp_path, progress=False)
    assert sorted(p.name for p in (tmp_path / "sources").iterdir()) == ["covid-chestxray-dataset"]


# --- archives: checked entry by entry, by this module --------------------------------------


def _patch_zip(content: bytes, *, local: int, central: int, value: int, width: int = 2) -> bytes:
    """Set a field of every local header (offset ``local``) and central entry (``central``)."""
    data = bytearray(content)
    for signature, offset in ((b"PK\x03\x04", local), (b"PK\x01\x02", central)):
        at = data.find(signature)
        while at != -1:
            field = slice(at + offset, at + offset + width)
            data[field] = (int.from_bytes(data[field], "little") | value).to_bytes(width, "little")
            at = data.find(signature, at + 4)
    return bytes(data)


def test_zip_entries_python_cannot_read_say_what_to_do(tmp_path):
    good = _zip({"top/a.txt": b"hello"})
    deflate64 = _patch_zip(good, local=8, central=10, value=9)  # method 0 -> 9
    encrypted = _patch_zip(good, local=6, central=8, value=1)  # flag bit 0
    for name, content, message in (
        ("deflate64.zip", deflate64, "Deflate64, which Python's zipfile cannot read"),
        ("encrypted.zip", encrypted, "encrypted"),
    ):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(ArchiveError, match=message) as error:
            safe_extract(tmp_path / name, tmp_path / "out")
        assert "unzip" in str(error.value) and name in str(error.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "entries", [{"top/a": b"file", "top/a/b": b"inside"}, {"top/a/b": b"inside", "top/a": b"x"}]
)
def test_a_name_that_is_both_file_and_folder_is_an_archive_error(tmp_path, entries):
    (tmp_path / "clash.zip").write_bytes(_zip(entries))
    with pytest.raises(ArchiveError, match="both a file and a folder"):
        safe_extract(tmp_path / "clash.zip", tmp_path / "out")
    assert _leftovers(tmp_path, {"clash.zip"}) == []


def test_an_archive_may_not_unpack_to_much_more_than_its_size(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("top/zeros.bin", "w", force_zip64=True) as member:
            for _ in range(80):
                member.write(bytes(1 << 20))  # 80 MiB of zeros compress to ~80 KB
    (tmp_path / "bomb.zip").write_bytes(buffer.getvalue())
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ArchiveError, match="unpacks to more than"):
        safe_extract(tmp_path / "bomb.zip", tmp_path / "out")
    assert _leftovers(tmp_path, {"bomb.zip"}) == []
    target = safe_extract(tmp_path / "bomb.zip", tmp_path / "out", max_bytes=100 << 20)
    assert (target / "top" / "zeros.bin").stat().st_size == 80 << 20


def test_a_zip_link_entry_is_bounded_and_written_as_a_copy(tmp_path):
    def link(name: str) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o120777 << 16  # a symbolic link, as `zip --symlinks` writes it
        return info

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("top/real.txt", b"data")
        archive.writestr(link("top/alias.txt"), b"real.txt")
    (tmp_path / "links.zip").write_bytes(buffer.getvalue())
    target = safe_extract(tmp_path / "links.zip", tmp_path / "out")
    alias = target / "top" / "alias.txt"
    assert alias.read_bytes() == b"data" and not alias.is_symlink()

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(link("top/huge"), bytes(5 << 20))  # 5 MiB "link"
    (tmp_path / "huge.zip").write_bytes(buffer.getvalue())
    with pytest.raises(ArchiveError, match="link 'top/huge' claims 5242880 bytes"):
        safe_extract(tmp_path / "huge.zip", tmp_path / "out2")


def test_tar_archives_are_checked_without_tarfile_filters(tmp_path, monkeypatch):
    """Python 3.11 releases before 3.11.4 have no ``filter=``; nothing may depend on it."""

    def unavailable(*args, **kwargs):
        raise TypeError("extractall() got an unexpected keyword argument 'filter'")

    monkeypatch.setattr(tarfile.TarFile, "extractall", unavailable)
    monkeypatch.setattr(tarfile.TarFile, "extract", unavailable)
    archive = tmp_path / "repo.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        data = b"hello"
        info = tarfile.TarInfo("repo/sub/file.txt")
        info.size, info.mode = len(data), 0o4755  # a setuid bit is not carried over
        handle.addfile(info, io.BytesIO(data))
        alias = tarfile.TarInfo("repo/alias.txt")
        alias.type, alias.linkname = tarfile.SYMTYPE, "sub/file.txt"
        handle.addfile(alias)
    target = safe_extract(archive, tmp_path / "out", archive_root="repo")
    assert (target / "sub" / "file.txt").read_bytes() == b"hello"
    assert not (target / "sub" / "file.txt").stat().st_mode & 0o4000
    assert (target / "alias.txt").read_bytes() == b"hello"

    device = tmp_path / "device.tar"
    with tarfile.open(device, "w") as handle:
        node = tarfile.TarInfo("repo/null")
        node.type = tarfile.CHRTYPE
        handle.addfile(node)
    with pytest.raises(ArchiveError, match="'repo/null' is a device or pipe"):
        safe_extract(device, tmp_path / "out2")


# Never a real system folder here: with a regressed check, safe_extract would move it away.
@pytest.mark.parametrize("root", ["../elsewhere", "/nonexistent-covidlab-root", "top/../../x"])
def test_archive_root_cannot_leave_the_scratch_folder(tmp_path, root):
    (tmp_path / "a.zip").write_bytes(_zip({"top/a.txt": b"x"}))
    with pytest.raises(ArchiveError, match="refusing to unpack"):
        safe_extract(tmp_path / "a.zip", tmp_path / "out", archive_root=root)


# --- commits, verify, checksums.json -------------------------------------------------------


@pytest.mark.parametrize("commit", ["../../../x", "main", "6a42423" + "g" * 33, "abc"])
def test_a_commit_that_is_not_a_hash_never_reaches_a_path(tmp_path, monkeypatch, commit):
    def no_network(*args, **kwargs):
        raise AssertionError("nothing may be downloaded for a bad commit")

    monkeypatch.setattr(download, "download", no_network)
    with pytest.raises(ValueError, match="not a full commit hash"):
        fetch("cohen", tmp_path, commit=commit, progress=False)
    assert not tmp_path.joinpath("downloads").exists()


def test_short_forms_of_the_course_commits_are_understood():
    later = download.source_at("cohen", "6a42423")
    assert later.commit == download.COHEN_LATER_COMMIT
    assert later.folder == "covid-chestxray-dataset-6a42423"
    assert download.source_at("cohen", download.COHEN_COMMIT) == download.SOURCES["cohen"]
    with pytest.raises(ValueError, match="not a GitHub repository"):
        download.source_at("kermany", download.COHEN_COMMIT)


def test_verify_after_fetching_another_commit_calls_both_archives_good(
    server, cohen_at, monkeypatch, tmp_path
):
    cohen_at(_mini_cohen_zip(f"covid-chestxray-dataset-{COMMIT}"))
    fetch("cohen", tmp_path, progress=False)
    later = download.COHEN_LATER_COMMIT
    url = server.serve("/later.zip", _mini_cohen_zip(f"covid-chestxray-dataset-{later}"))
    original = download.Source.at_commit
    monkeypatch.setattr(
        download.Source, "at_commit", lambda self, commit: replace(original(self, commit), url=url)
    )
    folder = fetch("cohen", tmp_path, commit=later, progress=False)
    assert folder.name == "covid-chestxray-dataset-6a42423"  # beside the pinned snapshot
    report = download.verify(tmp_path)
    assert report["cohen"].startswith("ok")
    assert report["cohen@6a42423"] == f"ok ({url})"


def test_verify_of_a_folder_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*--data-dir"):
        download.verify(tmp_path / "nowhere")


@pytest.mark.parametrize("content", ["[1, 2]", '"text"', '{"https://x": 5}', "{not json"])
def test_a_checksums_file_of_the_wrong_shape_names_itself(tmp_path, content):
    (tmp_path / "checksums.json").write_text(content)
    with pytest.raises(ValueError, match=r"checksums\.json (should map|is not valid JSON)"):
        download.verify(tmp_path)


# --- Kermany: a known file, and what to do when Mendeley refuses ----------------------------


def test_kermany_archive_is_pinned_by_size_and_sha256():
    kermany = download.SOURCES["kermany"]
    assert kermany.size == 1_235_512_464
    assert kermany.sha256 == "13efc055629733dbab07877f8b3c9f81097840dbcdaa326a8542322c2281ce36"


def test_downloads_send_the_browser_like_user_agent(server, tmp_path):
    url = server.serve("/f.bin", b"x")
    download.download(url, tmp_path / "f.bin", progress=False)
    assert server.headers[0]["User-Agent"] == download.USER_AGENT


@pytest.mark.parametrize("refusal", ["HTTP 403", "a login page"])
def test_a_refused_kermany_download_says_to_take_the_kaggle_copy(
    server, monkeypatch, tmp_path, refusal
):
    url = server.serve("/ChestXRay2017.zip", b"<html>Please sign in</html>")
    if refusal == "HTTP 403":
        server.refuse["/ChestXRay2017.zip"] = 403
    else:
        server.content_types["/ChestXRay2017.zip"] = "text/html; charset=utf-8"
    monkeypatch.setitem(download.SOURCES, "kermany", replace(download.SOURCES["kermany"], url=url))
    with pytest.raises(DownloadError, match="paultimothymooney/chest-xray-pneumonia") as error:
        fetch("kermany", tmp_path, progress=False)
    assert ("HTTP 403" if refusal == "HTTP 403" else "a web page") in str(error.value)
    assert server.count("/ChestXRay2017.zip") == 1  # a refusal is not retried
