"""Each paper's settings and reported results, as data.

One module per paper holds a :class:`PaperSpec`; ``get(key)`` returns it. Chapters print the
spec beside the numbers of their own run, so what a paper claimed and what we measured sit in
one table. The package is plain data: it imports nothing of covidlab but itself and
:mod:`covidlab.architectures`, and no TensorFlow. The code that uses these facts lives in the
shared modules and in :mod:`covidlab.chapters`.

>>> from covidlab import papers
>>> papers.get("coronet").learning_rate
0.0001
"""

from __future__ import annotations

from importlib import import_module

import pandas as pd

from covidlab.papers.spec import CHECKLIST_ITEMS, Headline, ModelSpec, PaperSpec, Part, Reported

ALL = ("covidx_net", "soares", "aboughazala", "apostolopoulos", "coronet")

__all__ = [
    "ALL",
    "CHECKLIST_ITEMS",
    "HEADLINES",
    "REPORTING_CHECKLIST",
    "Headline",
    "ModelSpec",
    "PaperSpec",
    "Part",
    "Reported",
    "get",
]


def get(key: str) -> PaperSpec:
    """Return the :class:`PaperSpec` of one paper, e.g. ``get("coronet")``."""
    if key not in ALL:
        raise KeyError(f"unknown paper {key!r}; choose one of {', '.join(ALL)}")
    return import_module(f"covidlab.papers.{key}").SPEC


#: Each paper's headline result (``PaperSpec.headline``) as one table, one row per paper.
HEADLINES = pd.DataFrame(
    [
        {
            "paper": key,
            "model": get(key).headline.model,
            "result": get(key).headline.result,
            "value": get(key).headline.value,
            "correct": get(key).headline.correct,
            "n_test": get(key).headline.n_test,
            "source": get(key).headline.source,
        }
        for key in ALL
    ]
)

#: "yes", "partial" or "no" per checklist item (rows) and paper (columns), from
#: ``PaperSpec.checklist``; the reasons are each spec's ``checklist_note``.
REPORTING_CHECKLIST = pd.DataFrame(
    {key: [get(key).checklist[item] for item in CHECKLIST_ITEMS] for key in ALL},
    index=list(CHECKLIST_ITEMS),
)
