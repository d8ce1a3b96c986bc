"""The per-epoch training-metrics file the source system wrote (``training_metrics.txt``).

One tab-separated row per epoch of each run (a fold model, a seed, or the final model): train
loss, then on the split that run was stopped on its loss, accuracy, weighted F1 and precision,
recall and F1 per class. A final model trained for a fixed epoch count has no such split: its rows
carry the train loss only (empty cells).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mmsent.io import write_text

FIRST = ["run", "epoch", "train_loss", "dev_loss", "dev_acc", "dev_weighted_f1"]


def path_for(checkpoint: str | Path) -> Path:
    """Beside a checkpoint: ``my_model.pt`` → ``my_model.training_metrics.txt``."""
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.training_metrics.txt")


def table(runs: list[tuple[str, list[dict[str, Any]]]]) -> pd.DataFrame:
    rows = [{"run": name, **{k: v for k, v in h.items() if k not in ("fold", "seed")}} for name, hist in runs
            for h in hist]
    df = pd.DataFrame(rows)
    per_class = [c for c in df.columns if c.startswith(("dev_precision_", "dev_recall_", "dev_f1_"))]
    return df.reindex(columns=FIRST + per_class)  # a run without a dev split leaves its cells empty


def write(path: str | Path, runs: list[tuple[str, list[dict[str, Any]]]]) -> Path:
    """``runs``: (name, per-epoch history) pairs, written atomically."""
    return write_text(path, table(runs).to_csv(sep="\t", index=False, float_format="%.4f"))


def read(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t")
