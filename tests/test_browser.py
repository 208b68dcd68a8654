"""Every page of the built book, opened in headless Chromium as a reader would see it.

Needs Debian's Chromium at /usr/bin/chromium (``apt-get install chromium``; .ci/run installs it)
and the ``playwright`` Python package, which drives that browser (no browser download).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from book_pages import page_title, repository_url, source_of

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
COLAB_URL = "https://colab.research.google.com"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.xdist_group("book"),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} not found: install Debian's Chromium (apt-get install chromium)",
    ),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib name)
        pass


@pytest.fixture(scope="module")
def book_url(book_html: Path) -> Iterator[str]:
    """Serve the built HTML on a free loopback port for the duration of the module."""
    handler = functools.partial(QuietHandler, directory=str(book_html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser, book_url: str) -> Iterator[object]:
    """A fresh tab that may only reach the local server: everything else is refused."""
    context = browser.new_context()
    context.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(book_url) else route.abort()
        ),
    )
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


# Loads every <img> (also lazy ones) and reports which could not be decoded.
BROKEN_IMAGES_JS = """
async () => {
  const images = Array.from(document.images);
  const results = await Promise.all(images.map(async (img) => {
    img.loading = "eager";
    try { await img.decode(); } catch (error) { /* reported through naturalWidth below */ }
    return {src: img.currentSrc || img.src, width: img.naturalWidth};
  }));
  return results.filter((image) => image.width === 0).map((image) => image.src);
}
"""


def test_page_renders(page, book_url: str, toc_page: str) -> None:
    response = page.goto(f"{book_url}/{toc_page}.html", wait_until="load")
    assert response is not None and response.status == 200, f"{toc_page}: HTTP {response}"

    heading = page.locator("article h1").first.inner_text().strip().rstrip("#¶").strip()
    assert heading == page_title(toc_page), f"{toc_page}: the page's <h1> is {heading!r}"

    broken = page.evaluate(BROKEN_IMAGES_JS)
    assert not broken, f"{toc_page}: images that did not load: {broken}"

    colab_links = page.locator(f'a[href^="{COLAB_URL}"]')
    if source_of(toc_page).suffix == ".ipynb":
        expected = f"{COLAB_URL}/github/{repository_url().removeprefix('https://github.com/')}"
        expected += f"/blob/main/{toc_page}.ipynb"
        assert colab_links.count() == 1, f"{toc_page}: expected one Colab launch link"
        assert colab_links.first.get_attribute("href") == expected
    else:
        assert colab_links.count() == 0, f"{toc_page} is not a notebook but has a Colab link"


# The widest element's overflow past the window, and text in outputs a reader should never see.
LAYOUT_JS = """
() => {
  const brokenWords = () => {
    const broken = [];
    const cells = document.querySelectorAll(
      "div.cell_output table.dataframe th, div.cell_output table.dataframe td");
    for (const cell of cells) {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      while (walker.nextNode()) {
        const text = walker.currentNode;
        for (const match of text.data.matchAll(/\\S*-\\S*/g)) {
          const range = document.createRange();
          range.setStart(text, match.index);
          range.setEnd(text, match.index + match[0].length);
          const lines = new Set(Array.from(range.getClientRects(), (rect) => Math.round(rect.top)));
          if (lines.size > 1) broken.push(match[0]);
        }
      }
    }
    return broken;
  };
  const outputs = Array.from(document.querySelectorAll("div.cell_output"))
    .map((element) => element.innerText).join("\\n");
  return {
    overflow: document.documentElement.scrollWidth - document.documentElement.clientWidth,
    // folders made by tempfile, pytest or a synthetic cache: not the data folder, wherever it is
    temporary_paths: (outputs.match(/\\/tmp\\/(tmp|pytest-of-|covidlab-)\\S*/g) || []).slice(0, 3),
    nan: (outputs.match(/(^|[\\s(|,])NaN($|[\\s)|,])/gm) || []).length,
    // words with a hyphen in an output table ("COVID-19", "0.785-1.000") that run over two lines
    broken_words: brokenWords().slice(0, 3),
  };
}
"""


@pytest.mark.parametrize("width", [1280, 800])
def test_page_reads_well_at_width(page, book_url: str, toc_page: str, width: int) -> None:
    """No horizontal scrolling of the page (wide tables scroll inside their cell, the banner
    wraps), no word of a table broken at its hyphen, no temporary paths and no NaN in the
    outputs."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(f"{book_url}/{toc_page}.html", wait_until="load")
    layout = page.evaluate(LAYOUT_JS)
    assert layout["overflow"] <= 1, f"{toc_page} at {width} px scrolls sideways by {layout}"
    assert not layout["temporary_paths"], f"{toc_page}: outputs show {layout['temporary_paths']}"
    assert layout["nan"] == 0, f"{toc_page}: outputs show NaN {layout['nan']} times"
    assert not layout["broken_words"], (
        f"{toc_page} at {width} px breaks these table words at a hyphen: {layout['broken_words']}"
    )
