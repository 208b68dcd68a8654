"""Execute the chapters several at a time into the book's execution cache.

``jupyter-book build .`` executes the chapters one after another. Much of a chapter's time is
single-threaded (TensorFlow tracing a new model's graph, Python, plotting), so on a 2-core
machine one chapter at a time leaves a core idle for long stretches. This script runs
``--jobs`` chapters at once and stores each executed notebook in the jupyter-cache that the
build reads (``_build/.jupyter_cache/<profile>``, see ``book/_ext/covidlab_book.py``); the
build that follows then only renders::

    COVIDLAB_PROFILE=demo python book/execute.py --jobs 2
    COVIDLAB_PROFILE=demo jupyter-book build .

The longest chapters start first (:data:`DEMO_SECONDS`), so that the short ones fill the gaps
at the end. A chapter already cached with its current code is skipped. A chapter that fails is
left out of the cache: the build then executes it again and reports the error as usual.
Chapters that share work are safe to run together: e.g. chapters 10 and 11 share the
benchmark's results file, which one trains while the other waits
(``covidlab.benchmark.load_or_run``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

REPO_ROOT = Path(__file__).resolve().parent.parent
#: Seconds per cell, as ``execute.timeout`` in ``_config.yml``.
CONFIG = yaml.safe_load((REPO_ROOT / "_config.yml").read_text(encoding="utf-8"))


#: Seconds each chapter took to execute on the demo profile, two at a time, longest first, on
#: CI's 2-core machine (fresh-clone build of f303d0a, 2026-11-30), used only to order them.
#: In reading order chapters 10 and 11 came last and started together: one trained the
#: benchmark while the other waited for its results, about four minutes in which only one
#: chapter ran where two could. Now chapter 10 trains it first, beside the others, and chapter
#: 11 (3 s once the results are there) goes last. The build of the chapters took 929 s in this
#: order against 1,000 s in reading order (db0b8b6, whose chapter 04 trained longer). A chapter
#: missing here counts as the longest (it starts first).
DEMO_SECONDS = {
    "10_external": 381,  # trains the benchmark's five methods
    "08_coronet": 298,
    "07_apostolopoulos": 245,
    "03_evaluation": 217,
    "04_covidx_net": 198,
    "06_aboughazala": 181,
    "02_transfer_learning": 172,
    "00_quickstart": 77,
    "05_soares": 44,
    "09_shortcuts": 31,
    "01_data": 11,
    "11_benchmark": 3,  # reads the benchmark results chapter 10 writes
}


def longest_first(paths: list[Path]) -> list[Path]:
    """``paths`` ordered by :data:`DEMO_SECONDS`, longest first (unknown chapters first)."""
    return sorted(paths, key=lambda path: -DEMO_SECONDS.get(path.stem, float("inf")))


def chapters() -> list[Path]:
    """The notebooks of ``_toc.yml``, in reading order."""
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [
        entry["file"]
        for part in toc.get("parts", [])
        for entry in part.get("chapters", [])
        if entry["file"].startswith("notebooks/")
    ]
    return [REPO_ROOT / f"{name}.ipynb" for name in files]


def cache_dir(profile: str) -> Path:
    return REPO_ROOT / "_build" / ".jupyter_cache" / profile


def _execute(path: str, timeout: int) -> tuple[str, dict | None, float, str | None]:
    """Run one notebook in its folder (a worker process); return it executed, or the error."""
    notebook = nbformat.read(path, as_version=4)
    result = single_nb_execution(
        notebook,
        cwd=str(Path(path).parent),
        timeout=timeout,
        allow_errors=False,
        meta_override=True,
    )
    if result.err is not None:
        return path, None, result.time, result.exc_string
    return path, notebook, result.time, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="chapters at once")
    args = parser.parse_args(argv)
    profile = os.environ.get("COVIDLAB_PROFILE", "").strip() or "smoke"
    timeout = int(CONFIG.get("execute", {}).get("timeout", 1800))
    cache = get_cache(str(cache_dir(profile)))
    todo = []
    for path in chapters():
        try:
            cache.match_cache_notebook(nbformat.read(path, as_version=4))
        except KeyError:
            todo.append(path)
    print(f"[{profile}] {len(todo)} chapter(s) to execute, {args.jobs} at a time", flush=True)
    started, failed = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(_execute, str(path), timeout) for path in longest_first(todo)]
        for future in as_completed(futures):
            path, notebook, seconds, error = future.result()
            name = Path(path).name
            if error is not None:
                failed.append(name)
                print(f"  {name}: FAILED after {seconds:.0f} s (the build will re-run it)")
                continue
            record = cache.add_nb_to_project(path)
            cache.cache_notebook_bundle(
                CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds}),
                check_validity=False,
                overwrite=True,
            )
            print(f"  {name}: {seconds:.0f} s", flush=True)
    print(
        f"[{profile}] executed in {time.perf_counter() - started:.0f} s; failed: {failed or 'none'}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
