"""The classifier head put on a backbone, as plain data.

Kept apart from :mod:`covidlab.models` so that a paper's settings (:mod:`covidlab.papers`)
can be read without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Head:
    """The classifier put on top of a backbone.

    ``pooling``: "avg", "max", "flatten" or None (the backbone's feature map goes straight to the
    dense layers, only valid when it is already flat; ``build_classifier`` rejects it because a
    backbone without its top never is). ``hidden_units``: sizes of the hidden dense layers;
    ``dropout``: rate of a Dropout layer put in front of each hidden layer, or in front of the
    output layer when there is no hidden layer. That order is CoroNet's: Flatten, Dropout,
    Dense(256), Dense(4) (Khan et al. 2020, Table II).
    """

    pooling: str | None = "avg"
    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"
