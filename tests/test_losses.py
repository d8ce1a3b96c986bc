"""The contrastive levers (supervised, and view-contrastive with augmented texts): the losses do
what they say, and their weights reach training."""

import pytest
import torch

from mmsent.models import build_model
import numpy as np

from mmsent.training.loop import VIEW, VIEW_OK, TensorData, TrainConfig, fit, split_views, with_augment
from mmsent.training.losses import supervised_contrastive, view_contrastive


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


def trained(weight: float, family="attention_fusion", view_weight: float = 0.0, train: TensorData | None = None):
    torch.manual_seed(0)
    config = {"text_dim": 6, "image_dim": 5, "hidden": [8]} | ({"d_model": 8} if family == "attention_fusion" else {})
    model = build_model(family, config)
    cfg = TrainConfig(epochs=2, batch_size=16, scheduler="none", contrastive_weight=weight,
                      view_contrastive_weight=view_weight, device="cpu")
    fit(model, train or data(), data(seed=1), cfg, seed=0)
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


def test_a_pair_next_to_its_own_view_costs_less_than_next_to_another_pairs():
    z = torch.eye(4) + 0.05
    assert view_contrastive(z, z + 0.01) < view_contrastive(z, (z + 0.01)[[1, 0, 3, 2]])


def with_views(n=48, has_view=None):
    """Training data whose augmented view is another text vector of each pair (``has_view``: which have one)."""
    train = data(n)
    augment = TensorData({**train.inputs, "text": train.inputs["text"] + torch.randn(n, 6)}, train.labels, train.ids)
    ok = np.ones(n, bool) if has_view is None else has_view
    return {"train": train, "augment": augment, "augment_ok": ok, "augment_as": "view", "augment_keys": ["text"]}


def test_views_ride_beside_their_pairs_and_never_become_pairs():
    has_view = np.arange(48) % 3 != 0  # a third have no augmented text (e.g. a held-out pair's)
    parts = with_views(has_view=has_view)
    rows = np.arange(48) < 40
    train = with_augment(parts, rows)
    assert len(train) == 40 and train.ids == parts["train"].ids[:40]  # no extra training pairs
    assert set(train.inputs) == set(parts["train"].inputs) | {VIEW + "text", VIEW_OK}
    assert torch.equal(train.inputs[VIEW_OK], torch.from_numpy(has_view[:40]))
    inputs, view, ok = split_views(dict(train.inputs))
    assert set(inputs) == set(parts["train"].inputs) and torch.equal(ok, train.inputs[VIEW_OK])
    assert torch.equal(view["text"], parts["augment"].inputs["text"][:40][has_view[:40]])  # only the text is the view's
    assert torch.equal(view["image"], parts["train"].inputs["image"][:40][has_view[:40]])
    as_pairs = with_augment({**parts, "augment_as": "pairs"}, rows)  # the other use: more pairs, no views
    assert len(as_pairs) == 40 + has_view[:40].sum() and VIEW_OK not in as_pairs.inputs


def test_the_view_weight_is_not_ignored_and_needs_views():
    train = with_augment(with_views())
    plain, zero, on = trained(0.0, train=train), trained(0.0, train=train), trained(0.0, view_weight=0.5, train=train)
    assert all(torch.equal(plain[k], zero[k]) for k in plain)  # views present but weight 0: the plain loss
    assert any(not torch.equal(plain[k], on[k]) for k in plain)
    without = trained(0.0, view_weight=0.5, train=with_augment(with_views(has_view=np.zeros(48, bool))))
    assert all(torch.equal(plain[k], without[k]) for k in plain)  # no pair has a view: nothing to pull
    with pytest.raises(ValueError, match="no augmented views"):
        trained(0.0, view_weight=0.5)
    with pytest.raises(ValueError, match="view_contrastive_weight"):
        TrainConfig(view_contrastive_weight=-1)
