"""How every choice is made: repeated stratified k-fold cross-validation over train + dev.

One 450-pair dev split has a standard error near 2 points of weighted F1, and the choices the
pipeline used to make on it (tuning trials, early-stopping epochs, keep/drop of a lever, the
shipped model) were decided by 0.1-0.3 points. So every choice is now made on the same folds of
train + dev (scikit-learn's ``RepeatedStratifiedKFold``, fixed by ``protocol.seed`` and written by
the ``folds`` stage to ``data/folds/<dataset>.csv``); test is read only by the final models.

Each fold model picks its epoch on an inner split of its own training part (``inner_fraction``),
so the fold that scores it has chosen nothing for it.

The rule (:func:`beats`): a candidate replaces the incumbent only when its mean fold score is
higher by more than the *corrected* standard error of the paired fold differences (Nadeau &
Bengio, 2003: the training sets of k-fold folds overlap, so the naive SE is several times too
small). Ties therefore go to the incumbent, which is the simpler model wherever candidates are
ordered simplest first (ablation rows add one lever each; tuning trials are ranked by size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedStratifiedKFold

from mmsent.config import Params
from mmsent.evaluation.metrics import save_frame
from mmsent.paths import FOLDS_DIR
from mmsent.sections import ProtocolConfig, test_train_ratio  # noqa: F401  (re-exported)





def protocol_config(params: Params) -> ProtocolConfig:
    return params.protocol


def make_folds(ids: list[str], labels: np.ndarray, cfg: ProtocolConfig) -> pd.DataFrame:
    """``id``, ``label_id`` and, per repeat ``r``, the column ``r<r>``: the fold that pair is held out in."""
    labels = np.asarray(labels, dtype=int)
    table = pd.DataFrame({"id": [str(i) for i in ids], "label_id": labels})
    splitter = RepeatedStratifiedKFold(n_splits=cfg.folds, n_repeats=cfg.repeats, random_state=cfg.seed)
    assign = np.full((len(labels), cfg.repeats), -1, dtype=int)
    for j, (_, held) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        repeat, fold = divmod(j, cfg.folds)
        assign[held, repeat] = fold
    for repeat in range(cfg.repeats):
        table[f"r{repeat}"] = assign[:, repeat]
    return table


def pool(parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Train + dev, the pairs every choice is made on (in that order)."""
    return pd.concat([parts["train"], parts["dev"]], ignore_index=True)


def folds_path(params: Params, dataset: str = "single") -> Path:
    return params.path(FOLDS_DIR) / f"{dataset}.csv"


def held_out(params: Params, ids: list[str], dataset: str = "single", repeats: int | None = None) -> list[np.ndarray]:
    """One boolean mask over ``ids`` per fold (repeat-major): the pairs that fold holds out.

    The stored fold table must cover exactly ``ids`` (a stale table is an error, not a silent re-cut)."""
    path = folds_path(params, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `dvc repro folds` (mmsent folds) first")
    table = pd.read_csv(path, dtype={"id": str})
    cfg = protocol_config(params)
    if sorted(table["id"]) != sorted(map(str, ids)) or len(table) != len(ids):
        raise ValueError(f"{path} does not cover this protocol's train + dev pairs; rerun `mmsent folds`")
    table = table.set_index("id").loc[[str(i) for i in ids]]
    columns = [c for c in table.columns if c.startswith("r")][: repeats or cfg.repeats]
    return [(table[c] == fold).to_numpy() for c in columns for fold in range(cfg.folds)]


def corrected_se(values: np.ndarray, ratio: float) -> float:
    """Nadeau-Bengio corrected standard error of the mean of per-fold values (scores or paired
    differences) from repeated k-fold CV: sqrt((1/J + n_test/n_train) · var), with ``ratio`` the
    fold models' true n_test / n_train (:attr:`ProtocolConfig.test_train_ratio`)."""
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float("inf")
    return math.sqrt((1 / len(values) + ratio) * float(np.var(values, ddof=1)))


@dataclass(frozen=True)
class Verdict:
    better: bool  # the candidate beats the incumbent by more than the corrected SE
    difference: float  # mean paired fold difference (candidate − incumbent), points
    se: float  # its corrected standard error


def beats(candidate: np.ndarray, incumbent: np.ndarray, ratio: float) -> Verdict:
    """The noise-aware rule on paired per-fold scores of the same folds."""
    candidate, incumbent = np.asarray(candidate, float), np.asarray(incumbent, float)
    if candidate.shape != incumbent.shape:
        raise ValueError(f"fold scores are not paired: {candidate.shape} vs {incumbent.shape}")
    diff = candidate - incumbent
    se = corrected_se(diff, ratio)
    return Verdict(bool(diff.mean() > se), float(diff.mean()), se)


def cv_epochs(best_epochs: list[int]) -> int:
    """The epoch count a final model trains for: the median of the folds' best epochs (rounded up)."""
    return max(1, int(math.ceil(float(np.median(best_epochs)))))


def run(params: Params) -> dict:
    """The ``folds`` stage: the fold table of every dataset's train + dev that selection uses."""
    from mmsent.data.mvsa import load_parts

    cfg = protocol_config(params)
    out = {}
    for dataset in ("single",):
        data = pool(load_parts(params, dataset))
        table = make_folds(list(data["id"]), data["label_id"].astype(int).to_numpy(), cfg)
        save_frame(table, folds_path(params, dataset))
        out[dataset] = {"pairs": len(table), "folds": cfg.folds, "repeats": cfg.repeats, "seed": cfg.seed}
    return out
