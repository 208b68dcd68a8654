"""Tests for covidlab.benchmark: one split for all, results file, leaderboard."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text

from covidlab import benchmark, data, external_set, papers, profiles, synthetic
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
    assert record["classes_never_predicted"] == []
    json.dumps(record)  # the record must be JSON-serialisable


def _collapsed_record(key: str, profile: str = "demo") -> dict:
    """A record of ``key`` whose model called every normal test image pneumonia."""
    config = benchmark.method_config(key, profile)
    cm = np.array([[15, 0, 0], [0, 0, 15], [0, 0, 31]])
    counts = {"total": 14_755_731, "trainable": 41_043, "non_trainable": 14_714_688}
    return benchmark._record(benchmark.METHODS[key], config, cm, counts, 1.0)


def test_never_predicted_text_names_the_class_where_it_went_and_the_cause():
    soares = _collapsed_record("soares")  # frozen VGG16, random weights on demo
    text = benchmark.never_predicted_text(soares)
    assert text.startswith("Soares (VGG16) never predicts normal")
    assert "15 normal test images were called: pneumonia 15" in text
    assert "frozen" in text and "random" in text and "41,043 of 14,755,731" in text
    # COVIDX-Net trains its whole VGG19: the frozen-base cause does not apply
    covidx = benchmark.never_predicted_text(_collapsed_record("covidx_net"))
    assert "frozen" not in covidx and "do not explain it" in covidx
    # on the paper profile the frozen base has ImageNet weights: not that cause either
    assert "frozen" not in benchmark.never_predicted_text(_collapsed_record("soares", "paper"))
    config = benchmark.method_config("soares", "demo")
    learned = benchmark._record(
        benchmark.METHODS["soares"],
        config,
        np.eye(3, dtype=int) * 5,
        {"total": 1, "trainable": 1},
        1,
    )
    assert benchmark.never_predicted_text(learned) == ""


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
                "classes_never_predicted": [],
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
    results["results"][0]["classes_never_predicted"] = ["covid", "normal"]
    results["results"][1]["confusion"] = [[2, 0, 0], [0, 1, 1], [0, 3, 13]]
    table = benchmark.leaderboard(results)
    assert list(table["paper"]) == ["coronet", "soares"]
    assert table.loc[2, "balanced accuracy"] == pytest.approx(1 / 3)
    assert table.loc[2, "largest class share"] == pytest.approx(1.0)
    assert list(table["never predicts"]) == ["none", "covid, normal"]
    # every text and figure that ranks the methods marks the one that never predicts a class
    summary = chapter.baseline_summary(table, baseline=0.5)
    assert "Soares (VGG16), which never predicts covid, normal" in summary
    fig = chapter.plot_leaderboard(table)
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == ["CoroNet (CoroNet)", "Soares (VGG16)\n(never predicts covid, normal)"]
    results["results"][1]["accuracy"] = 0.2  # now the collapsed model tops the table
    results["results"][1]["confusion"] = [[0, 0, 2], [0, 0, 2], [0, 0, 16]]
    assert "**Soares (VGG16), which never predicts covid, normal**" in chapter.ranking_summary(
        benchmark.leaderboard(results)
    )
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
    assert board.loc[1, "external (COVID-19 vs normal)"] == pytest.approx(
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
    record["external"] = {"sensitivity": 0.5, "specificity": 0.5}
    del record["classes_never_predicted"]  # made before the key existed
    benchmark.write_results(stored, path)
    benchmark.load_or_run("smoke", ["soares"], path=path)
    assert len(calls) == 3


def test_load_or_run_prints_nothing(tmp_path, monkeypatch, capsys):
    config = benchmark.method_config("soares", "smoke")
    record = benchmark._record(
        benchmark.METHODS["soares"], config, np.eye(3, dtype=int), {"total": 1, "trainable": 1}, 1
    )
    record["external"] = {"sensitivity": 0.5, "specificity": 0.5}
    made = {"profile": "smoke", "seed": 0, "external_patients": [], "results": [record]}
    monkeypatch.setattr(benchmark, "run_benchmark", lambda *a, **k: made)
    path = tmp_path / "smoke.json"
    benchmark.load_or_run("smoke", ["soares"], path=path)  # trains (here: the stand-in)
    benchmark.load_or_run("smoke", ["soares"], path=path)  # reads
    assert capsys.readouterr().out == ""


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


def _external_results() -> dict:
    """Two demo records with an external test of 20 COVID-19 and 20 normal images: Soares
    never predicts normal (and calls every external image COVID-19), CoroNet predicts every
    class inside and calls 18 of the external normal images COVID-19."""
    classes = benchmark.CLASSES
    groups = ("A COVID-19",) * 20 + ("A no finding",) * 20
    labels = ("covid",) * 20 + ("normal",) * 20
    records = []
    for key, cm, predicted in (
        ("soares", [[20, 0, 0], [0, 0, 20], [0, 0, 20]], ("covid",) * 40),
        (
            "coronet",
            [[20, 0, 0], [0, 17, 3], [0, 0, 20]],
            ("covid",) * 38 + ("normal",) * 2,
        ),
    ):
        config = benchmark.method_config(key, "demo")
        counts = {"total": 100, "trainable": 10}
        record = benchmark._record(benchmark.METHODS[key], config, np.array(cm), counts, 1.0)
        record["external"] = external_set.ExternalResult(
            classes, groups, labels, predicted
        ).to_json()
        records.append(record)
    return {
        "classes": list(classes),
        "results": records,
        "external_patients": [f"p{i}" for i in range(40)],
    }


def test_chapter_10_leaves_a_model_that_never_says_normal_out_of_the_evidence():
    results = _external_results()
    soares, coronet = results["results"]
    assert not external_chapter.answers_covid_and_normal(soares)
    assert external_chapter.answers_covid_and_normal(coronet)
    findings = external_chapter.external_findings(results).splitlines()
    assert "left out of the evidence" in findings[0] and "never predicts normal" in findings[0]
    assert "drops" not in findings[0]
    assert "specificity vs normal **drops** (1.00 -> 0.10)" in findings[1]
    assert "normal called normal 17/20 inside, 2/20 outside" in findings[1]
    table = external_chapter.external_table(results)
    assert list(table.columns) == [
        "COVID-19 sensitivity",
        "specificity vs normal",
        "normal called normal",
    ]
    assert table.loc[("Soares", "internal"), "normal called normal"] == "0/20"
    fig = external_chapter.plot_external(results)
    labels = [label.get_text() for label in fig.axes[0].get_yticklabels()]
    assert labels == ["Soares\n(never predicts normal)", "CoroNet"]


def test_chapter_10_reading_is_written_from_the_models_it_keeps():
    results = _external_results()
    text = external_chapter.reading_summary(results)
    assert text.startswith("Left out: Soares (VGG16), which never predicts normal")
    # the numbers are CoroNet's alone: Soares' internal specificity of 1.00 would not change
    # the range, but its 0 normal images called normal would
    assert "Inside (the other model): specificity vs normal 1.00, COVID-19 sensitivity 1.00" in text
    assert "it calls 17 of the 20 internal normal images normal" in text
    assert "its specificity vs normal 0.10" in text
    assert (
        "of the 20 external normal images (A no finding) it calls 18 COVID-19 and 2 normal" in text
    )
    assert "a real drop" in text
    results["results"] = results["results"][:1]
    assert "no evidence either way" in external_chapter.reading_summary(results)
