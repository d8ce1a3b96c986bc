"""The ablation report on a tiny project: keep decisions by cross-validation with the noise-aware
rule, ensembles, de-duplicated test."""

from mmsent.paths import RunPaths
from mmsent import sections
import itertools
import json

import pytest

from mmsent.evaluation import ablation
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model

from test_experiments import project  # noqa: F401


def test_ablation_rows_ensembles_and_dedup(project, monkeypatch):  # noqa: F811
    project.models["fusion_aux"] = {
        "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
        "options": {"d_model": 8, "hidden": [8], "aux_weight": 0.5}}
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "attention", "model": "attention_fusion"},
                                          {"lever": "+ aux heads", "model": "fusion_aux"},
                                          {"lever": "not trained yet", "model": "absent"}]})
    for name in ("attention_fusion", "fusion_aux"):
        run_model(project, model_specs(project)[name])
    base = json.loads(RunPaths(project).record("attention_fusion", "single").read_text())["cv"]["per_fold"]["weighted_f1"]

    def set_folds(scores):
        path = RunPaths(project).record("fusion_aux", "single")
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
    project.models["fusion_aux"] = {
        "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
        "options": {"d_model": 8, "hidden": [8], "aux_weight": 0.5}}
    run_model(project, model_specs(project)["fusion_aux"])
    from mmsent.training.loop import load_checkpoint

    model, payload = load_checkpoint(RunPaths(project).checkpoint("fusion_aux", "single", 0))
    assert payload["config"]["aux_weight"] == 0.5 and hasattr(model, "aux")


def test_only_trains_the_named_levers_and_leaves_the_other_rows_results(project):  # noqa: F811
    for name in ("lever_a", "lever_b"):
        project.models[name] = {
            "family": "attention_fusion", "group": "ablation", "inputs": {"text": "fake_text", "image": "fake_image"},
            "options": {"d_model": 8, "hidden": [8]}}
    project.ablation = sections.AblationConfig(**{
        "rows": [{"lever": "a", "model": "lever_a"}, {"lever": "b", "model": "lever_b"}]})
    ablation.run(project, only=["lever_b"])
    paths = RunPaths(project)
    assert not paths.record("lever_a", "single").exists() and paths.record("lever_b", "single").is_file()
    with pytest.raises(KeyError, match="not ablation models"):
        ablation.run(project, only=["attention_fusion"])  # a fusion-stage model, not an ablation lever


@pytest.mark.parametrize("keep_first", [False, True])
def test_forward_selection_builds_each_lever_on_the_configuration_kept_so_far(project, monkeypatch, keep_first):  # noqa: F811
    """A lever row is the kept configuration plus that one lever: never a rejected row, so a
    lever's difference is its own and what ships carries only levers that passed."""
    from mmsent.training.protocol import Verdict
    from mmsent.training.specs import read_chain

    project.ablation = sections.AblationConfig(**{"rows": [
        {"lever": "attention", "model": "attention_fusion"},
        {"lever": "+ aux heads", "model": "lever_aux", "adds": {"options": {"aux_weight": 0.5}}},
        {"lever": "+ more dropout", "model": "lever_dropout", "adds": {"options": {"dropout": 0.2}}}]})
    run_model(project, model_specs(project)["attention_fusion"])
    verdicts = itertools.cycle([keep_first, True])  # the rule on lever_aux, then lever_dropout, in every walk
    monkeypatch.setattr(ablation, "beats", lambda *a: Verdict(next(verdicts), 1.0, 0.5))
    from mmsent.training import runs

    pools, original = [], runs.run_models
    monkeypatch.setattr(runs, "run_models", lambda params, specs: (pools.append([s.name for s in specs]),
                                                                   original(params, specs))[1])
    ablation.run(project)
    # the lever rows on one incumbent train as one pool; a row whose incumbent changed trains again
    assert [p for p in pools if p] == ([["lever_aux", "lever_dropout"], ["lever_dropout"]] if keep_first
                                       else [["lever_aux", "lever_dropout"]])
    chain = read_chain(project)
    rows = {r["model"]: r for r in chain["rows"]}
    assert rows["lever_aux"]["built_on"] == "attention_fusion" and rows["lever_aux"]["kept"] is keep_first
    assert rows["lever_dropout"]["built_on"] == ("lever_aux" if keep_first else "attention_fusion")
    spec = model_specs(project)["lever_dropout"]  # later stages read the spec the stage trained
    assert spec.options["dropout"] == 0.2 and spec.group == "ablation"
    assert ("aux_weight" in spec.options) is keep_first
    assert chain["kept"] == "lever_dropout" == ablation.kept_model(project)
    assert chain["start"] == "attention"
    assert chain["levers_kept"] == (["+ aux heads"] if keep_first else []) + ["+ more dropout"]
    from mmsent.training.loop import load_checkpoint

    _, payload = load_checkpoint(RunPaths(project).checkpoint("lever_dropout", "single", 0))
    assert (payload["config"].get("aux_weight", 0) == 0.5) is keep_first


