"""The ablation report on a tiny project: keep decisions by cross-validation with the noise-aware
rule, ensembles, de-duplicated test."""

import json

import pytest

from mmsent.evaluation import ablation
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model

from test_experiments import project  # noqa: F401


def test_ablation_rows_ensembles_and_dedup(project, monkeypatch):  # noqa: F811
    project.extra["models"]["fusion_aux"] = {
        "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
        "options": {"d_model": 8, "hidden": [8], "aux_weight": 0.5}}
    project.extra["ablation"] = {"rows": [{"lever": "attention", "model": "attention_fusion"},
                                          {"lever": "+ aux heads", "model": "fusion_aux"},
                                          {"lever": "not trained yet", "model": "absent"}]}
    for name in ("attention_fusion", "fusion_aux"):
        run_model(project, model_specs(project)[name])
    base = json.loads(project.path("metrics/attention_fusion_single.json").read_text())["cv"]["per_fold"]["weighted_f1"]

    def set_folds(scores):
        path = project.path("metrics/fusion_aux_single.json")
        m = json.loads(path.read_text())
        m["cv"]["per_fold"]["weighted_f1"] = scores
        path.write_text(json.dumps(m))

    set_folds([base[0] + 3.0, base[1] - 2.0])  # better on average, but by less than the folds' noise: not kept
    table = ablation.rows(project)
    assert list(table["model"]) == ["attention_fusion", "fusion_aux"]
    assert list(table["kept (CV)"]) == ["yes", "no"] and ablation.kept_model(project) == "attention_fusion"
    set_folds([b + 5.0 for b in base])  # better on every fold by the same margin: kept
    assert list(ablation.rows(project)["kept (CV)"]) == ["yes", "yes"] and ablation.kept_model(project) == "fusion_aux"
    md = ablation.build(project).read_text()
    assert "Seed ensembles" in md and "De-duplicated test split" in md
    # every tiny test pair leaks, so the de-duplicated evaluation has no pairs left
    assert "no test pairs are left" in md
    ens = ablation.ensemble_metrics(project, "attention_fusion")
    assert ens["n"] == 2


def test_multitask_lever_reaches_the_trained_model(project):  # noqa: F811
    project.extra["models"]["fusion_aux"] = {
        "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
        "options": {"d_model": 8, "hidden": [8], "aux_weight": 0.5}}
    run_model(project, model_specs(project)["fusion_aux"])
    from mmsent.training.loop import load_checkpoint

    model, payload = load_checkpoint(project.path("models/fusion_aux/single/seed0.pt"))
    assert payload["config"]["aux_weight"] == 0.5 and hasattr(model, "aux")


def test_only_trains_the_named_levers_and_leaves_the_other_rows_results(project):  # noqa: F811
    for name in ("lever_a", "lever_b"):
        project.extra["models"][name] = {
            "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
            "options": {"d_model": 8, "hidden": [8]}}
    project.extra["ablation"] = {"rows": [{"lever": "a", "model": "lever_a"}, {"lever": "b", "model": "lever_b"}]}
    metrics = project.path("metrics")
    ablation.run(project, only=["lever_b"])
    assert not (metrics / "lever_a_single.json").exists() and (metrics / "lever_b_single.json").is_file()
    with pytest.raises(KeyError, match="not ablation models"):
        ablation.run(project, only=["attention_fusion"])  # a fusion-stage model, not an ablation lever
