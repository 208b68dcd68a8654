"""The demo pack: a fixed subset of Kermany read out of the remote zip with HTTP range requests.

A loopback server serves a real zip built from the shared copy of Kermany's images, with and
without support for ``Range``; no test touches the network.
"""

from __future__ import annotations

import io
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from covidlab import download
from covidlab.download import ArchiveError, RangeNotSupportedError, fetch_kermany_subset
from covidlab.sources import parse_kermany_name, read_kermany


class RangeServer:
    """Serves one body at /ChestXRay2017.zip; honours ``bytes=a-b`` ranges unless told not to."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.honour_range = True
        self.ignore_start = False  # answer every range from byte 0 (a broken proxy)
        self.bytes_sent = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                body = server.body
                match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
                if match and server.honour_range:
                    start = int(match.group(1))
                    end = min(int(match.group(2) or len(body) - 1), len(body) - 1)
                    if server.ignore_start:
                        start, end = 0, end - start
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
                    part = body[start : end + 1]
                else:
                    self.send_response(200)
                    part = body
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                try:
                    self.wfile.write(part)
                    server.bytes_sent += len(part)
                except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/ChestXRay2017.zip"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def kermany_zip(shared_data: Path) -> bytes:
    """ChestXRay2017.zip's layout, with the shared copy's JPEGs and macOS clutter beside them."""
    tree = shared_data / "sources" / "chest_xray"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(tree.rglob("*.jpeg")):
            name = f"chest_xray/{path.relative_to(tree).as_posix()}"
            archive.write(path, name)
            archive.writestr(f"__MACOSX/{name}", b"resource fork")
    return buffer.getvalue()


@pytest.fixture
def server(kermany_zip: bytes):
    served = RangeServer(kermany_zip)
    yield served
    served.close()


def test_choice_is_fixed_one_image_per_patient_and_per_class(kermany_zip: bytes) -> None:
    names = zipfile.ZipFile(io.BytesIO(kermany_zip)).namelist()
    chosen = download.choose_demo_members(names, per_class=10)
    assert chosen == download.choose_demo_members(list(reversed(names)), per_class=10)
    parsed = [parse_kermany_name(Path(name).name) for name in chosen]
    labels = [label for label, _ in parsed]
    assert {label: labels.count(label) for label in set(labels)} == {
        "normal": 10,
        "bacterial": 10,
        "viral": 10,
    }
    assert len({patient for _, patient in parsed}) == 30
    assert not any(name.startswith("__MACOSX") for name in chosen)


def test_subset_is_read_with_ranges_checked_and_laid_out_like_kermany(
    server: RangeServer, kermany_zip: bytes, tmp_path: Path
) -> None:
    folder = fetch_kermany_subset(tmp_path, url=server.url, per_class=5, progress=False)
    manifest = read_kermany(folder)
    assert manifest["label"].value_counts().to_dict() == {"bacterial": 5, "normal": 5, "viral": 5}
    archive = zipfile.ZipFile(io.BytesIO(kermany_zip))
    for path in manifest["path"]:  # byte for byte the archive's member
        name = "chest_xray/" + Path(path).relative_to(folder).as_posix()
        assert Path(path).read_bytes() == archive.read(name)
    chosen = download.choose_demo_members(archive.namelist(), per_class=5)
    members = sum(archive.getinfo(name).compress_size for name in chosen)
    directory = len(kermany_zip) - archive.start_dir
    overhead = 2 * (1 << 14) * len(chosen) + (1 << 16)  # read-ahead per member, end of file
    assert server.bytes_sent <= members + directory + overhead, "only the chosen members"
    sent = server.bytes_sent
    fetch_kermany_subset(tmp_path, url=server.url, per_class=5, progress=False)
    assert server.bytes_sent == sent, "a second run finds the pack and reads nothing"
    assert not list(folder.parent.glob(".*partial*")), "no scratch folder is left behind"


def test_a_pack_of_another_size_is_replaced(server: RangeServer, tmp_path: Path) -> None:
    folder = fetch_kermany_subset(tmp_path, url=server.url, per_class=5, progress=False)
    fetch_kermany_subset(tmp_path, url=server.url, per_class=3, progress=False)
    assert read_kermany(folder)["label"].value_counts().to_dict() == {
        "bacterial": 3,
        "normal": 3,
        "viral": 3,
    }
    assert not [*folder.parent.glob(".*partial*"), *folder.parent.glob(".*stale*")]


def test_server_without_range_support_is_named_with_the_way_out(
    server: RangeServer, tmp_path: Path
) -> None:
    server.honour_range = False
    with pytest.raises(RangeNotSupportedError, match="covidlab-data download kermany"):
        fetch_kermany_subset(tmp_path, url=server.url, per_class=5, progress=False)
    assert not (tmp_path / "sources" / "chest_xray").exists()


def test_damaged_member_fails_its_crc_check_and_leaves_nothing(
    kermany_zip: bytes, tmp_path: Path
) -> None:
    archive = zipfile.ZipFile(io.BytesIO(kermany_zip))
    victim = download.choose_demo_members(archive.namelist(), per_class=5)[0]
    info = archive.getinfo(victim)
    damaged = bytearray(kermany_zip)
    middle = info.header_offset + 30 + len(info.filename.encode()) + info.compress_size // 2
    damaged[middle] ^= 0xFF
    served = RangeServer(bytes(damaged))
    try:
        with pytest.raises(ArchiveError, match="damaged"):
            fetch_kermany_subset(tmp_path, url=served.url, per_class=5, progress=False)
    finally:
        served.close()
    assert not (tmp_path / "sources" / "chest_xray").exists()
    assert not list((tmp_path / "sources").glob(".*partial*"))


def test_a_range_answer_that_starts_elsewhere_is_refused(server: RangeServer) -> None:
    """A 206 whose Content-Range does not start at the requested byte is not trusted."""
    remote = download.RemoteFile(server.url)
    remote.seek(10)
    assert remote.read(5) == server.body[10:15]
    server.ignore_start = True
    with pytest.raises(download.DownloadError, match="refusing to use it"):
        remote.read(5)
