"""The fine-tuning lever on a tiny BERT the test builds: the encoder really trains, with layer-wise rates."""

import torch

from mmsent.models import build_model, make_config
from mmsent.train import TensorData, TrainConfig, fit

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
