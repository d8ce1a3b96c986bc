"""Shipping takes the configuration the ablation kept by cross-validation: rewriting test scores
never changes the choice, rewriting fold scores does."""

from mmsent.paths import RunPaths
from mmsent import sections
import json
import re

from mmsent.serving import ship
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.training.loop import load_checkpoint

from test_experiments import project  # noqa: F401


def _rewrite(project, model, fn):  # noqa: F811
    path = RunPaths(project).record(model, "single")
    m = json.loads(path.read_text())
    fn(m)
    path.write_text(json.dumps(m))


def test_choice_uses_cross_validation_never_test(project):  # noqa: F811
    project.models["attention_fusion_b"] = dict(project.models["attention_fusion"],
                                                         options={"d_model": 4, "hidden": [4]})
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "a", "model": "attention_fusion"},
                                          {"lever": "b", "model": "attention_fusion_b"}]})
    for name in ("attention_fusion", "attention_fusion_b"):
        run_model(project, model_specs(project)[name])
    base = json.loads(RunPaths(project).record("attention_fusion", "single").read_text())["cv"]["per_fold"]["weighted_f1"]
    _rewrite(project, "attention_fusion_b", lambda m: m["cv"]["per_fold"].update(weighted_f1=[b + 4 for b in base]))
    model, seed, table = ship.choose(project)
    assert (model, seed) == ("attention_fusion_b", project.train.seeds[0]) and len(table) == 2

    def perfect(m):
        m["accuracy"]["mean"] = m["weighted_f1"]["mean"] = 100.0

    def useless(m):
        m["accuracy"]["mean"] = m["weighted_f1"]["mean"] = 0.0

    _rewrite(project, "attention_fusion", perfect)  # the CV-loser looks perfect on test, the winner useless
    _rewrite(project, "attention_fusion_b", useless)
    assert ship.choose(project)[:2] == (model, seed)
    _rewrite(project, "attention_fusion_b", lambda m: m["cv"]["per_fold"].update(weighted_f1=base))
    assert ship.choose(project)[0] == "attention_fusion"  # equal on the folds: the simpler, earlier row stays


def test_ship_copies_the_checkpoint_and_writes_the_card(project, monkeypatch):  # noqa: F811
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "attention", "model": "attention_fusion"}]})
    run_model(project, model_specs(project)["attention_fusion"])
    out = ship.run(project)
    assets = project.path(ship.ASSETS)
    _, payload = load_checkpoint(assets / "default_model.pt")
    assert payload["model_name"] == out["model"] == "attention_fusion" and payload["seed"] == out["seed"]
    card = (assets / "MODEL_CARD.md").read_text()
    assert "Levers chosen by cross-validation, never on test" in card and "Intended use and limits" in card
    # calibrated on cross-fitted out-of-fold predictions, the temperature travels in the checkpoint; the card has
    # ECE with an interval over seeds, NLL and Brier, before and after, and the fold models' temperature beside it
    assert 0.05 <= payload["temperature"] <= 20 and "cross-fitted out-of-fold" in payload["calibration"]
    assert "## Calibration" in card and "| probabilities | ECE (%) | NLL | Brier |" in card
    assert "(cross-fitted; shipped)" in card and "(fitted on the CV fold models)" in card and "no scaling" in card
    assert re.search(r"\| \d+\.\d\d ± \d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\] \| \d\.\d{3} ± ", card)
    assert project.path("reports/figures/calibration_reliability.png").is_file()
    # what to expect, measured: both inputs, text only, image only, per-class F1
    expect = project.path("reports/tables/readme_expect.md").read_text()
    assert "| text only |" in expect and "| image only |" in expect and "Per-class F1" in expect
    assert expect.strip() in card


def test_the_card_says_whether_the_model_reads_text_inside_images():
    from mmsent.serving.ship import reads_ocr

    assert "is read by RapidOCR" in reads_ocr({"encoders": {"text": "minilm", "image": "e", "ocr": "minilm"}})
    assert "is not read" in reads_ocr({"encoders": {"text": "minilm", "image": "e"}})


def test_the_card_says_how_the_model_was_trained_beyond_its_labels(project):  # noqa: F811
    from mmsent.serving.ship import training_extras

    assert training_extras(project, "attention_fusion") == ""
    project.models["attention_fusion"] = dict(project.models["attention_fusion"],
                                                       pretrain={"dataset": "multiple", "epochs": 2},
                                                       distill={"folds": 4, "seeds": [1, 2, 3], "weight": 0.5})
    said = training_extras(project, "attention_fusion")
    assert "pre-trained for 2 epoch(s) on MVSA-Multiple" in said
    assert "self-distillation, weight 0.5: 3 teacher seed(s) × 4 parts" in said
