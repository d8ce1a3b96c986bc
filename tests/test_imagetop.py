"""Fine-tuning EfficientNet-Lite0's head convolution on cached block outputs (family
imagetop_fusion): it starts from exactly the frozen image features, it really trains at its
own rate, and a checkpoint predicts through the Pipeline."""

import numpy as np
import pytest
import torch

from mmsent.models import build_model, make_config
from mmsent.training.loop import TensorData, TrainConfig, fit


def picture(size=64, seed=0):
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    img[: size // 3] = 255
    return img


def tiny_model(**options):
    torch.manual_seed(0)
    model = build_model("imagetop_fusion", make_config("imagetop_fusion", {
        "text_dim": 6, "d_model": 8, "hidden": [8], **options}))
    model.load_pretrained()
    return model


def test_the_pretrained_top_on_cached_block_outputs_gives_the_frozen_image_features():
    from mmsent.features.encoders import get_encoder

    imgs = [picture(seed=0), picture(seed=1)]
    block_out = get_encoder("efficientnet_lite0_map", device="cpu", image_size=64)
    maps = block_out.encode(imgs)
    assert maps.shape == (2, 4, 320) and block_out.shape == (4, 320)  # (64 / 32)^2 positions
    frozen = get_encoder("efficientnet_lite0", device="cpu", image_size=64).encode(imgs)
    model = tiny_model().eval()
    with torch.no_grad():
        rebuilt = model.image_vector(torch.from_numpy(maps)).numpy()
    assert np.allclose(rebuilt, frozen, atol=1e-4)
    assert not np.allclose(frozen[0], frozen[1])


@pytest.mark.parametrize("freeze", [False, True])
def test_the_head_convolution_trains_at_its_own_rate(freeze):
    model = tiny_model(top_lr_scale=0.1, aux_weight=0.3, freeze_norm_stats=freeze)
    stats = model.top_norm.running_mean.clone()
    groups = model.param_groups(0.01)
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.001)]
    g = torch.Generator().manual_seed(0)
    n = 12
    data = TensorData({"text": torch.randn(n, 6, generator=g), "image": torch.randn(n, 5, 320, generator=g),
                       "text_label": torch.arange(n) % 3, "image_label": (torch.arange(n) + 1) % 3},
                      torch.arange(n) % 3)
    before = model.top_conv.weight.detach().clone()
    history = fit(model, data, data, TrainConfig(epochs=2, batch_size=6, device="cpu"), seed=0)
    assert len(history) == 2
    assert not torch.equal(model.top_conv.weight, before)  # the backbone's last layer moved
    assert torch.equal(model.top_norm.running_mean, stats) == freeze  # ImageNet statistics kept, or updated
    assert model.top_norm.weight.grad is not None  # its scale and shift train either way
    model.eval()
    out = model(data.inputs)["logits"]
    assert not torch.allclose(model(dict(data.inputs, image=data.inputs["image"] * 2))["logits"], out)


def test_an_imagetop_checkpoint_predicts_through_the_pipeline(tmp_path):
    from mmsent.serving.pipeline import Pipeline
    from mmsent.training.loop import save_checkpoint

    torch.manual_seed(0)
    model = build_model("imagetop_fusion", make_config("imagetop_fusion", {"text_dim": 384, "d_model": 16,
                                                                           "hidden": [16]}))
    model.load_pretrained()
    path = save_checkpoint(tmp_path / "top.pt", model.eval(), "imagetop_fusion", image_size=64,
                           encoders={"text": "minilm", "image": "efficientnet_lite0_map"})
    pipe = Pipeline.load(path, device="cpu")
    both = pipe.predict(text="what a lovely day", image=picture())
    text_only = pipe.predict(text="what a lovely day")
    image_only = pipe.predict(image=picture())
    assert sum(both["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert both["probabilities"] != text_only["probabilities"]  # the image counted
    assert image_only["modalities"] == ["image"]