def test_a_lever_row_needs_a_kept_configuration_before_it(project):  # noqa: F811
    project.ablation = sections.AblationConfig(**{
        "rows": [{"lever": "x", "model": "lever_x", "adds": {"options": {"dropout": 0.2}}}]})
    with pytest.raises(ValueError, match="no row before it was kept"):
        ablation.run(project)


def test_a_lever_that_needs_another_family_is_reported_not_trained(project):  # noqa: F811
    """A lever declared for one family (a loss on attention's fused vector, say) is not built on a kept
    configuration of another family: the row says so, and the walk goes on."""
    from mmsent.training.specs import read_chain

    project.ablation = sections.AblationConfig(**{"rows": [
        {"lever": "attention", "model": "attention_fusion"},
        {"lever": "+ a concat-only trick", "model": "lever_concat", "needs_family": "concat_fusion",
         "adds": {"options": {"dropout": 0.2}}}]})
    run_model(project, model_specs(project)["attention_fusion"])
    md = ablation.run(project).read_text()
    assert "not applicable: needs concat_fusion" in md and "nan" not in md.split()
    assert not RunPaths(project).record("lever_concat", "single").exists()
    row = {r["model"]: r for r in read_chain(project)["rows"]}["lever_concat"]
    assert row["kept"] is False and "needs concat_fusion" in row["skipped"]


def test_a_reference_row_is_compared_but_never_kept(project, monkeypatch):  # noqa: F811
    """The declared start cannot be displaced by a reference row however well it scores on the
    folds: the start is a fixed declaration, so no rerun can flip it."""
    from mmsent.training.specs import describe_kept, read_chain

    project.models["fusion_ref"] = dict(project.models["attention_fusion"])
    project.ablation = sections.AblationConfig(**{"rows": [
        {"lever": "attention (declared start)", "model": "attention_fusion"},
        {"lever": "reference: another head", "model": "fusion_ref", "reference": True},
        {"lever": "+ more dropout", "model": "lever_dropout", "adds": {"options": {"dropout": 0.2}}}]})
    for name in ("attention_fusion", "fusion_ref"):
        run_model(project, model_specs(project)[name])
    path = RunPaths(project).record("fusion_ref", "single")
    m = json.loads(path.read_text())
    m["cv"]["per_fold"]["weighted_f1"] = [v + 20.0 for v in m["cv"]["per_fold"]["weighted_f1"]]
    path.write_text(json.dumps(m))
    md = ablation.run(project).read_text()
    table = ablation.rows(project)
    assert list(table["kept (CV)"])[1] == "reference"
    assert table.loc[1, "Δ vs kept (± SE)"].startswith("+")  # compared with the start, and better
    chain = read_chain(project)
    assert {r["model"]: r["built_on"] for r in chain["rows"]}["lever_dropout"] == "attention_fusion"
    assert chain["start"] == "attention (declared start)" and "fusion_ref" != chain["kept"]
    assert describe_kept(chain) in md
    project.ablation.rows = project.ablation.rows[1:]
    with pytest.raises(ValueError, match="is a reference but no row before it was kept"):
        ablation.decide(project)
