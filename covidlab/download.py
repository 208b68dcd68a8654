"""Checksummed, resumable downloads of the public sources and safe archive extraction.

``fetch("cohen")`` downloads an archive into ``<data_dir>/downloads/``, checks it, unpacks it
into ``<data_dir>/sources/<folder>/`` and leaves a completion marker there; a second call
finds the marker and does nothing.

Checksums
    Kermany's ``ChestXRay2017.zip`` has a known size and sha256 (:data:`SOURCES`). GitHub
    builds its archives on the fly and publishes no checksum, so for the GitHub sources the
    sha256 of the first download is recorded in ``<data_dir>/checksums.json``, *but only
    once the archive has unpacked*: a download cut short is never trusted. Every later
    download or extraction is checked against the record (*trust on first use*). Delete an
    entry to accept a new upstream file on purpose.
Downloads
    Bytes stream into ``<file>.part``; a dropped connection resumes with an HTTP ``Range``
    request, guarded by ``If-Range`` so that a file changed upstream is fetched again rather
    than spliced. Every answer is checked: a resumed answer must start where asked, and a
    body must be as long as announced.
Two runs at once
    A download, a fetch and an update of ``checksums.json`` each hold a lock file
    (``fcntl.flock``, Linux and macOS): a second run of the same download waits for the
    first, then finds its work done. Nothing is ever half-written under its real name.
Archives
    Unpacked entry by entry by this module (not by ``tarfile``'s ``filter=``, absent from
    some Python 3.11 releases): names that climb out of the target, links that point out of
    it, device files, encrypted entries and compression methods Python cannot read are
    refused by name, and an archive may not unpack to more than :func:`extraction_limit`.

Every error names the file and says what to do.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import lzma
import os
import re
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from tqdm.auto import tqdm

from covidlab import config
from covidlab.data import folder_written_atomically, replace_folder, write_file_atomically
from covidlab.sources import file_sha256, parse_kermany_name

try:  # file locks: Linux, macOS and Colab; on Windows two runs at once are not guarded
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

#: Cohen's repository is pinned at 548bb58 (2020-03-24): the snapshot closest to the date the
#: papers collected their data (COVIDX-Net and Apostolopoulos in March 2020), and the one the
#: offline mirror in ``shared/data/sources`` reproduces byte for byte, so an offline run and a
#: downloaded run see the same metadata. It lists 100 frontal COVID-19 X-rays; the offline copy
#: holds 96 of them (66 patients), the other 4 files being lost from every mirror.
COHEN_COMMIT = "548bb58d8e2dbffb8068904e330836187f538395"
#: A later snapshot of Cohen's repository, with the later metadata schema: 478 frontal
#: COVID-19 X-rays from 295 patients, enough for the papers that used more than 96
#: (each paper's ``PaperSpec.cohen_snapshot`` says which snapshot it uses).
COHEN_LATER_COMMIT = "6a4242344473ccb5ed0d2148d8c7bfb1691e4ed8"
FIGURE1_COMMIT = "95bb569e55f4110d3b734c0f355340e04e16989a"
ACTUALMED_COMMIT = "27240dd8dec9454bc97f9f3c0c432ef434de2517"

MARKER_NAME = ".covidlab-source.json"
CHECKSUMS_NAME = "checksums.json"

#: Mendeley's storage refuses some non-browser clients; this one is accepted by its CDN.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) covidlab (+course download script)"

#: HTTP answers worth retrying: timeouts, rate limits and server-side failures.
RETRY_STATUSES = (408, 429, 500, 502, 503, 504)

#: An archive may unpack to at most this many times its own size (X-ray images barely
#: compress: the sources unpack to about 1.1 times their archive), at least
#: ``MIN_EXTRACTED_BYTES`` and never more than ``MAX_EXTRACTED_BYTES``.
EXPANSION_LIMIT = 20
MIN_EXTRACTED_BYTES = 64 << 20
MAX_EXTRACTED_BYTES = 8 << 30
#: A link entry holds only the path it points to; anything longer is not a link.
MAX_LINK_BYTES = 4096

# Compression methods Python's zipfile reads (Deflate64, method 9, is not one of them).
_ZIP_METHODS = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}
_ZIP_METHOD_NAMES = {9: "Deflate64", 93: "Zstandard", 98: "PPMd", 99: "AES encryption"}
_HEX_COMMIT = re.compile(r"[0-9a-f]{40}")


class DownloadError(RuntimeError):
    """A download failed after all retries."""


class ChecksumError(RuntimeError):
    """A file's sha256 or size differs from the expected one."""


class ArchiveError(RuntimeError):
    """An archive is damaged, truncated or unsafe to unpack."""


class RangeNotSupportedError(DownloadError):
    """The server ignores HTTP ``Range`` requests, so single files cannot be read remotely."""


class _RetryableError(http.client.HTTPException):
    """One attempt went wrong in a way the next attempt may not (a bad answer, a stale part)."""


