"""The chapter notebooks: their shared skeleton, and a smoke run of each with papermill."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
from book_pages import (
    FIGURE_TAG,
    NOTEBOOKS_DIR,
    REPO_ROOT,
    figure_cells_without_image,
    repository_url,
    toc_docnames,
)

ARTIFACTS_DIR = REPO_ROOT / "tests" / "_artifacts"
CELL_TIMEOUT_S = 600


def cells_tagged(notebook: nbformat.NotebookNode, tag: str) -> list[int]:
    return [i for i, cell in enumerate(notebook.cells) if tag in cell.metadata.get("tags", [])]


# --- Structure (fast, nothing is executed) ----------------------------------------------------


def test_toc_notebook_follows_the_chapter_skeleton(toc_notebook: Path) -> None:
    assert toc_notebook.exists(), f"_toc.yml lists {toc_notebook.name}, which does not exist"
    notebook = nbformat.read(toc_notebook, as_version=4)
    nbformat.validate(notebook)
    name = toc_notebook.name

    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{name}: the first cell must be markdown starting with '# Title'"
    )

    kernelspec = notebook.metadata.get("kernelspec", {})
    assert kernelspec.get("name") == "python3", (
        f"{name}: kernelspec name is {kernelspec.get('name')!r}; set it to 'python3'"
    )

    parameters = cells_tagged(notebook, "parameters")
    assert len(parameters) == 1, (
        f"{name}: needs exactly one cell tagged 'parameters', found {len(parameters)}"
    )
    assert "PROFILE = None" in notebook.cells[parameters[0]].source, (
        f"{name}: the parameters cell must define PROFILE = None"
    )

    colab = cells_tagged(notebook, "colab-setup")
    assert colab and colab[0] < parameters[0], (
        f"{name}: needs a cell tagged 'colab-setup' before the parameters cell"
    )
    assert f"git+{repository_url()}" in notebook.cells[colab[0]].source, (
        f"{name}: the colab-setup cell must install from {repository_url()} (see _config.yml)"
    )

    with_outputs = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not with_outputs, (
        f"{name}: cells {with_outputs} have outputs or execution counts; clear them before "
        "committing (Jupyter: Edit > Clear All Outputs)"
    )


def test_figure_cells_are_tagged(toc_notebook: Path) -> None:
    """A cell that calls a plotting function is tagged ``figure``, so the tests check it draws."""
    import re

    plotting = re.compile(r"\b(viz\.(plot_\w+|image_grid)|\w+\.plot_\w+|explain\.plot_grad_cam)\(")
    notebook = nbformat.read(toc_notebook, as_version=4)
    untagged = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code"
        and plotting.search(cell.source)
        and FIGURE_TAG not in cell.metadata.get("tags", [])
    ]
    assert not untagged, f"{toc_notebook.name}: tag cells {untagged} {FIGURE_TAG!r}"


def test_chapters_show_images_only_through_the_licence_check(toc_notebook: Path) -> None:
    """Every X-ray a chapter shows goes through covidlab.viz (image_grid, load_showable), which
    refuses images whose licence does not let the book show them (covidlab.sources.may_show)."""
    notebook = nbformat.read(toc_notebook, as_version=4)
    direct = [
        i
        for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and ("load_image(" in cell.source or "imshow(" in cell.source)
    ]
    assert not direct, (
        f"{toc_notebook.name}: cells {direct} load or draw images directly; use "
        "viz.load_showable(viz.showable(rows), ...) or viz.image_grid"
    )


def test_every_notebook_is_in_the_toc() -> None:
    listed = {name for name in toc_docnames() if name.startswith("notebooks/")}
    on_disk = {f"notebooks/{path.stem}" for path in NOTEBOOKS_DIR.glob("*.ipynb")}
    missing = sorted(on_disk - listed)
    assert not missing, f"add these notebooks to _toc.yml (or delete them): {missing}"


# --- Smoke run (slow) -------------------------------------------------------------------------

SOLUTIONS_DROPDOWN = ":::{dropdown} Solutions"
PYTHON_BLOCK = re.compile(r"^([ \t]*)```python\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def solution_blocks(notebook: nbformat.NotebookNode) -> list[str]:
    """The ```python blocks of the chapter's Solutions dropdown, dedented."""
    blocks = []
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and SOLUTIONS_DROPDOWN in cell.source:
            solutions = cell.source.split(SOLUTIONS_DROPDOWN, 1)[1]
            blocks += [textwrap.dedent(code) for _, code in PYTHON_BLOCK.findall(solutions)]
    return blocks


def with_solutions_appended(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` that runs every solution's code after the chapter, so that a
    solution calling a renamed function or a module it never imports fails the smoke run."""
    copy = nbformat.from_dict(notebook)
    for number, code in enumerate(solution_blocks(notebook), start=1):
        copy.cells.append(
            nbformat.v4.new_code_cell(
                f"# Solutions dropdown, code block {number}\n{code}",
                metadata={"tags": ["solution"]},
            )
        )
    return copy


def test_solution_blocks_are_found() -> None:
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell(
            "1. not code\n\n```python\nignored()\n```\n\n"
            f"{SOLUTIONS_DROPDOWN}\n1. Do this:\n\n   ```python\n   x = 1\n   if x:\n"
            "       print(x)\n   ```\n\n   text\n:::"
        )
    ]
    assert solution_blocks(notebook) == ["x = 1\nif x:\n    print(x)\n"]


@pytest.mark.notebook
def test_notebook_runs_with_smoke_profile(
    toc_notebook: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run the whole chapter with papermill, as CI and a reader with PROFILE="smoke" would,
    followed by the code of its solutions (:func:`with_solutions_appended`)."""
    import papermill

    monkeypatch.setenv("COVIDLAB_PROFILE", "smoke")
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
    executed = ARTIFACTS_DIR / toc_notebook.name

    source = ARTIFACTS_DIR / f"{toc_notebook.stem}.with-solutions.ipynb"
    nbformat.write(with_solutions_appended(nbformat.read(toc_notebook, as_version=4)), source)
    started = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters={"PROFILE": "smoke"},
            kernel_name="python3",
            cwd=str(NOTEBOOKS_DIR),
            execution_timeout=CELL_TIMEOUT_S,
            progress_bar=False,
        )
    except Exception as error:  # papermill raises its own errors and nbclient's timeouts
        pytest.fail(
            f"{toc_notebook.name} failed under the smoke profile: {error}\n"
            f"The executed copy is kept at {executed}",
            pytrace=False,
        )
    seconds = time.perf_counter() - started
    print(f"{toc_notebook.name}: {seconds:.1f} s with papermill")
    missing = figure_cells_without_image(nbformat.read(executed, as_version=4))
    assert not missing, (
        f"{toc_notebook.name}: cells {missing} are tagged {FIGURE_TAG!r} but drew no image under "
        f"the smoke profile (a figure assigned to a name is not shown: end the cell with it). "
        f"The executed copy is kept at {executed}"
    )
    executed.unlink()
    source.unlink()
