"""Patient leakage: image-level against patient-level splits."""

from __future__ import annotations

import numpy as np
import pytest
from manifests import patient_manifest as _patient_manifest

from covidlab import leakage


def test_leakage_experiment_shows_memorisation_gap():
    """Each patient has its own random 'fingerprint' and a random label: nothing generalises,
    but a 1-nearest-neighbour model recognises patients it has seen. Image-level splits score
    far above chance, patient-level splits near chance."""
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    manifest = _patient_manifest(40, 3)
    fingerprints = rng.normal(size=(40, 16))
    patient = manifest["patient_id"].str[1:].astype(int).to_numpy()
    features = fingerprints[patient] + 0.05 * rng.normal(size=(len(manifest), 16))
    results = leakage.leakage_experiment(
        manifest,
        leakage.fit_on_features(manifest, features, lambda: KNeighborsClassifier(1)),
        seeds=range(4),
    )
    assert set(results["split"]) == {"image-level", "patient-level"}
    patient_rows = results[results["split"] == "patient-level"]
    assert patient_rows["test_images_with_patient_in_train"].eq(0).all()
    summary = leakage.leakage_summary(results)
    assert summary.loc["image-level", "mean"] > 0.9
    assert summary.loc["patient-level", "mean"] < 0.75
    assert summary.loc["gap", "mean"] == pytest.approx(
        summary.loc["image-level", "mean"] - summary.loc["patient-level", "mean"]
    )


def test_counting_splits_reads_no_image_and_only_the_image_level_split_leaks():
    results = leakage.leakage_experiment(_patient_manifest(), seeds=range(3))
    assert list(results.columns) == ["seed", "split", "n_test", leakage.LEAKED]
    by_split = results.groupby("split")[leakage.LEAKED]
    assert by_split.sum()["patient-level"] == 0 < by_split.sum()["image-level"]