@dataclass(frozen=True)
class Source:
    """One public source: where it comes from and how it unpacks.

    ``archive_root`` is the folder inside the archive that becomes ``<data_dir>/sources/<folder>``
    (GitHub's "Download ZIP" wraps a repository in ``<repo>-<commit>/``). ``sha256`` and
    ``size`` are known in advance only where the file is fixed and published; ``if_refused``
    says how to get the data by hand when the server will not serve it.
    """

    name: str
    url: str
    folder: str
    archive_root: str
    licence: str
    commit: str | None = None
    sha256: str | None = None
    size: int | None = None
    github_repo: str | None = None
    if_refused: str = ""

    @property
    def archive_name(self) -> str:
        return f"{self.folder}-{self.commit}.zip" if self.commit else f"{self.folder}.zip"

    def at_commit(self, commit: str) -> Source:
        """The same GitHub source at another commit, unpacked into a folder of its own
        (``covid-chestxray-dataset-6a42423``), so snapshots sit side by side; its checksum is
        learned on first use. The registry's own commit gives the registry's entry."""
        if self.github_repo is None:
            raise ValueError(f"source {self.name!r} is not a GitHub repository; it has no commits")
        if not _HEX_COMMIT.fullmatch(commit):
            raise ValueError(
                f"{commit!r} is not a full commit hash (40 characters 0-9 a-f); copy it from "
                f"the commit's page on github.com/{self.github_repo}"
            )
        pinned = SOURCES.get(self.name)
        if pinned is not None and pinned.commit == commit:
            return pinned
        return _github(self.name, self.github_repo, commit, self.licence, own_folder=True)


def _github(name: str, repo: str, commit: str, licence: str, *, own_folder: bool = False) -> Source:
    folder = repo.split("/")[1]
    return Source(
        name=name,
        url=f"https://github.com/{repo}/archive/{commit}.zip",
        folder=f"{folder}-{commit[:7]}" if own_folder else folder,
        archive_root=f"{folder}-{commit}",
        licence=licence,
        commit=commit,
        github_repo=repo,
    )


SOURCES: dict[str, Source] = {
    "cohen": _github(
        "cohen",
        "ieee8023/covid-chestxray-dataset",
        COHEN_COMMIT,
        "per image, see metadata.csv `license`; metadata CC BY-NC-SA 4.0 (later README)",
    ),
    # Kermany et al. 2018, Mendeley Data v2, doi:10.17632/rscbjbr9sj.2 (ChestXRay2017.zip). Its
    # size and sha256 are recorded independently by several public projects.
    "kermany": Source(
        name="kermany",
        url="https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
        "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded",
        folder="chest_xray",
        archive_root="chest_xray",
        licence="CC BY 4.0",
        sha256="13efc055629733dbab07877f8b3c9f81097840dbcdaa326a8542322c2281ce36",
        size=1_235_512_464,
        if_refused=(
            "If Mendeley keeps refusing, take the Kaggle copy instead: `kaggle datasets download "
            "-d paultimothymooney/chest-xray-pneumonia`, unzip it into <data dir>/sources/ "
            "(data_scripts/README.md, 'Kaggle instead of Mendeley')"
        ),
    ),
    "figure1": _github(
        "figure1",
        "agchung/Figure1-COVID-chestxray-dataset",
        FIGURE1_COMMIT,
        "none stated; 'research purposes only' (README)",
    ),
    "actualmed": _github(
        "actualmed",
        "agchung/Actualmed-COVID-chestxray-dataset",
        ACTUALMED_COMMIT,
        "none stated; 'research purposes only' (README)",
    ),
}

#: Commits the course names, by their short form (``--commit 6a42423`` is enough for these).
KNOWN_COMMITS = {
    commit[:7]: commit
    for commit in (COHEN_COMMIT, COHEN_LATER_COMMIT, FIGURE1_COMMIT, ACTUALMED_COMMIT)
}


def source_at(name: str, commit: str | None = None) -> Source:
    """The registry entry ``name``, or that GitHub source at ``commit``.

    ``commit`` is a full 40-character hash or the short form of one in :data:`KNOWN_COMMITS`;
    anything else is refused before it can become part of a path or a URL.
    """
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    if commit is None:
        return SOURCES[name]
    commit = KNOWN_COMMITS.get(commit.strip().lower(), commit.strip().lower())
    return SOURCES[name].at_commit(commit)


