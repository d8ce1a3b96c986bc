"""Nested CV on the tiny project: the inner folds partition an outer fold's training part, no inner
fold model sees its outer fold, the one-SE rule picks per outer fold, and the optimism is written."""

import numpy as np
import pytest

from mmsent import sections
from mmsent.io import read_json
from mmsent.training import nested, tune
from mmsent.training.specs import model_specs

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)
from test_tune import tuned_project  # noqa: F401


def test_inner_masks_partition_the_outer_training_part_stratified():
    labels = np.array([0, 1, 2] * 20)
    outer = np.zeros(60, bool)
    outer[:12] = True
    masks = nested.inner_masks(labels, outer, 4, seed=0)
    assert len(masks) == 4
    stacked = np.stack(masks)
    assert not stacked[:, outer].any()  # nothing of the outer fold
    assert (stacked.sum(0)[~outer] == 1).all()  # every other row in exactly one inner fold
    for m in masks:
        assert sorted(np.bincount(labels[m])) == [4, 4, 4]


@pytest.fixture
def nested_project(tuned_project):  # noqa: F811
    tuned_project.tuning.trial_train = {"epochs": 1}
    tuned_project.train.workers = 1  # in-process, so the spies see every fold model
    st = tune.tune_model(tuned_project, "attention_fusion", n_trials=2)
    tune.write_best(tuned_project, "attention_fusion", st)
    tuned_project.nested = sections.NestedConfig(model="attention_fusion")
    return tuned_project


def test_nested_cv_keeps_each_outer_fold_out_of_its_inner_models(nested_project, monkeypatch):
    """The bookkeeping, with fold models that score by a rule the test knows (trial 1 better on
    every inner fold, outer folds lower by 5): each outer fold is outside its inner models' pool,
    the rule picks per outer fold, the optimism is inner minus outer."""
    from mmsent.data.mvsa import load_parts
    from mmsent.training.protocol import held_out

    parts = load_parts(nested_project, "single")
    pool_ids = np.array(list(parts["train"]["id"].astype(str)) + list(parts["dev"]["id"].astype(str)))
    outers = held_out(nested_project, list(pool_ids), "single", 1)
    calls = []

    def fake(params, spec, dataset, config, data, held, seed, overrides=None, save=False, pool=None):
        assert list(np.asarray(data["train"].ids)) == list(pool_ids) and "test" not in data
        calls.append((held.copy(), None if pool is None else pool.copy(), overrides["lr"]))
        score = 60.0 + (overrides["lr"] == best_lr) * 2 + seed * 0.1 - (pool is None) * 5
        return {"weighted_f1": score, "parameters": 10}

    trials = nested.candidates(nested_project, "attention_fusion")
    best_lr = trials[1].params["lr"]
    monkeypatch.setattr(nested, "run_fold", fake)
    summary = nested.run(nested_project)
    k = len(outers)
    assert len(calls) == k * len(trials) * k + k  # outer × trials × inner, then one model per outer fold
    for held, pool, _ in calls[: -k]:
        outer = next(o for o in outers if (pool == ~o).all())  # its pool is one outer fold's training part
        assert not (held & outer).any() and (held <= pool).all()
    for (held, pool, lr), outer in zip(calls[-k:], outers):
        assert pool is None and (held == outer).all() and lr == best_lr
    for row in summary["per_outer_fold"]:
        assert row["chosen_trial"] == trials[1].number
        assert row["optimism"] == pytest.approx(row["chosen_inner_cv"] - row["outer_score"], abs=1e-6)
        assert row["optimism"] == pytest.approx(5 + 0.1 * (k - 1) / 2 - 0.1 * row["outer_fold"], abs=1e-6)
    written = read_json(nested.result_path(nested_project, "attention_fusion"))
    assert written == summary
    assert "lower bound" in nested.sentence(written, 1.5) and "+1.50" in nested.sentence(written, 1.5)


def test_a_fold_model_learns_only_from_its_pool(project, monkeypatch):  # noqa: F811
    """run_fold's ``pool``: training and early-stopping pairs come from it, never from ``held``."""
    from mmsent.data.mvsa import load_parts
    from mmsent.training import fitting
    from mmsent.training.inputs import cv_inputs

    spec = model_specs(project)["text_head"]
    config, data = cv_inputs(project, spec, "single", load_parts(project, "single"))
    data.pop("test")
    n = len(data["train"])
    held, pool = np.zeros(n, bool), np.ones(n, bool)
    held[0], pool[1] = True, False
    seen = []
    fit = fitting.fit

    def spy(model, train, dev, cfg, **kw):
        seen.extend(train.ids + dev.ids)
        return fit(model, train, dev, cfg, **kw)

    monkeypatch.setattr(fitting, "fit", spy)
    fitting.run_fold(project, spec, "single", config, data, held, 0, {"epochs": 1}, pool=pool)
    ids = np.asarray(data["train"].ids)
    assert seen and set(seen) <= set(ids[pool & ~held])


def test_nested_model_must_be_tuned(nested_project):
    nested_project.nested = sections.NestedConfig(model="late_fusion")
    with pytest.raises(ValueError, match="nested.model"):
        nested.nested_model(nested_project)
