
import numpy as np
import pytest
import torch

from mmsent.evaluation.metrics import aggregate, compute_metrics
from mmsent.models import build_model, make_config
from mmsent.models.baselines import MajorityClass, TfidfLogReg, VaderRule
from mmsent.models.lstm import build_vocab, encode_tokens
from mmsent.training.loop import TensorData, TrainConfig, fit, load_checkpoint, predict_proba, save_checkpoint

B = 12


def feature_batch(n=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"text": torch.randn(n, 8, generator=g), "image": torch.randn(n, 10, generator=g)}


def tiny(family, **overrides):
    opts = {
        "mlp_head": {"input": "text", "input_dim": 8, "hidden": [16]},
        "concat_fusion": {"text_dim": 8, "image_dim": 10, "hidden": [32, 16]},
        "attention_fusion": {"text_dim": 8, "image_dim": 10, "d_model": 16, "hidden": [16]},
        "late_fusion": {"text_dim": 8, "image_dim": 10, "hidden": [16]},
        "bilstm": {"vocab": ["<pad>", "<unk>", "good", "bad", "day"], "hidden": 8, "glove": False},
        "densenet121": {"image_size": 32},
    }[family] | overrides
    return build_model(family, make_config(family, opts))


def batch_for(family, n=B):
    if family == "bilstm":
        return {"tokens": torch.randint(1, 5, (n, 6)), "lengths": torch.randint(1, 7, (n,))}
    if family == "densenet121":
        return {"pixels": torch.randint(0, 255, (n, 3, 32, 32), dtype=torch.uint8)}
    return feature_batch(n)


FAMILIES = ["mlp_head", "concat_fusion", "attention_fusion", "late_fusion", "bilstm", "densenet121"]


@pytest.mark.parametrize("family", FAMILIES)
def test_shapes_and_gradients_reach_every_trainable_parameter(family):
    torch.manual_seed(0)
    model = tiny(family).train()
    out = model(batch_for(family))
    assert out["logits"].shape == (B, 3)
    out["logits"].sum().backward() if family != "late_fusion" else torch.nn.functional.cross_entropy(
        out["logits"], torch.randint(0, 3, (B,))).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None
               and not n.startswith("missing.")]  # stand-ins only get gradients when a modality is absent
    assert not missing


def test_attention_weights_are_a_distribution_and_respect_missing_modalities():
    model = tiny("attention_fusion").eval()
    batch = feature_batch()
    w = model(batch)["weights"]
    assert w.shape == (B, 2) and torch.allclose(w.sum(1), torch.ones(B))
    batch["image_mask"] = torch.zeros(B)
    assert torch.allclose(model(batch)["weights"][:, 0], torch.ones(B))


def test_gated_fusion_mixes_per_feature_and_ignores_a_missing_input():
    torch.manual_seed(0)
    model = tiny("attention_fusion", gate="feature").eval()
    assert hasattr(model, "gates") and not hasattr(model, "score")  # the lever really switches the fusion
    batch = feature_batch()
    out = model(batch)
    assert out["weights"].shape == (B, 2) and torch.allclose(out["weights"].sum(1), torch.ones(B))
    assert out["weights"].std() > 0  # gates depend on the inputs
    masked = dict(batch, image_mask=torch.zeros(B))
    assert torch.allclose(model(masked)["weights"][:, 0], torch.ones(B))
    changed = dict(masked, image=torch.randn_like(batch["image"]))  # an absent image cannot steer the gates
    assert torch.allclose(model(masked)["logits"], model(changed)["logits"])
    with pytest.raises(ValueError, match="gate"):
        tiny("attention_fusion", gate="token")


def test_modality_dropout_is_applied_in_training_only():
    from mmsent.models.fusion import modality_masks

    torch.manual_seed(0)
    batch = feature_batch(n=2000)
    masks = modality_masks(batch, training=True, p_drop=0.5)
    hidden = 1 - (masks["text"] * masks["image"])
    assert 0.4 < hidden.float().mean() < 0.6  # about half the samples lose one modality
    assert ((masks["text"] + masks["image"]) >= 1).all()  # never both
    eval_masks = modality_masks(batch, training=False, p_drop=0.5)
    assert eval_masks["text"].all() and eval_masks["image"].all()


def _overfit_data(n=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 3
    text = torch.randn(n, 8, generator=g) + 3 * torch.nn.functional.one_hot(labels, 8).float()
    image = torch.randn(n, 10, generator=g)
    return TensorData({"text": text, "image": image}, labels, [str(i) for i in range(n)])


@pytest.mark.parametrize("family", ["mlp_head", "concat_fusion", "attention_fusion", "late_fusion", "gated"])
def test_overfits_a_tiny_batch(family):
    data = _overfit_data()
    model = tiny("attention_fusion", dropout=0.0, gate="feature") if family == "gated" else tiny(family, dropout=0.0)
    history = fit(model, data, data, TrainConfig(epochs=100, lr=0.01, batch_size=24, patience=100, scheduler="none",
                                                 device="cpu", weight_decay=0.0), seed=0)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    probs, _ = predict_proba(model, data)
    assert (probs.argmax(1) == data.labels.numpy()).mean() == 1.0


def test_same_seed_same_result_different_seed_different_weights():
    data = _overfit_data()
    cfg = TrainConfig(epochs=3, batch_size=8, device="cpu")
    runs = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)  # initialisation is part of the seeded run
        model = tiny("concat_fusion")
        fit(model, data, data, cfg, seed=seed)
        runs.append(model.state_dict())
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_early_stopping_and_best_epoch_restored():
    data = _overfit_data()
    history = fit(tiny("mlp_head"), data, data, TrainConfig(epochs=50, patience=2, lr=0.0, device="cpu"), seed=0)
    assert len(history) == 3  # lr 0 never improves after epoch 1: stops after `patience` more


