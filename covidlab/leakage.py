"""Patient leakage: one model scored under an image-level and a patient-level split.

A random image split can put images of one patient in both the training and the test set; the
model then recognises the patient rather than the disease. Splitting by patient removes that.
:func:`leakage_experiment` draws both kinds of split for several seeds and lets the caller
score a model on each (a scikit-learn estimator on fixed features, :func:`fit_on_features`, or
a Keras model trained per split); :func:`leakage_summary` pairs the two splits of each seed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from statistics import NormalDist

import numpy as np
import pandas as pd

from covidlab.data import holdout_split
from covidlab.metrics import confusion_from_labels

#: The two ways of drawing a test set: by image (``group=None``) or by patient.
SPLITS = {"image-level": None, "patient-level": "patient_id"}

#: The column counting test images whose patient also has an image in the training set.
LEAKED = "test_images_with_patient_in_train"

#: ``evaluate(train_df, test_df, seed, split)`` -> the columns a split adds to its row.
Evaluate = Callable[[pd.DataFrame, pd.DataFrame, int, str], Mapping[str, object]]


def leaked_test_images(train_df: pd.DataFrame, test_df: pd.DataFrame) -> int:
    """How many test images have a patient with an image in the training set."""
    return int(test_df["patient_id"].isin(set(train_df["patient_id"])).sum())


def leakage_experiment(
    manifest: pd.DataFrame,
    evaluate: Evaluate | None = None,
    *,
    seeds: Iterable[int] = range(10),
    test_fraction: float = 0.3,
) -> pd.DataFrame:
    """Both kinds of split (:data:`SPLITS`) for each seed, with what ``evaluate`` measures.

    The image-level split (``data.holdout_split(group=None)``) may put images of one patient in
    both training and test sets; the patient-level split (``group="patient_id"``) cannot. One
    row per seed and split: ``seed``, ``split``, ``n_test``, :data:`LEAKED`, then the columns
    ``evaluate`` returns for that split (e.g. ``score`` and ``confusion``). Without
    ``evaluate`` only the splits are counted; no image is read.
    """
    rows = []
    for seed in seeds:
        for split, group in SPLITS.items():
            train_df, test_df = holdout_split(manifest, test_fraction, seed=seed, group=group)
            row = {
                "seed": seed,
                "split": split,
                "n_test": len(test_df),
                LEAKED: leaked_test_images(train_df, test_df),
            }
            if evaluate is not None:
                row.update(evaluate(train_df, test_df, seed, split))
            rows.append(row)
    return pd.DataFrame(rows)


def fit_on_features(
    manifest: pd.DataFrame,
    features: np.ndarray,
    make_estimator: Callable[[], object],
    *,
    score: Callable[[np.ndarray, np.ndarray], float] | None = None,
) -> Evaluate:
    """An ``evaluate`` for :func:`leakage_experiment`: a fresh scikit-learn estimator fitted
    on the training images' rows of ``features`` (one row per image of ``manifest``, in its
    order) and scored on the test images.

    Adds ``score`` (balanced accuracy by default) and the test ``confusion`` matrix (classes in
    sorted order, as a nested list).
    """
    from sklearn.metrics import balanced_accuracy_score

    score = score or balanced_accuracy_score
    classes = sorted(manifest["label"].unique())
    if manifest["path"].duplicated().any():
        raise ValueError("each image must appear once in the manifest: its path finds its row")
    # the splits renumber their rows: find each image's features by its path
    row_of = pd.Series(np.arange(len(manifest)), index=manifest["path"].to_numpy())

    def evaluate(train_df, test_df, seed, split):
        train_rows = row_of[train_df["path"].to_numpy()].to_numpy()
        test_rows = row_of[test_df["path"].to_numpy()].to_numpy()
        estimator = make_estimator().fit(features[train_rows], train_df["label"])
        predicted = estimator.predict(features[test_rows])
        return {
            "score": score(test_df["label"], predicted),
            "confusion": confusion_from_labels(
                list(test_df["label"]), list(predicted), classes
            ).tolist(),
        }

    return evaluate


def leakage_summary(results: pd.DataFrame, confidence: float | None = None) -> pd.DataFrame:
    """Mean, sd and standard error of the mean per split and of the paired gap.

    The gap is image-level minus patient-level ``score`` of the same seed. With ``confidence``
    (e.g. 0.95), ``ci_low`` / ``ci_high`` add the normal interval of the mean over seeds,
    mean +- z se; the seeds' test sets overlap, so it is on the narrow side.
    """
    wide = results.pivot(index="seed", columns="split", values="score")
    wide["gap"] = wide["image-level"] - wide["patient-level"]
    summary = wide.agg(["mean", "std", "count"]).T.rename(columns={"std": "sd"})
    summary["se"] = summary["sd"] / np.sqrt(summary["count"])
    summary = summary.drop(columns="count")
    if confidence is not None:
        z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
        # a score lies in [0, 1], the gap between two scores in [-1, 1]
        floor = np.where(summary.index == "gap", -1.0, 0.0)
        summary["ci_low"] = np.maximum(summary["mean"] - z * summary["se"], floor)
        summary["ci_high"] = np.minimum(summary["mean"] + z * summary["se"], 1.0)
    return summary
