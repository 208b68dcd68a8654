"""Checksummed, resumable downloads of the public sources and safe archive extraction.

``fetch("cohen")`` downloads an archive into ``<data_dir>/downloads/``, checks its sha256,
unpacks it into ``<data_dir>/sources/<folder>/`` and leaves a completion marker there; a
second call finds the marker and does nothing.

Checksums: where the registry knows no sha256 (GitHub builds its archives on the fly, and
Mendeley publishes none) the first download's sha256 is recorded in
``<data_dir>/checksums.json`` and every later download or extraction is checked against it:
*trust on first use*. Delete the entry to accept a new upstream file on purpose.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from covidlab import config
from covidlab.sources import file_sha256, parse_kermany_name

#: Cohen's repository is pinned at 548bb58 (2020-03-24): the snapshot closest to the date the
#: papers collected their data (COVIDX-Net and Apostolopoulos in March 2020), and the one the
#: offline mirror in ``shared/data/sources`` reproduces byte for byte, so an offline run and a
#: downloaded run see the same metadata. Later commits (more images, the later schema) can be
#: fetched with ``fetch("cohen", commit=...)``.
COHEN_COMMIT = "548bb58d8e2dbffb8068904e330836187f538395"
FIGURE1_COMMIT = "95bb569e55f4110d3b734c0f355340e04e16989a"
ACTUALMED_COMMIT = "27240dd8dec9454bc97f9f3c0c432ef434de2517"

MARKER_NAME = ".covidlab-source.json"
LOCK_NAME = "checksums.json"


class DownloadError(RuntimeError):
    """A download failed after all retries."""


class ChecksumError(RuntimeError):
    """A file's sha256 differs from the expected one."""


class ArchiveError(RuntimeError):
    """An archive is damaged, truncated or unsafe to unpack."""


class RangeNotSupportedError(DownloadError):
    """The server ignores HTTP ``Range`` requests, so single files cannot be read remotely."""


@dataclass(frozen=True)
class Source:
    """One public source: where it comes from and how it unpacks.

    ``archive_root`` is the folder inside the archive that becomes ``<data_dir>/sources/<folder>``
    (GitHub's "Download ZIP" wraps a repository in ``<repo>-<commit>/``).
    """

    name: str
    url: str
    folder: str
    archive_root: str
    licence: str
    commit: str | None = None
    sha256: str | None = None
    github_repo: str | None = None

    @property
    def archive_name(self) -> str:
        return f"{self.folder}-{self.commit}.zip" if self.commit else f"{self.folder}.zip"

    def at_commit(self, commit: str) -> Source:
        """The same GitHub source at another commit (its checksum is then learned on first use)."""
        if self.github_repo is None:
            raise ValueError(f"source {self.name!r} is not a GitHub repository; it has no commits")
        return _github(self.name, self.github_repo, commit, self.licence)


