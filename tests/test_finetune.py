"""The fine-tuning lever on a tiny BERT the test builds: the encoder really trains, with layer-wise rates."""

import torch

from mmsent.models import build_model, make_config
from mmsent.training.loop import TensorData, TrainConfig, fit

from test_encoders import tiny_bert  # noqa: F401


def _data(n=12):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 10, (n, 6), generator=g)
    ids[:, 0] = 2
    return TensorData({"input_ids": ids, "attention_mask": torch.ones(n, 6, dtype=torch.long),
                       "image": torch.randn(n, 4, generator=g), "image_mask": torch.ones(n),
                       "text_mask": torch.ones(n)}, torch.arange(n) % 3)


def test_encoder_weights_change_and_layer_rates_decay(tiny_bert):  # noqa: F811
    cfg = make_config("finetune_fusion", {"encoder": str(tiny_bert), "image_dim": 4, "d_model": 8, "hidden": [8],
                                          "encoder_lr_scale": 0.5, "layer_decay": 0.5})
    model = build_model("finetune_fusion", cfg)
    model.load_pretrained()
    groups = model.param_groups(0.01)
    assert [g["lr"] for g in groups] == [0.01, 0.005, 0.0025]  # head, top (only) layer, embeddings
    before = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    data = _data()
    history = fit(model, data, data, TrainConfig(epochs=2, batch_size=6, device="cpu"), seed=0)
    assert len(history) == 2
    changed = [k for k, v in model.encoder.state_dict().items() if not torch.equal(v, before[k])]
    assert any("layer.0" in k for k in changed) and any("embeddings" in k for k in changed)
    out = model.eval()(data.inputs)
    assert out["logits"].shape == (12, 3) and out["weights"].shape == (12, 2)
    # padding is cut to the batch's longest tweet: more of it changes nothing
    padded = dict(data.inputs, input_ids=torch.cat([data.inputs["input_ids"], torch.zeros(12, 5, dtype=torch.long)], 1),
                  attention_mask=torch.cat([data.inputs["attention_mask"], torch.zeros(12, 5, dtype=torch.long)], 1))
    assert torch.allclose(model(padded)["logits"], out["logits"], atol=1e-5)
    shorter = dict(data.inputs, attention_mask=data.inputs["attention_mask"].clone())
    shorter["attention_mask"][:, 4:] = 0
    assert not torch.allclose(model(shorter)["logits"], out["logits"])  # real tokens are never cut


def test_the_protocol_tokenises_the_tweet_and_feeds_every_other_input_from_its_cache(tmp_path, tiny_root, tiny_bert):  # noqa: F811
    import numpy as np

    from mmsent.data import prepare
    from mmsent.config import load_params
    from mmsent.training.inputs import build_inputs
    from mmsent.data.mvsa import load_parts
    from mmsent.training.specs import model_specs
    from mmsent.training.fitting import train_once
    from mmsent.features.cache import feature_path
    from mmsent.io import save_arrays

    from conftest import write_params

    params = load_params(write_params(tmp_path / "p", tiny_root, train={"epochs": 1, "batch_size": 4, "device": "cpu"}))
    params.models = {"ft": {
        "family": "finetune_fusion", "group": "ablation",
        "inputs": {"text": "minilm", "image": "f_image", "lexicon": "f_lex"},
        "options": {"encoder": str(tiny_bert), "d_model": 8, "hidden": [8], "max_length": 8, "aux_weight": 0.3}}}
    prepare.run(params, progress=False)
    parts = load_parts(params, "single")
    ids = np.concatenate([d["id"].to_numpy() for d in parts.values()]).astype(str)
    rng = np.random.default_rng(0)
    for name, dim in (("f_image", 5), ("f_lex", 4)):
        save_arrays(feature_path(params, name, "single"), meta={"encoder": name}, ids=ids,
                    X=rng.normal(size=(len(ids), dim)).astype(np.float32), ok=np.ones(len(ids), bool))
    spec = model_specs(params)["ft"]
    config, data = build_inputs(params, spec, "single", parts)
    assert (config.image_dim, config.extra_dims) == (5, {"lexicon": 4})
    train = data["train"].inputs
    assert "text" not in train and train["input_ids"].shape == (len(parts["train"]), 8)  # the encoder reads the tweet
    assert train["lexicon"].shape == (len(parts["train"]), 4) and "text_label" in train
    model, history = train_once(params, spec, config, data, seed=0, dataset="single")
    assert len(history) == 1 and model.head.modalities == ("text", "image", "lexicon")
    model.eval()
    out = model(train)
    assert out["weights"].shape == (len(parts["train"]), 3)
    assert not torch.allclose(model(dict(train, lexicon=train["lexicon"] + 1))["logits"], out["logits"])  # read
