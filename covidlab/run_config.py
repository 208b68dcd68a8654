"""The settings of one run, as a plain dataclass.

Kept apart from :mod:`covidlab.profiles` (which makes them from a paper and a profile) so that
:mod:`covidlab.train` takes a run's settings without depending on how they were chosen.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunConfig:
    """Everything a chapter needs to know to train and evaluate one paper's models.

    Built by :func:`resolve`; change a field with ``resolve(..., epochs=2)`` or
    ``dataclasses.replace(config, epochs=2)``.
    """

    profile: str
    paper_key: str
    classes: tuple[str, ...]
    image_size: tuple[int, int]  # (height, width)
    resize: str  # "stretch" or "pad"
    epochs: int
    batch_size: int
    optimizer: str
    learning_rate: float
    weights: str | None  # "imagenet" or None (random initialisation)
    n_splits: int | None  # k-fold protocol
    test_fraction: float | None  # hold-out protocol
    max_per_class: int | None  # None: the paper's full recipe
    data: str  # "synthetic", "shared sample" or "full sources"
    seed: int
    run_eagerly: bool
    models: tuple[str, ...]  # which of the paper's models this run trains
    validation_fraction: float | None = None
    notes: str = ""
    momentum: float = 0.0  # SGD momentum (the papers' SGD runs use none)
