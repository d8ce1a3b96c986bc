"""The ONNX Runtime backend: export once into a checked cache, the same features as torch."""

import numpy as np
import pytest
import torch
from PIL import Image

from mmsent.config import backend_for, check_backend
from mmsent.features import onnx as onnx_backend
from mmsent.features.encoders import get_encoder


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMSENT_ONNX_CACHE", str(tmp_path / "onnx"))


class Scale(torch.nn.Module):
    def __init__(self, weight: float):
        super().__init__()
        self.w = torch.nn.Parameter(torch.full((3,), weight))

    def forward(self, x):
        return (x * self.w.view(1, 3, 1, 1)).mean(dim=(2, 3))


def test_export_is_cached_keyed_by_the_weights_and_rebuilt_when_corrupt():
    forward = onnx_backend.OnnxImageForward(Scale(2.0), 8, "scale")
    x = torch.rand(5, 3, 8, 8)
    assert torch.allclose(forward(x), Scale(2.0)(x).detach(), atol=1e-6)  # dynamic batch: 5, exported with 2
    path = forward.path
    stamp = path.stat().st_mtime_ns
    assert onnx_backend.OnnxImageForward(Scale(2.0), 8, "scale").path == path and path.stat().st_mtime_ns == stamp
    other = onnx_backend.OnnxImageForward(Scale(3.0), 8, "scale")
    assert other.path != path  # other weights, another cache entry
    path.write_bytes(path.read_bytes()[:100])  # a partial file: its sha256 no longer matches
    again = onnx_backend.OnnxImageForward(Scale(2.0), 8, "scale")
    assert again.path == path and torch.allclose(again(x), Scale(2.0)(x).detach(), atol=1e-6)
    with pytest.raises(ValueError, match="backend"):
        check_backend("tensorrt")
    assert backend_for({"image": "onnx"}, "image") == "onnx"
    assert backend_for({"image": "onnx"}, "text") == "torch"
    with pytest.raises(ValueError, match="per modality"):
        backend_for({"audio": "onnx"}, "text")


def test_efficientnet_views_match_torch(tmp_path):
    rng = np.random.default_rng(0)
    images = []
    for i in range(3):
        path = tmp_path / f"{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
        images.append(path)
    images.append(tmp_path / "missing.jpg")  # an unreadable image: a zero row either way
    for name in ("efficientnet_lite0", "efficientnet_lite0_stages"):
        torch_enc, onnx_enc = (get_encoder(name, device="cpu", backend=b) for b in ("torch", "onnx"))
        assert onnx_enc.onnx is not None and torch_enc.onnx is None
        a, b = torch_enc.encode(images), onnx_enc.encode(images)
        assert a.shape == b.shape and np.abs(a - b).max() < 1e-4 and (b[-1] == 0).all()
        assert (onnx_enc.last_ok == [True, True, True, False]).all()


def test_a_per_modality_backend_reaches_each_encoder():
    backend = {"text": "torch", "image": "onnx"}
    assert get_encoder("efficientnet_lite0", device="cpu", backend=backend).onnx is not None
    assert get_encoder("minilm", device="cpu", backend=backend).onnx is None


def test_sentence_encoder_matches_torch_whatever_the_batch_order():
    torch_enc, onnx_enc = (get_encoder("minilm", device="cpu", backend=b) for b in ("torch", "onnx"))
    texts = ["what a lovely day", "no", "the worst service I have had in years, never again", ""]
    a, b = torch_enc.encode(texts), onnx_enc.encode(texts, batch_size=2)  # batched by length, put back in order
    assert a.shape == b.shape == (4, 384) and np.abs(a - b).max() < 1e-5


def test_the_pipeline_runs_the_backend_its_training_features_came_from(tmp_path):
    from mmsent.config import backend_for
    from mmsent.serving.pipeline import Pipeline, default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped model")
    pipe = Pipeline.load(device="cpu")
    backend = pipe.payload.get("feature_backend", "torch")
    assert (pipe.encoder("image").onnx is not None) == (backend_for(backend, "image") == "onnx")
    image = tmp_path / "a.jpg"
    Image.fromarray(np.random.default_rng(3).integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(image)
    other = Pipeline.load(device="cpu", backend="torch")
    a = pipe.predict(text="what a day", image=image)["probabilities"]
    b = other.predict(text="what a day", image=image)["probabilities"]
    assert max(abs(a[k] - b[k]) for k in a) < 1e-3  # the two runtimes agree


def test_int8_weights_are_a_checked_cache_entry_of_their_own_and_close_to_float():
    float_enc, int8_enc = (get_encoder("minilm", device="cpu", backend={"text": b}) for b in ("onnx", "onnx-int8"))
    assert int8_enc.onnx.path.name.endswith("-int8.onnx") and int8_enc.onnx.path != float_enc.onnx.path
    assert int8_enc.onnx.path.stat().st_size < 0.75 * float_enc.onnx.path.stat().st_size  # int8 layers, float embeddings
    texts = ["what a lovely day", "the worst service I have had in years, never again", "meh"]
    a, b = float_enc.encode(texts), int8_enc.encode(texts)
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.95 and np.abs(a - b).max() > 1e-4  # quantised: close, but not the float model
    stamp = int8_enc.onnx.path.stat().st_mtime_ns
    assert onnx_backend.quantized(float_enc.onnx.path).stat().st_mtime_ns == stamp  # built once
    int8_enc.onnx.path.write_bytes(b"broken")  # a corrupt file is built again, not loaded
    assert onnx_backend.quantized(float_enc.onnx.path).stat().st_size > 1000


def test_bf16_sentence_vectors_are_close_to_float_but_not_float():
    texts = ["what a lovely day", "the worst service I have had in years, never again", "meh"]
    a = get_encoder("minilm", device="cpu", backend="torch").encode(texts)
    enc = get_encoder("minilm", device="cpu", backend={"text": "torch-bf16", "image": "onnx"})
    b = enc.encode(texts)
    assert enc.onnx is None and b.dtype == np.float32
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosine.min() > 0.999 and np.abs(a - b).max() > 1e-5
    with pytest.raises(ValueError, match="torch-bf16"):
        check_backend("bf16")  # the error names the valid backends
    with pytest.raises(ValueError, match="per modality"):
        get_encoder("efficientnet_lite0", device="cpu", backend="torch-bf16")  # not silently float
