"""Grad-CAM: shapes and range for every backbone, and maps that point at the evidence."""

from __future__ import annotations

import keras
import matplotlib
import numpy as np
import pytest

from covidlab import explain, models
from covidlab.models import Head, build_classifier

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SIZE = 32
LAST_FEATURE_LAYER = {
    "VGG16": "block5_conv3",
    "VGG19": "block5_conv4",
    "ResNet50": "conv5_block3_out",
    "ResNet50V2": "post_relu",
    "DenseNet121": "relu",
    "DenseNet201": "relu",
    "InceptionV3": "mixed10",
    "InceptionResNetV2": "conv_7b_ac",
    "Xception": "block14_sepconv2_act",
    "MobileNetV2": "out_relu",
}


def patch_detector() -> keras.Model:
    """A hand-set CNN: class 1 ("patch") rises with the area brighter than mid-grey.

    The convolution (stride 2: a 16x16 map, so Grad-CAM must resize) responds only where the
    local mean exceeds 0.5 (pixels scaled to [0, 1]); global average pooling and a dense layer
    turn that area into the two class scores.
    """
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    conv = keras.layers.Conv2D(1, 3, strides=2, padding="same", activation="relu", name="features")
    x = conv(x)
    conv.set_weights([np.full((3, 3, 3, 1), 1 / 27, "float32"), np.array([-0.5], "float32")])
    x = keras.layers.MaxPooling2D(1, name="pool")(x)  # a 4-D layer that is not a feature map
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(2, activation="softmax")
    outputs = dense(x)
    dense.set_weights([np.array([[-100.0, 100.0]], "float32"), np.array([1.0, 0.0], "float32")])
    return keras.Model(inputs, outputs, name="patch_detector")


def images_with_patches(sides: list[str]) -> np.ndarray:
    """Dark noisy images, each with a bright 8x8 patch on the left or right half."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 60, (len(sides), SIZE, SIZE, 3)).astype("float32")
    for image, side in zip(images, sides, strict=True):
        column = 4 if side == "left" else SIZE - 12
        image[12:20, column : column + 8] = 250.0
    return images


def left_share(heatmaps: np.ndarray) -> np.ndarray:
    return heatmaps[:, :, : SIZE // 2].sum(axis=(1, 2)) / heatmaps.sum(axis=(1, 2))


def test_last_conv_layer_skips_pooling_after_the_features():
    assert explain.find_last_conv_layer(patch_detector()) == "features"


def test_heatmap_mass_lies_on_the_side_of_the_bright_patch():
    model = patch_detector()
    images = images_with_patches(["left", "right", "left"])
    assert (model(images).numpy().argmax(axis=1) == 1).all()
    heatmaps = explain.grad_cam(model, images)
    assert heatmaps.shape == (3, SIZE, SIZE)
    assert heatmaps.max(axis=(1, 2)) == pytest.approx([1.0, 1.0, 1.0])
    share = left_share(heatmaps)
    assert share[0] > 0.9 and share[1] < 0.1 and share[2] > 0.9


def test_the_class_without_evidence_gets_an_empty_map():
    # The "no patch" score falls as the patch grows: no positive evidence, an all-zero map.
    heatmaps = explain.grad_cam(patch_detector(), images_with_patches(["left"]), class_index=0)
    assert heatmaps.max() == 0.0


def test_nested_backbone_gives_the_same_map_as_the_flat_model():
    flat = patch_detector()
    backbone = keras.Model(flat.inputs, flat.get_layer("pool").output, name="backbone")
    inputs = keras.Input((SIZE, SIZE, 3))
    x = backbone(inputs)
    for layer in flat.layers[-2:]:
        x = layer(x)
    nested = keras.Model(inputs, x)
    assert explain.find_last_conv_layer(nested) == "features"
    images = images_with_patches(["right", "left"])
    np.testing.assert_allclose(
        explain.grad_cam(nested, images), explain.grad_cam(flat, images), atol=1e-6
    )


def test_class_index_out_of_range_is_refused():
    with pytest.raises(ValueError, match="outside 0..1"):
        explain.grad_cam(patch_detector(), images_with_patches(["left"]), class_index=2)


@pytest.mark.parametrize("name", sorted(LAST_FEATURE_LAYER))
def test_grad_cam_works_for_every_backbone(name):
    size = models.smallest_input_size(name)
    model = build_classifier(name, 2, input_shape=(size, size, 3), head=Head(hidden_units=(4,)))
    assert explain.find_last_conv_layer(model) == LAST_FEATURE_LAYER[name]
    images = np.random.default_rng(0).uniform(0, 255, (2, size, size, 3)).astype("float32")
    heatmaps = explain.grad_cam(model, images, class_index=[0, 1])
    assert heatmaps.shape == (2, size, size)
    assert heatmaps.dtype == np.float32
    assert np.isfinite(heatmaps).all()
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0


def test_grad_cam_on_a_chosen_inner_layer_of_a_backbone():
    # VGG16 at 64 pixels: block4_conv3 is an 8x8 map, so the resized heatmap varies in space.
    keras.utils.set_random_seed(0)
    model = build_classifier("VGG16", 2, input_shape=(64, 64, 3))
    image = np.random.default_rng(3).uniform(0, 255, (64, 64, 3)).astype("float32")
    heatmaps = explain.grad_cam(model, image, layer_name="block4_conv3")  # one image, no batch
    assert heatmaps.shape == (1, 64, 64)
    assert heatmaps.max() == pytest.approx(1.0)
    assert heatmaps.std() > 0.05


def test_plot_shows_image_and_overlay_titled_with_the_prediction():
    model = patch_detector()
    images = images_with_patches(["left", "right"])
    fig = explain.plot_grad_cam(model, images, ["none", "patch"], caption="smoke profile")
    try:
        assert len(fig.axes) == 4
        overlay_titles = [ax.get_title() for ax in fig.axes[1::2]]
        probability = model(images).numpy()[0, 1]
        assert overlay_titles[0] == f"predicted patch ({probability:.0%})"
        assert "smoke profile" in [text.get_text() for text in fig.texts]
    finally:
        plt.close(fig)


def test_grad_cam_is_refused_on_maps_smaller_than_4x4():
    from covidlab import explain, models

    small = models.build_classifier("VGG16", 2, input_shape=(32, 32, 3))  # 2x2 map
    assert explain.grad_cam_resolution(small) == (2, 2)
    assert "2x2" in explain.grad_cam_refusal(small)
    large = models.build_classifier("VGG16", 2, input_shape=(64, 64, 3))  # 4x4 map
    assert explain.grad_cam_resolution(large) == (4, 4)
    assert explain.grad_cam_refusal(large) is None


def test_choices_render_as_markdown_lists():
    from covidlab import papers

    spec = papers.get("apostolopoulos")
    text = spec.choices_markdown()
    assert text.count("\n1. ") == 2 and "**What this course chose**" in text
    assert all(f"{i}. {c}" in text for i, c in enumerate(spec.choices, 1))
