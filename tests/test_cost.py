"""Cost estimates: layer arithmetic against hand counts and published multiply-add counts."""

from __future__ import annotations

from functools import cache

import keras
import pytest

from covidlab import cost, models


@cache
def classifier_224(backbone: str) -> keras.Model:
    return models.build_classifier(backbone, 2, input_shape=(224, 224, 3))


def test_hand_counted_model():
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            keras.layers.Conv2D(16, 3, padding="same"),  # 8*8 positions x 3*3*3*16 weights
            keras.layers.BatchNormalization(),  # one multiply-add per value: 8*8*16
            keras.layers.DepthwiseConv2D(3, strides=2, padding="same"),  # 4*4 x 3*3*16
            keras.layers.SeparableConv2D(8, 3, padding="same"),  # 4*4 x (3*3*16 + 16*8)
            keras.layers.GlobalAveragePooling2D(),  # not counted
            keras.layers.Dense(2),  # 8*2
        ]
    )
    macs = 8 * 8 * 27 * 16 + 8 * 8 * 16 + 4 * 4 * 9 * 16 + 4 * 4 * (9 * 16 + 16 * 8) + 8 * 2
    assert cost.count_forward_flops(model) == 2 * macs


@pytest.mark.parametrize(
    ("backbone", "published_gmacs"),
    [("VGG16", 15.5), ("ResNet50", 4.1), ("MobileNetV2", 0.30)],
)
def test_known_backbones_at_224(backbone, published_gmacs):
    gmacs = cost.count_forward_flops(classifier_224(backbone)) / 2 / 1e9
    assert gmacs == pytest.approx(published_gmacs, rel=0.10)


def test_nested_backbone_is_counted():
    small = models.build_classifier("VGG16", 2, input_shape=(32, 32, 3))
    large = models.build_classifier("VGG16", 2, input_shape=(64, 64, 3))
    # convolutions scale with the number of pixels: 4x the pixels, ~4x the arithmetic
    ratio = cost.count_forward_flops(large) / cost.count_forward_flops(small)
    assert 3.5 < ratio < 4.1


def test_estimate_scales_with_images_epochs_and_runs():
    model = classifier_224("MobileNetV2")
    one = cost.estimate_cost(model, n_images=100, epochs=1)
    many = cost.estimate_cost(model, n_images=100, epochs=30, n_runs=10)
    assert one.total_flops == pytest.approx(3 * one.forward_flops_per_image * 100)
    assert many.total_flops == pytest.approx(300 * one.total_flops)
    assert one.flops_per_image == pytest.approx(3 * one.forward_flops_per_image)
    # T4: 8.1 TFLOP/s fp32 peak, 25 % sustained
    assert many.gpu_seconds == pytest.approx(many.total_flops / (0.25 * 8.1e12))
    assert many.gpu_hours == pytest.approx(many.gpu_seconds / 3600)
    text = str(many)
    assert "TFLOP" in text and "T4" in text and "2.0 TFLOP/s sustained" in text
    assert "3 x forward" in many.assumptions


def test_aboughazala_ten_folds_take_minutes_on_a_t4():
    # Aboughazala & Mohammed 2020: ResNet-50, 10 folds x 30 epochs over ~132 training images
    estimate = cost.estimate_cost(classifier_224("ResNet50"), n_images=132, epochs=30, n_runs=10)
    assert 60 < estimate.gpu_seconds < 3600


def test_unknown_gpu():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="T4"):
        cost.estimate_cost(model, 10, 1, gpu="V100")
