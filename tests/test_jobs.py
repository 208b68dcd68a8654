"""Jobs: one (paper, model, fold) per result file, shardable, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from covidlab import jobs, profiles, results

REPO_ROOT = Path(__file__).resolve().parent.parent


def test_apostolopoulos_paper_run_is_fifty_jobs_and_shards_cover_them_once():
    config = profiles.resolve("apostolopoulos", "paper")
    planned = jobs.plan("apostolopoulos", config)
    assert len(planned) == 5 * 10  # five backbones x ten folds
    for count in (1, 3, 4, 7):
        shards = [jobs.shard(planned, index, count) for index in range(1, count + 1)]
        names = [job.name for part in shards for job in part]
        assert sorted(names) == sorted(job.name for job in planned), "shards cover every job"
        assert len(names) == len(set(names)), "and no job twice"
    assert jobs.shard(planned, 2, 4) == jobs.shard(list(reversed(planned)), 2, 4)
    with pytest.raises(ValueError, match="1 <= I <= N"):
        jobs.shard(planned, 5, 4)


def test_select_and_hold_out_jobs():
    config = profiles.resolve("soares", "paper")
    planned = jobs.plan("soares", config)
    assert [job.name for job in planned] == ["VGG16", "ResNet50", "Xception"]
    assert [job.name for job in jobs.select(planned, models=["ResNet50"])] == ["ResNet50"]
    coronet = jobs.plan("coronet", profiles.resolve("coronet", "paper"))
    assert [job.name for job in jobs.select(coronet, folds=[2, 4])] == [
        "CoroNet-fold2",
        "CoroNet-fold4",
    ]


# A job whose training can be watched and killed: 6 epochs of MobileNetV2 on synthetic images,
# half a second of sleep per epoch so that the kill lands in the middle.
JOB_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import keras
    from covidlab import data, jobs, profiles, synthetic, train

    out = sys.argv[1]
    config = profiles.resolve("covidx_net", "smoke", models=("MobileNetV2",), epochs=6,
                              image_size=(32, 32), max_per_class=6)
    manifest = synthetic.synthetic_manifest(out + "/images", config.classes, 6, image_size=(32, 32))
    job = jobs.plan("covidx_net", config)[0]

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            print("epoch", epoch + 1, flush=True)
            time.sleep(0.5)

    fit = train.fit
    def slow_fit(*args, callbacks=(), **kwargs):
        return fit(*args, callbacks=[*callbacks, Slow()], **kwargs)
    train.fit = slow_fit
    result = jobs.run_job(job, manifest, config, out, verbose=0)
    print("epochs in result", len(result["history"]["loss"]), flush=True)
    """
)


