"""Optuna tuning on a tiny synthetic project: seconds, resumable, scored by CV over train + dev
(never test), the simplest trial within one standard error written, applied to training."""

import dataclasses
import json

import numpy as np
import optuna
import pytest
import yaml

from mmsent import sections
from mmsent.training import tune
from mmsent.training.specs import model_specs

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)


@pytest.fixture
def tuned_project(project, monkeypatch):  # noqa: F811
    project.tuning = sections.TuningConfig(**{
        "apply": True, "models": ["attention_fusion"], "dataset": "single", "n_trials": 3, "seed": 0,
        "storage": "sqlite:///data/optuna.db",
        "spaces": {"attention_fusion": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                        "d_model": {"type": "categorical", "choices": [4, 8]},
                                        "hidden": {"type": "categorical", "choices": [[8], [8, 4]]}}},
    })
    return project


def test_study_runs_resumes_and_writes_best(tuned_project):
    st = tune.tune_model(tuned_project, "attention_fusion")
    assert len(st.trials) == 3
    again = tune.tune_model(tuned_project, "attention_fusion", n_trials=5)  # resumes from SQLite
    assert len(again.trials) == 5 and again.trials[0].params == st.trials[0].params
    path = tune.write_best(tuned_project, "attention_fusion", again)
    best = yaml.safe_load(path.read_text())
    assert set(best["options"]) == {"d_model", "hidden"} and set(best["train"]) == {"lr"}
    assert isinstance(best["options"]["hidden"], list)
    spec = model_specs(tuned_project)["attention_fusion"]
    assert spec.options["d_model"] == best["options"]["d_model"] and spec.train["lr"] == best["train"]["lr"]
    tuned_project.tuning.apply = False
    assert model_specs(tuned_project)["attention_fusion"].options["d_model"] == 8  # the hand-set value


def test_tuning_never_reads_test(tuned_project, monkeypatch):
    """Every pair a trial trains on, stops on or predicts is a train or dev pair: a test id fails it."""
    from mmsent.training import fitting
    from mmsent.data.mvsa import load_parts

    test_ids = set(load_parts(tuned_project, "single")["test"]["id"].astype(str))
    seen = []
    fit, predict = fitting.fit, fitting.predict_proba

    def spy_fit(model, train, dev, cfg, **kw):
        seen.extend(train.ids + (dev.ids if dev is not None else []))
        return fit(model, train, dev, cfg, **kw)

    def spy_predict(model, data, **kw):
        seen.extend(data.ids)
        return predict(model, data, **kw)

    monkeypatch.setattr(fitting, "fit", spy_fit)
    monkeypatch.setattr(fitting, "predict_proba", spy_predict)
    tune.tune_model(tuned_project, "attention_fusion", n_trials=2)
    assert seen and test_ids and not test_ids & set(seen)


def test_trials_train_with_the_tuning_overrides(tuned_project, monkeypatch):
    tuned_project.tuning.trial_train = {"epochs": 1}  # the project trains 3 epochs otherwise
    epochs = []
    original = tune.run_fold

    def spy(*args):
        out = original(*args)
        epochs.append(len(out["history"]))
        return out

    monkeypatch.setattr(tune, "run_fold", spy)
    st = tune.tune_model(tuned_project, "attention_fusion", n_trials=2)
    assert epochs == [1] * 4  # 2 trials x 2 folds, one epoch each
    assert all(len(t.user_attrs["fold_scores"]) == 2 for t in st.trials)


def test_trials_do_not_depend_on_scores(tuned_project, monkeypatch):
    """Which trials run is fixed by the seed alone: a study whose folds score otherwise proposes the same."""
    first = [t.params for t in tune.tune_model(tuned_project, "attention_fusion", n_trials=3).trials]
    tuned_project.tuning.storage = "sqlite:///data/optuna_other.db"
    original = tune.run_fold
    monkeypatch.setattr(tune, "run_fold", lambda *a: {**original(*a), "weighted_f1": float(np.random.rand())})
    assert [t.params for t in tune.tune_model(tuned_project, "attention_fusion", n_trials=3).trials] == first


def _study_with(trials: list[tuple[float, list[float], int]]) -> optuna.Study:
    st = optuna.create_study(direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2)}
    for k, (value, folds, size) in enumerate(trials):
        st.add_trial(optuna.trial.create_trial(params={"lr": 1e-3 + k * 1e-4}, distributions=dist, value=value,
                                               user_attrs={"fold_scores": folds, "parameters": size}))
    return st


