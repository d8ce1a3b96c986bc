import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from mmsent.evaluation.stats import compare, mcnemar_exact, paired_bootstrap, significance_table, verdict


def test_mcnemar_exact_matches_the_binomial_textbook_value():
    # 10 discordant one way, 2 the other: p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79 / 4096
    a = np.array([True] * 10 + [False] * 2 + [True] * 30)
    b = np.array([False] * 10 + [True] * 2 + [True] * 30)
    p, only_a, only_b = mcnemar_exact(a, b)
    assert (only_a, only_b) == (10, 2)
    assert p == pytest.approx(158 / 4096)


def test_holm_correction_textbook_example():
    from statsmodels.stats.multitest import multipletests

    assert multipletests([0.01, 0.04, 0.03], method="holm")[1] == pytest.approx([0.03, 0.06, 0.06])


def test_paired_t_against_hand_computation():
    a, b = np.array([70.0, 72, 71, 73, 74]), np.array([68.0, 69, 70, 70, 71])
    d = a - b
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert sps.ttest_rel(a, b).statistic == pytest.approx(t)


def test_fast_weighted_f1_equals_scikit_learn():
    from sklearn.metrics import f1_score

    from mmsent.evaluation.metrics import weighted_f1_fast

    rng = np.random.default_rng(3)
    for _ in range(20):
        gold, pred = rng.integers(0, 3, 50), rng.integers(0, 3, 50)
        pred[:5] = 2
        assert weighted_f1_fast(gold, pred) == pytest.approx(f1_score(gold, pred, average="weighted", zero_division=0))
    assert weighted_f1_fast(np.array([0, 0]), np.array([1, 1])) == 0


def test_batched_weighted_f1_scores_each_row_like_scikit_learn():
    from sklearn.metrics import f1_score

    from mmsent.evaluation.metrics import weighted_f1_batch

    rng = np.random.default_rng(4)
    gold, pred = rng.integers(0, 3, (30, 40)), rng.integers(0, 3, (30, 40))
    pred[3] = 1   # a row that never predicts two of the classes
    expected = [f1_score(g, p, average="weighted", zero_division=0) for g, p in zip(gold, pred)]
    assert weighted_f1_batch(gold, pred) == pytest.approx(expected)


def test_bootstrap_matches_a_loop_over_resamples():
    """The batched bootstrap draws the same resamples as one draw per resample would."""
    from mmsent.evaluation.metrics import weighted_f1_fast

    rng = np.random.default_rng(5)
    gold, pa, pb = rng.integers(0, 3, 60), rng.integers(0, 3, (3, 60)), rng.integers(0, 3, (3, 60))
    out = paired_bootstrap(gold, pa, pb, reps=50, seed=7)
    draw = np.random.default_rng(7)
    loop = []
    for _ in range(50):
        idx = draw.integers(0, 60, 60)
        loop.append(100 * np.mean([weighted_f1_fast(gold[idx], a[idx]) - weighted_f1_fast(gold[idx], b[idx])
                                   for a, b in zip(pa, pb)]))
    assert out["wf1_ci_low"] == pytest.approx(np.percentile(loop, 2.5))
    assert out["wf1_ci_high"] == pytest.approx(np.percentile(loop, 97.5))


def test_bootstrap_of_identical_models_is_exactly_zero():
    gold = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    pred = np.stack([np.array([0, 1, 1, 0, 2, 2, 0, 1])] * 2)
    out = paired_bootstrap(gold, pred, pred, reps=200)
    assert out["acc_diff"] == 0 and out["acc_ci_low"] == 0 and out["acc_ci_high"] == 0


def _preds(correct: list[np.ndarray]) -> dict[int, pd.DataFrame]:
    out = {}
    for seed, c in enumerate(correct):
        gold = ["positive"] * len(c)
        out[seed] = pd.DataFrame({"id": [str(i) for i in range(len(c))], "gold": gold,
                                  "predicted": ["positive" if x else "negative" for x in c]})
    return out


def test_compare_a_clearly_better_model():
    rng = np.random.default_rng(0)
    good = _preds([rng.random(300) < 0.9 for _ in range(5)])
    bad = _preds([rng.random(300) < 0.6 for _ in range(5)])
    out = compare(good, bad, reps=300)
    assert out["acc_diff"] > 20 and out["acc_ci_low"] > 0 and out["mcnemar_p_median"] < 1e-6
    assert out["ttest_p"] < 0.01 and out["wilcoxon_p"] == pytest.approx(0.0625)  # 5 seeds: floor
    with pytest.raises(ValueError, match="same examples"):
        compare(good, {k: v.iloc[::-1] for k, v in bad.items()})


def test_significance_table_and_verdicts(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    fake = {"strong": _preds([rng.random(400) < 0.9 for _ in range(3)]),
            "weak": _preds([rng.random(400) < 0.5 for _ in range(3)]),
            "weak2": _preds([rng.random(400) < 0.5 for _ in range(3)])}
    monkeypatch.setattr("mmsent.evaluation.stats.load_predictions", lambda params, m, d: fake[m])
    table = significance_table(None, ["strong", "weak", "weak2"], reps=200)
    sig = dict(zip(zip(table.model_a, table.model_b), table.significant))
    assert sig[("strong", "weak")] and sig[("strong", "weak2")] and not sig[("weak", "weak2")]
    assert (table["mcnemar_p_holm"] >= table["mcnemar_p_median"]).all()
    assert "beats" in verdict(table.iloc[0]) and "no significant" in verdict(table.iloc[2])
    # each model's bootstrap scores, computed once for all its pairs, give what one pair alone gives
    alone = compare(fake["weak"], fake["weak2"], reps=200)
    row = table[(table.model_a == "weak") & (table.model_b == "weak2")].iloc[0]
    for key in ("acc_diff", "acc_ci_low", "acc_ci_high", "wf1_ci_low", "wf1_ci_high", "bootstrap_p_acc"):
        assert row[key] == pytest.approx(alone[key]), key
