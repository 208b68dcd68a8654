"""Backbone registry and the transfer-learning classifier builder.

Every paper in the course puts a small classifier ("head") on top of an ImageNet backbone from
``keras.applications``. One function, :func:`build_classifier`, builds all of them:

    raw pixels in [0, 255] -> the backbone's ``preprocess_input`` -> backbone -> head -> softmax

so data pipelines never have to know which backbone they feed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import keras
import pandas as pd
from keras import applications

from covidlab.architectures import INPUT_SIZES, Head, smallest_input_size

if TYPE_CHECKING:
    from covidlab.papers.spec import PaperSpec


@dataclass(frozen=True)
class Backbone:
    """A ``keras.applications`` network and what it expects as input.

    ``min_input_size`` is the smallest height/width Keras accepts without the top layers;
    ``default_input_size`` the size the ImageNet weights were trained at.
    """

    name: str
    application: Callable[..., keras.Model]
    preprocess_input: Callable
    min_input_size: int
    default_input_size: int


#: Backbone name -> its ``keras.applications`` constructor and ``preprocess_input``; the input
#: sizes come from :data:`covidlab.architectures.INPUT_SIZES`.
_APPLICATIONS = {
    "VGG16": (applications.VGG16, applications.vgg16.preprocess_input),
    "VGG19": (applications.VGG19, applications.vgg19.preprocess_input),
    "ResNet50": (applications.ResNet50, applications.resnet50.preprocess_input),
    "ResNet50V2": (applications.ResNet50V2, applications.resnet_v2.preprocess_input),
    "DenseNet121": (applications.DenseNet121, applications.densenet.preprocess_input),
    "DenseNet201": (applications.DenseNet201, applications.densenet.preprocess_input),
    "InceptionV3": (applications.InceptionV3, applications.inception_v3.preprocess_input),
    "InceptionResNetV2": (
        applications.InceptionResNetV2,
        applications.inception_resnet_v2.preprocess_input,
    ),
    "Xception": (applications.Xception, applications.xception.preprocess_input),
    "MobileNetV2": (applications.MobileNetV2, applications.mobilenet_v2.preprocess_input),
}

BACKBONES: dict[str, Backbone] = {
    name: Backbone(name, application, preprocess, *INPUT_SIZES[name])
    for name, (application, preprocess) in _APPLICATIONS.items()
}


class WeightsUnavailableError(RuntimeError):
    """ImageNet weights were asked for but could not be downloaded (e.g. no network)."""


def get_backbone(name: str) -> Backbone:
    """The registry entry for ``name``; raises ValueError listing the valid names."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {sorted(BACKBONES)}")
    return BACKBONES[name]


