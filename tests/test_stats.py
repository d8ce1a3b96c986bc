import numpy as np
import pandas as pd
import pytest

from mmsent import sections
from mmsent.evaluation import stats
from mmsent.evaluation import paired
from mmsent.evaluation.paired import Runs, bootstrap_test, distinct, two_level_bootstrap


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


def test_two_level_bootstrap_draws_pairs_once_and_each_models_seeds_on_their_own():
    """The batched resamples are those of a loop over resamples: test pairs shared by both models,
    each model's seeds drawn with replacement from its own seeds (here 3 against 2)."""
    from mmsent.evaluation.metrics import weighted_f1_fast

    rng = np.random.default_rng(5)
    gold = rng.integers(0, 3, 40)
    a = Runs([str(i) for i in range(40)], gold, rng.integers(0, 3, (3, 40)))
    b = Runs(a.ids, gold, rng.integers(0, 3, (2, 40)))
    point, samples = two_level_bootstrap(a, b, reps=30, seed=7)
    assert point[0] == pytest.approx(100 * ((a.predicted == gold).mean() - (b.predicted == gold).mean()))
    draw = np.random.default_rng(7)
    index = draw.integers(0, 40, (30, 40))
    pick_a, pick_b = draw.integers(0, 3, (30, 3)), draw.integers(0, 2, (30, 2))
    for r in range(30):
        i = index[r]
        wa = np.mean([weighted_f1_fast(gold[i], a.predicted[k][i]) for k in pick_a[r]])
        wb = np.mean([weighted_f1_fast(gold[i], b.predicted[k][i]) for k in pick_b[r]])
        assert samples[1, r] == pytest.approx(100 * (wa - wb))
    with pytest.raises(ValueError, match="same test pairs"):
        two_level_bootstrap(a, Runs(a.ids[::-1], gold, b.predicted))


def test_seed_variance_widens_the_interval():
    """Two models equally good on average, one of them unstable across seeds: the interval that
    counts the seeds drawn is wider than one over test pairs alone."""
    rng = np.random.default_rng(2)
    gold = np.zeros(300, int)
    ids = [str(i) for i in range(300)]
    stable = Runs(ids, gold, np.stack([np.where(rng.random(300) < 0.7, 0, 1) for _ in range(5)]))
    shaky = Runs(ids, gold, np.stack([np.where(rng.random(300) < q, 0, 1) for q in (0.4, 0.55, 0.7, 0.85, 0.95)]))
    _, both = two_level_bootstrap(shaky, stable, reps=2000)
    _, pairs_only = two_level_bootstrap(Runs(ids, gold, shaky.predicted[2:3]), stable, reps=2000)
    assert np.std(both[0]) > 1.5 * np.std(pairs_only[0])


@pytest.mark.parametrize("family", [1, 3, 7])
def test_adjusted_interval_and_verdict_always_agree(family):
    rng = np.random.default_rng(family)
    for shift in np.linspace(-0.5, 4, 60):
        samples = rng.normal(shift, 1.0, 1000)
        t = bootstrap_test(shift, samples, family)
        assert t.significant == (t.low > 0 or t.high < 0) == (t.p_adjusted < 0.05)
        assert t.p_adjusted == min(1.0, family * t.p)
    wide, narrow = bootstrap_test(0, rng.normal(1, 1, 1000), 7), bootstrap_test(0, rng.normal(1, 1, 1000), 1)
    assert wide.high - wide.low > narrow.high - narrow.low  # a bigger family, a wider interval


def test_identical_models_and_deterministic_baselines():
    gold = np.array([0, 1, 2, 0, 1, 2, 0, 0])
    same = np.stack([np.array([0, 1, 1, 0, 2, 2, 0, 1])] * 4)
    runs = distinct([str(i) for i in range(8)], gold, same)
    assert runs.deterministic and len(runs.predicted) == 1  # four seeds alike: one run, said so
    point, samples = two_level_bootstrap(runs, runs, reps=200)
    t = bootstrap_test(point[1], samples[1], family=5)
    assert point[1] == 0 and not t.significant and t.p == 1 and t.low == t.high == 0
    assert np.isfinite([t.low, t.high, t.p]).all()


