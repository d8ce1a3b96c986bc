"""Significance tests between models, from the saved test predictions (scipy / statsmodels).

For each pair of models on one dataset, with predictions for the same seeds:

* McNemar's exact test on the test examples, per seed (median p reported);
* a paired bootstrap over test examples of the seed-averaged accuracy and weighted-F1
  difference (95 % percentile CI and a two-sided p);
* paired tests across seeds on accuracy: Student's paired t and Wilcoxon signed-rank (with
  5 seeds Wilcoxon cannot go below p = 0.0625, so it is reported, not used to decide);
* Holm's correction over the family of all pairs, applied to the McNemar median p;
* effect sizes: mean difference, Cohen's d over seeds, and McNemar's discordant ratio.

A difference "holds" when the Holm-adjusted McNemar p < alpha and the bootstrap CI of the
accuracy difference excludes 0.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps
from statsmodels.stats.contingency_tables import mcnemar
from statsmodels.stats.multitest import multipletests

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.evaluation.metrics import bootstrap_scores
from mmsent.paths import PREDICTIONS_DIR


def load_predictions(params: Params, model: str, dataset: str) -> dict[int, pd.DataFrame]:
    folder = params.path(PREDICTIONS_DIR) / model / dataset
    out = {int(p.stem.removeprefix("seed")): pd.read_csv(p, dtype={"id": str}) for p in sorted(folder.glob("seed*.csv"))}
    if not out:
        raise FileNotFoundError(f"no predictions in {folder}")
    return out


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[float, int, int]:
    """Exact McNemar p and the discordant counts (A right & B wrong, A wrong & B right)."""
    b = int(np.sum(correct_a & ~correct_b))
    c = int(np.sum(~correct_a & correct_b))
    table = [[int(np.sum(correct_a & correct_b)), b], [c, int(np.sum(~correct_a & ~correct_b))]]
    return float(mcnemar(table, exact=True).pvalue), b, c


def bootstrap_difference(scores_a: np.ndarray, scores_b: np.ndarray) -> dict[str, float]:
    """(A − B) in accuracy and weighted F1, averaged over seeds: the point difference, the 95 %
    percentile CI over resamples and a two-sided bootstrap p for accuracy."""
    diff = np.mean(scores_a - scores_b, axis=1)  # (2, reps + 1)
    point, samples = diff[:, 0], diff[:, 1:]
    acc_lo, acc_hi = np.percentile(samples[0], [2.5, 97.5])
    wf1_lo, wf1_hi = np.percentile(samples[1], [2.5, 97.5])
    # two-sided bootstrap p: how often the resampled difference falls on the other side of 0
    p_acc = min(1.0, 2 * min(np.mean(samples[0] <= 0), np.mean(samples[0] >= 0)))
    return {"acc_diff": float(point[0]), "acc_ci_low": acc_lo, "acc_ci_high": acc_hi, "bootstrap_p_acc": float(p_acc),
            "wf1_diff": float(point[1]), "wf1_ci_low": wf1_lo, "wf1_ci_high": wf1_hi}


def paired_bootstrap(gold: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, reps: int = 2000,
                     seed: int = 0) -> dict[str, float]:
    """Bootstrap over examples of (A − B); ``pred_a``/``pred_b`` are (seeds, n) label arrays for the same examples."""
    return bootstrap_difference(bootstrap_scores(gold, pred_a, reps, seed), bootstrap_scores(gold, pred_b, reps, seed))


def _arrays(preds: dict[int, pd.DataFrame], seeds: list[int]) -> tuple[list[str], np.ndarray, np.ndarray]:
    ids = preds[seeds[0]]["id"].tolist()
    if any(preds[s]["id"].tolist() != ids for s in seeds):
        raise ValueError("predictions are not on the same examples in the same order")
    gold = preds[seeds[0]]["gold"].map(LABEL2ID).to_numpy()
    return ids, gold, np.stack([preds[s]["predicted"].map(LABEL2ID).to_numpy() for s in seeds])


def compare(a: dict[int, pd.DataFrame], b: dict[int, pd.DataFrame], reps: int = 2000,
            scores: tuple[np.ndarray, np.ndarray] | None = None) -> dict[str, float]:
    """Every test of the module for two models' predictions over their common seeds.
    ``scores``: both models' :func:`bootstrap_scores` on those seeds, when already computed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        raise ValueError("the two models share no seeds")
    ids_a, gold, pa = _arrays(a, seeds)
    ids_b, _, pb = _arrays(b, seeds)
    if ids_a != ids_b:
        raise ValueError("predictions are not on the same examples in the same order")
    mc = [mcnemar_exact(x == gold, y == gold) for x, y in zip(pa, pb)]
    acc_a, acc_b = 100 * (pa == gold).mean(1), 100 * (pb == gold).mean(1)
    d = acc_a - acc_b
    boot = bootstrap_difference(*scores) if scores else paired_bootstrap(gold, pa, pb, reps)
    out = {"seeds": len(seeds), "n": len(gold), **boot,
           "mcnemar_p_median": float(np.median([m[0] for m in mc])),
           "mcnemar_p_max": float(np.max([m[0] for m in mc])),
           "discordant_a_only": float(np.mean([m[1] for m in mc])), "discordant_b_only": float(np.mean([m[2] for m in mc]))}
    if len(seeds) > 1 and np.any(d != 0):
        out["ttest_p"] = float(sps.ttest_rel(acc_a, acc_b).pvalue)
        out["wilcoxon_p"] = float(sps.wilcoxon(acc_a, acc_b).pvalue)
        out["cohens_d"] = float(d.mean() / d.std(ddof=1)) if d.std(ddof=1) > 0 else float("inf") * np.sign(d.mean())
    else:
        out.update(ttest_p=1.0, wilcoxon_p=1.0, cohens_d=0.0)
    return out


