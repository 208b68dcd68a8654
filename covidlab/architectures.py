"""Architectures as plain data: classifier heads and backbone input sizes.

Kept apart from :mod:`covidlab.models` (which builds them with Keras) so that a paper's
settings (:mod:`covidlab.papers`) and run profiles (:mod:`covidlab.profiles`) can be read
without importing TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Backbone -> (smallest height/width Keras accepts without the top layers, the size its
#: ImageNet weights were trained at).
INPUT_SIZES: dict[str, tuple[int, int]] = {
    "VGG16": (32, 224),
    "VGG19": (32, 224),
    "ResNet50": (32, 224),
    "ResNet50V2": (32, 224),
    "DenseNet121": (32, 224),
    "DenseNet201": (32, 224),
    "InceptionV3": (75, 299),
    "InceptionResNetV2": (75, 299),
    "Xception": (71, 299),
    "MobileNetV2": (32, 224),
}


def smallest_input_size(backbone: str) -> int:
    """The smallest image height/width ``backbone`` accepts (32, 71 or 75 pixels)."""
    if backbone not in INPUT_SIZES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {sorted(INPUT_SIZES)}")
    return INPUT_SIZES[backbone][0]


@dataclass(frozen=True)
class Head:
    """The classifier put on top of a backbone.

    ``pooling``: "avg", "max", "flatten" or None (the backbone's feature map goes straight to the
    dense layers, only valid when it is already flat; ``build_classifier`` rejects it because a
    backbone without its top never is). ``pool_size``: an ``AveragePooling2D(pool_size)`` in
    front of the pooling (shrunk to the feature map when that is smaller), as in Soares' head:
    AveragePooling2D(2), Flatten, Dense(20), Dropout(0.2) (the authors' public notebook).
    ``hidden_units``: sizes of the hidden dense layers; ``dropout``: rate of a Dropout layer put
    in front of each hidden layer, or in front of the output layer when there is no hidden
    layer. That order is CoroNet's: Flatten, Dropout, Dense(256), Dense(4) (Khan et al. 2020,
    Table II). ``dropout_after`` puts it behind each hidden layer instead (Soares' order).
    """

    pooling: str | None = "avg"
    hidden_units: tuple[int, ...] = ()
    dropout: float = 0.0
    activation: str = "relu"
    pool_size: int | None = None
    dropout_after: bool = False
