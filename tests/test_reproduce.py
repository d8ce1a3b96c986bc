"""The reproducibility check: the comparison itself, and two real runs from clean on tiny MVSA."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmsent import sections
from mmsent.paths import RunPaths
from mmsent.cli import app
from mmsent.workflow.reproduce import compare_runs

from conftest import write_params


def write_run(root, accuracy=70.0, seconds=1.5, history_loss=0.5, extra_file=False):
    (root / "metrics/history").mkdir(parents=True)
    (root / "metrics/m_single.json").write_text(json.dumps(
        {"accuracy": {"mean": accuracy, "std": 0.1}, "train_seconds_per_seed": seconds,
         "per_seed": [{"seed": 0, "accuracy": accuracy, "confusion_matrix": [[1, 2], [3, 4]]}]}))
    pd.DataFrame({"epoch": [1, 2], "train_loss": [history_loss, 0.4], "seconds": [seconds, seconds]}).to_csv(
        root / "metrics/history/m_single.csv", index=False)
    if extra_file:
        (root / "metrics/other_single.json").write_text("{}")
    return root


def test_identical_runs_differ_only_in_timing(tmp_path):
    a = write_run(tmp_path / "a", seconds=1.0)
    b = write_run(tmp_path / "b", seconds=9.0)  # wall-clock time is not a result
    assert compare_runs(a, b) == []


def test_every_kind_of_difference_is_found(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", accuracy=70.0000001, history_loss=0.51, extra_file=True)
    found = {(d.file, d.where) for d in compare_runs(a, b)}
    assert ("metrics/m_single.json", ".accuracy.mean") in found  # exact: a 1e-7 drift counts
    assert ("metrics/m_single.json", ".per_seed[0].accuracy") in found
    assert ("metrics/history/m_single.csv", ".train_loss[0]") in found
    assert ("metrics/other_single.json", "file") in found
    assert len(found) == 4
    near = {(d.file, d.where) for d in compare_runs(a, b, tol=1e-3)}
    assert near == {("metrics/history/m_single.csv", ".train_loss[0]"), ("metrics/other_single.json", "file")}


def test_nothing_to_compare_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="no metric files"):
        compare_runs(tmp_path / "a", tmp_path / "b")


@pytest.mark.integration
def test_the_pipeline_twice_from_clean_gives_identical_metrics(tmp_path, tiny_root, monkeypatch):
    """prepare → ocr → features (real MiniLM / EfficientNet / VADER) → every text model, twice on CPU."""
    monkeypatch.setenv("MMSENT_DEVICE", "cpu")
    project = tmp_path / "project"
    write_params(project, tiny_root)
    monkeypatch.chdir(project)
    single_only = [f"models.{m}.datasets=[single]" for m in ("majority", "vader", "tfidf_lr", "lstm", "text_head")]
    args = ["check-reproducible", "--out", str(tmp_path / "repro"), "-s", "train.seeds=[0, 1]",
            "-s", "train.epochs=2", "-s", "models.tfidf_lr.options={min_df: 1}", *[a for o in single_only for a in ("-s", o)],
            "--only", "prepare", "--only", "ocr", "--only", "features", "--only", "folds",
            "-s", "protocol.folds=2", "-s", "protocol.repeats=1", "--only", "02_text_baselines"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["identical"] and summary["differences"] == []
    # five text models' metrics and their scores, the LSTM's and the head's histories, ocr's and features' timings
    assert summary["files"] == 14
    assert "**identical**" in (tmp_path / "repro/reproducibility.md").read_text()
    # a second check into the same folder is refused: it must start from clean
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, FileExistsError)


# --------------------------------------------------------------------------- another machine, simulated


def test_perturbation_is_relative_seeded_and_off_by_default(tiny_params):
    import numpy as np

    from mmsent.features.cache import perturbed

    X = np.random.default_rng(0).normal(size=(20, 6)).astype(np.float32)
    assert perturbed(tiny_params, X, "minilm", "single") is X  # off unless perturb.scale is set
    tiny_params.perturb = sections.PerturbConfig(scale=1e-5, seed=1)
    a, b = perturbed(tiny_params, X, "minilm", "single"), perturbed(tiny_params, X, "minilm", "single")
    assert (a == b).all() and not (a == X).all()  # repeatable, and it does change the features
    assert np.abs(a / X - 1).max() < 1e-4  # relative noise of about the scale
    assert not (perturbed(tiny_params, X, "efficientnet_lite0", "single") == a).all()  # each cache its own draw


def test_perturbed_check_reruns_after_the_features_and_detects_a_flipped_choice(tmp_path, monkeypatch):
    """On the tiny project: the check re-runs tuning, heads and the ablation on perturbed features,
    writes the report, and a deliberately flipped choice (another kept lever) is reported."""
    import yaml

    from mmsent.evaluation import ablation
    from mmsent.training import protocol
    from mmsent.workflow import reproduce
    from mmsent.training import tune
    from mmsent.config import load_params
    from mmsent.training.specs import uses_cv
    from mmsent.training.specs import model_specs
    from mmsent.training.runs import run_models

    from test_experiments import project as make_project  # the fixture's function, called directly
    from test_tune import tuned_project as add_tuning

    project = make_project.__wrapped__(tmp_path, __import__("conftest").make_tiny_mvsa(tmp_path / "mvsa"))
    project = add_tuning.__wrapped__(project, monkeypatch)
    raw = yaml.safe_load(project.path("params.yaml").read_text())
    raw["tuning"] = dataclasses.asdict(project.tuning)
    raw["models"]["fusion_b"] = {"family": "attention_fusion", "group": "ablation",
                                 "inputs": {"text": "fake_text", "image": "fake_image"},
                                 "options": {"d_model": 4, "hidden": [4]}}
    raw["ablation"] = {"rows": [{"lever": "a", "model": "attention_fusion"}, {"lever": "b", "model": "fusion_b"}]}
    project.path("params.yaml").write_text(yaml.safe_dump(raw))
    project = load_params(project.path("params.yaml"))
    protocol.run(project)
    tune.run(project)
    run_models(project, [s for s in model_specs(project).values()
                         if s.group in ("text", "image", "fusion") and uses_cv(s, "single")])
    ablation.run(project)
    root = project.path(".")
    out = reproduce.check_perturbed(tmp_path / "perturbed", 1e-5, project=root,
                                    steps=["tune", "heads", "ablation"], echo=lambda _: None)
    report = (root / "reports/reproducibility.md").read_text()
    assert out["rows"] >= 3 and "another machine, simulated" in report and "stated interval" in report
    other = load_params(tmp_path / "perturbed/params.yaml")
    assert other.perturb.scale == 1e-5
    assert (tmp_path / "perturbed/data/features").is_symlink()  # the project's caches, read perturbed
    again = reproduce.compare_perturbed(root, tmp_path / "perturbed")  # --compare-only: nothing re-run
    assert {k: again[k] for k in ("rows", "outside", "choices_changed")} == \
        {k: out[k] for k in ("rows", "outside", "choices_changed")}
    # flip a choice on purpose: the second lever wins every fold by 5 points in the other run
    ref = reproduce.choices(project)
    path = RunPaths(other).record("fusion_b", "single")
    m = json.loads(path.read_text())
    base = json.loads(RunPaths(other).record("attention_fusion", "single").read_text())["cv"]["per_fold"]["weighted_f1"]
    m["cv"]["per_fold"]["weighted_f1"] = [b + 5 for b in base]
    path.write_text(json.dumps(m))
    flipped = reproduce.changed_choices(ref, reproduce.choices(other))
    assert any("fusion_b" in f for f in flipped) and any("shipped model" in f for f in flipped)


def test_a_perturbed_run_is_compared_only_under_the_same_settings(tmp_path):
    """Comparing a run made under other settings would call their effect noise: refused, naming them."""
    import yaml

    from mmsent.workflow import reproduce

    mine = {"data": {"root": "../mvsa"}, "ensemble": {"ship": False}, "tuning": {"n_trials": 12}}
    (tmp_path / "project").mkdir()
    (tmp_path / "project/params.yaml").write_text(yaml.safe_dump(mine))
    theirs = {**mine, "data": {"root": str(tmp_path / "mvsa")}, "perturb": {"scale": 1e-5, "seed": 1}}
    (tmp_path / "run").mkdir()
    (tmp_path / "run/params.yaml").write_text(yaml.safe_dump(theirs))
    assert reproduce.settings_differ(tmp_path / "project/params.yaml", tmp_path / "run/params.yaml") == []
    theirs["tuning"] = {"n_trials": 6}
    (tmp_path / "run/params.yaml").write_text(yaml.safe_dump(theirs))
    assert reproduce.settings_differ(tmp_path / "project/params.yaml", tmp_path / "run/params.yaml") == \
        ["tuning.n_trials: 12 vs 6"]
    with pytest.raises(ValueError, match="other settings.*tuning.n_trials"):
        reproduce.compare_perturbed(tmp_path / "project", tmp_path / "run")
    (tmp_path / "run/params.yaml").write_text(yaml.safe_dump(mine))
    with pytest.raises(ValueError, match="not a perturbed run"):
        reproduce.compare_perturbed(tmp_path / "project", tmp_path / "run")


def test_rerun_interval_and_row_moves(tmp_path):
    from mmsent.workflow.reproduce import rerun_interval, row_moves

    assert rerun_interval(1.0, 5) == pytest.approx(1.96 * (2 / 5) ** 0.5)
    for name, acc in (("a", 70.0), ("b", 70.5)):
        (tmp_path / name / "metrics").mkdir(parents=True)
        (tmp_path / name / "metrics/m_single.json").write_text(json.dumps(
            {"accuracy": {"mean": acc, "std": 0.2}, "weighted_f1": {"mean": acc, "std": 1.0}, "seeds": 5}))
    moves = row_moves(tmp_path / "a", tmp_path / "b")
    assert list(moves["row"]) == ["m_single"] and moves["acc moved"][0] == pytest.approx(0.5)
    assert not moves["within"][0]  # 0.5 > 1.24 * 0.2 for accuracy


def test_a_changed_ensemble_decision_is_a_changed_choice():
    from mmsent.workflow.reproduce import changed_choices

    a = {"tuned": {}, "kept": {"m": True}, "ensembles": {"bag": False}, "shipped": "m"}
    assert changed_choices(a, dict(a)) == []
    assert changed_choices(a, {**a, "ensembles": {"bag": True}}) == ["ensemble bag: kept False -> True"]
