"""Cross-modal attention between text tokens and image regions (family crossmodal_fusion): the
attention really reads the regions and tokens, padding and absent inputs are safe, the protocol
feeds it token / region caches, and a checkpoint serves predictions through the Pipeline."""

import numpy as np
import pytest
import torch

from mmsent.models import build_model, make_config


def tiny_model(**options):
    torch.manual_seed(0)
    return build_model("crossmodal_fusion", make_config("crossmodal_fusion", {
        "text_dim": 6, "image_dim": 5, "tokens_dim": 4, "regions_dim": 3, "d_model": 8, "hidden": [8],
        "cross_dim": 8, "cross_heads": 2, "dropout": 0.0, **options}))


def batch(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(n, 5, 4, generator=g)
    tokens[0, 2:] = 0  # padding
    tokens[1] = 0  # a pair with no tokens at all
    return {"text": torch.randn(n, 6, generator=g), "image": torch.randn(n, 5, generator=g),
            "tokens": tokens, "regions": torch.randn(n, 9, 3, generator=g)}


def test_the_regions_and_tokens_move_the_prediction_and_padding_is_safe():
    model = tiny_model().eval()
    b = batch()
    out = model(b)["logits"]
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    other_regions = dict(b, regions=torch.randn(4, 9, 3))
    assert not torch.allclose(model(other_regions)["logits"], out)  # the words look at the image
    other_tokens = dict(b, tokens=b["tokens"] + 1.0)
    assert not torch.allclose(model(other_tokens)["logits"], out)  # the regions read the text
    # zero rows are padding: more of them change nothing
    longer = dict(b, tokens=torch.cat([b["tokens"], torch.zeros(4, 3, 4)], dim=1))
    assert torch.allclose(model(longer)["logits"], out, atol=1e-5)
    # an absent input (the Pipeline sends one zero row per pair) gives finite logits
    absent = dict(b, regions=torch.zeros(4, 3), regions_mask=torch.zeros(4))
    assert torch.isfinite(model(absent)["logits"]).all()


def test_cross_attention_trains_and_the_aux_heads_still_apply():
    model = tiny_model(aux_weight=0.5).train()
    b = dict(batch(), text_label=torch.tensor([0, 1, 2, 0]), image_label=torch.tensor([1, 1, 0, 2]))
    out = model(b)
    assert "aux_loss" in out and out["aux_loss"].item() > 0
    loss = torch.nn.functional.cross_entropy(out["logits"], torch.tensor([0, 1, 2, 1])) + out["aux_loss"]
    loss.backward()
    assert model.words_see.in_proj_weight.grad.abs().sum() > 0
    assert model.regions_read.in_proj_weight.grad.abs().sum() > 0


def test_attention_fusion_refuses_sequence_inputs_with_a_pointer():
    with pytest.raises(ValueError, match="crossmodal_fusion"):
        build_model("attention_fusion", make_config("attention_fusion", {"extra_dims": {"tokens": 4}}))


def test_token_and_region_encoders_give_one_vector_per_position():
    from mmsent.features.encoders import get_encoder

    tokens = get_encoder("minilm_tokens", device="cpu")
    X = tokens.encode(["so happy", "a far longer tweet about the game tonight with friends"])
    assert X.shape == (2, 48, 384) and tokens.shape == (48, 384)
    real = (np.abs(X).sum(-1) > 0).sum(1)
    assert 2 < real[0] < real[1] < 48  # [CLS] + words + [SEP], the rest zero padding
    regions = get_encoder("efficientnet_lite0_regions", device="cpu", image_size=64)
    img = np.zeros((64, 64, 3), np.uint8)
    img[:20] = 255
    R = regions.encode([img])
    assert R.shape == (1, 9, 1280) and regions.name == "efficientnet_lite0_regions"
    assert not np.allclose(R[0, 0], R[0, 8])  # the top and bottom regions differ


def test_the_protocol_feeds_token_and_region_caches(tmp_path, tiny_root):
    from mmsent.data import prepare
    from mmsent.config import load_params
    from mmsent.training.inputs import build_inputs
    from mmsent.data.mvsa import load_parts
    from mmsent.training.specs import model_specs
    from mmsent.training.fitting import train_once
    from mmsent.features.cache import feature_path
    from mmsent.io import save_arrays

    from conftest import write_params

    params = load_params(write_params(tmp_path / "p", tiny_root, train={"epochs": 2, "batch_size": 4, "device": "cpu"}))
    params.models = {"cross": {
        "family": "crossmodal_fusion", "group": "ablation",
        "inputs": {"text": "f_text", "image": "f_image", "tokens": "f_tokens", "regions": "f_regions"},
        "options": {"d_model": 8, "hidden": [8], "cross_dim": 8, "cross_heads": 2}}}
    prepare.run(params, progress=False)
    parts = load_parts(params, "single")
    ids = np.concatenate([d["id"].to_numpy() for d in parts.values()]).astype(str)
    rng = np.random.default_rng(0)
    for name, shape in (("f_text", (6,)), ("f_image", (5,)), ("f_tokens", (7, 4)), ("f_regions", (9, 3))):
        X = rng.normal(size=(len(ids), *shape)).astype(np.float16 if len(shape) == 2 else np.float32)
        save_arrays(feature_path(params, name, "single"), meta={"encoder": name}, ids=ids, X=X, ok=np.ones(len(ids), bool))
    spec = model_specs(params)["cross"]
    config, data = build_inputs(params, spec, "single", parts)
    assert (config.tokens_dim, config.regions_dim, config.text_dim, config.image_dim) == (4, 3, 6, 5)
    assert data["train"].inputs["tokens"].dtype == torch.float32 and data["train"].inputs["tokens"].shape[1:] == (7, 4)
    model, history = train_once(params, spec, config, data, seed=0, dataset="single")
    assert len(history) == 2 and model.config.cross_dim == 8


def test_a_crossmodal_checkpoint_predicts_through_the_pipeline(tmp_path):
    from mmsent.serving.pipeline import Pipeline
    from mmsent.training.loop import save_checkpoint

    torch.manual_seed(0)
    model = build_model("crossmodal_fusion", make_config("crossmodal_fusion", {
        "text_dim": 384, "image_dim": 1280, "d_model": 16, "hidden": [16], "cross_dim": 16, "cross_heads": 2}))
    path = save_checkpoint(tmp_path / "cross.pt", model.eval(), "crossmodal_fusion", image_size=64,
                           encoders={"text": "minilm", "image": "efficientnet_lite0",
                                     "tokens": "minilm_tokens", "regions": "efficientnet_lite0_regions"})
    pipe = Pipeline.load(path, device="cpu")
    img = np.full((64, 64, 3), 200, np.uint8)
    both = pipe.predict(text="what a lovely day", image=img)
    text_only = pipe.predict(text="what a lovely day")
    assert sum(both["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert both["probabilities"] != text_only["probabilities"]  # the image (and its regions) counted


def test_the_features_stage_caches_token_vectors_as_float16_sequences(tiny_params):
    from mmsent.features import cache as features
    from mmsent.data import prepare

    prepare.run(tiny_params, progress=False)
    cfg = tiny_params.features
    cfg.text_encoders, cfg.image_encoders, cfg.ocr_encoders, cfg.variant_encoders = ["minilm_tokens"], [], [], []
    summary = features.run(tiny_params, progress=False, datasets=("single",))
    assert set(summary) == {"minilm_tokens/single"}  # variant_encoders [] : no text variants
    assert summary["minilm_tokens/single"]["dim"] == 384
    cache = features.load_features(tiny_params, "minilm_tokens", "single")
    assert cache.X.dtype == np.float16 and cache.X.shape == (6, 48, 384) and cache.ok.all()
    real = (np.abs(cache.X.astype(np.float32)).sum(-1) > 0).sum(1)
    assert (real >= 2).all() and (real < 48).all()  # [CLS] ... [SEP], then zero padding


def test_position_dropout_hides_words_and_regions_in_training_only():
    model = tiny_model(position_dropout=1.0, cross_dropout=0.0)
    b = batch()
    other = dict(b, regions=torch.randn(4, 9, 3), tokens=b["tokens"] + 1.0)
    model.train()
    # every position hidden: what the words see and the regions read no longer depends on them
    assert torch.allclose(model(b)["logits"], model(other)["logits"], atol=1e-6)
    model.eval()
    assert not torch.allclose(model(b)["logits"], model(other)["logits"])
    half = tiny_model(position_dropout=0.5, cross_dropout=0.0).train()
    torch.manual_seed(1)
    first = half(b)["logits"]
    torch.manual_seed(2)
    assert not torch.allclose(half(b)["logits"], first)  # a different draw hides different positions