# --- Locks -----------------------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(lock_path: Path, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_path`` (created, then removed on release).

    A second process (or thread) asking for the same lock waits, after saying so. The holder
    removes the file before releasing it, so a waiter checks that the file it locked is still
    the one at ``lock_path``; if not, it locks the new one.
    """
    if fcntl is None:  # pragma: no cover (Windows)
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    told = False
    while True:
        handle = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not told:
                print(f"waiting for another run's {what} to finish ...", file=sys.stderr)
                told = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            current = os.stat(lock_path)
            held = os.fstat(handle)
            if (current.st_dev, current.st_ino) == (held.st_dev, held.st_ino):
                break
        except FileNotFoundError:
            pass
        os.close(handle)  # the previous holder removed the file we locked: try again
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path)
        os.close(handle)


def _lock_for(path: Path) -> Path:
    """The lock file that guards ``path`` (a file or folder): ``.<name>.lock`` beside it."""
    return path.with_name(f".{path.name}.lock")


# --- Downloads -------------------------------------------------------------------------------


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 60.0,
    retry_wait: float = 2.0,
) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256.

    Bytes stream into ``<dest>.part``; a dropped connection is retried with an HTTP ``Range``
    request that resumes where it stopped, with ``If-Range`` so that a changed file is sent
    whole (from scratch when the server ignores ``Range``). The finished file is checked
    against ``size`` and ``sha256`` (when given) and only then renamed to ``dest``, so
    ``dest`` never exists half-written. A ``.part`` left by a failed run is resumed by the
    next one. Two downloads to the same ``dest`` at once take turns.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    with exclusive_lock(_lock_for(dest), f"download of {dest.name}"):
        if sha256 is not None and dest.is_file() and file_sha256(dest) == sha256.lower():
            return sha256.lower()  # another run finished it while we waited
        last_error: Exception | None = None
        for attempt in range(retries + 1):
            if attempt:
                time.sleep(retry_wait * attempt)
            try:
                _fetch_into(url, part, size=size, progress=progress, timeout=timeout)
                break
            except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
                if isinstance(error, urllib.error.HTTPError) and error.code not in RETRY_STATUSES:
                    raise DownloadError(
                        f"{url} answered HTTP {error.code} ({error.reason}) for {dest}"
                    ) from error
                last_error = error
        else:
            raise DownloadError(
                f"downloading {url} into {dest} failed after {retries + 1} attempts "
                f"({last_error or 'no answer'}). The partial file {part} is kept: re-run to "
                "resume, or delete it to start over"
            ) from last_error
        digest = file_sha256(part)
        if sha256 is not None and digest != sha256.lower():
            _discard(part)
            raise ChecksumError(
                f"{url} downloaded with sha256 {digest}, expected {sha256}; the file was "
                "removed. Re-run to try again; if upstream changed the file on purpose, delete "
                f"its entry from {CHECKSUMS_NAME}"
            )
        os.replace(part, dest)
        _part_info_path(part).unlink(missing_ok=True)
    return digest


def _fetch_into(url: str, part: Path, *, size: int | None, progress: bool, timeout: float) -> None:
    """One attempt: append the rest of ``url`` to ``part``, checking every answer.

    Raises on a short body and :class:`_RetryableError` (after discarding ``part``) when
    ``part`` cannot be resumed: a stale file, an answer for other bytes, a changed total.
    """
    info = _read_part_info(part, url)
    have = part.stat().st_size if part.exists() and info else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
        if info.get("validator"):
            request.add_header("If-Range", info["validator"])
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # "no bytes from there on": complete, or stale?
            total = _content_range(error.headers.get("Content-Range", ""))[2]
            if info.get("validator") and total == have == info.get("total"):
                _check_part_size(part, size, url)
                return  # the same file (If-Range held), already whole
            _discard(part)
            raise _RetryableError(
                f"{part} does not belong to {url} (HTTP 416); restarting"
            ) from error
        raise
    with response:
        content_type = response.headers.get("Content-Type") or ""
        if size is not None and content_type.startswith("text/html"):
            raise DownloadError(  # a login or error page instead of the archive
                f"{url} answered a web page ({content_type}) instead of the file; the server "
                "refused the download"
            )
        resumed = bool(have) and response.status == 206
        if resumed:
            start, _, total = _content_range(response.headers.get("Content-Range", ""))
            known_total = info.get("total")
            if start != have or known_total not in (None, total) or (size and total != size):
                _discard(part)
                raise _RetryableError(
                    f"{url} answered bytes {response.headers.get('Content-Range')!r} to a "
                    f"request for bytes {have}-; the partial file was discarded"
                )
        else:
            have = 0  # the server sent the whole file (Range ignored, or the file changed)
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None and length.isdigit() else None
        if not resumed:
            total = expected if response.status == 200 else None
            validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
            if validator and validator.startswith("W/"):  # a weak ETag cannot guard a range
                validator = response.headers.get("Last-Modified")
            _write_part_info(part, {"url": url, "validator": validator, "total": total})
        received = 0
        bar = tqdm(
            total=None if expected is None else have + expected,
            initial=have,
            unit="B",
            unit_scale=True,
            desc=part.name.removesuffix(".part"),
            disable=not progress,
        )
        with bar, open(part, "ab" if resumed else "wb") as handle:
            while chunk := response.read(1 << 16):
                handle.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received < expected:
        raise http.client.IncompleteRead(b"", expected - received)
    _check_part_size(part, size, url)


def _check_part_size(part: Path, size: int | None, url: str) -> None:
    """A file of known ``size``: shorter means cut short (resume), longer means wrong."""
    on_disk = part.stat().st_size
    if size is None or on_disk == size:
        return
    if on_disk < size:
        raise http.client.IncompleteRead(b"", size - on_disk)
    _discard(part)
    raise ChecksumError(
        f"{url} sent {on_disk:,} bytes, more than the {size:,} of the expected file; it was "
        "removed. Re-run to try again"
    )


def _content_range(header: str) -> tuple[int | None, int | None, int | None]:
    """``"bytes 10-99/100"`` -> (10, 99, 100); ``"bytes */100"`` -> (None, None, 100)."""
    match = re.fullmatch(r"\s*bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)\s*", header or "")
    if match is None:
        return None, None, None
    start, end, total = (int(g) if g and g != "*" else None for g in match.groups())
    return start, end, total


def _part_info_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _read_part_info(part: Path, url: str) -> dict:
    """What the first answer said about the file ``part`` holds the start of (URL, ETag or
    Last-Modified, total size); empty when unknown, and then ``part`` is not resumed."""
    try:
        info = json.loads(_part_info_path(part).read_text())
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) and info.get("url") == url else {}


def _write_part_info(part: Path, info: dict) -> None:
    _write_json(_part_info_path(part), info)


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _part_info_path(part).unlink(missing_ok=True)


# --- Archives --------------------------------------------------------------------------------


def extraction_limit(archive_size: int) -> int:
    """How many bytes an archive of ``archive_size`` bytes may unpack to (see the constants)."""
    return min(MAX_EXTRACTED_BYTES, max(MIN_EXTRACTED_BYTES, EXPANSION_LIMIT * archive_size))


def safe_extract(
    archive: str | Path,
    target: str | Path,
    *,
    archive_root: str | None = None,
    max_bytes: int | None = None,
) -> Path:
    """Unpack a zip or tar ``archive`` into ``target`` without trusting its entries.

    Every entry is checked before anything is written: absolute paths, ``..`` components,
    links pointing outside the target (the "zip-slip" attack), device files, encrypted
    entries, compression methods Python cannot read, and a total declared size over
    ``max_bytes`` (default :func:`extraction_limit`) are refused with an
    :class:`ArchiveError` naming the entry. Links are written as copies of the file they
    point to (never as links). Everything is unpacked into a temporary folder beside
    ``target`` and renamed into place at the end, so ``target`` is never half-written. With
    ``archive_root``, only that folder of the archive is kept and it becomes ``target``
    (e.g. GitHub's ``<repo>-<commit>/``). Not for two processes extracting into the same
    ``target`` at once: :func:`fetch` takes a lock for that.
    """
    archive, target = Path(archive), Path(target)
    if archive_root is not None:  # a folder inside the archive, nothing else
        try:
            _entry_path(archive, archive_root)
        except ArchiveError:
            raise ArchiveError(
                f"archive_root {archive_root!r} is not a folder inside {archive} (it is "
                "absolute or climbs out with '..'); refusing to unpack"
            ) from None
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} not found")
    limit = extraction_limit(archive.stat().st_size) if max_bytes is None else max_bytes
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        _unpack(archive, scratch, limit)
        unpacked = scratch.joinpath(*PurePosixPath(archive_root).parts) if archive_root else scratch
        if not unpacked.is_dir():
            found = ", ".join(sorted(p.name for p in scratch.iterdir())) or "nothing"
            raise ArchiveError(
                f"{archive} has no folder {archive_root!r} (it holds: {found}); it is not the "
                "expected archive. Delete it and re-run"
            )
        # a previous, unmarked extraction is replaced
        replace_folder(unpacked, target, aside=scratch.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _remove_leftovers(target: Path) -> None:
    """Remove the scratch folders a killed extraction left beside ``target``.

    Call only while holding ``target``'s lock: then no other run is using them.
    """
    for pattern in (f".{target.name}.partial-*", f".{target.name}.stale-*"):
        for leftover in target.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _unpack(archive: Path, scratch: Path, limit: int) -> None:
    damaged = f"{archive} is truncated or corrupt: delete it and re-run"
    try:
        if zipfile.is_zipfile(archive):
            _unpack_zip(archive, scratch, limit)
        elif tarfile.is_tarfile(archive):
            _unpack_tar(archive, scratch, limit)
        else:
            raise ArchiveError(f"{archive} is neither a zip nor a tar archive. {damaged}")
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError) as error:
        raise ArchiveError(f"{damaged} ({error})") from error


def _unpack_zip(archive: Path, scratch: Path, limit: int) -> None:
    with zipfile.ZipFile(archive) as handle:
        files, links, declared = [], [], 0
        for info in handle.infolist():
            _check_zip_method(archive, info)
            if stat.S_ISLNK(info.external_attr >> 16):
                if info.file_size > MAX_LINK_BYTES:
                    raise ArchiveError(
                        f"{archive}: link {info.filename!r} claims {info.file_size} bytes; a "
                        "link holds a short path. Refusing to unpack: delete it and re-run"
                    )
                link = handle.read(info).decode("utf-8", "replace")
                links.append((_check_entry(archive, info.filename, link), link, False))
                continue
            files.append((_check_entry(archive, info.filename, None), info))
            declared += info.file_size
            _check_size(archive, declared, limit)
        written = 0
        for relative, info in files:
            if info.is_dir():
                _make_folder(archive, info.filename, scratch, relative)
            else:
                with handle.open(info) as source:
                    written += _write_entry(archive, info.filename, source, scratch, relative)
                _check_size(archive, written, limit)
        _copy_links(archive, scratch, links)


def _unpack_tar(archive: Path, scratch: Path, limit: int) -> None:
    with tarfile.open(archive) as handle:
        members, links, declared = [], [], 0
        for member in handle.getmembers():
            if member.issym() or member.islnk():
                relative = _check_entry(archive, member.name, member.linkname, hard=member.islnk())
                links.append((relative, member.linkname, member.islnk()))
            elif member.isreg() or member.isdir():
                members.append((_check_entry(archive, member.name, None), member))
                declared += member.size if member.isreg() else 0
                _check_size(archive, declared, limit)
            else:
                raise ArchiveError(
                    f"{archive}: entry {member.name!r} is a device or pipe, which no data "
                    "archive holds; refusing to unpack: delete it and re-run"
                )
        written = 0
        for relative, member in members:
            if member.isdir():
                _make_folder(archive, member.name, scratch, relative)
            else:
                source = handle.extractfile(member)
                with source:
                    written += _write_entry(archive, member.name, source, scratch, relative)
                _check_size(archive, written, limit)
        _copy_links(archive, scratch, links)


def _check_zip_method(archive: Path, info: zipfile.ZipInfo) -> None:
    """Refuse encrypted entries and compression methods Python's ``zipfile`` cannot read."""
    by_hand = (
        "unpack it by hand (`unzip` or 7-Zip's `7z x`) and move the folder into "
        "<data dir>/sources/ (data_scripts/README.md)"
    )
    if info.flag_bits & 0x1:
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} is encrypted (password-protected); the "
            f"public sources are not, so this is not the expected file. Delete it and re-run, "
            f"or {by_hand}"
        )
    if info.compress_type not in _ZIP_METHODS:
        method = _ZIP_METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise ArchiveError(
            f"{archive}: entry {info.filename!r} is compressed with {method}, which Python's "
            f"zipfile cannot read; {by_hand}"
        )


