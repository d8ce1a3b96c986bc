"""Self-distillation from cross-fitted teachers: every training pair's soft target comes from
teachers that never saw it, test is never read, and the soft targets really reach the loss
(the lever cannot silently turn off)."""

import dataclasses

import numpy as np
import pytest
import torch

from mmsent.training import distill
from mmsent.training.specs import DistillConfig
from mmsent.training.distill import fold_ids
from mmsent.models import build_model, make_config
from mmsent.training.loop import SOFT_LABEL, TensorData, TrainConfig, fit, predict_proba

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)


def test_fold_ids_deal_every_row_to_one_part_of_near_equal_size():
    parts = fold_ids(23, 5, seed=3)
    assert sorted(np.bincount(parts).tolist()) == [4, 4, 5, 5, 5]
    assert np.array_equal(parts, fold_ids(23, 5, seed=3))  # seeded
    assert not np.array_equal(parts, fold_ids(23, 5, seed=4))
    with pytest.raises(ValueError, match="cannot cut 3"):
        fold_ids(3, 5)


@pytest.mark.parametrize("bad, message", [({"folds": 1}, "folds"), ({"seeds": []}, "seeds"), ({"weight": 0}, "weight")])
def test_config_refuses_settings_that_would_turn_the_lever_off(bad, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**bad)


def _toy(n=90, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    text = torch.randn(n, 8, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, 8).float()
    inputs = {"text": text, "image": torch.randn(n, 6, generator=g)}
    return TensorData(inputs, labels, [str(i) for i in range(n)])


def _model():
    torch.manual_seed(0)
    return build_model("attention_fusion", make_config("attention_fusion", {
        "text_dim": 8, "image_dim": 6, "d_model": 16, "hidden": [16], "dropout": 0.0}))


def test_soft_targets_reach_the_loss_and_a_missing_one_is_an_error():
    train, dev = _toy(), _toy(30, seed=1)
    cfg = TrainConfig(epochs=15, batch_size=16, lr=0.01, patience=100, device="cpu", soft_weight=3.0)
    with pytest.raises(ValueError, match="soft_label"):
        fit(_model(), train, dev, cfg)
    # soft targets that always say "negative": with a large weight they pull the model there
    soft = torch.tensor([[0.0, 0.0, 1.0]]).repeat(len(train), 1)
    taught = _model()
    fit(taught, dataclasses.replace(train, inputs={**train.inputs, SOFT_LABEL: soft}), dev, cfg)
    plain = _model()
    fit(plain, train, dev, dataclasses.replace(cfg, soft_weight=0.0))
    p_taught, _ = predict_proba(taught, dev)
    p_plain, _ = predict_proba(plain, dev)
    assert p_taught[:, 2].mean() > p_plain[:, 2].mean() + 0.1
    with pytest.raises(ValueError, match="soft_weight"):
        TrainConfig(soft_weight=-1)


def test_teachers_never_see_the_pairs_they_label_nor_the_test_split(project, monkeypatch):  # noqa: F811
    from mmsent.training.inputs import build_inputs
    from mmsent.data.mvsa import load_parts
    from mmsent.training.specs import model_specs, train_config
    from mmsent.training.fitting import train_once

    monkeypatch.setenv("MMSENT_WORKERS", "1")  # teachers run in this process, where the spy is
    seen = []
    real_teach = distill._teach

    def spy(params, spec, config, data, held, seed, dataset):
        seen.append((set(data["train"].ids), set(held.ids), seed, set(data), spec.distill))
        return real_teach(params, spec, config, data, held, seed, dataset)

    monkeypatch.setattr(distill, "_teach", spy)
    spec = model_specs(project)["attention_fusion"]
    parts = load_parts(project, "single")
    spec.distill = {"folds": 3, "seeds": [7, 8], "weight": 1.0}
    config, data = build_inputs(project, spec, "single", parts)
    train_ids = set(parts["train"]["id"].astype(str))
    assert len(seen) == 6
    for seed in (7, 8):
        cut = [(fit_ids, held) for fit_ids, held, s, _, _ in seen if s == seed]
        assert all(not fit_ids & held and fit_ids | held == train_ids for fit_ids, held in cut)
        assert set().union(*(held for _, held in cut)) == train_ids  # every pair labelled once per seed
    assert all("test" not in keys and teacher_distill is None for *_, keys, teacher_distill in seen)
    soft = data["train"].inputs[SOFT_LABEL]
    assert soft.shape == (len(train_ids), 3) and torch.allclose(soft.sum(1), torch.ones(len(train_ids)))
    assert SOFT_LABEL not in data["dev"].inputs and SOFT_LABEL not in data["test"].inputs
    assert train_config(project, spec).soft_weight == 1.0
    assert data["train"].facts["teacher_cpu_seconds"] > 0
    # the student trains otherwise than the same model without the lever
    student, _ = train_once(project, spec, config, data, seed=0)
    plain_spec = dataclasses.replace(spec, distill=None)
    plain_config, plain_data = build_inputs(project, plain_spec, "single", parts)
    plain, _ = train_once(project, plain_spec, plain_config, plain_data, seed=0)
    assert any(not torch.equal(a, b) for a, b in zip(student.state_dict().values(), plain.state_dict().values()))
