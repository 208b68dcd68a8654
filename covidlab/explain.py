"""Grad-CAM class activation maps: where in the image did the network look?

Grad-CAM (Selvaraju et al. 2017) weights each channel of a convolutional feature map by the mean
gradient of a class score with respect to that channel, sums the channels and keeps the positive
part. Soares & Soares (2020) show such maps for their three classes; the course uses them to ask
whether a model looks at the lungs or at text, arrows and borders.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure

from covidlab.models import find_backbone
from covidlab.viz import add_caption, new_figure

# Layers whose 4-D output is a feature map worth explaining; pooling, padding, cropping,
# dropout and normalisation layers only resample or rescale the map before them.
FEATURE_LAYER_TYPES = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.Concatenate,
    keras.layers.Add,
)


def find_last_conv_layer(model: keras.Model) -> str:
    """Name of the last convolutional feature map, searched inside the nested backbone if any.

    The rule: the last layer, in Keras' layer order, whose output is 4-D (batch, height, width,
    channels) and which is a convolution (Conv2D, SeparableConv2D, DepthwiseConv2D) or a layer
    that combines or activates convolution outputs (Activation, ReLU, Concatenate, Add). This is
    e.g. "block5_conv3" for VGG16, "block14_sepconv2_act" for Xception and "mixed10" for
    InceptionV3.
    """
    search_in = find_backbone(model) or model
    for layer in reversed(search_in.layers):
        if isinstance(layer, FEATURE_LAYER_TYPES) and len(layer.output.shape) == 4:
            return layer.name
    raise ValueError(f"model {model.name!r} has no layer with a 4-D convolutional output")


#: The smallest feature map (height and width) whose Grad-CAM says something about *where*:
#: on a 2x2 or 3x3 map each cell covers a third to a half of the image.
MIN_MAP_SIZE = 4


def grad_cam_resolution(model: keras.Model, layer_name: str | None = None) -> tuple[int, int]:
    """Height and width of the feature map Grad-CAM would explain (:func:`find_last_conv_layer`)."""
    search_in = find_backbone(model) or model
    layer = search_in.get_layer(layer_name or find_last_conv_layer(model))
    height, width = layer.output.shape[1:3]
    return int(height), int(width)


def grad_cam_refusal(
    model: keras.Model, layer_name: str | None = None, *, reference: keras.Model | None = None
) -> str | None:
    """Why a Grad-CAM of ``model`` would mislead, or None when its map is at least
    :data:`MIN_MAP_SIZE` cells high and wide. A chapter prints the reason instead of a figure.

    ``reference`` is the same network built at the paper's input size (a chapter's paper
    model); the reason then says how fine the map is there, read from that model.
    """
    height, width = grad_cam_resolution(model, layer_name)
    if min(height, width) >= MIN_MAP_SIZE:
        return None
    finer = "a larger input gives a finer map"
    if reference is not None:
        size = "x".join(str(d) for d in reference.inputs[0].shape[1:3])
        map_height, map_width = grad_cam_resolution(reference)
        finer += f"; at the paper's {size} input this network's map is {map_height}x{map_width}"
    return (
        f"No Grad-CAM for {model.name}: at this input size its last convolutional map is "
        f"{height}x{width} cells, so a heatmap could only say which of those {height * width} "
        f"coarse blocks of the image mattered, not where in the lungs. It needs at least "
        f"{MIN_MAP_SIZE}x{MIN_MAP_SIZE} ({finer})."
    )


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_index: int | np.ndarray | None = None,
    layer_name: str | None = None,
) -> np.ndarray:
    """Grad-CAM heatmaps, one per image, scaled to [0, 1] and resized to the input resolution.

    Parameters
    ----------
    model
        A classifier from ``covidlab.models.build_classifier`` (or any chain of layers ending in
        a softmax, with the feature layer either in the chain or in a nested backbone).
    images
        Array (N, H, W, 3) or (H, W, 3) of raw pixels, as the model takes them.
    class_index
        Class to explain: None for each image's predicted class, an int for all images, or one
        index per image.
    layer_name
        Feature layer to explain; default :func:`find_last_conv_layer`.

    Returns
    -------
    np.ndarray of shape (N, H, W), float32. Each map is resized (bilinear) and divided by its
    maximum; a map with no positive evidence (all zero) stays zero. At a backbone's smallest
    input size the last feature map is often 1x1, so the heatmap is constant.
    """
    heatmaps, _ = _grad_cam_and_probabilities(model, images, class_index, layer_name)
    return heatmaps


def plot_grad_cam(
    model: keras.Model,
    images: np.ndarray,
    class_names: list[str] | tuple[str, ...],
    *,
    caption: str | None = None,
    alpha: float = 0.4,
    class_index: int | np.ndarray | None = None,
    layer_name: str | None = None,
) -> Figure:
    """One row per image: the image, then its Grad-CAM overlay titled with the prediction.

    ``alpha`` is the heatmap's opacity; ``caption`` (e.g. the run's profile tag) is written in
    small grey text at the bottom of the figure.
    """
    images = _as_batch(images)
    heatmaps, probabilities = _grad_cam_and_probabilities(model, images, class_index, layer_name)
    explained = _target_classes(probabilities, class_index)
    fig, axes = new_figure(len(images), 2, figsize=(6, 3 * len(images)))
    for row, (image, heatmap, probs) in enumerate(
        zip(images, heatmaps, probabilities, strict=True)
    ):
        shown = np.clip(image / 255.0, 0.0, 1.0)
        predicted = int(np.argmax(probs))
        axes[row, 0].imshow(shown)
        axes[row, 0].set_title("image")
        axes[row, 1].imshow(shown)
        axes[row, 1].imshow(heatmap, cmap="jet", alpha=alpha, vmin=0.0, vmax=1.0)
        title = f"predicted {class_names[predicted]} ({probs[predicted]:.0%})"
        if explained[row] != predicted:
            title += f"\nmap for {class_names[explained[row]]}"
        axes[row, 1].set_title(title)
        for ax in axes[row]:
            ax.axis("off")
    return add_caption(fig, caption)


def _grad_cam_and_probabilities(model, images, class_index, layer_name):
    images = tf.convert_to_tensor(_as_batch(images))
    layer_name = layer_name or find_last_conv_layer(model)
    grad_model = _feature_model(model, layer_name)
    output_layer = model.layers[-1]
    with tf.GradientTape() as tape:
        # Watching the input records every operation, so gradients reach the feature map even
        # when the backbone is frozen (frozen weights are not watched by the tape).
        tape.watch(images)
        features, before_output = grad_model(images, training=False)
        scores = _class_scores(output_layer, before_output)
        probabilities = tf.nn.softmax(scores) if _ends_in_softmax(output_layer) else scores
        targets = _target_classes(probabilities.numpy(), class_index)
        target_scores = tf.gather(scores, targets, axis=1, batch_dims=1)
    gradients = tape.gradient(target_scores, features)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(features * channel_weights, axis=-1, keepdims=True))
    cams = tf.image.resize(cams, images.shape[1:3], method="bilinear")
    peak = tf.reduce_max(cams, axis=(1, 2, 3), keepdims=True)
    heatmaps = tf.math.divide_no_nan(cams, peak).numpy()[..., 0]
    heatmaps = np.clip(heatmaps, 0.0, 1.0).astype("float32")
    return heatmaps, probabilities.numpy()


def _feature_model(model: keras.Model, layer_name: str) -> keras.Model:
    """A model: images -> (feature map of ``layer_name``, input of the final layer).

    A classifier with a nested backbone is replayed layer by layer, which assumes a chain of
    layers (as ``build_classifier`` makes); the backbone is replaced by a model sharing its
    weights that also returns the inner feature map.
    """
    backbone = find_backbone(model)
    if backbone is None or layer_name in {layer.name for layer in model.layers}:
        return keras.Model(
            model.inputs, [model.get_layer(layer_name).output, model.layers[-1].input]
        )
    inner = keras.Model(backbone.inputs, [backbone.get_layer(layer_name).output, backbone.output])
    inputs = keras.Input(shape=model.inputs[0].shape[1:])
    x = inputs
    for layer in model.layers[:-1]:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer is backbone:
            features, x = inner(x)
        else:
            x = layer(x)
    return keras.Model(inputs, [features, x])


def _class_scores(output_layer, before_output):
    # Grad-CAM differentiates the class score before the softmax (Selvaraju et al. 2017):
    # softmax probabilities saturate, and their gradients vanish, for confident predictions.
    if _ends_in_softmax(output_layer):
        return tf.matmul(before_output, output_layer.kernel) + output_layer.bias
    return output_layer(before_output)


def _ends_in_softmax(layer) -> bool:
    return isinstance(layer, keras.layers.Dense) and layer.activation is keras.activations.softmax


def _target_classes(probabilities: np.ndarray, class_index) -> np.ndarray:
    if class_index is None:
        return np.argmax(probabilities, axis=1)
    targets = np.broadcast_to(np.asarray(class_index, dtype=int), (len(probabilities),))
    n_classes = probabilities.shape[1]
    if targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(f"class_index {class_index} is outside 0..{n_classes - 1}")
    return targets


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images, dtype="float32")
    if images.ndim == 3:
        images = images[np.newaxis]
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C) or (H, W, C), got shape {images.shape}")
    return images