def _check_size(archive: Path, size: int, limit: int) -> None:
    if size > limit:
        raise ArchiveError(
            f"{archive} unpacks to more than {limit:,} bytes (the limit for an archive of "
            f"its size, see covidlab.download.extraction_limit); it is not one of the "
            "course's sources or it is damaged: delete it and re-run (pass max_bytes= to "
            "safe_extract if you trust it)"
        )


def _entry_path(archive: Path, name: str) -> PurePosixPath:
    """``name`` as a relative path inside the target, or :class:`ArchiveError` if it leaves it."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]) or "\0" in name:
        raise ArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing to unpack")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: entry {name!r} climbs out with '..'; refusing to unpack")
    return path


def _link_target(path: PurePosixPath, link: str, *, hard: bool) -> PurePosixPath:
    """Where a link entry at ``path`` points, relative to the target (tar hard links are
    relative to the archive's top, symbolic links to their own folder)."""
    base = PurePosixPath() if hard else path.parent
    return PurePosixPath(os.path.normpath(base / link.replace("\\", "/")))


def _check_entry(
    archive: Path, name: str, link: str | None, *, hard: bool = False
) -> PurePosixPath:
    """Check one entry's name (and a link's target); return its path inside the target."""
    path = _entry_path(archive, name)
    if link is not None:
        resolved = _link_target(path, link, hard=hard)
        if PurePosixPath(link).is_absolute() or resolved.parts[:1] == ("..",):
            raise ArchiveError(
                f"{archive}: link {name!r} -> {link!r} points outside the target; "
                "refusing to unpack"
            )
    return path


def _clash(archive: Path, name: str) -> ArchiveError:
    return ArchiveError(
        f"{archive}: entry {name!r} is both a file and a folder in this archive; it is "
        "damaged or not the expected archive: delete it and re-run"
    )


def _make_folder(archive: Path, name: str, scratch: Path, relative: PurePosixPath) -> None:
    try:
        scratch.joinpath(*relative.parts).mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as error:
        raise _clash(archive, name) from error


def _write_entry(
    archive: Path, name: str, source: BinaryIO, scratch: Path, relative: PurePosixPath
) -> int:
    """Copy one entry's bytes to ``scratch/relative``; return how many were written."""
    destination = scratch.joinpath(*relative.parts)
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        with open(destination, "wb") as handle:
            shutil.copyfileobj(source, handle, 1 << 20)
            return handle.tell()
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
        raise _clash(archive, name) from error


def _copy_links(archive: Path, scratch: Path, links: list) -> None:
    """Write each link as a copy of the file it points to; links to folders or to nothing are
    skipped (the sources hold none)."""
    for path, link, hard in links:
        pointed = scratch.joinpath(*_link_target(path, link, hard=hard).parts)
        if pointed.is_file() and not pointed.is_symlink():
            destination = scratch.joinpath(*path.parts)
            try:
                destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pointed, destination)
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as error:
                raise _clash(archive, str(path)) from error


