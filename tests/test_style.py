"""The code style CONTRIBUTING.md asks for: ruff's checks and formatting on the package, the
tests, the data scripts and the book's scripts (notebooks are not checked: see CONTRIBUTING)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from book_pages import REPO_ROOT

CHECKED = ("covidlab", "tests", "data_scripts", "book")

pytest.importorskip("ruff", reason="ruff is in requirements.txt; install it to check the style")


@pytest.mark.parametrize(
    "command", [["check"], ["format", "--check"]], ids=["ruff check", "ruff format --check"]
)
def test_code_passes_ruff(command: list[str]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *CHECKED],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, (
        f"ruff {' '.join(command)} {' '.join(CHECKED)} failed; run `ruff check --fix` and "
        f"`ruff format` on the files it names:\n{completed.stdout}{completed.stderr}"
    )