def _runs(correct: list[np.ndarray]) -> dict[int, pd.DataFrame]:
    out = {}
    for seed, c in enumerate(correct):
        out[seed] = pd.DataFrame({"id": [str(i) for i in range(len(c))], "gold": ["positive"] * len(c),
                                  "predicted": ["positive" if x else "negative" for x in c]})
    return out


def test_family_table_answers_the_declared_questions_only(monkeypatch):
    from mmsent.config import Params

    rng = np.random.default_rng(1)
    fake = {"strong": _runs([rng.random(400) < 0.9 for _ in range(5)]),
            "weak": _runs([rng.random(400) < 0.5 for _ in range(3)]),
            "weak2": _runs([rng.random(400) < 0.5 for _ in range(3)]),
            "unasked": _runs([rng.random(400) < 0.1 for _ in range(3)])}
    monkeypatch.setattr(stats, "load_predictions", lambda params, m, d: fake[m])
    monkeypatch.setattr(stats, "caveat", lambda params, m: "")
    monkeypatch.setattr(stats, "selection_of", lambda params, m, d: ("cross-validation", 12 if m == "strong" else 6))
    params = Params()
    params.report = sections.ReportConfig(**{"questions": [
        {"key": "q1", "a": "strong", "b": "weak", "ask": "?", "why": "w", "protocols": ["clmlf"]},
        {"key": "q2", "a": "weak", "b": "weak2", "ask": "?", "why": "w", "protocols": ["clmlf", "agreement"]},
        {"key": "q3", "a": "weak2", "b": "strong", "ask": "?", "why": "w", "protocols": ["clmlf"]}]})
    monkeypatch.setattr(stats, "load_runs", lambda p, m, d, protocol="clmlf": (
        paired.distinct(fake[m][0]["id"].tolist(), np.zeros(400, int),
                       np.stack([(f["predicted"] != "positive").astype(int) for f in fake[m].values()]))
        if protocol == "clmlf" else None))
    table = stats.family_table(params, reps=2000)
    assert list(table["question"]) == ["q1", "q2", "q3"] and (table["family"] == 3).all()  # agreement: not run
    assert list(zip(table["runs_a"], table["runs_b"])) == [(5, 3), (3, 3), (3, 5)]  # every seed, counts shown
    excludes = (table["wf1_low"] > 0) | (table["wf1_high"] < 0)
    assert (excludes == table["significant"]).all() and ((table["p_adjusted"] < 0.05) == table["significant"]).all()
    assert list(table["significant"]) == [True, False, True]
    assert "`strong` significantly beats `weak`" in table["sentence"][0]
    assert "does not significantly beat" in table["sentence"][1]
    assert "against the expected direction" in table["sentence"][2]
    # every row says what it could detect; a non-significant one what it rules out; unequal budgets are named
    assert (table["mde"] > 0).all() and all("80 % power" in t for t in table["sentence"])
    assert "rules out `weak` being better by more than" in table["sentence"][1]
    assert "`strong` was tuned with 12 trials, `weak` with 6" in table["sentence"][0]
    assert "Not only the question differs" not in table["sentence"][1]  # weak and weak2: same budget