# --- Sources ---------------------------------------------------------------------------------


def fetch(
    name: str,
    data_dir: str | Path | None = None,
    *,
    commit: str | None = None,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack one source; return its folder under ``<data_dir>/sources``.

    A no-op when the folder carries a completion marker whose sha256 matches the expected
    one. ``commit`` picks another commit of a GitHub source (see :func:`source_at`); it is
    unpacked beside the pinned one, into ``<folder>-<short commit>``. Two runs fetching the
    same source take turns. A first download (no checksum known yet) that does not unpack is
    deleted, and its checksum is recorded only once it has unpacked.
    """
    source = source_at(name, commit)
    root = _data_root(data_dir)
    target = root / "sources" / source.folder
    with exclusive_lock(_lock_for(target), f"fetch of {source.folder}"):
        _remove_leftovers(target)
        expected = source.sha256 or _read_checksums(root).get(source.url)
        marker = _read_marker(target)
        if expected and marker.get("sha256") == expected and marker.get("url") == source.url:
            return target
        archive = root / "downloads" / source.archive_name
        if archive.is_file():
            digest = file_sha256(archive)
            if expected and digest != expected:
                raise ChecksumError(
                    f"{archive} has sha256 {digest}, expected {expected} (from the registry or "
                    f"{root / CHECKSUMS_NAME}): delete it and re-run"
                )
        else:
            digest = _download_source(source, archive, expected, progress)
        try:
            safe_extract(archive, target, archive_root=source.archive_root)
        except ArchiveError as error:
            if expected:
                raise
            archive.unlink(missing_ok=True)  # never checked against anything: do not keep it
            raise ArchiveError(
                f"{error}. The download was never checked against a known checksum, so it "
                "was deleted: re-run to download it again"
            ) from error
        if not source.sha256:
            _record_checksum(root, source.url, digest)
        _write_json(
            target / MARKER_NAME,
            {
                "name": name,
                "url": source.url,
                "sha256": digest,
                "archive": source.archive_name,
                "commit": source.commit,
            },
        )
    return target


def _download_source(source: Source, archive: Path, expected: str | None, progress: bool) -> str:
    """:func:`download` with the source's size and checksum, and its advice when refused."""
    try:
        return download(source.url, archive, sha256=expected, size=source.size, progress=progress)
    except (DownloadError, ChecksumError) as error:
        if not source.if_refused:
            raise
        raise type(error)(f"{error}. {source.if_refused}") from error


def locate_sources(data_dir: str | Path | None = None) -> Path:
    """The folder holding the unpacked sources (``covid-chestxray-dataset/``, ``chest_xray/``, ...).

    ``<data_dir>/sources`` when it holds both Cohen and Kermany, else the shared offline copy
    (``config.shared_data_dir()/sources``).
    """
    root = _data_root(data_dir)
    candidates = [root / "sources"]
    shared = config.shared_data_dir()
    if shared is not None:
        candidates.append(shared / "sources")
    for candidate in candidates:
        if all((candidate / SOURCES[n].folder).is_dir() for n in ("cohen", "kermany")):
            return candidate
    raise FileNotFoundError(
        f"no unpacked sources in {' or '.join(map(str, candidates))}: run `covidlab-data "
        "download` (about 1.5 GB), or set COVIDLAB_DATA_DIR / COVIDLAB_SHARED_DATA"
    )


def verify(data_dir: str | Path | None = None) -> dict[str, str]:
    """Check every unpacked source's marker and archive against the expected checksums.

    Returns ``{source: status}``; a status starting with ``"ok"`` means all is well. Cohen
    snapshots other than the pinned one appear as ``cohen@6a42423``, each checked against
    its own archive. Raises ``FileNotFoundError`` when ``data_dir`` does not exist.
    """
    root = _data_root(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(
            f"data folder {root} does not exist: pass the folder you downloaded into with "
            "--data-dir (or set COVIDLAB_DATA_DIR), or run `covidlab-data download` first"
        )
    checksums = _read_checksums(root)
    report = {name: _status(root, source, checksums) for name, source in SOURCES.items()}
    pinned_folders = {source.folder for source in SOURCES.values()}
    for marker_path in sorted((root / "sources").glob(f"*/{MARKER_NAME}")):
        marker = _read_marker(marker_path.parent)
        name, commit = marker.get("name"), marker.get("commit")
        if marker_path.parent.name in pinned_folders or name not in SOURCES or not commit:
            continue
        try:
            snapshot = source_at(name, commit)
        except ValueError:
            continue
        if snapshot.folder == marker_path.parent.name:
            report[f"{name}@{commit[:7]}"] = _status(root, snapshot, checksums)
    return report


def _status(root: Path, source: Source, checksums: dict[str, str]) -> str:
    target = root / "sources" / source.folder
    marker = _read_marker(target)
    if not marker:
        present = "present, unverified (unpacked by hand or interrupted)"
        return present if target.exists() else "not downloaded"
    if marker.get("subset"):
        return f"ok (demo pack: {marker.get('members')} images read from {marker.get('url')})"
    url = marker.get("url", source.url)
    expected = source.sha256 if url == source.url and source.sha256 else checksums.get(url)
    if marker.get("sha256") != expected:
        return f"marker sha256 differs from {CHECKSUMS_NAME}: delete {target} and re-run"
    archive_name = marker.get("archive") or (source.archive_name if url == source.url else None)
    archive = root / "downloads" / archive_name if archive_name else None
    if archive is not None and archive.is_file() and file_sha256(archive) != expected:
        return f"archive {archive} changed since download: delete it and re-run"
    return f"ok ({url})"


def _data_root(data_dir: str | Path | None) -> Path:
    return Path(data_dir).expanduser() if data_dir is not None else config.data_dir()


def _read_checksums(root: Path) -> dict[str, str]:
    """``checksums.json``: ``{url: sha256}``; a clear error when it is anything else."""
    path = root / CHECKSUMS_NAME
    if not path.is_file():
        return {}
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): fix or delete it") from error
    if not isinstance(content, dict) or not all(
        isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in content.values()
    ):
        raise ValueError(
            f"{path} should map each download URL to a sha256 (64 hex digits), like "
            '{"https://...zip": "13ef..."}; fix it, or delete it to record the checksums again'
        )
    return content


def _record_checksum(root: Path, url: str, digest: str) -> None:
    """Add ``url: digest`` to ``checksums.json`` (read, changed and written under a lock)."""
    path = root / CHECKSUMS_NAME
    with exclusive_lock(_lock_for(path), f"update of {path.name}"):
        checksums = _read_checksums(root)
        checksums[url] = digest
        _write_json(path, checksums)


def _read_marker(target: Path) -> dict:
    path = target / MARKER_NAME
    try:
        content = json.loads(path.read_text()) if path.is_file() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}  # a damaged marker means "not complete": fetch unpacks again
    return content if isinstance(content, dict) else {}


