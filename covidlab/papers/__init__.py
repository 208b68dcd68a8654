"""Each paper's settings and reported results, as data.

One module per paper holds a :class:`PaperSpec`; ``get(key)`` returns it. Chapters print the
spec beside the numbers of their own run, so what a paper claimed and what we measured sit in
one table.

>>> from covidlab import papers
>>> papers.get("coronet").learning_rate
0.0001
"""

from __future__ import annotations

from importlib import import_module

from covidlab.papers.spec import ModelSpec, PaperSpec, Reported

ALL = ("covidx_net", "soares", "aboughazala", "apostolopoulos", "coronet")

__all__ = ["ALL", "ModelSpec", "PaperSpec", "Reported", "get"]


def get(key: str) -> PaperSpec:
    """Return the :class:`PaperSpec` of one paper, e.g. ``get("coronet")``."""
    if key not in ALL:
        raise KeyError(f"unknown paper {key!r}; choose one of {', '.join(ALL)}")
    return import_module(f"covidlab.papers.{key}").SPEC
