"""Shared fixtures: where the real data is, and a tiny synthetic dataset."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from book_pages import BUILD_DIR, REPO_ROOT, BookBuild, toc_docnames  # noqa: E402

from covidlab.config import shared_data_dir  # noqa: E402

# What tests decode and cache (covidlab.images.decoded_images, synthetic sets) goes under the
# ignored build folder, shared by the xdist workers of a run, never into a developer's own data
# folder (~/covidlab-data), where every temporary test image would leave a cache file behind.
# Tests that need another folder set COVIDLAB_DATA_DIR themselves.
os.environ.setdefault("COVIDLAB_DATA_DIR", str(REPO_ROOT / "_build" / "test-data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real-data folder (``../shared/data`` or ``$COVIDLAB_SHARED_DATA``); skips when absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip(
            "real data not found: set COVIDLAB_SHARED_DATA or place shared/data beside the repo"
        )
    return path


# --- The book: one shared build, and per-page parametrisation --------------------------------

BOOK_BUILD_TIMEOUT_S = 3600  # the demo build trains every chapter's models on a CPU


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrise ``toc_notebook`` over the notebooks and ``toc_page`` over all pages."""
    if "toc_notebook" in metafunc.fixturenames:
        notebooks = [name for name in toc_docnames() if name.startswith("notebooks/")]
        paths = [REPO_ROOT / f"{name}.ipynb" for name in notebooks]
        metafunc.parametrize("toc_notebook", paths, ids=[path.stem for path in paths])
    if "toc_page" in metafunc.fixturenames:
        metafunc.parametrize("toc_page", toc_docnames())


def book_profile() -> str:
    """The profile the tests build the book with: ``$COVIDLAB_BOOK_PROFILE``, else ``demo``
    (the published book, real images) when the shared data is found, else ``smoke``."""
    return os.environ.get("COVIDLAB_BOOK_PROFILE") or ("demo" if shared_data_dir() else "smoke")


@pytest.fixture(scope="session")
def built_book(request: pytest.FixtureRequest) -> BookBuild:
    """Build the whole book once per session (:func:`book_profile`), warnings as errors.

    Notebook outputs are cached per profile under ``_build/.jupyter_cache`` (jupyter-cache), so a
    second run only re-executes notebooks whose code changed; ``--all`` re-reads every page so
    that warnings from unchanged pages are reported again. The chapters' caches and recorded
    results go to ``_build/book-data/<profile>``, kept beside the execution cache so that a
    chapter served from the cache still has its records (``jupyter-book clean --all .``
    removes both).
    """
    # One build per test run, even when several xdist workers ask for it: the first builds
    # under a file lock and leaves its result; the others wait, then read it.
    run_id = getattr(request.config, "workerinput", {}).get("testrunuid", f"pid{os.getpid()}")
    BUILD_DIR.mkdir(exist_ok=True)
    with open(BUILD_DIR / ".book-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        result = BUILD_DIR / ".book-build.json"
        if result.is_file():
            saved = json.loads(result.read_text(encoding="utf-8"))
            if saved.pop("run_id") == run_id:
                return BookBuild(
                    **{
                        **saved,
                        "html_dir": Path(saved["html_dir"]),
                        "data_dir": Path(saved["data_dir"]),
                    }
                )
        with open(BUILD_DIR / ".book-build-requests.log", "a", encoding="utf-8") as log:
            log.write(f"{run_id} built for {os.environ.get('PYTEST_CURRENT_TEST')}\n")
        build = _build_book()
        record = {**dataclasses.asdict(build), "run_id": run_id}
        record.update(html_dir=str(build.html_dir), data_dir=str(build.data_dir))
        result.write_text(json.dumps(record), encoding="utf-8")
        return build


def _build_book() -> BookBuild:
    env = dict(os.environ)
    profile = book_profile()
    data_dir = BUILD_DIR / "book-data" / profile
    data_dir.mkdir(parents=True, exist_ok=True)
    env["COVIDLAB_PROFILE"] = profile
    env["COVIDLAB_DATA_DIR"] = str(data_dir)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    # As the README builds it: the chapters executed two at a time into the cache, then the
    # build, which renders them (and re-runs, reporting its error, any chapter that failed).
    commands = [
        [sys.executable, str(REPO_ROOT / "book" / "execute.py")],
        [str(jupyter_book), "build", str(REPO_ROOT), "--all", "-W", "-n", "--keep-going"],
    ]
    started = time.perf_counter()
    log = ""
    for command in commands:
        completed = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=BOOK_BUILD_TIMEOUT_S,
            check=False,
        )
        # The executor's own report is on stdout; its stderr holds the kernels' chatter.
        log += completed.stdout + (completed.stderr if command[0] == str(jupyter_book) else "")
    seconds = time.perf_counter() - started
    return BookBuild(
        returncode=completed.returncode,
        log=log,
        html_dir=BUILD_DIR / "html",
        seconds=seconds,
        profile=profile,
        data_dir=data_dir,
    )


@pytest.fixture(scope="session")
def book_html(built_book: BookBuild) -> Path:
    """The built HTML folder; fails (rather than testing stale pages) when the build failed."""
    if built_book.returncode != 0:
        pytest.fail(
            "the book build failed, so its pages cannot be checked; "
            "see tests/test_book.py::test_book_builds_without_warnings",
            pytrace=False,
        )
    return built_book.html_dir
