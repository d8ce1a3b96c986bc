"""Metrics (all from scikit-learn), per-example predictions, and mean ± std over seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from mmsent.data.labels import ID2LABEL, LABELS
from mmsent.io import atomic_path, write_json

HEADLINE = ("accuracy", "weighted_f1", "macro_f1")
SHORT = {"accuracy": "acc", "weighted_f1": "wf1", "macro_f1": "mf1"}


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


def markdown_table(df: pd.DataFrame, **kwargs: Any) -> str:
    """A table as markdown, with a dash where a value is missing (never ``nan``)."""
    return df.astype(object).where(df.notna(), "–").to_markdown(index=False, **kwargs)


def fmt(stat: dict[str, float]) -> str:
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def fmt_interval(metrics: dict[str, Any], key: str) -> str:
    """A metrics file's 95 % bootstrap interval over test pairs (``test_interval``), as text; "–" without one."""
    interval = metrics.get("test_interval")
    return f"[{interval[key][0]:.1f}, {interval[key][1]:.1f}]" if interval else "–"


def weighted_f1_batch(gold: np.ndarray, pred: np.ndarray, k: int = 3) -> np.ndarray:
    """Weighted F1 of each row of ``gold``/``pred`` (shape (reps, n)), from bincount confusion
    matrices: the same values as scikit-learn's (tested), and thousands of resamples in one call,
    which the bootstrap needs (resamples x seeds x model pairs)."""
    gold, pred = np.atleast_2d(gold), np.atleast_2d(pred)
    rows = len(gold)
    codes = (np.arange(rows)[:, None] * k * k + gold * k + pred).ravel()
    cm = np.bincount(codes, minlength=rows * k * k).reshape(rows, k, k)
    tp = np.diagonal(cm, axis1=1, axis2=2).astype(float)
    support, predicted = cm.sum(2), cm.sum(1)
    denom = support + predicted
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return (f1 * support).sum(1) / np.maximum(support.sum(1), 1)


def weighted_f1_fast(gold: np.ndarray, pred: np.ndarray, k: int = 3) -> float:
    """Weighted F1 of one prediction vector (see weighted_f1_batch)."""
    return float(weighted_f1_batch(gold, pred, k)[0])


def bootstrap_scores(gold: np.ndarray, pred: np.ndarray, reps: int = 2000, seed: int = 0) -> np.ndarray:
    """(2, seeds, reps + 1): accuracy and weighted F1 (%) of each seed's predictions (rows of
    ``pred``) on the test examples as they are (column 0) and on ``reps`` bootstrap resamples.
    Every model scored with the same ``seed`` sees the same resamples, so one model's scores serve
    all its pairs (paired bootstrap), and every resample is scored at once (one index matrix)."""
    rng = np.random.default_rng(seed)
    n = len(gold)
    idx = np.vstack([np.arange(n)[None, :], rng.integers(0, n, (reps, n))])
    g = gold[idx]
    acc = np.stack([(p[idx] == g).mean(1) for p in pred])
    wf1 = np.stack([weighted_f1_batch(g, p[idx]) for p in pred])
    return 100 * np.stack([acc, wf1])


def bootstrap_interval(gold: np.ndarray, pred: np.ndarray, reps: int = 1000, seed: int = 0) -> dict[str, list[float]]:
    """95 % percentile intervals over test pairs (bootstrap) of the seed-averaged accuracy and
    weighted F1 (%), ``pred`` being (seeds, n) label arrays: what another draw of test pairs moves."""
    scores = bootstrap_scores(np.asarray(gold), np.atleast_2d(pred), reps, seed).mean(1)[:, 1:]
    return {key: [float(v) for v in np.percentile(row, [2.5, 97.5])]
            for key, row in zip(("accuracy", "weighted_f1"), scores)}


def scores(summary: dict[str, Any]) -> dict[str, float]:
    """The numbers of a metrics record that `dvc metrics show` prints: test accuracy, weighted and
    macro F1 as mean and std over seeds (%), and the cross-validated weighted F1 where there is one."""
    out = {}
    for key, short in SHORT.items():
        out[short], out[f"{short}_std"] = round(summary[key]["mean"], 2), round(summary[key]["std"], 2)
    if "cv" in summary:
        out["cv_wf1"] = round(summary["cv"]["weighted_f1"]["mean"], 2)
    return out


def write_scores(folder: str | Path, name: str, summary: dict[str, Any]) -> Path:
    return write_json(Path(folder) / f"{name}.json", scores(summary))
