"""What a training run costs, before you press run.

The estimate counts the arithmetic of one forward pass through the model, layer by layer,
then scales it: training one image costs about three forward passes (the forward pass, plus
a backward pass that computes gradients with respect to both activations and weights, each
about as costly as the forward pass). Dividing by what a GPU sustains gives GPU time.

Convention: one multiply-add (MAC) = 2 floating-point operations (FLOPs). By that convention
VGG16 at 224x224 needs ~15.5 GMACs = ~31 GFLOPs per image, ResNet-50 ~4.1 GMACs and
MobileNetV2 ~0.3 GMACs.

Build the model with ``weights=None`` to count it: counting needs the architecture, not the
ImageNet weights.

>>> model = models.build_classifier("ResNet50", 2, input_shape=(224, 224, 3))  # doctest: +SKIP
>>> print(estimate_cost(model, n_images=132, epochs=30, n_runs=10))           # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras

# Forward + backward ≈ 3 forward passes (the backward pass costs about twice the forward).
TRAINING_FLOPS_PER_FORWARD = 3


@dataclass(frozen=True)
class GPU:
    """A GPU's peak throughput in FLOP/s, from the vendor's data sheet."""

    label: str
    fp32_peak: float
    fp16_peak: float


GPUS = {
    "T4": GPU("Colab T4", fp32_peak=8.1e12, fp16_peak=65e12),
    "L4": GPU("Colab L4", fp32_peak=30.3e12, fp16_peak=121e12),
    "A100": GPU("Colab A100", fp32_peak=19.5e12, fp16_peak=312e12),
}

# Keras training in float32 with small batches reaches a fraction of the fp32 peak; about a
# quarter is typical of the published ResNet-50 throughputs on a T4 (~80-100 images/s).
SUSTAINED_FRACTION = 0.25


@dataclass(frozen=True)
class CostEstimate:
    """Arithmetic and GPU time of a training run (see :func:`estimate_cost`)."""

    forward_flops_per_image: float
    total_flops: float
    gpu_seconds: float
    gpu_hours: float
    gpu: str
    sustained_flops_per_second: float
    assumptions: str

    @property
    def flops_per_image(self) -> float:
        """Training FLOPs per image and epoch: forward + backward ≈ 3 x forward."""
        return TRAINING_FLOPS_PER_FORWARD * self.forward_flops_per_image

    def __str__(self) -> str:
        return (
            f"~{_tera(self.total_flops)} TFLOP; ≈ {_duration(self.gpu_seconds)} on a {self.gpu} "
            f"at ~{self.sustained_flops_per_second / 1e12:.1f} TFLOP/s sustained"
        )


def _tera(flops: float) -> str:
    tera = flops / 1e12
    return f"{tera:,.0f}" if tera >= 10 else f"{tera:.2g}"


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _submodels_and_layers(model: keras.Model):
    """Every layer of ``model``, descending into nested models (e.g. the backbone)."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _submodels_and_layers(layer)
        else:
            yield layer


def layer_macs(layer: keras.layers.Layer) -> int:
    """Multiply-adds of one layer for one image.

    Convolutions (``Conv2D``, ``DepthwiseConv2D``, ``SeparableConv2D``) and ``Dense`` cost
    one multiply-add per kernel weight at every output position; batch normalisation one
    per output value (a scale and a shift). Pooling, activations, additions and
    preprocessing are left out: together they are well under 1 % of a CNN's arithmetic.
    """
    if isinstance(layer, keras.layers.BatchNormalization):
        return math.prod(layer.output.shape[1:])
    kernels = [
        w for w in layer.weights if w.path.rsplit("/", 1)[-1].endswith("kernel") and w.ndim >= 2
    ]
    if not kernels:
        return 0
    positions = math.prod(layer.output.shape[1:-1])  # output pixels (1 for a Dense on a vector)
    return positions * sum(math.prod(kernel.shape) for kernel in kernels)


def count_forward_flops(model: keras.Model) -> int:
    """FLOPs (2 x multiply-adds) of one forward pass of one image through ``model``."""
    if not model.built or not model.inputs:
        raise ValueError(
            "count_forward_flops needs a model built on a known input shape, e.g. "
            "build_classifier(..., input_shape=(224, 224, 3))"
        )
    return 2 * sum(layer_macs(layer) for layer in _submodels_and_layers(model))


def estimate_cost(
    model: keras.Model,
    n_images: int,
    epochs: int,
    n_runs: int = 1,
    gpu: str = "T4",
    *,
    sustained_fraction: float = SUSTAINED_FRACTION,
) -> CostEstimate:
    """Estimate the arithmetic and GPU time of training ``model``.

    Parameters
    ----------
    model
        The classifier at the input size it will train at (weights do not matter).
    n_images
        Training images seen per epoch.
    epochs
        Epochs per run.
    n_runs
        Number of trainings, e.g. 10 for 10-fold cross-validation, times the number of
        backbones compared.
    gpu
        A key of :data:`GPUS`.
    sustained_fraction
        Share of the GPU's fp32 peak that float32 Keras training sustains.
    """
    if gpu not in GPUS:
        raise ValueError(f"unknown gpu {gpu!r}; choose one of {', '.join(GPUS)}")
    device = GPUS[gpu]
    forward = count_forward_flops(model)
    total = TRAINING_FLOPS_PER_FORWARD * forward * n_images * epochs * n_runs
    sustained = sustained_fraction * device.fp32_peak
    seconds = total / sustained
    assumptions = (
        f"forward pass counted layer by layer ({forward / 1e9:.2f} GFLOP per image, "
        "1 multiply-add = 2 FLOPs); training = 3 x forward; "
        f"{n_runs} run(s) x {epochs} epoch(s) x {n_images} images; "
        f"{device.label}: {device.fp32_peak / 1e12:.1f} TFLOP/s fp32 peak "
        f"({device.fp16_peak / 1e12:.0f} fp16), of which {sustained_fraction:.0%} sustained in "
        "float32 Keras training; data loading, evaluation and start-up not counted"
    )
    return CostEstimate(
        forward_flops_per_image=float(forward),
        total_flops=float(total),
        gpu_seconds=seconds,
        gpu_hours=seconds / 3600,
        gpu=device.label,
        sustained_flops_per_second=sustained,
        assumptions=assumptions,
    )