@keras.saving.register_keras_serializable(package="covidlab")
class Preprocess(keras.layers.Layer):
    """Applies a backbone's ``preprocess_input`` inside the model (input: pixels in [0, 255])."""

    def __init__(self, backbone: str, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self._preprocess = get_backbone(backbone).preprocess_input

    def call(self, inputs):
        return self._preprocess(inputs)

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": self.backbone}


def build_backbone(
    backbone: str, input_shape: tuple[int, int, int], weights: str | None = None
) -> keras.Model:
    """The backbone without its ImageNet top, named after the registry key (e.g. "Xception").

    Raises ValueError when the input is smaller than the backbone allows and
    WeightsUnavailableError when ``weights="imagenet"`` cannot be downloaded.
    """
    spec = get_backbone(backbone)
    height, width = input_shape[:2]
    if min(height, width) < spec.min_input_size:
        raise ValueError(
            f"{backbone} needs images of at least {spec.min_input_size}x{spec.min_input_size} "
            f"pixels, got input_shape={tuple(input_shape)}; use a larger image_size "
            f"(smallest_input_size({backbone!r}) == {spec.min_input_size})"
        )
    try:
        return spec.application(
            include_top=False, weights=weights, input_shape=tuple(input_shape), name=backbone
        )
    except Exception as error:
        if weights == "imagenet" and _is_download_failure(error):
            raise WeightsUnavailableError(_weights_help(backbone, error)) from error
        raise


def _is_download_failure(error: Exception) -> bool:
    # keras' get_file turns URLError/HTTPError into a bare Exception("URL fetch failure on ...");
    # socket timeouts and refused connections arrive as OSError subclasses.
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


def _weights_help(backbone: str, error: Exception) -> str:
    found = re.search(r"https?://\S+?\.h5", str(error))
    url = found.group(0) if found else "the URL in the download error below"
    file_name = url.rsplit("/", 1)[-1] if found else "the .h5 file"
    cache = os.path.join(os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras")), "models")
    return (
        f"ImageNet weights for {backbone} could not be downloaded (no network?). Either build "
        "the model with weights=None (random initialisation, as the smoke and demo profiles do), "
        f"or download {url} on a machine with network access and put {file_name} in the Keras "
        f"cache folder {cache} ($KERAS_HOME/models when KERAS_HOME is set). "
        f"Download error: {error}"
    )


def build_classifier(
    backbone: str,
    num_classes: int,
    *,
    input_shape: tuple[int, int, int] = (224, 224, 3),
    head: Head = Head(),  # noqa: B008 - Head is a frozen (immutable) dataclass
    base_trainable: bool = False,
    layer_cutoff: int | None = None,
    weights: str | None = None,
    include_preprocessing: bool = True,
    name: str | None = None,
) -> keras.Model:
    """A transfer-learning classifier: pixels in [0, 255] -> backbone -> ``head`` -> softmax.

    Parameters
    ----------
    backbone
        A key of :data:`BACKBONES`, e.g. "Xception".
    num_classes
        Units of the final ``Dense(num_classes, activation="softmax")``.
    input_shape
        (height, width, channels); at least :func:`smallest_input_size` pixels high and wide.
    head
        Pooling, hidden dense layers and dropout put on the backbone's feature map.
    base_trainable
        Whether the backbone's weights train (fine-tuning) or stay frozen (feature extraction).
    layer_cutoff
        Number of backbone layers, counted from the input as Keras lists them
        (``backbone.layers[:layer_cutoff]``), kept frozen while the rest train; overrides
        ``base_trainable`` (Apostolopoulos & Mpesiana 2020, Table 1). Keras counts every
        InputLayer, BatchNormalization, Activation, ZeroPadding2D, Add ... as a layer, whereas a
        paper may count only layers with weights. Frozen BatchNormalization layers run in
        inference mode (they keep their ImageNet statistics).
    weights
        None (random initialisation) or "imagenet" (downloaded once into the Keras cache).
    include_preprocessing
        Put the backbone's ``preprocess_input`` inside the model (a :class:`Preprocess` layer);
        switch off only when the data is already preprocessed.
    name
        The model's name; default "<backbone>_classifier".

    The nested backbone model is named after ``backbone`` (e.g. "Xception" in ``model.summary()``,
    as in Khan et al. 2020, Table II).
    """
    if num_classes < 1:
        raise ValueError(f"num_classes must be at least 1, got {num_classes}")
    if head.pooling not in ("avg", "max", "flatten"):
        raise ValueError(
            f"Head(pooling={head.pooling!r}) would leave a 4-D feature map in front of the dense "
            "layers; use pooling='avg', 'max' or 'flatten'"
        )
    base = build_backbone(backbone, input_shape, weights)
    freeze_base(base, base_trainable=base_trainable, layer_cutoff=layer_cutoff)

    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    x = Preprocess(backbone, name="preprocess")(inputs) if include_preprocessing else inputs
    x = base(x)
    pooling_layers = {
        "avg": keras.layers.GlobalAveragePooling2D,
        "max": keras.layers.GlobalMaxPooling2D,
        "flatten": keras.layers.Flatten,
    }
    if head.pool_size is not None:  # shrunk to feature maps smaller than the pool (smoke sizes)
        pool = min(head.pool_size, *base.output.shape[1:3])
        x = keras.layers.AveragePooling2D(pool_size=pool, name="pool")(x)
    pool_name = "global_pool" if head.pool_size is not None else "pool"
    x = pooling_layers[head.pooling](name="flatten" if head.pooling == "flatten" else pool_name)(x)
    for i, units in enumerate(head.hidden_units, start=1):
        if head.dropout > 0 and not head.dropout_after:
            x = keras.layers.Dropout(head.dropout, name=f"dropout_{i}")(x)
        x = keras.layers.Dense(units, activation=head.activation, name=f"hidden_{i}")(x)
        if head.dropout > 0 and head.dropout_after:
            x = keras.layers.Dropout(head.dropout, name=f"dropout_{i}")(x)
    if not head.hidden_units and head.dropout > 0:
        x = keras.layers.Dropout(head.dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name or f"{backbone}_classifier")


def build_paper_model(
    spec: PaperSpec,
    model_name: str | None = None,
    *,
    input_shape: tuple[int, int, int] | None = None,
    weights: str | None = None,
    num_classes: int | None = None,
    base_trainable: bool | None = None,
) -> keras.Model:
    """One of a paper's architectures (default: its first, headline model), built by
    :func:`build_classifier` at the paper's input size unless ``input_shape`` says otherwise.

    ``base_trainable`` None keeps the paper's choice; True or False overrides it (e.g. to
    fine-tune a backbone the paper freezes).
    """
    name = model_name or spec.default_model
    model = spec.model_spec(name)
    return build_classifier(
        model.backbone,
        num_classes or len(spec.classes),
        input_shape=input_shape or (*spec.input_size, 3),
        head=model.head,
        base_trainable=model.base_trainable if base_trainable is None else base_trainable,
        layer_cutoff=model.layer_cutoff,
        weights=weights,
        name=f"{spec.key}_{name}",
    )


def freeze_base(
    base: keras.Model, *, base_trainable: bool = False, layer_cutoff: int | None = None
) -> None:
    """Freeze the whole backbone, none of it, or its first ``layer_cutoff`` layers (in place)."""
    if layer_cutoff is None:
        base.trainable = base_trainable
        return
    _check_cutoff(base, layer_cutoff)
    base.trainable = True
    for layer in base.layers[:layer_cutoff]:
        layer.trainable = False


def _check_cutoff(base: keras.Model, layer_cutoff: int) -> None:
    if not 0 <= layer_cutoff <= len(base.layers):
        raise ValueError(
            f"layer_cutoff={layer_cutoff} is outside 0..{len(base.layers)}: {base.name} has "
            f"{len(base.layers)} layers as Keras counts them (see frozen_layers_table)"
        )


def find_backbone(model: keras.Model) -> keras.Model | None:
    """The backbone nested in a classifier from :func:`build_classifier` (None if there is none)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[-1] if nested else None


def parameter_counts(model: keras.Model) -> dict[str, int]:
    """Total, trainable and non-trainable parameters, as ``model.summary()`` reports them.

    Non-trainable parameters include BatchNormalization moving means and variances (Khan et al.
    2020, Table II: 54,528 of them in Xception).
    """
    total = int(model.count_params())
    trainable = int(sum(w.numpy().size for w in model.trainable_weights))
    return {"total": total, "trainable": trainable, "non_trainable": total - trainable}


def frozen_layers_table(model_or_backbone: keras.Model | str, layer_cutoff: int) -> pd.DataFrame:
    """Which backbone layers ``layer_cutoff`` freezes: one row per layer, counted from the input.

    ``model_or_backbone`` is a registry name (the backbone is built at its smallest input size
    with random weights; parameter counts do not depend on the input size), a backbone, or a
    classifier holding one. Columns: layer, type, params, frozen; the index is the layer's
    position, so ``layer_cutoff`` is the index of the first trainable layer.
    """
    if isinstance(model_or_backbone, str):
        size = smallest_input_size(model_or_backbone)
        base = build_backbone(model_or_backbone, (size, size, 3))
    else:
        base = find_backbone(model_or_backbone) or model_or_backbone
    _check_cutoff(base, layer_cutoff)
    table = pd.DataFrame(
        {
            "layer": [layer.name for layer in base.layers],
            "type": [type(layer).__name__ for layer in base.layers],
            "params": [layer.count_params() for layer in base.layers],
            "frozen": [i < layer_cutoff for i in range(len(base.layers))],
        }
    )
    table.index.name = "index"
    return table
