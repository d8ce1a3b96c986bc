"""Shipping chooses on dev only: rewriting test scores never changes the choice."""

import json

import pandas as pd

from mmsent import ship
from mmsent.experiments import model_specs, run_model
from mmsent.train import load_checkpoint

from test_experiments import project  # noqa: F401


def test_choice_uses_dev_never_test(project):  # noqa: F811
    project.extra["models"]["attention_fusion_b"] = dict(project.extra["models"]["attention_fusion"],
                                                         options={"d_model": 4, "hidden": [4]})
    for name in ("attention_fusion", "attention_fusion_b"):
        run_model(project, model_specs(project)[name])
    model, seed, table = ship.choose(project)
    loser = next(n for n in ("attention_fusion", "attention_fusion_b") if n != model)
    # make the dev-loser look perfect on test: the choice must not move
    path = project.path(f"metrics/{loser}_single.json")
    m = json.loads(path.read_text())
    m["accuracy"]["mean"] = m["weighted_f1"]["mean"] = 100.0
    path.write_text(json.dumps(m))
    assert ship.choose(project)[:2] == (model, seed)
    hist = pd.read_csv(project.path(f"metrics/history/{model}_single.csv"))
    assert seed == int(hist.groupby("seed")["dev_weighted_f1"].max().idxmax())


def test_ship_copies_the_checkpoint_and_writes_the_card(project, monkeypatch):  # noqa: F811
    run_model(project, model_specs(project)["attention_fusion"])
    out = ship.run(project)
    assets = project.path(ship.ASSETS)
    _, payload = load_checkpoint(assets / "default_model.pt")
    assert payload["model_name"] == out["model"] == "attention_fusion" and payload["seed"] == out["seed"]
    card = (assets / "MODEL_CARD.md").read_text()
    assert "Chosen on dev only" in card and "Intended use and limits" in card


def test_the_card_says_whether_the_model_reads_text_inside_images():
    from mmsent.ship import reads_ocr

    assert "is read by RapidOCR" in reads_ocr({"encoders": {"text": "minilm", "image": "e", "ocr": "minilm"}})
    assert "is not read" in reads_ocr({"encoders": {"text": "minilm", "image": "e"}})


def test_the_card_says_how_the_model_was_trained_beyond_its_labels(project):  # noqa: F811
    from mmsent.ship import training_extras

    assert training_extras(project, "attention_fusion") == ""
    project.extra["models"]["attention_fusion"] = dict(project.extra["models"]["attention_fusion"],
                                                       pretrain={"dataset": "multiple", "epochs": 2},
                                                       distill={"folds": 4, "seeds": [1, 2, 3], "weight": 0.5})
    said = training_extras(project, "attention_fusion")
    assert "pre-trained for 2 epoch(s) on MVSA-Multiple" in said
    assert "self-distillation, weight 0.5: 3 teacher seed(s) × 4 parts" in said