@pytest.mark.parametrize("family", ["attention_fusion", "bilstm"])
def test_checkpoint_round_trip_gives_identical_predictions(tmp_path, family):
    model = tiny(family).eval()
    batch = batch_for(family)
    path = save_checkpoint(tmp_path / "m" / "seed0.pt", model, family, encoders={"text": "minilm"})
    loaded, payload = load_checkpoint(path)
    assert payload["id2label"] == {0: "positive", 1: "neutral", 2: "negative"}
    assert payload["encoders"] == {"text": "minilm"}
    with torch.no_grad():
        assert torch.equal(model(batch)["logits"], loaded(batch)["logits"])
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["seed0.pt"]
    again = save_checkpoint(tmp_path / "other" / "seed1.pt", model, family, encoders={"text": "minilm"})
    assert again.read_bytes() == path.read_bytes()  # the same weights, the same bytes, wherever saved


def test_bad_checkpoints_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable mmsent checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")


def test_config_rejects_unknown_options():
    with pytest.raises(ValueError, match="unknown option"):
        make_config("concat_fusion", {"hiddenn": [3]})
    with pytest.raises(KeyError, match="unknown model family"):
        make_config("transformer_xl", {})


def test_vocab_from_train_only_and_token_encoding():
    vocab = build_vocab([["good", "day"], ["good"]])
    assert vocab[:3] == ["<pad>", "<unk>", "good"]
    ids, lengths = encode_tokens([["good", "unseen"], [], ["day"] * 9], vocab, max_len=4)
    assert ids.tolist()[0] == [2, 1, 0, 0] and lengths.tolist() == [2, 1, 4]


def test_glove_initialisation_covers_common_words():
    model = build_model("bilstm", make_config("bilstm", {"vocab": ["<pad>", "<unk>", "the", "happy", "zzqqx"]}))
    model.load_pretrained()
    assert model.facts()["glove_coverage"] == pytest.approx(2 / 3)
    assert model.embedding.weight[2].abs().sum() > 0


def test_metrics_against_hand_computed_values():
    gold = [0, 0, 0, 1, 2, 2]
    pred = [0, 0, 1, 1, 2, 0]
    m = compute_metrics(gold, pred)
    assert m["accuracy"] == pytest.approx(400 / 6)
    # per class F1: positive P=2/3 R=2/3 → 2/3; neutral P=1/2 R=1 → 2/3; negative P=1 R=1/2 → 2/3
    assert m["per_class"]["neutral"]["precision"] == pytest.approx(50)
    assert m["macro_f1"] == pytest.approx(200 / 3)
    assert m["weighted_f1"] == pytest.approx(200 / 3)
    assert m["confusion_matrix"] == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]
    agg = aggregate([m, compute_metrics(gold, gold)])
    assert agg["accuracy"]["mean"] == pytest.approx((400 / 6 + 100) / 2)
    assert agg["accuracy"]["std"] == pytest.approx(np.std([400 / 6, 100], ddof=1))


def test_baselines():
    texts = ["I love this", "great day", "awful and sad", "I hate it", "the table"]
    labels = [0, 0, 2, 2, 1]
    assert MajorityClass().fit(texts, [0, 0, 1]).predict_proba(["x"]).tolist() == [[1, 0, 0]]
    vader = VaderRule().fit(texts, labels).predict_proba(texts).argmax(1).tolist()
    assert vader == [0, 0, 2, 2, 1]
    probs = TfidfLogReg().fit(texts * 3, labels * 3).predict_proba(["love love"])
    assert probs.shape == (1, 3) and np.isclose(probs.sum(), 1)


def test_auxiliary_loss_is_used_when_weighted_and_absent_otherwise():
    batch = feature_batch()
    batch["text_label"] = torch.randint(0, 3, (B,))
    batch["image_label"] = torch.randint(0, 3, (B,))
    plain = tiny("attention_fusion").train()
    assert "aux_loss" not in plain(batch)
    torch.manual_seed(0)
    multi = tiny("attention_fusion", aux_weight=0.5).train()
    out = multi(batch)
    assert out["aux_loss"] > 0
    out["aux_loss"].backward()
    assert multi.aux["text_label"].weight.grad.abs().sum() > 0
    assert "aux_loss" not in multi.eval()(batch)  # prediction is unchanged by the auxiliary heads


@pytest.mark.parametrize("family", ["concat_fusion", "attention_fusion"])
def test_input_standardisation_option(family):
    model = tiny(family, input_norm=True).train()
    batch = feature_batch()
    batch["image"] = batch["image"] * 1000  # very different scales per modality
    model(batch)
    assert isinstance(model.norm["image"], torch.nn.BatchNorm1d)
    assert model.norm["image"].running_var.mean() > 100  # the statistics were actually tracked