def test_fold_level_test_is_the_corrected_t_with_the_true_ratio():
    from scipy import stats as sps

    d = np.array([2.0, 4.5, -0.5, 3.0, 1.5, 5.0, 0.5, 2.5, 4.0, 0.3])
    ratio = 451 / 3609
    test = paired.fold_level_test(d, ratio, family=8)
    se = np.sqrt((1 / 10 + ratio) * d.var(ddof=1))
    assert test.se == pytest.approx(se) and test.difference == pytest.approx(d.mean())
    assert test.p == pytest.approx(2 * sps.t.sf(d.mean() / se, 9))
    assert test.p_adjusted == pytest.approx(min(1, 8 * test.p))
    half = sps.t.ppf(1 - 0.05 / 16, 9) * se
    assert (test.low, test.high) == pytest.approx((d.mean() - half, d.mean() + half))
    assert test.mde == pytest.approx((sps.t.ppf(1 - 0.05 / 16, 9) + sps.t.ppf(0.8, 9)) * se)
    # the interval and the verdict agree, at any family size
    for family in (1, 3, 8, 50):
        t = paired.fold_level_test(d, ratio, family)
        assert t.significant == (t.low > 0 or t.high < 0)


def test_cheema_rows_are_tested_on_the_per_fold_differences(monkeypatch):
    from mmsent.config import Params

    rng = np.random.default_rng(4)
    gold = rng.integers(0, 3, 300)
    folds = [np.arange(300) // 30 == j for j in range(10)]
    better = np.where(rng.random(300) < 0.8, gold, (gold + 1) % 3)
    worse = np.where(rng.random(300) < 0.6, gold, (gold + 1) % 3)
    ids = [str(i) for i in range(300)]
    runs = {"a": Runs(ids, gold, better[None]), "b": Runs(ids, gold, worse[None])}
    monkeypatch.setattr(stats, "load_runs", lambda p, m, d, protocol="clmlf": runs[m] if protocol == "cheema" else None)
    monkeypatch.setattr(stats, "cheema_folds", lambda params, ids: (folds, 30 / 240))
    monkeypatch.setattr(stats, "caveat", lambda params, m: "")
    monkeypatch.setattr(stats, "selection_of", lambda params, m, d: ("cross-validation", 0))
    params = Params()
    params.report = sections.ReportConfig(**{"primary_protocol": "cheema", "questions": [
        {"key": "q", "a": "a", "b": "b", "ask": "?", "why": "w"}]})
    row = stats.family_table(params, reps=200).iloc[0]
    diffs = paired.fold_differences(runs["a"], runs["b"], folds)[1]
    assert row["test"] == "fold-level corrected t" and row["folds"] == 10 and row["primary"]
    assert row["wf1_diff"] == pytest.approx(diffs.mean()) and row["se"] == pytest.approx(
        np.sqrt((1 / 10 + 30 / 240) * diffs.var(ddof=1)))
    assert row["significant"] and "one model per fold, 10 folds" in row["sentence"]


def test_the_family_is_tested_at_report_alpha(monkeypatch):
    """`dvc exp run -S report.alpha=0.01` must change the level the table is corrected at."""
    from mmsent.config import Params

    rng = np.random.default_rng(3)
    gold = rng.integers(0, 3, 300)
    better = np.where(rng.random(300) < 0.8, gold, (gold + 1) % 3)
    worse = np.where(rng.random(300) < 0.6, gold, (gold + 1) % 3)
    ids = [str(i) for i in range(300)]
    runs = {"a": Runs(ids, gold, better[None]), "b": Runs(ids, gold, worse[None])}
    monkeypatch.setattr(stats, "load_runs", lambda p, m, d, protocol="clmlf": runs[m] if protocol == "clmlf" else None)
    monkeypatch.setattr(stats, "caveat", lambda params, m: "")
    monkeypatch.setattr(stats, "selection_of", lambda params, m, d: ("cross-validation", 0))
    levels = {}
    for alpha in (0.05, 0.01):
        params = Params()
        params.report = sections.ReportConfig(**{"alpha": alpha, "questions": [
            {"key": "q", "a": "a", "b": "b", "ask": "?", "why": "w"}]})
        row = stats.family_table(params, reps=200).iloc[0]
        levels[alpha] = (row["alpha"], row["level"])
    assert levels == {0.05: (0.05, pytest.approx(95.0)), 0.01: (0.01, pytest.approx(99.0))}
