"""The book's pages as the tests see them: read from _toc.yml and the page sources."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOC_PATH = REPO_ROOT / "_toc.yml"
CONFIG_PATH = REPO_ROOT / "_config.yml"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "_build"


def toc_docnames() -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as docnames (``notebooks/05_soares``)."""
    import yaml

    toc = yaml.safe_load(TOC_PATH.read_text(encoding="utf-8"))
    docnames = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                docnames.append(str(entry["file"]).removesuffix(".md").removesuffix(".ipynb"))
            for key in ("parts", "chapters", "sections"):
                walk(entry.get(key, []))

    walk(toc.get("parts", []) + toc.get("chapters", []))
    return docnames


def source_of(docname: str) -> Path:
    """The source file of a docname: the ``.ipynb`` if there is one, else the ``.md``."""
    notebook = REPO_ROOT / f"{docname}.ipynb"
    return notebook if notebook.exists() else REPO_ROOT / f"{docname}.md"


def page_title(docname: str) -> str:
    """The H1 a page starts with: the first ``# `` line of its source (notebook: first cell)."""
    path = source_of(docname)
    if path.suffix == ".ipynb":
        import nbformat

        text = nbformat.read(path, as_version=4).cells[0].source
    else:
        text = path.read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    raise ValueError(f"{path} has no '# Title' line; every page must start with one")


def repository_url() -> str:
    """The repository address, from ``_config.yml`` (the one place it is written)."""
    import yaml

    config = yaml.safe_load(CONFIG_PATH.read_text(encoding="utf-8"))
    return config["repository"]["url"].rstrip("/")


FIGURE_TAG = "figure"  # a chapter cell tagged so must draw at least one image


def figure_cells_without_image(notebook) -> list[int]:
    """Indices of the executed ``notebook``'s cells tagged ``figure`` that produced no image."""
    missing = []
    for index, cell in enumerate(notebook.cells):
        if FIGURE_TAG not in cell.metadata.get("tags", []):
            continue
        images = [
            output
            for output in cell.get("outputs", [])
            if "image/png" in output.get("data", {}) or "image/svg+xml" in output.get("data", {})
        ]
        if not images:
            missing.append(index)
    return missing


@dataclass(frozen=True)
class BookBuild:
    """Result of ``jupyter-book build``: exit code, log and where the HTML went."""

    returncode: int
    log: str
    html_dir: Path
    seconds: float
    profile: str  # the profile the chapters ran with
    data_dir: Path  # their COVIDLAB_DATA_DIR (recorded results, benchmark file)
