"""The protocol end to end on a tiny synthetic project (fake cached features, 2 seeds)."""

import numpy as np
import pytest

from mmsent.paths import RunPaths
from mmsent.data import prepare
from mmsent.training import protocol
from mmsent.evaluation import results
from mmsent.config import load_params
from mmsent.training.inputs import feature_data
from mmsent.data.mvsa import load_parts
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.features.cache import feature_path
from mmsent.io import read_json, save_arrays
from mmsent.training.loop import load_checkpoint

from conftest import write_params

MODELS = {
    "majority": {"family": "majority", "group": "text", "datasets": ["single"]},
    "text_head": {"family": "mlp_head", "group": "text", "inputs": {"text": "fake_text"},
                  "options": {"hidden": [8]}},
    "attention_fusion": {"family": "attention_fusion", "group": "fusion",
                         "inputs": {"text": "fake_text", "image": "fake_image"},
                         "options": {"d_model": 8, "hidden": [8], "modality_dropout": 0.2}},
    "lstm": {"family": "bilstm", "group": "text", "options": {"hidden": 4, "glove": False}},
}


@pytest.fixture
def project(tmp_path, tiny_root):
    path = write_params(tmp_path / "p", tiny_root,
                        train={"seeds": [0, 1], "epochs": 3, "batch_size": 4, "device": "cpu"},
                        protocol={"folds": 2, "repeats": 1, "seed": 0, "final_seeds": [0, 1]})  # 4 train + dev pairs
    text = path.read_text() + "\n"
    import yaml
    raw = yaml.safe_load(text)
    raw["models"] = MODELS
    raw["ensemble"] = {"candidates": [{"name": "bag", "members": ["kept"], "bag": True}]}  # members trained here
    path.write_text(yaml.safe_dump(raw))
    params = load_params(path)
    prepare.run(params, progress=False)
    protocol.run(params)
    df = load_parts(params, "single")
    ids = np.concatenate([d["id"].to_numpy() for d in df.values()]).astype(str)
    rng = np.random.default_rng(0)
    for name, dim in (("fake_text", 6), ("fake_image", 5)):
        ok = np.ones(len(ids), bool)
        if name == "fake_image":
            ok[0] = False  # one unreadable image: its mask must reach the model
        save_arrays(feature_path(params, name, "single"), meta={"encoder": name}, ids=ids,
                    X=rng.normal(size=(len(ids), dim)).astype(np.float32), ok=ok)
    return params


def test_feature_inputs_carry_masks(project):
    spec = model_specs(project)["attention_fusion"]
    data, dims = feature_data(project, spec, "single", load_parts(project, "single"))
    assert dims == {"text": 6, "image": 5}
    masks = np.concatenate([data[p].inputs["image_mask"].numpy() for p in ("train", "dev", "test")])
    assert masks.sum() == len(masks) - 1


@pytest.mark.parametrize("name", list(MODELS))
def test_run_model_writes_metrics_predictions_and_checkpoints(project, name):
    out = run_model(project, model_specs(project)[name])["single"]
    assert out["seeds"] == 2 and len(out["per_seed"]) == 2
    assert "MVSA-Single clmlf test split, n=2" in out["measured_on"]
    assert read_json(RunPaths(project).record(name, "single"))["accuracy"] == out["accuracy"]
    preds = (RunPaths(project).predictions(name, "single") / "seed1.csv")
    assert preds.is_file() and "p_positive" in preds.read_text().splitlines()[0]
    ckpt = RunPaths(project).checkpoint(name, "single", 0)
    if name == "majority":
        assert not ckpt.exists()
    else:
        model, payload = load_checkpoint(ckpt)
        assert payload["model_name"] == name and payload["dataset"] == "single"
        assert payload["test_metrics"]["n"] == 2


def test_dedup_removes_leaked_test_pairs(project):
    assert len(load_parts(project, "single")["test"]) == 2
    project.data.dedup = True  # both tiny test pairs duplicate a train pair
    with pytest.raises(ValueError, match="no test pairs after de-duplication"):
        run_model(project, model_specs(project)["majority"])


def test_results_report_lists_models_and_anchors(project):
    for name in ("majority", "attention_fusion"):
        run_model(project, model_specs(project)[name])
    written = results.build(project)
    md = written["results.md"].read_text()
    assert "attention_fusion" in md and "CLMLF" in md and "theirs, not ours" in md
    assert r"\pm" in written["results.tex"].read_text()


def test_train_per_dataset_overrides_that_dataset_only(project):
    from mmsent.training.specs import train_config

    spec = model_specs(project)["text_head"]
    spec.train_per_dataset = {"single": {"epochs": 1}}
    assert train_config(project, spec, "single").epochs == 1
    assert train_config(project, spec, "multiple").epochs == train_config(project, spec).epochs == 3
    run_model(project, spec)
    history = RunPaths(project).history("text_head", "single").read_text().splitlines()
    assert len(history) == 1 + 2  # header + one epoch for each of the 2 seeds
    spec.train_per_dataset = {"singel": {"epochs": 1}}
    with pytest.raises(ValueError, match="singel"):
        train_config(project, spec, "single")


def test_the_numbers_dvc_metrics_shows_are_the_records(project):
    run_model(project, model_specs(project)["attention_fusion"])
    record = read_json(RunPaths(project).record("attention_fusion", "single"))
    scores = read_json(RunPaths(project).score("attention_fusion", "single"))
    assert all(isinstance(v, (int, float)) for v in scores.values())  # numbers only: one short row each
    assert scores["wf1"] == round(record["weighted_f1"]["mean"], 2)
    assert scores["acc_std"] == round(record["accuracy"]["std"], 2)
    assert scores["cv_wf1"] == round(record["cv"]["weighted_f1"]["mean"], 2)
