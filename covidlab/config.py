"""Where the course keeps its data, and whether we run on Colab.

Every path the package uses is derived here, so a student changes one environment variable
(``COVIDLAB_DATA_DIR``) and every chapter follows.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def in_colab() -> bool:
    """True when running inside Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def data_dir() -> Path:
    """The folder that holds downloaded sources and built recipes.

    ``$COVIDLAB_DATA_DIR`` if set, else ``/content/covidlab-data`` on Colab, else
    ``~/covidlab-data``. The folder is not created here.
    """
    if os.environ.get("COVIDLAB_DATA_DIR"):
        return Path(os.environ["COVIDLAB_DATA_DIR"]).expanduser()
    if in_colab():
        return Path("/content/covidlab-data")
    return Path.home() / "covidlab-data"


def decoded_cache_dir() -> Path:
    """Where decoded, resized images are kept between runs (:func:`covidlab.images.decoded_images`):
    ``<data_dir>/cache/decoded``. Safe to delete at any time."""
    return data_dir() / "cache" / "decoded"


def shared_data_dir() -> Path | None:
    """The small real-data folder shipped beside the project, or None when absent.

    ``$COVIDLAB_SHARED_DATA`` if set, else ``shared/data`` next to the repository (the layout
    used by the course's developers and CI), else the first ``shared/data`` found above the
    current directory.
    """
    candidates: list[Path] = []
    if os.environ.get("COVIDLAB_SHARED_DATA"):
        candidates.append(Path(os.environ["COVIDLAB_SHARED_DATA"]).expanduser())
    candidates.append(REPO_ROOT.parent / "shared" / "data")
    candidates += [parent / "shared" / "data" for parent in Path.cwd().resolve().parents]
    for candidate in candidates:
        if (candidate / "README.md").is_file() or (candidate / "sample").is_dir():
            return candidate
    return None


def display_path(path: str | os.PathLike) -> str:
    """``path`` as a page shows it: the course's shared folder relative to the repository
    (``../shared/data/sources``, the same on every machine that has it), a folder in the home
    folder from ``~`` (``~/covidlab-data/sources``), any other path as it is."""
    path = Path(os.path.abspath(path))
    shared = REPO_ROOT.parent / "shared"
    if path.is_relative_to(shared):
        return os.path.relpath(path, REPO_ROOT)
    if path.is_relative_to(Path.home()):
        return str(Path("~") / path.relative_to(Path.home()))
    return str(path)
