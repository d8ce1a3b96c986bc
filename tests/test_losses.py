"""The supervised contrastive lever: the loss does what it says, and its weight reaches training."""

import pytest
import torch

from mmsent.models import build_model
from mmsent.training.loop import TensorData, TrainConfig, fit
from mmsent.training.losses import supervised_contrastive


def test_pairs_of_a_label_close_together_cost_less_than_mixed_ones():
    labels = torch.tensor([0, 0, 1, 1])
    together = torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    mixed = together[[0, 2, 1, 3]]
    assert supervised_contrastive(together, labels) < supervised_contrastive(mixed, labels)


def test_a_batch_without_two_pairs_of_a_label_adds_nothing_and_keeps_the_graph():
    z = torch.randn(3, 4, requires_grad=True)
    loss = supervised_contrastive(z, torch.tensor([0, 1, 2]))
    assert loss.item() == 0.0
    loss.backward()
    assert z.grad is not None


def data(n=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 3, (n,), generator=g)
    inputs = {"text": torch.randn(n, 6, generator=g) + y[:, None], "image": torch.randn(n, 5, generator=g),
              "text_mask": torch.ones(n), "image_mask": torch.ones(n)}
    return TensorData(inputs, y, [str(i) for i in range(n)])


def trained(weight: float, family="attention_fusion"):
    torch.manual_seed(0)
    config = {"text_dim": 6, "image_dim": 5, "hidden": [8]} | ({"d_model": 8} if family == "attention_fusion" else {})
    model = build_model(family, config)
    cfg = TrainConfig(epochs=2, batch_size=16, scheduler="none", contrastive_weight=weight, device="cpu")
    fit(model, data(), data(seed=1), cfg, seed=0)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_the_weight_is_not_ignored_and_zero_is_the_plain_loss():
    plain, zero, on = trained(0.0), trained(0.0), trained(0.5)
    assert all(torch.equal(plain[k], zero[k]) for k in plain)
    assert any(not torch.equal(plain[k], on[k]) for k in plain)  # the contrastive term moved the weights


def test_a_family_without_a_fused_representation_is_refused():
    with pytest.raises(ValueError, match="no fused representation"):
        trained(0.5, family="concat_fusion")
    with pytest.raises(ValueError, match="contrastive"):
        TrainConfig(contrastive_temperature=0.0)
