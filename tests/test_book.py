"""The Jupyter Book builds with the smoke profile, without a single warning."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from book_pages import FIGURE_TAG, BookBuild

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

# Every entry of references.bib, by a surname the rendered bibliography must show.
BIBLIOGRAPHY_SURNAMES = (
    "Hemdan",
    "Soares",
    "Aboughazala",
    "Apostolopoulos",
    "Khan",
    "Cohen",
    "Kermany",
    "Roberts",
    "DeGrave",
    "Wilson",
    "Wang",  # COVID-Net (2020) and ChestX-ray8 (2017)
    "Ozturk",
    "Chung",  # the Figure1 and Actualmed collections
    "Rosebrock",
    "Selvaraju",
)


def test_book_builds_without_warnings(built_book: BookBuild) -> None:
    warnings = [line for line in built_book.log.splitlines() if "WARNING" in line]
    assert built_book.returncode == 0, (
        f"jupyter-book build -W failed (exit {built_book.returncode}).\n"
        + ("Warnings:\n" + "\n".join(warnings) if warnings else "")
        + "\nLast lines of the log:\n"
        + built_book.log[-4000:]
    )
    print(f"book build: {built_book.seconds:.1f} s")


def test_every_toc_page_has_html(book_html: Path, toc_page: str) -> None:
    page = book_html / f"{toc_page}.html"
    assert page.is_file(), f"{toc_page} is in _toc.yml but {page} was not built"


def test_every_figure_cell_shows_an_image(book_html: Path, toc_notebook: Path) -> None:
    """Each chapter cell tagged ``figure`` has an image on the built page (any profile)."""
    import re

    page = book_html / "notebooks" / f"{toc_notebook.stem}.html"
    html = page.read_text(encoding="utf-8")
    # jupyter-book wraps each code cell in <div class="cell tag_... docutils container">
    cells = re.split(r'<div class="cell(?=[ "])', html)[1:]
    tagged = [cell for cell in cells if f"tag_{FIGURE_TAG}" in cell.split(">", 1)[0]]
    expected = sum(
        FIGURE_TAG in cell.metadata.get("tags", [])
        for cell in nbformat.read(toc_notebook, as_version=4).cells
    )
    assert len(tagged) == expected, f"{page.name}: {len(tagged)} figure cells, expected {expected}"
    blank = [i for i, cell in enumerate(tagged) if "<img" not in cell]
    assert not blank, f"{page.name}: figure cells number {blank} (0-based) show no image"


def test_bibliography_lists_every_reference(book_html: Path) -> None:
    text = (book_html / "book" / "references.html").read_text(encoding="utf-8")
    missing = [name for name in BIBLIOGRAPHY_SURNAMES if name not in text]
    assert not missing, f"the References page does not show: {missing}"


def test_demo_models_learned(built_book: BookBuild, book_html: Path) -> None:
    """On real images (demo), every chapter's headline model reaches its target, no model
    answers one class for more than 90 % of its test images, and none leaves a class that its
    test images hold without a single answer (covidlab.results.record_run)."""
    from covidlab import metrics, results

    if built_book.profile != "demo":
        pytest.skip(f"the book was built on {built_book.profile}, whose numbers mean nothing")
    runs = results.recorded_runs("demo", built_book.data_dir / "recorded")
    assert not runs.empty, "no chapter recorded a run (covidlab.results.record_run)"
    collapsed = runs[runs["largest_class_share"] > results.MAX_ONE_CLASS_SHARE]
    assert collapsed.empty, "models answering one class:\n" + collapsed.to_string()
    never = runs.apply(
        lambda run: metrics.classes_never_predicted(run["confusion"], run["classes"]), axis=1
    )
    assert not never.map(bool).any(), (
        "models that never answer a class:\n"
        + runs.assign(never_answered=never)[never.map(bool)].drop(columns="confusion").to_string()
    )
    headlines = runs[runs["headline"]]
    targets = headlines["classes"].map(len).map(results.DEMO_TARGETS)
    short = headlines[headlines["balanced_accuracy"] < targets]
    assert short.empty, "headline models below their target:\n" + short.to_string()
    paper_chapters = {f"0{n}" for n in range(4, 9)}
    missing = paper_chapters - {chapter[:2] for chapter in headlines["chapter"]}
    assert not missing, f"chapters {sorted(missing)} recorded no headline model"


def test_demo_benchmark_ranks_models_that_learned(built_book: BookBuild, book_html: Path) -> None:
    """Chapter 11's benchmark on demo: every method >= 0.55 balanced accuracy, the best >= 0.70."""
    import json

    if built_book.profile != "demo":
        pytest.skip(f"the book was built on {built_book.profile}, whose numbers mean nothing")
    results = json.loads((built_book.data_dir / "benchmark" / "demo.json").read_text())
    scores = {r["method"]: r["balanced_accuracy"] for r in results["results"]}
    assert len(scores) == 5, f"the demo benchmark should train all five methods: {scores}"
    assert min(scores.values()) >= 0.55, scores
    assert max(scores.values()) >= 0.70, scores
