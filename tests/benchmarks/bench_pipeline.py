"""On-demand benchmark: the course's pipeline beside what a user would pick instead, as ratios.

Not collected by pytest. Run it on a quiet machine; it prints a table and writes JSON:

    python tests/benchmarks/bench_pipeline.py --out tests/benchmarks/pipeline.json

Cases, each measured side by side in one run:

1. **Decode + resize**: ``covidlab.images.make_dataset`` on its first pass (an empty cache
   folder: decode, resize and write the cache) and on a later pass (the cache on disk),
   against ``keras.utils.image_dataset_from_directory`` and a naive PIL loop, on (a) the 40
   full-resolution originals of the shared data at 224x224 and (b) the 240-image sample at
   64x64; TensorFlow's decoders alone (full size, no resize) as the floor. Images per
   second, median of 5 rounds (each round runs every contender once) after a warm-up; ratios
   covidlab / alternative.
2. **Training overhead**: ``covidlab.train.train_and_evaluate`` against a bare
   ``model.fit`` + ``model.predict`` on the same images, model and epochs (batch-norm
   recalibration off, so the same work is done). Seconds; ratio covidlab / bare (goal <= 1.05).
3. **MirroredStrategy on 2 logical CPU devices against 1 device**, same job (run in a fresh
   process, since logical devices must be declared before TensorFlow starts). Seconds; ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from covidlab import config, data, images, models, profiles, train


def _image_folder(paths: list[str], labels: list[str], root: Path) -> Path:
    """Links to ``paths`` in ``root/<label>/``: the layout image_dataset_from_directory reads."""
    for index, (path, label) in enumerate(zip(paths, labels, strict=True)):
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        os.symlink(path, folder / f"{index:04d}{Path(path).suffix.lower()}")
    return root


def _seconds(function) -> float:
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def decode_case(
    name: str, manifest: pd.DataFrame, size: int, workdir: Path, repeats: int = 5
) -> dict:
    """Images per second, median of ``repeats`` passes each, all in this one process."""
    import keras
    import tensorflow as tf

    classes = sorted(manifest["label"].unique())
    paths, labels = manifest["path"].tolist(), manifest["label"].tolist()

    scratch = Path(tempfile.mkdtemp(dir=workdir))
    # Folders are removed after the clock stops, and the layout keras reads is made before
    # it starts: deleting a cache and linking files into class folders are not part of a pass.
    keras_root = _image_folder(paths, labels, scratch / "keras")

    def covidlab_first_pass():  # an empty cache folder: decode, resize, write the cache
        empty = tempfile.mkdtemp(dir=scratch)
        for _ in images.make_dataset(manifest, classes, (size, size), cache=empty):
            pass

    def covidlab_without_cache():  # decode and resize only, nothing written
        for _ in images.make_dataset(manifest, classes, (size, size), cache=False):
            pass

    warm = scratch / "warm"
    images.make_dataset(manifest, classes, (size, size), cache=warm)

    def covidlab_cached_pass():  # a later run: the cache is there
        for _ in images.make_dataset(manifest, classes, (size, size), cache=warm):
            pass

    def keras_pass():
        dataset = keras.utils.image_dataset_from_directory(
            keras_root, image_size=(size, size), batch_size=32, shuffle=False, verbose=False
        )
        for _ in dataset:
            pass

    def pil_pass():
        for path in paths:
            with Image.open(path) as image:
                np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))

    def decode_only():  # the floor: TensorFlow's decoders alone, no resize, no cache
        dataset = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda path: tf.shape(tf.io.decode_image(tf.io.read_file(path), channels=3)),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        for _ in dataset:
            pass

    passes = {
        "covidlab make_dataset, first pass": covidlab_first_pass,
        "covidlab make_dataset, cache on disk": covidlab_cached_pass,
        "covidlab make_dataset, cache=False": covidlab_without_cache,
        "keras image_dataset_from_directory": keras_pass,
        "naive PIL loop": pil_pass,
        "TensorFlow decode only, full size": decode_only,
    }
    for function in passes.values():  # warm-up: imports, tracing
        function()
    # rounds of one pass each, so that a noisy moment costs every contender alike
    times: dict[str, list[float]] = {key: [] for key in passes}
    for _ in range(repeats):
        for key, function in passes.items():
            times[key].append(_seconds(function))
    seconds = {key: float(np.median(values)) for key, values in times.items()}
    rates = {key: len(paths) / value for key, value in seconds.items()}
    first = rates["covidlab make_dataset, first pass"]
    return {
        "case": f"decode {name} -> {size}px",
        "images": len(paths),
        "images_per_second": rates,
        "first_pass_vs_keras": first / rates["keras image_dataset_from_directory"],
        "first_pass_vs_pil": first / rates["naive PIL loop"],
        "cached_vs_keras": rates["covidlab make_dataset, cache on disk"]
        / rates["keras image_dataset_from_directory"],
        "without_cache_vs_keras": rates["covidlab make_dataset, cache=False"]
        / rates["keras image_dataset_from_directory"],
        "goal": "first pass >= 1x keras and >= 3x PIL",
    }


def training_case(manifest: pd.DataFrame) -> dict:
    import keras

    config = profiles.resolve(
        "apostolopoulos", "demo", models=("MobileNetV2",), epochs=3, image_size=(64, 64)
    )
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)

    def build():
        return models.build_classifier(
            "MobileNetV2", 3, input_shape=(64, 64, 3), base_trainable=True
        )

    def ours():
        train.train_and_evaluate(build, train_df, test_df, config, verbose=0, recalibrate_bn=False)

    def bare():
        keras.backend.clear_session()
        keras.utils.set_random_seed(0)
        model = build()
        model.compile(
            optimizer=keras.optimizers.Adam(config.learning_rate),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
        )
        kwargs = {"image_size": config.image_size, "batch_size": config.batch_size}
        model.fit(
            images.make_dataset(train_df, config.classes, shuffle=True, **kwargs),
            epochs=config.epochs,
            verbose=0,
            shuffle=False,  # the dataset shuffles itself, as in covidlab.train.fit
        )
        model.predict(images.make_dataset(test_df, config.classes, **kwargs), verbose=0)

    ours(), bare()  # warm-up: imports, first tracing
    times = {"covidlab train_and_evaluate": _seconds(ours), "bare model.fit": _seconds(bare)}
    return {
        "case": "train MobileNetV2 64px, 3 epochs, then predict",
        "seconds": times,
        "ratio": times["covidlab train_and_evaluate"] / times["bare model.fit"],
        "goal": "<= 1.05",
    }


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    from covidlab import data, models, profiles, train
    manifest = data.read_manifest(sys.argv[1])
    config = profiles.resolve("apostolopoulos", "demo", models=("MobileNetV2",), epochs=3,
                              image_size=(64, 64))
    train_df, test_df = data.holdout_split(manifest, 0.3, seed=0)
    build = lambda: models.build_classifier("MobileNetV2", 3, input_shape=(64, 64, 3),
                                            base_trainable=True)
    times = {}
    for name, strategy in (("1 device", None),
                           ("MirroredStrategy, 2 logical CPUs",
                            tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        train.train_and_evaluate(build, train_df, test_df, config, verbose=0, strategy=strategy)
        started = time.perf_counter()
        train.train_and_evaluate(build, train_df, test_df, config, verbose=0, strategy=strategy)
        times[name] = time.perf_counter() - started
    print(json.dumps(times))
    """
)


