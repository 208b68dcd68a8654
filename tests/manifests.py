"""Small hand-made manifests shared by several test modules (no image files behind them)."""

from __future__ import annotations

import pandas as pd


def manifest(paths, labels, patients=None) -> pd.DataFrame:
    """One row per path; one patient per image unless ``patients`` says otherwise."""
    return pd.DataFrame(
        {
            "path": [str(p) for p in paths],
            "label": labels,
            "patient_id": patients
            if patients is not None
            else [f"p{i}" for i in range(len(paths))],
            "source": "test",
        }
    )


def patient_manifest(n_patients: int = 20, per_patient: int = 3) -> pd.DataFrame:
    """``per_patient`` images of each of ``n_patients`` patients, labels alternating by patient."""
    rows = []
    for p in range(n_patients):
        for i in range(per_patient):
            rows.append(
                {
                    "path": f"/x/{p}_{i}.png",
                    "label": "covid" if p % 2 else "other",
                    "patient_id": f"p{p}",
                    "source": "t",
                }
            )
    return pd.DataFrame(rows)
