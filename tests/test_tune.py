"""Optuna tuning on a tiny synthetic project: seconds, resumable, dev only, applied to training."""

import numpy as np
import optuna
import pytest
import yaml

from mmsent import tune
from mmsent.experiments import model_specs

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)


@pytest.fixture
def tuned_project(project, monkeypatch):  # noqa: F811
    project.extra["tuning"] = {
        "apply": True, "models": ["attention_fusion"], "dataset": "single", "n_trials": 3, "seed": 0,
        "startup_trials": 1, "warmup_epochs": 1, "storage": "sqlite:///data/optuna.db",
        "spaces": {"attention_fusion": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                        "d_model": {"type": "categorical", "choices": [4, 8]},
                                        "hidden": {"type": "categorical", "choices": [[8], [8, 4]]}}},
    }
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
    tuned_project.extra["tuning"]["apply"] = False
    assert model_specs(tuned_project)["attention_fusion"].options["d_model"] == 8  # the hand-set value


def test_tuning_never_reads_test(tuned_project, monkeypatch):
    seen = []
    original = tune.build_inputs

    def spy(params, spec, dataset, parts, options=None):
        seen.append({k: len(v) for k, v in parts.items()})
        return original(params, spec, dataset, parts, options)

    monkeypatch.setattr(tune, "build_inputs", spy)
    tune.tune_model(tuned_project, "attention_fusion", n_trials=1)
    assert seen and all(s["test"] == 0 for s in seen)


def test_trials_train_with_the_tuning_overrides(tuned_project):
    tuned_project.extra["tuning"]["trial_train"] = {"epochs": 1}  # the project trains 3 epochs otherwise
    st = tune.tune_model(tuned_project, "attention_fusion", n_trials=2)
    assert all(max(t.intermediate_values) == 1 for t in st.trials)


def test_the_stage_runs_studies_side_by_side_like_one_by_one(tuned_project, monkeypatch):
    tuned_project.extra["tuning"]["models"] = ["attention_fusion", "text_head"]
    tuned_project.extra["tuning"]["spaces"]["text_head"] = {"lr": {"type": "float", "low": 1e-4, "high": 1e-2}}
    monkeypatch.setenv("MMSENT_WORKERS", "2")  # two spawned processes on one SQLite file
    side_by_side = tune.run(tuned_project)
    assert set(side_by_side) == {"attention_fusion", "text_head"}
    assert all(s["trials"] == 3 for s in side_by_side.values())
    tuned_project.extra["tuning"]["storage"] = "sqlite:///data/optuna_sequential.db"
    monkeypatch.setenv("MMSENT_WORKERS", "1")
    one_by_one = tune.run(tuned_project)
    assert {m: s["best_params"] for m, s in one_by_one.items()} == {m: s["best_params"] for m, s in side_by_side.items()}


def test_suggest_types_and_bad_space():
    trial = optuna.trial.FixedTrial({"a": 0.5, "b": 3, "c": "[1, 2]"})
    out = tune.suggest(trial, {"a": {"type": "float", "low": 0, "high": 1}, "b": {"type": "int", "low": 1, "high": 5},
                               "c": {"type": "categorical", "choices": [[1, 2], [3]]}})
    assert out == {"a": 0.5, "b": 3, "c": [1, 2]}
    with pytest.raises(ValueError, match="unknown search-space type"):
        tune.suggest(trial, {"a": {"type": "complex"}})
