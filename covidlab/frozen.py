"""What a frozen base passes on: do different images still give different features?

Apostolopoulos & Mpesiana (2020, Table 1) freeze the first ``layer_cutoff`` layers of each
backbone and train the rest. With ImageNet weights the frozen layers are trained feature
extractors. With random weights (the course's ``smoke`` and ``demo`` profiles) they are random
filters that training never changes, and every random convolution followed by a ReLU averages
its inputs a little more: layer after layer, the outputs of different images become alike,
until what the trainable layers receive is mostly the same signal for every image.

This module measures that, without training anything:

- :func:`frozen_part`: the model from pixels to the output of the backbone's frozen layers;
- :func:`image_similarity`: how alike the outputs of different images are (mean cosine
  similarity, the share of the signal that differs from image to image, its size);
- :func:`similarity_by_depth`: the same after every frozen layer, from the input on;
- :func:`summary_table`: the input beside the last frozen layer, one row per backbone;
- :func:`plot_similarity_by_depth`: the depth tables drawn for one or more backbones;
- :func:`manifest_images`: the images of a manifest as the model receives them in training.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from covidlab.images import make_dataset
from covidlab.models import find_backbone
from covidlab.viz import add_caption, new_figure

SIMILARITY_COLUMNS = ("mean cosine similarity", "image-specific share", "rms")


def frozen_layer_count(model: keras.Model) -> int:
    """How many of the backbone's layers, counted from its input, are frozen.

    The length of the leading run of non-trainable layers of the backbone nested in ``model``
    (a classifier of :func:`covidlab.models.build_classifier`) or of ``model`` itself: the
    ``layer_cutoff`` it was built with (Apostolopoulos & Mpesiana 2020, Table 1), or every
    layer when the whole base is frozen.
    """
    base = find_backbone(model) or model
    if not base.trainable:
        return len(base.layers)
    count = 0
    while count < len(base.layers) and not base.layers[count].trainable:
        count += 1
    return count


def _base_and_preprocess(model: keras.Model) -> tuple[keras.Model, keras.layers.Layer | None]:
    base = find_backbone(model)
    if base is None:
        return model, None
    names = {layer.name: layer for layer in model.layers}
    return base, names.get("preprocess")


def _outputs_model(model: keras.Model, layer_indices: list[int]) -> keras.Model:
    """pixels -> [the model's preprocessing] -> the outputs of these backbone layers."""
    base, preprocess = _base_and_preprocess(model)
    inputs = keras.Input(base.input_shape[1:], name="pixels")
    x = preprocess(inputs) if preprocess is not None else inputs
    inner = keras.Model(base.input, [base.layers[i].output for i in layer_indices])
    outputs = inner(x)
    outputs = outputs if isinstance(outputs, list | tuple) else [outputs]
    return keras.Model(inputs, [x, *outputs], name="frozen_part")


def _check_frozen(model: keras.Model, base: keras.Model, cutoff: int) -> None:
    if not 1 < cutoff <= len(base.layers):
        raise ValueError(
            f"{model.name} has {max(cutoff - 1, 0)} frozen layer(s) after its input; this needs "
            "a model built with layer_cutoff (e.g. Apostolopoulos' Table 1) or a frozen base"
        )


def frozen_part(model: keras.Model, layer_cutoff: int | None = None) -> keras.Model:
    """A model from pixels (as ``model`` takes them) to the output of its frozen layers.

    Runs ``model``'s own preprocessing, then the backbone up to and including layer
    ``layer_cutoff - 1`` (default :func:`frozen_layer_count`): what the first trainable layer
    receives. Raises ValueError when nothing is frozen.
    """
    cutoff = frozen_layer_count(model) if layer_cutoff is None else layer_cutoff
    base, _ = _base_and_preprocess(model)
    _check_frozen(model, base, cutoff)
    full = _outputs_model(model, [cutoff - 1])
    return keras.Model(full.input, full.outputs[-1], name="frozen_part")


def image_similarity(features: np.ndarray) -> dict[str, float]:
    """How alike the features of different images are; one row of ``features`` per image.

    Returns
    -------
    dict
        ``mean cosine similarity``: the mean of cos(f_i, f_j) over all pairs of different
        images (1: every image points the same way). ``image-specific share``: the part of
        the features' energy that differs from image to image,
        sum_i ||f_i - mean||^2 / sum_i ||f_i||^2 (0: every image gives the same features;
        what is left, 1 - share, is common to all images and carries no information about
        any of them). ``rms``: the root mean square of all values, the signal's size.
    """
    flat = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    n = len(flat)
    if n < 2:
        raise ValueError(f"image_similarity needs at least two images, got {n}")
    squares = np.einsum("ij,ij->i", flat, flat)
    norms = np.sqrt(squares)[:, None]
    unit_sum = np.divide(flat, norms, out=np.zeros_like(flat), where=norms > 0).sum(axis=0)
    # The sum over pairs i != j of cos(f_i, f_j) is ||sum_i u_i||^2 - sum_i ||u_i||^2 with
    # u_i = f_i / ||f_i||: no n x n matrix of cosines (slow on wide feature maps).
    cosine_pairs = float(unit_sum @ unit_sum) - int((norms > 0).sum())
    mean = flat.mean(axis=0)
    energy = float(squares.sum())
    spread = energy - n * float(mean @ mean)  # sum_i ||f_i - mean||^2
    return {
        "mean cosine similarity": cosine_pairs / (n * (n - 1)),
        "image-specific share": max(spread, 0.0) / energy if energy > 0 else 0.0,
        "rms": float(np.sqrt(energy / flat.size)),
    }


def similarity_by_depth(
    model: keras.Model, images: np.ndarray, layer_cutoff: int | None = None
) -> pd.DataFrame:
    """:func:`image_similarity` of ``images`` at the input and after every frozen layer.

    One row per backbone layer from 0 (the preprocessed pixels, as the backbone receives them)
    to ``layer_cutoff - 1`` (default :func:`frozen_layer_count`), indexed by the layer's
    position in Keras' list, with its name and type. The last row is what
    :func:`frozen_part` returns.
    """
    cutoff = frozen_layer_count(model) if layer_cutoff is None else layer_cutoff
    base, _ = _base_and_preprocess(model)
    _check_frozen(model, base, cutoff)
    indices = list(range(1, cutoff))
    outputs = _outputs_model(model, indices)(np.asarray(images, dtype="float32"))
    outputs = [np.asarray(output) for output in outputs]
    rows = []
    for index, features in zip([0, *indices], outputs, strict=True):
        layer = base.layers[index]
        name = "input (preprocessed)" if index == 0 else layer.name
        rows.append(
            {"index": index, "layer": name, "type": type(layer).__name__}
            | image_similarity(features)
        )
    table = pd.DataFrame(rows).set_index("index")
    first = base.layers[cutoff] if cutoff < len(base.layers) else None
    table.attrs["first trainable"] = (
        "none (the whole base is frozen)"
        if first is None
        else f"{first.name} ({type(first).__name__})"
    )
    return table


def summary_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per backbone: :func:`similarity_by_depth`'s first row (the input) beside its last
    (what the first trainable layer receives), and how much smaller the signal has become."""
    rows = {}
    for label, table in tables.items():
        first, last = table.iloc[0], table.iloc[-1]
        rows[label] = {
            "frozen layers": len(table),
            "last frozen layer": last["layer"],
            "first trainable layer": table.attrs.get("first trainable", ""),
            "cosine similarity, input": first[SIMILARITY_COLUMNS[0]],
            "cosine similarity, after the frozen layers": last[SIMILARITY_COLUMNS[0]],
            "image-specific share, input": first[SIMILARITY_COLUMNS[1]],
            "image-specific share, after the frozen layers": last[SIMILARITY_COLUMNS[1]],
            "signal shrunk by (rms ratio)": first["rms"] / last["rms"] if last["rms"] else np.inf,
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    summary.index.name = "backbone"
    return summary


def manifest_images(
    manifest: pd.DataFrame,
    image_size: tuple[int, int],
    *,
    resize: str = "stretch",
    classes: tuple[str, ...] | None = None,
) -> np.ndarray:
    """The images of ``manifest`` as one array of pixels in [0, 255], decoded and resized by the
    training pipeline (:func:`covidlab.images.make_dataset`), in the manifest's order. For
    measurements only: a figure shows images through :mod:`covidlab.viz`, which checks their
    licence."""
    classes = tuple(classes or sorted(manifest["label"].unique()))
    dataset = make_dataset(
        manifest, classes, image_size, resize=resize, batch_size=len(manifest), shuffle=False
    )
    images, _ = next(iter(dataset))
    return np.asarray(images)


def plot_similarity_by_depth(
    tables: Mapping[str, pd.DataFrame],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> Figure:
    """The image-specific share (left) and mean cosine similarity (right) layer by layer, one
    line per backbone (tables of :func:`similarity_by_depth`, keyed by a label)."""
    fig, axes = new_figure(1, 2, figsize=(9, 3.4))
    for label, table in tables.items():
        for ax, column in zip(axes[0], SIMILARITY_COLUMNS[1::-1], strict=True):
            ax.plot(table.index, table[column], marker="o", markersize=3, label=label)
    for ax, column in zip(axes[0], SIMILARITY_COLUMNS[1::-1], strict=True):
        ax.set_xlabel("frozen layers passed (Keras layer index)")
        ax.set_ylabel(column)
        ax.set_ylim(0, 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize="small")
    if title:
        fig.suptitle(title)
    return add_caption(fig, caption)