def significance_table(params: Params, models: list[str], dataset: str = "single", alpha: float = 0.05,
                       reps: int = 2000) -> pd.DataFrame:
    preds = {m: load_predictions(params, m, dataset) for m in models}
    scores = {}  # each model's bootstrap scores once, for all its pairs
    for m in models:
        seeds = sorted(preds[m])
        _, gold, pred = _arrays(preds[m], seeds)
        scores[m] = dict(zip(seeds, bootstrap_scores(gold, pred, reps).transpose(1, 0, 2)))

    def pair(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        common = sorted(set(scores[a]) & set(scores[b]))
        return tuple(np.stack([scores[m][s] for s in common], axis=1) for m in (a, b))

    rows = [{"model_a": a, "model_b": b, **compare(preds[a], preds[b], reps, scores=pair(a, b))}
            for a, b in itertools.combinations(models, 2)]
    df = pd.DataFrame(rows)
    df["mcnemar_p_holm"] = multipletests(df["mcnemar_p_median"], alpha=alpha, method="holm")[1]
    df["significant"] = (df["mcnemar_p_holm"] < alpha) & ((df["acc_ci_low"] > 0) | (df["acc_ci_high"] < 0))
    df["dataset"] = dataset
    return df


def verdict(row: pd.Series) -> str:
    better, worse = (row.model_a, row.model_b) if row.acc_diff > 0 else (row.model_b, row.model_a)
    if row.significant:
        return f"{better} beats {worse} by {abs(row.acc_diff):.2f} accuracy points (significant)"
    return f"no significant difference between {row.model_a} and {row.model_b} ({row.acc_diff:+.2f} points)"


def run(params: Params, alpha: float = 0.05, reps: int = 1000) -> dict[str, Path]:
    """The stage: a significance table per dataset over every model trained on it."""
    from mmsent.training.specs import model_specs
    from mmsent.io import write_text

    out_dir = params.path("reports/tables")
    written = {}
    frames = []
    for dataset in ("single", "multiple"):
        models = [name for name, spec in model_specs(params).items() if dataset in spec.datasets
                  and (params.path(PREDICTIONS_DIR) / name / dataset).is_dir()]
        if len(models) >= 2:
            frames.append(significance_table(params, models, dataset, alpha, reps))
    table = pd.concat(frames, ignore_index=True)
    written["csv"] = out_dir / "significance.csv"
    table.to_csv(written["csv"], index=False, float_format="%.6g")
    shown = table[["dataset", "model_a", "model_b", "acc_diff", "acc_ci_low", "acc_ci_high", "wf1_diff",
                   "mcnemar_p_median", "mcnemar_p_holm", "ttest_p", "wilcoxon_p", "cohens_d", "significant"]]
    written["md"] = write_text(out_dir / "significance.md", shown.to_markdown(index=False, floatfmt=".3g") + "\n")
    written["tex"] = write_text(out_dir / "significance.tex",
                                shown.to_latex(index=False, float_format="%.3g", caption="Pairwise significance "
                                               "(McNemar exact, Holm-corrected; paired bootstrap CI).",
                                               label="tab:significance"))
    return written
