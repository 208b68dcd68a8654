"""tf.distribute on a CPU: two logical devices (MirroredStrategy) and two local workers on
loopback (MultiWorkerMirroredStrategy). Each case runs in a fresh process, because logical
devices and the cluster must be set before TensorFlow starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

COMMON = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    from covidlab import data, profiles, synthetic, train

    def tiny():  # no batch norm: replicas then compute exactly the single-device gradient
        return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3, activation="relu"),
                                 keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])

    def with_batch_norm():
        return keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Rescaling(1 / 255),
                                 keras.layers.Conv2D(4, 3), keras.layers.BatchNormalization(),
                                 keras.layers.ReLU(), keras.layers.GlobalAveragePooling2D(),
                                 keras.layers.Dense(2, activation="softmax")])

    out = sys.argv[1]
    config = profiles.resolve("aboughazala", "smoke", image_size=(32, 32), epochs=2,
                              batch_size=8, run_eagerly=False)
    manifest = synthetic.synthetic_manifest(out + "/images", config.classes, 8, image_size=(32, 32))
    train_df, test_df = data.holdout_split(manifest, 0.25, seed=0)
    """
)

MIRRORED = COMMON + textwrap.dedent(
    """
    import tensorflow as tf
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = train.train_and_evaluate(tiny, train_df, test_df, config, verbose=0)
    two = train.train_and_evaluate(tiny, train_df, test_df, config, verbose=0, strategy=strategy)
    bn = train.train_and_evaluate(with_batch_norm, train_df, test_df, config, verbose=0,
                                  strategy=strategy)
    layer = train.batch_norm_layers(bn.model)[0]
    print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                      "max_difference": float(np.abs(one.y_prob - two.y_prob).max()),
                      "bn_mean_moved": float(np.abs(np.asarray(layer.moving_mean)).max()),
                      "bn_images": int(bn.confusion.sum())}))
    """
)

# Two logical CPUs are declared before TensorFlow starts its runtime.
LOGICAL_DEVICES = textwrap.dedent(
    """
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])
    """
)

WORKER = COMMON + textwrap.dedent(
    """
    import tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    try:
        train.train_and_evaluate(tiny, train_df, test_df, config, verbose=0, strategy=strategy)
        refusal = ""
    except NotImplementedError as error:
        refusal = str(error)
    print(json.dumps({"replicas": strategy.num_replicas_in_sync, "refusal": refusal}))
    """
)


def _run(script: str, tmp_path: Path, env: dict, timeout: int) -> dict:
    path = tmp_path / "probe.py"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, str(path), str(tmp_path)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device(tmp_path: Path) -> None:
    """Same predictions as one device (no batch norm), and batch-norm recalibration works
    under the strategy (its moving averages leave their initial zeros)."""
    found = _run(LOGICAL_DEVICES + MIRRORED, tmp_path, {}, timeout=300)
    assert found["replicas"] == 2
    assert found["max_difference"] < 1e-4
    assert found["bn_mean_moved"] > 0 and found["bn_images"] > 0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_multi_worker_strategy_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """Two worker processes on loopback form a cluster (within a bounded time), and training
    under MultiWorkerMirroredStrategy stops with a message that names the Keras 3 limitation
    and the alternative (shards), instead of Keras' PerReplica traceback."""
    workers = [f"127.0.0.1:{_free_port()}", f"127.0.0.1:{_free_port()}"]
    processes = []
    for index in range(2):
        folder = tmp_path / f"worker{index}"
        folder.mkdir()
        (folder / "probe.py").write_text(WORKER)
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(
            subprocess.Popen(
                [sys.executable, str(folder / "probe.py"), str(folder)],
                env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TF_CONFIG": json.dumps(tf_config)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outputs = []
    try:
        for process in processes:
            stdout, stderr = process.communicate(timeout=300)
            assert process.returncode == 0, stderr[-3000:]
            outputs.append(json.loads(stdout.strip().splitlines()[-1]))
    except subprocess.TimeoutExpired:
        pytest.fail("the two workers did not finish within 300 s")
    finally:
        for process in processes:
            process.kill()
    for found in outputs:
        assert found["replicas"] == 2, "the two workers formed one cluster"
        assert "keras-team/keras#20585" in found["refusal"] and "--shard" in found["refusal"]