def _github(name: str, repo: str, commit: str, licence: str) -> Source:
    folder = repo.split("/")[1]
    return Source(
        name=name,
        url=f"https://github.com/{repo}/archive/{commit}.zip",
        folder=folder,
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
    # Kermany et al. 2018, Mendeley Data v2, doi:10.17632/rscbjbr9sj.2 (ChestXRay2017.zip, 1.2 GB).
    "kermany": Source(
        name="kermany",
        url="https://data.mendeley.com/public-files/datasets/rscbjbr9sj/files/"
        "f12eaf6d-6023-432f-acc9-80c9d7393433/file_downloaded",
        folder="chest_xray",
        archive_root="chest_xray",
        licence="CC BY 4.0",
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


def download(
    url: str,
    dest: str | Path,
    *,
    sha256: str | None = None,
    progress: bool = True,
    retries: int = 4,
    timeout: float = 60.0,
    retry_wait: float = 2.0,
) -> str:
    """Download ``url`` to ``dest`` and return the file's sha256.

    Bytes stream into ``<dest>.part``; a dropped connection is retried with an HTTP ``Range``
    request that resumes where it stopped (from scratch when the server ignores ``Range``).
    The finished file is checked against ``sha256`` (when given) and only then renamed to
    ``dest``, so ``dest`` never exists half-written. A ``.part`` left by a failed run is
    resumed by the next one.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    last_error: Exception | None = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(retry_wait * attempt)
        try:
            _fetch_into(url, part, progress=progress, timeout=timeout)
            break
        except (OSError, http.client.HTTPException) as error:  # URLError is an OSError
            if isinstance(error, urllib.error.HTTPError) and error.code not in (
                408,
                429,
                500,
                502,
                503,
                504,
            ):
                raise DownloadError(f"{url} answered HTTP {error.code} ({error.reason})") from error
            last_error = error
    else:
        raise DownloadError(
            f"downloading {url} into {dest} failed after {retries + 1} attempts "
            f"({last_error}). The partial file {part} is kept: re-run to resume, or delete it "
            "to start over"
        ) from last_error
    digest = file_sha256(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise ChecksumError(
            f"{url} downloaded with sha256 {digest}, expected {sha256}; the file was removed. "
            "Re-run to try again; if upstream changed the file on purpose, delete its entry "
            f"from {LOCK_NAME}"
        )
    os.replace(part, dest)
    return digest


def _fetch_into(url: str, part: Path, *, progress: bool, timeout: float) -> None:
    """One attempt: append the rest of ``url`` to ``part`` (raises on a short body)."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": "covidlab"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        if error.code == 416 and have:  # range starts at the end: the file is complete
            return
        raise
    with response:
        resumed = have and response.status == 206
        if not resumed:
            have = 0  # the server ignored Range (or nothing to resume): start again
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
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


def safe_extract(
    archive: str | Path, target: str | Path, *, archive_root: str | None = None
) -> Path:
    """Unpack a zip or tar ``archive`` into ``target`` without trusting its entry names.

    Entries with absolute paths, ``..`` components, or links pointing outside the target are
    refused before anything is written (the "zip-slip" attack). Everything is unpacked into a
    temporary folder beside ``target`` and renamed into place at the end, so ``target`` is
    never half-written. With ``archive_root``, only that folder of the archive is kept and it
    becomes ``target`` (e.g. GitHub's ``<repo>-<commit>/``).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} not found")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        _unpack(archive, scratch)
        unpacked = scratch / archive_root if archive_root else scratch
        if not unpacked.is_dir():
            found = ", ".join(sorted(p.name for p in scratch.iterdir())) or "nothing"
            raise ArchiveError(
                f"{archive} has no folder {archive_root!r} (it holds: {found}); it is not the "
                "expected archive. Delete it and re-run"
            )
        stale = None
        if target.exists():  # replace a previous, unmarked extraction
            stale = target.with_name(f".{target.name}.stale-{scratch.name}")
            os.replace(target, stale)
        os.replace(unpacked, target)
        if stale is not None:
            shutil.rmtree(stale)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _unpack(archive: Path, scratch: Path) -> None:
    damaged = f"{archive} is truncated or corrupt: delete it and re-run"
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                for info in handle.infolist():
                    link = None
                    if stat.S_ISLNK(info.external_attr >> 16):
                        link = handle.read(info).decode("utf-8", "replace")
                    _check_entry(archive, info.filename, link)
                handle.extractall(scratch)
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as handle:
                for member in handle.getmembers():
                    link = member.linkname if (member.issym() or member.islnk()) else None
                    _check_entry(archive, member.name, link, hard=member.islnk())
                handle.extractall(scratch, filter="data")
        else:
            raise ArchiveError(f"{archive} is neither a zip nor a tar archive. {damaged}")
    except (zipfile.BadZipFile, tarfile.TarError, zlib.error, EOFError) as error:
        raise ArchiveError(f"{damaged} ({error})") from error


def _check_entry(archive: Path, name: str, link: str | None, *, hard: bool = False) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or (path.parts and ":" in path.parts[0]):
        raise ArchiveError(f"{archive}: entry {name!r} has an absolute path; refusing to unpack")
    if ".." in path.parts:
        raise ArchiveError(f"{archive}: entry {name!r} climbs out with '..'; refusing to unpack")
    if link is not None:
        base = PurePosixPath() if hard else path.parent
        resolved = PurePosixPath(os.path.normpath(base / link))
        if PurePosixPath(link).is_absolute() or resolved.parts[:1] == ("..",):
            raise ArchiveError(
                f"{archive}: link {name!r} -> {link!r} points outside the target; "
                "refusing to unpack"
            )


def fetch(
    name: str,
    data_dir: str | Path | None = None,
    *,
    commit: str | None = None,
    progress: bool = True,
) -> Path:
    """Download, verify and unpack one source; return its folder under ``<data_dir>/sources``.

    A no-op when the folder carries a completion marker whose sha256 matches the expected
    one. ``commit`` picks another commit of a GitHub source (default: the pinned one).
    """
    if name not in SOURCES:
        raise KeyError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    source = SOURCES[name] if commit is None else SOURCES[name].at_commit(commit)
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    target = root / "sources" / source.folder
    lock = _read_lock(root)
    expected = source.sha256 or lock.get(source.url)
    marker = _read_marker(target)
    if expected and marker.get("sha256") == expected and marker.get("url") == source.url:
        return target
    archive = root / "downloads" / source.archive_name
    if archive.is_file():
        digest = file_sha256(archive)
        if expected and digest != expected:
            raise ChecksumError(
                f"{archive} has sha256 {digest}, expected {expected} (from the registry or "
                f"{root / LOCK_NAME}): delete it and re-run"
            )
    else:
        digest = download(source.url, archive, sha256=expected, progress=progress)
    if expected is None:
        lock[source.url] = digest
        _write_json(root / LOCK_NAME, lock)
    safe_extract(archive, target, archive_root=source.archive_root)
    _write_json(target / MARKER_NAME, {"name": name, "url": source.url, "sha256": digest})
    return target


def locate_sources(data_dir: str | Path | None = None) -> Path:
    """The folder holding the unpacked sources (``covid-chestxray-dataset/``, ``chest_xray/``, ...).

    ``<data_dir>/sources`` when it holds both Cohen and Kermany, else the shared offline copy
    (``config.shared_data_dir()/sources``).
    """
    root = Path(data_dir) if data_dir is not None else config.data_dir()
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
    """Check every downloaded archive against the lock file and every source's marker.

    Returns ``{source name: status}``; a status starting with ``"ok"`` means all is well.
    """
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    lock = _read_lock(root)
    report = {}
    for name, source in SOURCES.items():
        target = root / "sources" / source.folder
        marker = _read_marker(target)
        expected = source.sha256 or lock.get(marker.get("url", source.url))
        archive = root / "downloads" / source.archive_name
        if not marker:
            present = "present, unverified (unpacked by hand or interrupted)"
            report[name] = present if target.exists() else "not downloaded"
        elif marker.get("sha256") != expected:
            report[name] = f"marker sha256 differs from {LOCK_NAME}: delete {target} and re-run"
        elif archive.is_file() and file_sha256(archive) != expected:
            report[name] = f"archive {archive} changed since download: delete it and re-run"
        else:
            report[name] = f"ok ({marker['url']})"
    return report


def _read_lock(root: Path) -> dict[str, str]:
    path = root / LOCK_NAME
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}): fix or delete it") from error


def _read_marker(target: Path) -> dict[str, str]:
    path = target / MARKER_NAME
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except json.JSONDecodeError:
        return {}  # a damaged marker means "not complete": fetch unpacks again


def _write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# The demo pack: a few hundred real X-rays without the 1.2 GB download
# ----------------------------------------------------------------------------------------------

#: Kermany images per class (normal, bacterial, viral) in the demo pack: with Cohen's pinned
#: snapshot, about 60 MB of Kermany JPEGs, enough for every chapter's demo recipe (at most 50
#: images per class, 100 normal for the shortcut chapter's leak-free pool).
DEMO_PER_CLASS = 120
DEMO_SEED = 0
DEMO_MARKER = "subset of ChestXRay2017.zip: the demo pack (covidlab-data download demo)"
#: Mendeley's storage refuses some non-browser clients; this one is accepted by its CDN.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) covidlab (+course download script)"


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
                if error.code not in (408, 429, 500, 502, 503, 504):
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
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    target = root / "sources" / source.folder
    marker = _read_marker(target)
    if marker.get("subset") == DEMO_MARKER and marker.get("per_class") == per_class:
        return target
    if marker and not marker.get("subset"):
        return target  # the full archive is already unpacked: it holds the demo pack
    remote = RemoteFile(url or source.url)
    try:
        # a small buffer: each member costs its own bytes plus at most 16 KiB of read-ahead
        archive = zipfile.ZipFile(io.BufferedReader(remote, buffer_size=1 << 14))
    except zipfile.BadZipFile as error:
        raise ArchiveError(f"{remote.url} is not a zip archive ({error})") from error
    chosen = choose_demo_members(archive.namelist(), per_class)
    if not chosen:
        raise ArchiveError(f"{remote.url} holds no Kermany chest X-rays; is it ChestXRay2017.zip?")
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        for name in tqdm(chosen, desc="Kermany demo images", unit="image", disable=not progress):
            _check_entry(Path(remote.url), name, None)
            relative = PurePosixPath(name)
            parts = (
                relative.parts[relative.parts.index(source.archive_root) + 1 :]
                if (source.archive_root in relative.parts)
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
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def fetch_demo_pack(
    data_dir: str | Path | None = None,
    *,
    kermany_url: str | None = None,
    progress: bool = True,
) -> Path:
    """Everything the ``demo`` profile needs, about 150 MB: Cohen's pinned snapshot (the whole
    repository archive) and a fixed subset of Kermany (:func:`fetch_kermany_subset`).
    Returns ``<data_dir>/sources``, which :func:`locate_sources` then finds."""
    root = Path(data_dir) if data_dir is not None else config.data_dir()
    fetch("cohen", root, progress=progress)
    fetch_kermany_subset(root, url=kermany_url, progress=progress)
    return root / "sources"