def _write_json(path: Path, content: dict) -> None:
    text = json.dumps(content, indent=2, sort_keys=True) + "\n"
    write_file_atomically(path, lambda handle: handle.write(text))


# ----------------------------------------------------------------------------------------------
# The demo pack: a few hundred real X-rays without the 1.2 GB download
# ----------------------------------------------------------------------------------------------

#: Kermany images per class (normal, bacterial, viral) in the demo pack: with Cohen's pinned
#: snapshot, about 60 MB of Kermany JPEGs, enough for every chapter's demo recipe (at most 50
#: images per class, 100 normal for the shortcut chapter's leak-free pool).
DEMO_PER_CLASS = 120
DEMO_SEED = 0
DEMO_MARKER = "subset of ChestXRay2017.zip: the demo pack (covidlab-data download demo)"


class RemoteFile(io.RawIOBase):
    """A read-only, seekable view of a file on an HTTP server, read with ``Range`` requests.

    Wrapped in ``io.BufferedReader`` it can be handed to ``zipfile.ZipFile``, which then reads
    the central directory at the end of the archive and only the members it is asked for.
    Every answer is checked: status 206, a ``Content-Range`` that starts where asked, and a
    body of the announced length; a server that answers 200 to a range request raises
    :class:`RangeNotSupportedError`.
    """

    def __init__(self, url: str, *, timeout: float = 60.0, retries: int = 3) -> None:
        super().__init__()
        self.url, self.timeout, self.retries = url, timeout, retries
        self.position = 0
        self.requests = 0
        self.size = self._total_size()

    def _get(self, start: int, end: int) -> tuple[bytes, str]:
        request = urllib.request.Request(
            self.url, headers={"User-Agent": USER_AGENT, "Range": f"bytes={start}-{end}"}
        )
        last_error: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(attempt)
            try:
                self.requests += 1
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    if response.status != 206:
                        raise RangeNotSupportedError(
                            f"{self.url} ignores HTTP Range requests (answered "
                            f"{response.status}), so single files cannot be read out of it. "
                            "Download the whole archive instead: `covidlab-data download "
                            "kermany` (1.2 GB)"
                        )
                    content_range = response.headers.get("Content-Range", "")
                    body = response.read(end - start + 1)
                if not content_range.startswith(f"bytes {start}-"):
                    raise DownloadError(
                        f"{self.url} answered range {content_range!r} to a request for bytes "
                        f"{start}-{end}; refusing to use it"
                    )
                if len(body) != end - start + 1:
                    raise http.client.IncompleteRead(body)
                return body, content_range
            except urllib.error.HTTPError as error:
                if error.code not in RETRY_STATUSES:
                    raise DownloadError(
                        f"{self.url} answered HTTP {error.code} ({error.reason}); if it keeps "
                        "refusing, download the Kaggle copy of the Kermany data by hand and "
                        "unpack it under <data dir>/sources/chest_xray"
                    ) from error
                last_error = error
            except (OSError, http.client.HTTPException) as error:
                last_error = error
        raise DownloadError(
            f"reading bytes {start}-{end} of {self.url} failed after {self.retries + 1} "
            f"attempts ({last_error}); re-run to try again"
        ) from last_error

    def _total_size(self) -> int:
        _, content_range = self._get(0, 0)
        total = content_range.rsplit("/", 1)[-1]
        if not total.isdigit():
            raise RangeNotSupportedError(
                f"{self.url} does not say its size (Content-Range {content_range!r}); "
                "download the whole archive instead: `covidlab-data download kermany`"
            )
        return int(total)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        if self.position >= self.size or len(buffer) == 0:
            return 0
        end = min(self.position + len(buffer), self.size) - 1
        body, _ = self._get(self.position, end)
        buffer[: len(body)] = body
        self.position += len(body)
        return len(body)


