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
