"""Tests for covidlab.benchmark: one split for all, results file, leaderboard."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from covidlab import benchmark, data, papers, profiles, synthetic
from covidlab.chapters import benchmark as chapter
from covidlab.chapters import external as external_chapter


def test_methods_are_real_paper_models():
    assert set(benchmark.METHODS) == set(papers.ALL)
    for key, method in benchmark.METHODS.items():
        assert method.paper_key == key
        assert method.model_name in papers.get(key).models


def test_common_split_is_patient_disjoint_and_stratified(tmp_path):
    manifest = synthetic.synthetic_manifest(
        tmp_path, benchmark.CLASSES, 12, image_size=(32, 32), patients_per_class=6
    )
    train_df, test_df = benchmark.common_split(manifest, seed=0)
    data.assert_patient_disjoint(train_df, test_df)
    assert set(test_df["label"]) == set(benchmark.CLASSES)
    assert len(train_df) + len(test_df) == len(manifest)


def test_record_reads_the_confusion_matrix():
    config = profiles.resolve("soares", "smoke", classes=benchmark.CLASSES)
    cm = np.array([[8, 1, 1], [0, 9, 1], [2, 0, 8]])  # rows: covid, normal, pneumonia
    record = benchmark._record(
        benchmark.METHODS["soares"], config, cm, {"total": 10, "trainable": 5}, 1.5
    )
    assert (record["correct"], record["n_test"]) == (25, 30)
    assert record["accuracy"] == pytest.approx(25 / 30)
    assert record["ci_low"] < record["accuracy"] < record["ci_high"]
    assert record["covid_sensitivity"] == pytest.approx(8 / 10)
    assert record["covid_specificity"] == pytest.approx(18 / 20)
    assert record["backbone"] == "VGG16"
    assert record["balanced_accuracy"] == pytest.approx((8 / 10 + 9 / 10 + 8 / 10) / 3)
    assert record["largest_class_share"] == pytest.approx(10 / 30)  # columns 10, 10, 10
    json.dumps(record)  # the record must be JSON-serialisable


def test_the_benchmarks_demo_recipe_changes_only_covidx_net_and_says_so():
    for key in benchmark.METHODS:
        config = benchmark.method_config(key, "demo")
        unchanged = profiles.resolve(key, "demo", classes=benchmark.CLASSES)
        assert config.classes == benchmark.CLASSES
        changes = benchmark.DEMO_RECIPE.get(key, {})
        for name in ("epochs", "learning_rate", "optimizer", "batch_size", "image_size"):
            assert getattr(config, name) == changes.get(name, getattr(unchanged, name))
        assert ("the benchmark's demo recipe" in config.notes) == bool(changes)
    assert set(benchmark.DEMO_RECIPE) == {"covidx_net"}
    assert "learning rate 0.005" in benchmark.describe("demo")
    paper = benchmark.method_config("covidx_net", "paper")
    assert paper.epochs == papers.get("covidx_net").epochs  # the paper profile is untouched
    assert paper.learning_rate == papers.get("covidx_net").learning_rate
    table = chapter.settings_table("demo")
    assert list(table.index) == [m.label for m in benchmark.METHODS.values()]


def _fake_results(intervals=((0.5, 0.1), (0.8, 0.1))):
    records = []
    for key, (accuracy, half) in zip(("soares", "coronet"), intervals, strict=True):
        records.append(
            {
                "method": benchmark.METHODS[key].label,
                "paper": key,
                "accuracy": accuracy,
                "ci_low": accuracy - half,
                "ci_high": accuracy + half,
                "covid_sensitivity": 0.5,
                "covid_specificity": 0.5,
                "input_size": [64, 64],
                "epochs": 1,
                "parameters": {"total": 100, "trainable": 50},
                "wall_seconds": 1.0,
            }
        )
    return {"profile": "smoke", "results": records, "test_counts": {"covid": 2, "normal": 6}}


def test_leaderboard_sorts_and_adds_the_papers_claim(tmp_path):
    path = benchmark.write_results(_fake_results(), tmp_path / "r.json")
    table = benchmark.leaderboard(benchmark.read_results(path))
    assert list(table["paper"]) == ["coronet", "soares"]
    assert table.loc[1, "paper's claim"] == pytest.approx(0.896)  # CoroNet Table III
    assert chapter.majority_baseline(benchmark.read_results(path)) == 0.75
    fig = chapter.plot_leaderboard(table, baseline=0.75, caption="test")
    assert len(fig.axes[0].get_yticklabels()) == 2
    assert fig.number not in plt.get_fignums()  # not kept by pyplot: a notebook draws it once
    assert "test" in [text.get_text() for text in fig.findobj(Text)]  # the caption


def test_leaderboard_ranks_by_balanced_accuracy_from_the_confusion_matrix():
    results = _fake_results()
    # soares: higher accuracy on a lopsided test set, but it answers one class
    results["results"][0]["confusion"] = [[0, 0, 2], [0, 0, 2], [0, 0, 16]]
    results["results"][1]["confusion"] = [[2, 0, 0], [0, 1, 1], [0, 3, 13]]
    table = benchmark.leaderboard(results)
    assert list(table["paper"]) == ["coronet", "soares"]
    assert table.loc[2, "balanced accuracy"] == pytest.approx(1 / 3)
    assert table.loc[2, "largest class share"] == pytest.approx(1.0)
    claims = chapter.claims_table(results)
    assert list(claims.columns) == ["paper's claim", "test images", "what it measures"]


def test_overlapping_intervals_cannot_rank():
    apart = benchmark.leaderboard(_fake_results(((0.5, 0.1), (0.8, 0.1))))
    assert chapter.interval_overlaps(apart)["overlapping intervals"].eq(0).all()
    assert "measurably better than every other" in chapter.ranking_summary(apart)
    close = benchmark.leaderboard(_fake_results(((0.7, 0.15), (0.8, 0.15))))
    overlaps = chapter.interval_overlaps(close)
    assert overlaps["overlapping intervals"].eq(1).all()
    assert "cannot put those in order" in chapter.ranking_summary(close)


def test_confusion_and_per_class_tables_have_one_block_per_method():
    config = profiles.resolve("soares", "smoke", classes=benchmark.CLASSES)
    cm = np.array([[8, 1, 1], [0, 9, 1], [2, 0, 8]])
    records = [
        benchmark._record(benchmark.METHODS[key], config, cm, {"total": 1, "trainable": 1}, 1.0)
        for key in ("soares", "coronet")
    ]
    results = {"classes": list(benchmark.CLASSES), "results": records}
    confusions = chapter.confusion_table(results)
    assert confusions.shape == (6, 3)
    assert confusions.loc[(records[0]["method"], "covid"), "predicted covid"] == 8
    assert chapter.per_class_table(results).shape[0] == 2 * (len(benchmark.CLASSES) + 1)


def test_read_results_rejects_other_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        benchmark.read_results(bad)
    bad.write_text(json.dumps({"x": 1}))
    with pytest.raises(ValueError, match="not a benchmark results file"):
        benchmark.read_results(bad)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="unknown method"):
        benchmark.run_benchmark("smoke", ["nope"])


def test_cli_smoke_run_writes_results(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow")
    monkeypatch.setenv("COVIDLAB_DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "smoke.json"
    assert benchmark.main(["--profile", "smoke", "--methods", "soares", "--out", str(out)]) == 0
    results = benchmark.read_results(out)
    assert results["profile"] == "smoke" and results["classes"] == list(benchmark.CLASSES)
    (record,) = results["results"]
    assert record["n_test"] == results["n_test"] == sum(results["test_counts"].values())
    assert record["parameters"]["total"] > record["parameters"]["trainable"] > 0  # frozen base
    assert isinstance(pd.DataFrame(record["confusion"]).to_numpy().sum(), np.integer)
    # the external test: synthetic on smoke, every external image answered, scored per group
    outside = record["external"]
    assert (
        len(outside["predicted"])
        == len(results["external_files"])
        == outside["sensitivity_counts"][1] + outside["specificity_counts"][1]
    )
    assert sum(sum(row.values()) for row in outside["by_group"].values()) == len(
        outside["predicted"]
    )
    board = benchmark.leaderboard(results)
    assert board.loc[1, "external"] == pytest.approx(
        (outside["sensitivity"] + outside["specificity"]) / 2
    )
    assert set(external_chapter.external_table(results).index.get_level_values("test")) == {
        "internal",
        "external",
    }


def test_load_or_run_reads_a_file_made_with_the_same_settings_only(tmp_path, monkeypatch):
    config = benchmark.method_config("soares", "smoke")
    cm = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    record = benchmark._record(
        benchmark.METHODS["soares"], config, cm, {"total": 1, "trainable": 1}, 1
    )
    record["external"] = {"sensitivity": 0.5, "specificity": 0.5}
    stored = {"profile": "smoke", "seed": 0, "external_patients": [], "results": [record]}
    path = benchmark.write_results(stored, tmp_path / "smoke.json")
    calls = []
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *a, **k: calls.append(a) or stored)
    assert benchmark.load_or_run("smoke", ["soares"], path=path) == stored
    assert not calls  # read, not trained
    record["epochs"] += 1  # made by another version of the benchmark
    benchmark.write_results(stored, path)
    benchmark.load_or_run("smoke", ["soares"], path=path)
    assert len(calls) == 1  # trained again
    record["epochs"] -= 1
    del record["external"]  # made before the external test existed
    benchmark.write_results(stored, path)
    benchmark.load_or_run("smoke", ["soares"], path=path)
    assert len(calls) == 2


def test_two_runs_at_once_train_once(tmp_path, monkeypatch):
    """Chapters 10 and 11 may run in parallel: the second waits for the first and reads."""
    import threading
    import time

    config = benchmark.method_config("soares", "smoke")
    cm = np.eye(3, dtype=int)
    record = benchmark._record(
        benchmark.METHODS["soares"], config, cm, {"total": 1, "trainable": 1}, 1
    )
    record["external"] = {"sensitivity": 0.5, "specificity": 0.5}
    made = {"profile": "smoke", "seed": 0, "external_patients": [], "results": [record]}
    calls = []

    def slow_run(*args, **kwargs):
        calls.append(args)
        time.sleep(0.5)
        return made

    monkeypatch.setattr(benchmark, "run_benchmark", slow_run)
    path = tmp_path / "smoke.json"
    answers = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(benchmark.load_or_run("smoke", ["soares"], path=path))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1 and answers == [made, made]