def test_one_standard_error_rule_takes_the_simplest_close_trial():
    best = [70.0, 72.0, 71.0, 73.0, 69.0]  # mean 71.0, spread ~1.6 -> corrected SE ~1.2
    st = _study_with([(71.0, best, 5000), (70.5, [x - 0.5 for x in best], 800), (69.0, [x - 2 for x in best], 100)])
    chosen, se = tune.choose_trial(st, ratio=0.25)
    assert 0.5 < se < 2 and chosen.number == 1  # within one SE and smaller; trial 2 is smaller but too far
    # a 1e-6 change of the top score cannot move the choice
    st2 = _study_with([(71.0 + 1e-6, [x + 1e-6 for x in best], 5000), (70.5, [x - 0.5 for x in best], 800),
                       (69.0, [x - 2 for x in best], 100)])
    assert tune.choose_trial(st2, ratio=0.25)[0].number == 1
    # among equally small trials within the band the higher mean wins, whatever order they ran in
    tie = _study_with([(71.0, best, 5000), (70.2, [x - 0.8 for x in best], 800), (70.6, [x - 0.4 for x in best], 800)])
    assert tune.choose_trial(tie, ratio=0.25)[0].number == 2


def test_the_stage_runs_studies_side_by_side_like_one_by_one(tuned_project, monkeypatch):
    tuned_project.tuning.models = ["attention_fusion", "text_head"]
    tuned_project.tuning.spaces["text_head"] = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2}}
    monkeypatch.setenv("MMSENT_WORKERS", "2")  # two spawned processes on one SQLite file
    side_by_side = tune.run(tuned_project)
    assert set(side_by_side) == {"attention_fusion", "text_head"}
    assert all(s["trials"] == 3 for s in side_by_side.values())
    tuned_project.tuning.storage = "sqlite:///data/optuna_sequential.db"
    monkeypatch.setenv("MMSENT_WORKERS", "1")
    one_by_one = tune.run(tuned_project)
    assert {m: s["chosen_params"] for m, s in one_by_one.items()} == {m: s["chosen_params"] for m, s in side_by_side.items()}


def test_suggest_types_and_bad_space():
    trial = optuna.trial.FixedTrial({"a": 0.5, "b": 3, "c": "[1, 2]"})
    out = tune.suggest(trial, {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "int", "low": 1, "high": 5},
                               "c": {"type": "categorical", "choices": [[1, 2], [3]]}})
    assert out == {"a": 0.5, "b": 3, "c": [1, 2]}
    with pytest.raises(ValueError, match="unknown search-space type"):
        tune.suggest(trial, {"a": {"type": "complex"}})


def test_a_study_run_under_other_settings_is_never_resumed(tuned_project):
    """The study name carries a hash of what a trial's score depends on: another search space or
    protocol is a new study, the same settings find the same one."""
    import copy

    from mmsent.training.tune import study_name, tuning_config

    model = tuning_config(tuned_project).models[0]
    same = study_name(tuned_project, model)
    assert study_name(tuned_project, model) == same and same.startswith(f"{model}-single-")
    space = tuned_project.tuning.spaces[model]
    original = copy.deepcopy(space)
    next(iter(space.values()))["low"] = 1e-9
    assert study_name(tuned_project, model) != same
    tuned_project.tuning.spaces[model] = original
    tuned_project.protocol = dataclasses.replace(tuned_project.protocol, inner_fraction=0.3)
    assert study_name(tuned_project, model) != same


def test_the_pooled_stage_runs_the_trials_one_study_at_a_time_would(tuned_project, monkeypatch):
    """The stage spreads every trial's fold models over the cores; the trials it proposes, their
    fold scores and what it writes are those of running each study trial after trial."""
    tuned_project.tuning.models = ["attention_fusion", "text_head"]
    tuned_project.tuning.spaces["text_head"] = {
        "lr": {"type": "float", "low": 1e-4, "high": 1e-2}, "hidden": {"type": "categorical", "choices": [[8], [4]]}}
    monkeypatch.setenv("MMSENT_WORKERS", "2")
    tune.run(tuned_project)
    pooled = {m: [(t.params, t.user_attrs["fold_scores"]) for t in tune.study(tuned_project, m).trials]
              for m in ("attention_fusion", "text_head")}
    written = {m: tune.best_path(tuned_project, m).read_text() for m in pooled}
    tuned_project.tuning.storage = "sqlite:///data/optuna_sequential.db"
    for m in pooled:
        st = tune.tune_model(tuned_project, m)
        assert [(t.params, t.user_attrs["fold_scores"]) for t in st.trials] == pooled[m]
        assert len({json.dumps(p, sort_keys=True) for p, _ in pooled[m]}) == 3  # three different trials
        tune.write_best(tuned_project, m, st)
        assert tune.best_path(tuned_project, m).read_text().replace("optuna_sequential", "optuna") == written[m]
