"""dvc.yaml and params.yaml agree: every model a stage trains is one of its outputs, and every
stage that reads all models' results depends on all of them (else `dvc repro` skips a rerun)."""

from pathlib import Path

import pytest
import yaml

from mmsent.config import load_params
from mmsent.training.specs import ModelSpec, model_specs

REPO = Path(__file__).resolve().parents[1]
STAGE_OF_GROUP = {"text": "text_models", "image": "image_models", "fusion": "fusion_models", "ablation": "ablation"}


@pytest.fixture(scope="module")
def dag():
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


@pytest.fixture(scope="module")
def specs():
    """Every model of params.yaml and every lever row of the ablation (trained by its stage, on
    whatever it keeps: their names are fixed here even before the chain is written)."""
    params = load_params(REPO / "params.yaml")
    out = model_specs(params, chained=False)
    for row in params.extra["ablation"]["rows"]:
        if "adds" in row:
            out[row["model"]] = ModelSpec(name=row["model"], family="attention_fusion", group="ablation")
    return out


def paths(entries) -> set[str]:
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries or []}


def test_each_training_stage_declares_its_models_outputs(dag, specs):
    for name, spec in specs.items():
        stage = dag[STAGE_OF_GROUP[spec.group]]
        outs, metrics = paths(stage.get("outs")), paths(stage.get("metrics"))
        assert f"data/predictions/{name}" in outs, (name, stage["cmd"])
        for dataset in spec.datasets:  # the full record beside the numbers `dvc metrics show` prints
            assert f"metrics/{name}_{dataset}.json" in outs, (name, dataset)
            assert f"metrics/scores/{name}_{dataset}.json" in metrics, (name, dataset)


def test_stages_that_read_every_model_depend_on_every_model(dag, specs):
    results, statistics, ship = (paths(dag[s]["deps"]) for s in ("results", "statistics", "ship"))
    for name, spec in specs.items():
        for dataset in spec.datasets:
            assert f"metrics/{name}_{dataset}.json" in results, ("results", name)
        assert f"data/predictions/{name}" in statistics, ("statistics", name)
        if spec.group in ("fusion", "ablation"):  # the ship stage chooses among these
            assert f"models/{name}" in ship and f"metrics/{name}_single.json" in ship, ("ship", name)


def test_every_figure_comes_as_png_and_pdf(dag):
    outs = {o for stage in dag.values() for o in paths(stage.get("outs"))}
    figures = {o for o in outs if o.startswith("reports/figures/")}
    assert figures and {f.rsplit(".", 1)[0] for f in figures if f.endswith(".png")} == \
        {f.rsplit(".", 1)[0] for f in figures if f.endswith(".pdf")}