def choose_demo_members(
    names: list[str], per_class: int = DEMO_PER_CLASS, seed: int = DEMO_SEED
) -> list[str]:
    """The Kermany members of the demo pack: ``per_class`` images each of normal, bacterial and
    viral pneumonia, one per patient, drawn with ``seed`` (the same list on every machine).

    ``names`` are the archive's member names; macOS resource files (``__MACOSX/``) and names
    that follow none of Kermany's patterns are ignored.
    """
    import numpy as np

    by_class: dict[str, dict[str, str]] = {}
    for name in sorted(names):
        path = PurePosixPath(name)
        if "__MACOSX" in path.parts or path.parent.name.upper() not in ("NORMAL", "PNEUMONIA"):
            continue
        parsed = parse_kermany_name(path.name)
        if parsed is not None:
            label, patient = parsed
            by_class.setdefault(label, {}).setdefault(patient, name)  # a patient's first image
    rng = np.random.default_rng(seed)
    chosen = []
    for label in sorted(by_class):
        firsts = sorted(by_class[label].values())
        picked = rng.permutation(len(firsts))[:per_class]
        chosen += [firsts[i] for i in sorted(picked)]
    return chosen


def fetch_kermany_subset(
    data_dir: str | Path | None = None,
    *,
    url: str | None = None,
    per_class: int = DEMO_PER_CLASS,
    progress: bool = True,
) -> Path:
    """Read the demo pack's Kermany images out of the remote ``ChestXRay2017.zip``.

    The central directory (the archive's table of contents, at its end) is read first, then
    only the chosen members (:func:`choose_demo_members`), each decompressed and checked
    against its CRC-32 by ``zipfile``; about 60 MB instead of 1.2 GB. They land in
    ``<data_dir>/sources/chest_xray/`` in Kermany's own layout, written into a scratch folder
    and renamed into place when all are there. Raises :class:`RangeNotSupportedError` (the
    message says what to do) when the server cannot serve parts of the file.
    """
    source = SOURCES["kermany"]
    target = _data_root(data_dir) / "sources" / source.folder
    with exclusive_lock(_lock_for(target), f"fetch of {source.folder}"):
        _remove_leftovers(target)
        marker = _read_marker(target)
        if marker.get("subset") == DEMO_MARKER and marker.get("per_class") == per_class:
            return target
        if marker and not marker.get("subset"):
            return target  # the full archive is already unpacked: it holds the demo pack
        _read_remote_members(url or source.url, target, per_class, progress)
    return target


