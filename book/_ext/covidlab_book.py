"""Sphinx extension: keep book builds of different profiles apart.

The chapters read the profile from ``$COVIDLAB_PROFILE``, which jupyter-cache does not see: it
keys a notebook by its code only. Without this extension a ``demo`` build after a ``smoke``
build would reuse the ``smoke`` outputs. So each profile gets its own execution cache
(``_build/.jupyter_cache/<profile>``), and the profile is a Sphinx config value, so changing it
makes Sphinx re-read every page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config


def _profile_from_environment() -> str:
    profile = os.environ.get("COVIDLAB_PROFILE", "").strip() or "smoke"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", profile):
        raise ValueError(
            f"COVIDLAB_PROFILE={profile!r} is not a profile name; use smoke, demo or paper."
        )
    return profile


def _use_profile_cache(app: Sphinx, config: Config) -> None:
    if not config.nb_execution_cache_path:
        cache = Path(app.outdir).parent / ".jupyter_cache" / config.covidlab_profile
        config.nb_execution_cache_path = str(cache.resolve())


def setup(app: Sphinx) -> dict:
    # "env": a change of profile invalidates every page read under the old one.
    app.add_config_value("covidlab_profile", _profile_from_environment(), "env", types=[str])
    app.connect("config-inited", _use_profile_cache)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