def mirrored_case(manifest: pd.DataFrame, workdir: Path) -> dict:
    csv = workdir / "manifest.csv"
    data.write_manifest(manifest, csv)
    script = workdir / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(csv)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    times = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "case": "train MobileNetV2 64px, 3 epochs: MirroredStrategy on 2 logical CPUs vs 1",
        "seconds": times,
        "ratio": times["MirroredStrategy, 2 logical CPUs"] / times["1 device"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("pipeline.json"))
    args = parser.parse_args()
    shared = config.shared_data_dir()
    if shared is None:
        raise SystemExit("needs the shared data (../shared/data or $COVIDLAB_SHARED_DATA)")
    originals = pd.read_csv(shared / "sources" / "originals" / "originals.csv")
    originals = pd.DataFrame(
        {
            "path": [str(shared / "sources" / "originals" / f) for f in originals["file"]],
            "label": originals["label"].str.lower().str.replace(r"\W+", "_", regex=True),
            "patient_id": originals["file"],
            "source": originals["dataset"],
        }
    )
    sample = pd.read_csv(shared / "sample" / "manifest.csv")
    sample = pd.DataFrame(
        {
            "path": [str(shared / "sample" / f) for f in sample["filename"]],
            "label": sample["label"],
            "patient_id": sample["patient_id"],
            "source": sample["source_dataset"],
        }
    )
    three = sample.assign(
        label=sample["label"].map(
            {
                "COVID-19": "covid",
                "NORMAL": "normal",
                "PNEUMONIA-bacterial": "pneumonia",
                "PNEUMONIA-viral": "pneumonia",
            }
        )
    )
    workdir = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        cases = [
            decode_case("40 full-size originals", originals, 224, workdir),
            decode_case("240-image sample", sample, 64, workdir),
            training_case(three),
            mirrored_case(three, workdir),
        ]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    import keras
    import tensorflow as tf

    report = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}",
        "cases": cases,
    }
    args.out.write_text(json.dumps(report, indent=1))
    print(report["machine"])
    for case in cases:
        print(json.dumps(case))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
