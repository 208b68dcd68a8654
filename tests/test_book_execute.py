"""``book/execute.py``: which chapters it runs, and in what order."""

from __future__ import annotations

import importlib.util

from book_pages import REPO_ROOT

_SPEC = importlib.util.spec_from_file_location("book_execute", REPO_ROOT / "book" / "execute.py")
execute = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(execute)


def test_timings_name_only_chapters_of_the_book() -> None:
    stems = {path.stem for path in execute.chapters()}
    assert stems, "_toc.yml lists no notebooks"
    stale = set(execute.DEMO_SECONDS) - stems
    assert not stale, f"book/execute.py times chapters that are not in _toc.yml: {sorted(stale)}"


def test_longest_chapters_start_first_and_the_benchmark_reader_last() -> None:
    chapters = execute.chapters()
    order = [path.stem for path in execute.longest_first(chapters)]
    assert sorted(order) == sorted(path.stem for path in chapters)
    seconds = [execute.DEMO_SECONDS.get(stem, float("inf")) for stem in order]
    assert seconds == sorted(seconds, reverse=True), order
    # chapter 11 reads what chapter 10 trains: started last, it finds the results there
    assert order.index("10_external") < 2 and order[-1] == "11_benchmark", order


def test_a_chapter_without_a_timing_starts_first() -> None:
    new = REPO_ROOT / "notebooks" / "12_new_chapter.ipynb"
    order = execute.longest_first([*execute.chapters(), new])
    assert order[0] == new
