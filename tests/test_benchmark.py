"""Tests for covidlab.benchmark: one split for all, results file, leaderboard."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from covidlab import benchmark, data, papers, profiles


def test_methods_are_real_paper_models():
    assert set(benchmark.METHODS) == set(papers.ALL)
    for key, method in benchmark.METHODS.items():
        assert method.paper_key == key
        assert method.model_name in papers.get(key).models


def test_common_split_is_patient_disjoint_and_stratified(tmp_path):
    manifest = data.synthetic_manifest(
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
    json.dumps(record)  # the record must be JSON-serialisable


def _fake_results():
    records = []
    for key, accuracy in (("soares", 0.5), ("coronet", 0.8)):
        records.append(
            {
                "method": benchmark.METHODS[key].label,
                "paper": key,
                "accuracy": accuracy,
                "ci_low": accuracy - 0.1,
                "ci_high": accuracy + 0.1,
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
    assert benchmark.majority_baseline(benchmark.read_results(path)) == 0.75
    fig = benchmark.plot_leaderboard(table, baseline=0.75, caption="test")
    assert len(fig.axes[0].get_yticklabels()) == 2
    assert fig.number not in plt.get_fignums()  # not kept by pyplot: a notebook draws it once
    assert "test" in [text.get_text() for text in fig.findobj(Text)]  # the caption


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