def test_a_killed_job_continues_from_its_last_epoch(tmp_path: Path):
    script = tmp_path / "job.py"
    script.write_text(JOB_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COVIDLAB_DATA_DIR": str(tmp_path)}
    command = [sys.executable, str(script), str(tmp_path / "out")]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    started = time.time()
    for line in first.stdout:
        if line.startswith("epoch 3"):
            break
        assert time.time() - started < 240, "the job did not reach epoch 3"
    first.send_signal(signal.SIGKILL)
    first.wait()
    result_file = tmp_path / "out" / "smoke" / "covidx_net" / "MobileNetV2.json"
    assert not result_file.exists(), "a killed job writes no result"

    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    resumed_epochs = [line for line in second.stdout.splitlines() if line.startswith("epoch ")]
    assert resumed_epochs and resumed_epochs[0] != "epoch 1", "it resumed, not restarted"
    assert "epochs in result 6" in second.stdout
    saved = json.loads(result_file.read_text())
    assert len(saved["history"]["loss"]) == 6
    assert saved["provenance"]["manifest_sha256"] and saved["settings"]["epochs"] == 6
    assert not (result_file.parent / "MobileNetV2.backup").exists(), "the backup is removed"
    # a finished job is skipped, and the results module reads its file
    table = results.profile_results("covidx_net", profile="smoke", directory=tmp_path / "out")
    assert table.loc["MobileNetV2", "test images"] == sum(map(sum, saved["confusion"]))


def test_report_merges_folds_and_names_the_missing_ones(tmp_path: Path, capsys):
    folder = tmp_path / "paper" / "coronet"
    folder.mkdir(parents=True)
    classes = ["covid", "normal", "bacterial", "viral"]
    for fold in (1, 3):
        cm = [[9, 1, 0, 0], [0, 8, 1, 1], [0, 1, 8, 1], [0, 0, 2, 8]]
        job = {
            "paper": "coronet",
            "model": "CoroNet",
            "fold": fold,
            "profile": "paper",
            "classes": classes,
            "confusion": cm,
            "wall_seconds": 12.0,
        }
        (folder / f"CoroNet-fold{fold}.json").write_text(json.dumps(job))
    merged = jobs.report("coronet", tmp_path)
    assert list(merged["per_fold"]["fold"]) == [1, 3]
    assert merged["summary"].loc[0, "confusion (rows true, columns predicted)"][0] == [18, 2, 0, 0]
    assert merged["missing"] == "CoroNet-fold2, CoroNet-fold4"
    assert jobs.main(["report", "coronet", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "missing jobs" in out and "CoroNet-fold2" in out
    assert jobs.main(["report", "coronet", "--results", str(tmp_path), "--format", "json"]) == 0


def test_command_line_errors_are_one_line(tmp_path: Path, capsys):
    assert jobs.main(["run", "coronet", "--shard", "two/4", "--out", str(tmp_path)]) == 1
    assert "--shard 2/4" in capsys.readouterr().err
    assert jobs.main(["run", "soares", "--fold", "2", "--profile", "smoke"]) == 1
    assert "hold-out" in capsys.readouterr().err
    assert jobs.main(["report", "soares", "--results", str(tmp_path)]) == 1
    assert "covidlab run soares" in capsys.readouterr().err


def test_a_chapter_run_and_covidlab_run_write_the_same_results(tmp_path: Path, monkeypatch):
    """Chapters train through jobs.run_paper, the command through run_job: same train_job."""
    import numpy as np

    from covidlab import synthetic, train

    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    config = profiles.resolve(
        "aboughazala", "smoke", epochs=2, image_size=(32, 32), max_per_class=6, n_splits=2
    )
    manifest = synthetic.synthetic_manifest(
        tmp_path / "images", config.classes, 6, image_size=(32, 32)
    )
    chapter = jobs.run_paper("aboughazala", manifest, config, out_dir=tmp_path / "chapter")
    command = jobs.run_jobs(
        jobs.plan("aboughazala", config), manifest, config, tmp_path / "command", verbose=0
    )
    cv = chapter["ResNet50"]
    assert isinstance(cv, train.CVResult) and len(cv.folds) == len(command) == 2
    assert cv.summed_confusion.tolist() == np.sum([r["confusion"] for r in command], 0).tolist()
    for result in command:
        name = f"ResNet50-fold{result['fold']}.json"
        written = json.loads((tmp_path / "chapter" / "smoke" / "aboughazala" / name).read_text())
        for key in ("confusion", "y_true", "n_train", "n_test", "settings", "classes"):
            assert written[key] == result[key], key
        np.testing.assert_allclose(written["y_prob"], result["y_prob"], atol=1e-5)
        assert written["history"].keys() == result["history"].keys()
        np.testing.assert_allclose(written["history"]["loss"], result["history"]["loss"], rtol=1e-5)
        same = ("manifest_sha256", "tensorflow", "keras", "device")
        assert {k: written["provenance"][k] for k in same} == {
            k: result["provenance"][k] for k in same
        }


def test_a_hold_out_job_keeps_the_papers_validation_set(tmp_path: Path, monkeypatch):
    from covidlab import data, synthetic

    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    config = profiles.resolve(
        "soares", "smoke", models=("VGG16",), epochs=1, image_size=(32, 32), max_per_class=10
    )
    manifest = synthetic.synthetic_manifest(
        tmp_path / "images", config.classes, 10, image_size=(32, 32), patients_per_class=10
    )
    (job,) = jobs.plan("soares", config)
    train_df, validation_df, test_df = jobs.split_for(job, manifest, config)
    expected = data.train_validation_test_split(
        manifest, config.test_fraction, config.validation_fraction, seed=config.seed
    )
    assert [len(part) for part in expected] == [len(train_df), len(validation_df), len(test_df)]
    run, result = jobs.train_job(job, manifest, config)
    assert result["n_validation"] == len(validation_df) > 0
    assert "val_loss" in result["history"] and run.confusion.sum() == len(test_df)
