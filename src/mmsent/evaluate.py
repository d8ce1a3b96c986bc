"""Metrics (all from scikit-learn), per-example predictions, and mean ± std over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from mmsent.io import atomic_path
from mmsent.labels import ID2LABEL, LABELS

HEADLINE = ("accuracy", "weighted_f1", "macro_f1")


def compute_metrics(labels: Sequence[int], predicted: Sequence[int]) -> dict[str, Any]:
    """Accuracy, weighted and macro F1, per-class precision/recall/F1/support, confusion matrix
    (rows = gold, columns = predicted, in ``LABELS`` order). Scores are percentages."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    ids = list(range(len(LABELS)))
    p, r, f, s = precision_recall_fscore_support(labels, predicted, labels=ids, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": 100 * float(accuracy_score(labels, predicted)),
        "weighted_f1": 100 * float(f1_score(labels, predicted, labels=ids, average="weighted", zero_division=0)),
        "macro_f1": 100 * float(f1_score(labels, predicted, labels=ids, average="macro", zero_division=0)),
        "per_class": {ID2LABEL[i]: {"precision": 100 * float(p[i]), "recall": 100 * float(r[i]),
                                    "f1": 100 * float(f[i]), "support": int(s[i])} for i in ids},
        "confusion_matrix": confusion_matrix(labels, predicted, labels=ids).tolist(),
    }


def predictions_frame(ids: Sequence[str], labels: Sequence[int], probs: np.ndarray,
                      extras: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """One row per example: id, gold, predicted (names), and a probability per label."""
    df = pd.DataFrame({"id": list(map(str, ids)), "gold": [ID2LABEL[int(i)] for i in labels],
                       "predicted": [ID2LABEL[int(i)] for i in probs.argmax(1)]})
    for i, name in ID2LABEL.items():
        df[f"p_{name}"] = probs[:, i]
    for key, value in (extras or {}).items():
        if value.ndim == 2 and value.shape[1] == 2:  # modality weights
            df[f"{key}_text"], df[f"{key}_image"] = value[:, 0], value[:, 1]
    return df


def save_frame(df: pd.DataFrame, path: str | Path) -> Path:
    with atomic_path(path, suffix=".csv") as tmp:
        df.to_csv(tmp, index=False)
    return Path(path)


def aggregate(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0 for one seed) of the headline and per-class F1 over seeds."""
    def stats(values: list[float]) -> dict[str, float]:
        arr = np.asarray(values, float)
        return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0}

    out = {key: stats([m[key] for m in per_seed]) for key in HEADLINE}
    out["per_class_f1"] = {name: stats([m["per_class"][name]["f1"] for m in per_seed]) for name in LABELS}
    out["seeds"] = len(per_seed)
    return out


def fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"
