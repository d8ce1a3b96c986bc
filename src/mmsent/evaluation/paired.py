"""The paired tests a declared comparison uses (mmsent.evaluation.stats asks them).

* :func:`two_level_bootstrap`: every resample draws the test pairs with replacement (the same
  draw for both models) and, independently for each model, its seeds with replacement;
  :func:`bootstrap_test` reads verdict, Bonferroni-adjusted p and interval from the same tail
  counts, so they cannot disagree.
* :func:`fold_level_test`: a Nadeau-Bengio corrected t-test on per-fold paired differences
  (:func:`fold_differences`), for protocols where each pair is predicted by its fold's one model.
* :func:`minimum_detectable`: the difference a test finds with 80 % power at the adjusted level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from mmsent.evaluation.metrics import weighted_f1_batch


@dataclass(frozen=True)
class Runs:
    """One model's test predictions on one protocol: ``predicted`` is (runs, pairs) of label ids."""

    ids: list[str]
    gold: np.ndarray
    predicted: np.ndarray
    deterministic: bool = False  # every run predicted alike: counted as one run


def distinct(ids: list[str], gold: np.ndarray, predicted: np.ndarray) -> Runs:
    predicted = np.atleast_2d(predicted)
    if len(predicted) > 1 and (predicted == predicted[0]).all():
        return Runs(ids, gold, predicted[:1], deterministic=True)
    return Runs(ids, gold, predicted)


def run_scores(runs: Runs, index: np.ndarray) -> np.ndarray:
    """(2, runs, resamples): accuracy and weighted F1 (%) of each run on each row of ``index``."""
    g = runs.gold[index]
    acc = np.stack([(p[index] == g).mean(1) for p in runs.predicted])
    wf1 = np.stack([weighted_f1_batch(g, p[index]) for p in runs.predicted])
    return 100 * np.stack([acc, wf1])


def two_level_bootstrap(a: Runs, b: Runs, reps: int = 10000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The point difference (A − B) of seed-averaged accuracy and weighted F1 (shape (2,)) and its
    ``reps`` resamples (shape (2, reps)): test pairs drawn once for both models, each model's
    seeds drawn on their own (seed k of one model has nothing to do with seed k of another)."""
    if a.ids != b.ids:
        raise ValueError("the two models' predictions are not on the same test pairs in the same order")
    rng = np.random.default_rng(seed)
    n = len(a.gold)
    full = np.arange(n)[None, :]
    point = run_scores(a, full)[:, :, 0].mean(1) - run_scores(b, full)[:, :, 0].mean(1)
    index = rng.integers(0, n, (reps, n))
    sides = []
    for runs in (a, b):
        scores = run_scores(runs, index)  # (2, k, reps)
        k = scores.shape[1]
        pick = rng.integers(0, k, (reps, k))  # each resample's seeds, with replacement
        sides.append(np.take_along_axis(scores.transpose(0, 2, 1), pick[None], axis=2).mean(2))
    return point, sides[0] - sides[1]


@dataclass(frozen=True)
class Test:
    difference: float  # A − B on the full test set, seed means (points)
    low: float  # the adjusted percentile interval
    high: float
    p: float  # two-sided bootstrap p, unadjusted
    p_adjusted: float  # Bonferroni: min(1, m · p)
    significant: bool  # the adjusted interval excludes 0, i.e. p_adjusted < alpha
    se: float = float("nan")  # standard error of the difference (bootstrap SD, or the corrected fold SE)
    mde: float = float("nan")  # the smallest |difference| found with 80 % power at the adjusted level


POWER = 0.8


def minimum_detectable(se: float, family: int, alpha: float = 0.05, df: int | None = None) -> float:
    """(q_{1-alpha/2m} + q_{power}) · SE: normal quantiles, or Student's with ``df`` degrees of freedom."""
    dist = sps.norm if df is None else sps.t(df)
    return float((dist.ppf(1 - alpha / (2 * family)) + dist.ppf(POWER)) * se)


def bootstrap_test(point: float, samples: np.ndarray, family: int, alpha: float = 0.05) -> Test:
    """Verdict, adjusted interval and p of one difference from its bootstrap samples.

    With t = ceil(B · alpha / (2m)), the interval is the t-th smallest and the t-th largest
    sample, and the difference is significant when fewer than t samples lie on one side of 0
    (counting 0 on both sides): the same counts decide both, so they cannot disagree."""
    samples = np.sort(np.asarray(samples, float))
    reps = len(samples)
    t = max(1, math.ceil(reps * alpha / (2 * family)))
    below, above = int((samples <= 0).sum()), int((samples >= 0).sum())
    p = min(1.0, 2 * min(below, above) / reps)
    se = float(samples.std(ddof=1))
    return Test(float(point), float(samples[t - 1]), float(samples[reps - t]), p, min(1.0, family * p),
                min(below, above) < t, se, minimum_detectable(se, family, alpha))


def fold_level_test(differences: np.ndarray, ratio: float, family: int, alpha: float = 0.05) -> Test:
    """Nadeau-Bengio corrected t-test of the mean of per-fold paired differences (A − B, points),
    Bonferroni-adjusted; interval at the same adjusted level (verdict and interval agree)."""
    from mmsent.training.protocol import corrected_se

    d = np.asarray(differences, float)
    se, df = corrected_se(d, ratio), len(d) - 1
    mean = float(d.mean())
    p = float(2 * sps.t.sf(abs(mean) / se, df)) if se > 0 else float(mean == 0)
    half = float(sps.t.ppf(1 - alpha / (2 * family), df) * se)
    return Test(mean, mean - half, mean + half, p, min(1.0, family * p), family * p < alpha, se,
                minimum_detectable(se, family, alpha, df))


def fold_differences(a: Runs, b: Runs, masks: list[np.ndarray]) -> np.ndarray:
    """(2, folds): A − B accuracy and weighted F1 (%) on each fold's test pairs (one run per side)."""
    from sklearn.metrics import accuracy_score, f1_score

    def score(runs: Runs, m: np.ndarray) -> np.ndarray:
        p, g = runs.predicted[0][m], runs.gold[m]
        return 100 * np.array([accuracy_score(g, p), f1_score(g, p, average="weighted", zero_division=0)])

    return np.stack([score(a, m) - score(b, m) for m in masks], axis=1)
