"""On-demand benchmark: input-pipeline and training throughput on this machine.

Not collected by pytest (the file name does not start with ``test_``). Run it on a quiet
machine and copy its table into ``RESULTS.md`` beside this file:

    python tests/benchmarks/bench_throughput.py   # the decode row needs ../shared/data

Rows:
- decode + resize of the full-resolution originals (``shared/data/sources/originals``) through
  :func:`covidlab.images.make_dataset`, images per second, first pass (no cache);
- training steps of a few backbones at the sizes the profiles use, images per second measured
  after a warm-up epoch (so graph tracing is excluded), random weights.
"""

from __future__ import annotations

import os
import platform
import time

import numpy as np
import pandas as pd

from covidlab import config, images, models, train

TRAINING_CASES = (  # (backbone, input side, images): the demo sizes and one paper size
    ("MobileNetV2", 64, 128),
    ("VGG16", 64, 128),
    ("Xception", 71, 64),
    ("ResNet50", 64, 128),
    ("VGG19", 224, 16),
)


def decode_throughput() -> dict | None:
    shared = config.shared_data_dir()
    if shared is None or not (shared / "sources" / "originals").is_dir():
        return None
    paths = sorted(
        str(p)
        for p in (shared / "sources" / "originals").rglob("*")
        if p.suffix.lower() in {".png", ".jpg", ".jpeg"}
    )
    manifest = pd.DataFrame(
        {"path": paths, "label": "normal", "patient_id": paths, "source": "originals"}
    )
    dataset = images.make_dataset(manifest, ["normal"], (224, 224), batch_size=8, cache=False)
    start = time.perf_counter()
    n = sum(int(images.shape[0]) for images, _ in dataset)
    seconds = time.perf_counter() - start
    return {"case": f"decode+resize {n} originals to 224", "images/s": n / seconds}


def training_throughput(backbone: str, side: int, n_images: int) -> dict:
    import tensorflow as tf

    train.set_seed(0)
    model = models.build_classifier(backbone, 2, input_shape=(side, side, 3), base_trainable=True)
    train.compile_classifier(model, "adam", 1e-4)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (n_images, side, side, 3)).astype("float32")
    labels = tf.one_hot(rng.integers(0, 2, n_images), 2)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16).cache()
    model.fit(dataset, epochs=1, verbose=0, shuffle=False)  # warm-up: tracing is excluded
    start = time.perf_counter()
    model.fit(dataset, epochs=2, verbose=0, shuffle=False)
    seconds = time.perf_counter() - start
    return {"case": f"train {backbone} {side}x{side}", "images/s": 2 * n_images / seconds}


def main() -> None:
    rows = []
    decoded = decode_throughput()
    if decoded is not None:
        rows.append(decoded)
    rows += [training_throughput(*case) for case in TRAINING_CASES]
    table = pd.DataFrame(rows).round(1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