def _read_remote_members(url: str, target: Path, per_class: int, progress: bool) -> None:
    """The work of :func:`fetch_kermany_subset`, under its lock."""
    archive_root = SOURCES["kermany"].archive_root
    remote = RemoteFile(url)
    try:
        # a small buffer: each member costs its own bytes plus at most 16 KiB of read-ahead
        archive = zipfile.ZipFile(io.BufferedReader(remote, buffer_size=1 << 14))
    except zipfile.BadZipFile as error:
        raise ArchiveError(f"{remote.url} is not a zip archive ({error})") from error
    chosen = choose_demo_members(archive.namelist(), per_class)
    if not chosen:
        raise ArchiveError(f"{remote.url} holds no Kermany chest X-rays; is it ChestXRay2017.zip?")
    with folder_written_atomically(target, replace=True) as scratch:
        for name in tqdm(chosen, desc="Kermany demo images", unit="image", disable=not progress):
            relative = _check_entry(Path(remote.url), name, None)
            _check_zip_method(Path(remote.url), archive.getinfo(name))
            parts = (
                relative.parts[relative.parts.index(archive_root) + 1 :]
                if (archive_root in relative.parts)
                else relative.parts[-3:]
            )
            destination = scratch.joinpath(*parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            try:
                destination.write_bytes(archive.read(name))  # zipfile checks the CRC-32
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise ArchiveError(f"{name} in {remote.url} is damaged ({error})") from error
        _write_json(
            scratch / MARKER_NAME,
            {
                "name": "kermany",
                "url": remote.url,
                "subset": DEMO_MARKER,
                "per_class": per_class,
                "members": len(chosen),
            },
        )


def fetch_demo_pack(
    data_dir: str | Path | None = None,
    *,
    kermany_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Everything the ``demo`` profile needs, about 150 MB: Cohen's pinned snapshot (the whole
    repository archive) and a fixed subset of Kermany (:func:`fetch_kermany_subset`).
    Returns ``<data_dir>/sources``, which :func:`locate_sources` then finds."""
    root = _data_root(data_dir)
    fetch("cohen", root, progress=progress)
    fetch_kermany_subset(root, url=kermany_url, progress=progress)
    return root / "sources"
