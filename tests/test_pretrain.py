"""Text pre-training on MVSA-Multiple: dev/test texts of MVSA-Single removed first, and the
text branch really changes (the lever cannot silently turn off)."""

import pandas as pd
import pytest
import torch

from mmsent.models import build_model, make_config
from mmsent.training.pretrain import PretrainConfig, pretrain_text, without_eval_texts
from mmsent.training.loop import TensorData

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)


def test_multiple_texts_matching_single_dev_or_test_are_removed():
    single = {"train": pd.DataFrame({"text": ["seen in train"]}),
              "dev": pd.DataFrame({"text": ["Great  Game tonight"]}),
              "test": pd.DataFrame({"text": ["so sad today"]})}
    multiple = pd.DataFrame({"id": ["a", "b", "c", "d"],
                             "text": ["great game TONIGHT", "So sad today", "seen in train", "new tweet"]})
    kept = without_eval_texts(multiple, single)
    assert list(kept["id"]) == ["c", "d"]  # case and spacing do not hide a match; train matches may stay


def test_pretraining_moves_only_the_text_branch_and_lowers_its_loss():
    torch.manual_seed(0)
    model = build_model("attention_fusion", make_config("attention_fusion", {
        "text_dim": 8, "image_dim": 6, "d_model": 16, "hidden": [16], "dropout": 0.0}))
    labels = torch.arange(60) % 3
    text = torch.randn(60, 8) + 2 * torch.nn.functional.one_hot(labels, 8).float()
    data = TensorData({"text": text}, labels, [str(i) for i in range(60)])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    losses = pretrain_text(model, data, PretrainConfig(epochs=15, lr=0.01, batch_size=16), seed=0)
    assert losses[-1] < losses[0]
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved and all(k.startswith("project.text") for k in moved)
    with pytest.raises(ValueError, match="MVSA-Multiple"):
        PretrainConfig(dataset="single")
    with pytest.raises(TypeError, match="text projection"):
        pretrain_text(build_model("late_fusion", make_config("late_fusion", {"text_dim": 8, "image_dim": 6})),
                      data, PretrainConfig(), seed=0)


def test_a_model_with_pretrain_trains_differently_through_the_protocol(project):  # noqa: F811
    import numpy as np

    from mmsent.training.inputs import build_inputs
    from mmsent.data.mvsa import load_parts
    from mmsent.training.specs import model_specs
    from mmsent.training.fitting import train_once
    from mmsent.features.cache import feature_path
    from mmsent.io import save_arrays
    from mmsent.data.prepare import clean_pairs

    multiple = clean_pairs(project, "multiple")
    save_arrays(feature_path(project, "fake_text", "multiple"), meta={"encoder": "fake_text"},
                ids=multiple["id"].astype(str).to_numpy(),
                X=np.random.default_rng(1).normal(size=(len(multiple), 6)).astype(np.float32),
                ok=np.ones(len(multiple), bool))
    spec = model_specs(project)["attention_fusion"]
    parts = load_parts(project, "single")
    config, data = build_inputs(project, spec, "single", parts)
    plain, _ = train_once(project, spec, config, data, seed=0)
    spec.pretrain = {"dataset": "multiple", "epochs": 2}
    config, data = build_inputs(project, spec, "single", parts)
    assert len(data["pretrain"].labels) == multiple["text_label"].isin(["positive", "neutral", "negative"]).sum()
    pretrained, _ = train_once(project, spec, config, data, seed=0)
    assert not torch.equal(plain.state_dict()["project.text.0.weight"], pretrained.state_dict()["project.text.0.weight"])
