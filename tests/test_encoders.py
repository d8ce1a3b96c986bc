import numpy as np
import pytest
import torch
from PIL import Image

from mmsent.features.base import encoder_dirname
from mmsent.features.encoders import get_encoder


@pytest.fixture
def tiny_bert(tmp_path):
    """A 1-layer BERT saved in a local folder: exercises the real transformers loading code."""
    from transformers import BertConfig, BertModel, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "bad", "day", "a", "what"]
    BertTokenizer(vocab={w: i for i, w in enumerate(words)}).save_pretrained(tmp_path / "bert")
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    BertModel(cfg).save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


def test_hf_encoder_loads_a_local_model_and_mean_pools(tiny_bert):
    enc = get_encoder(f"hf:{tiny_bert}", device="cpu")
    X = enc.encode(["what a good day", "bad", "good"], batch_size=2)
    assert X.shape == (3, 16) and X.dtype == np.float32 and enc.dim == 16
    # batching and padding do not change a sentence's vector
    assert np.allclose(enc.encode(["good"]), X[2:3], atol=1e-5)
    assert not np.allclose(X[1], X[2])


def test_bf16_backend_runs_the_transformer_in_bfloat16_and_returns_float32(tiny_bert):
    texts = ["what a good day", "bad", "good"]
    full = get_encoder(f"hf:{tiny_bert}", device="cpu").encode(texts)
    half = get_encoder(f"hf:{tiny_bert}", device="cpu", backend={"text": "torch-bf16"}).encode(texts)
    assert half.dtype == np.float32 and half.shape == full.shape
    assert np.abs(half - full).max() > 1e-5  # bf16 matmuls really ran (float's own noise is ~1e-7)
    assert np.allclose(half, full, atol=0.05 * np.abs(full).max())


def test_hf_encoder_pools_inner_layers_before_the_usual_vector(tiny_bert):
    from mmsent.features.text_encoders import TransformersTextEncoder

    usual = get_encoder(f"hf:{tiny_bert}", device="cpu").encode(["what a good day", "bad"])
    enc = TransformersTextEncoder(str(tiny_bert), device="cpu", layers=(1,), name="tiny_layers")
    X = enc.encode(["what a good day", "bad"])
    assert X.shape == (2, 32) and enc.dim == 32 and enc.name == "tiny_layers"
    assert np.allclose(X[:, 16:], usual, atol=1e-6)  # the usual features come last
    assert not np.allclose(X[:, :16], 0)
    with pytest.raises(ValueError, match="layers must be in 1..1"):
        TransformersTextEncoder(str(tiny_bert), device="cpu", layers=(2,))


def test_minilm_layers_end_with_minilm_sentence_vectors():
    texts = ["what a lovely day #sunshine", "worst service ever, never again"]
    layers = get_encoder("minilm_layers", device="cpu")
    X = layers.encode(texts)
    assert X.shape == (2, 1152) and layers.name == "minilm_layers"
    assert np.allclose(X[:, -384:], get_encoder("minilm", device="cpu").encode(texts), atol=1e-5)
    assert not np.allclose(X[:, :384], X[:, 384:768])  # layers 2 and 4 differ


def test_hf_encoder_unknown_name_is_a_clear_offline_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no network here"):
        get_encoder(f"hf:{tmp_path / 'no-such-model'}", device="cpu")


def test_unknown_encoder_name():
    with pytest.raises(KeyError, match="unknown encoder"):
        get_encoder("word2vec")


def test_efficientnet_lite0_features_and_bad_images(tmp_path):
    enc = get_encoder("efficientnet_lite0", device="cpu", image_size=64)
    good = tmp_path / "a.jpg"
    Image.new("RGB", (80, 50), (200, 30, 30)).save(good)
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    X = enc.encode([good, tmp_path / "bad.jpg", tmp_path / "missing.jpg", good], batch_size=3)
    assert X.shape == (4, 1280)
    assert enc.last_ok.tolist() == [True, False, False, True]
    assert np.abs(X[0]).sum() > 0 and np.array_equal(X[0], X[3]) and not X[1].any()


def test_flip_tta_features_are_the_mean_of_the_image_and_its_mirror(tmp_path):
    img = np.zeros((64, 64, 3), np.uint8)
    img[:, :20] = (250, 200, 10)  # asymmetric: the mirror image gives other features
    plain = get_encoder("efficientnet_lite0", device="cpu", image_size=64)
    flip = get_encoder("efficientnet_lite0_flip", device="cpu", image_size=64)
    X, X_mirror, X_tta = plain.encode([img]), plain.encode([img[:, ::-1].copy()]), flip.encode([img])
    assert flip.name == "efficientnet_lite0_flip" and flip.dim == 1280
    assert np.allclose(X_tta, (X + X_mirror) / 2, atol=1e-4)
    assert np.abs(X_tta - X).max() > 1e-3  # the augmentation is applied, not skipped


def test_torchvision_encoder_needs_weights_and_loads_them_from_a_path(tmp_path, monkeypatch):
    import torchvision

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(FileNotFoundError, match="MMSENT_WEIGHTS_RESNET18"):
        get_encoder("torchvision:resnet18", device="cpu")
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), tmp_path / "r18.pth")
    monkeypatch.setenv("MMSENT_WEIGHTS_RESNET18", str(tmp_path / "r18.pth"))
    enc = get_encoder("torchvision:resnet18", device="cpu", image_size=32)
    X = enc.encode([np.zeros((40, 40, 3), np.uint8)])
    assert X.shape == (1, 512) and enc.name == "torchvision:resnet18"


def test_encoder_dirname_is_filesystem_safe():
    assert encoder_dirname("hf:/models/bert base") == "hf__models_bert_base"


def test_several_blocks_pooled_end_with_the_usual_image_features():
    img = np.zeros((64, 64, 3), np.uint8)
    img[:20] = 255
    img[40:, 10:30] = 90
    stages = get_encoder("efficientnet_lite0_stages", device="cpu", image_size=64)
    X = stages.encode([img, img[::-1]])
    assert X.shape == (2, 1984) and stages.dim == 1984 and stages.name == "efficientnet_lite0_stages"
    usual = get_encoder("efficientnet_lite0", device="cpu", image_size=64).encode([img, img[::-1]])
    assert np.allclose(X[:, -1280:], usual, atol=1e-4)  # the head's features, after stages 4-7 pooled
    assert np.abs(X[:, :704]).sum(1).min() > 0 and not np.allclose(X[0, :704], X[1, :704])


def test_lite0_stage_ends_are_read_off_the_network():
    from mmsent.features.image_encoders import efficientnet_lite, stage_ends

    assert stage_ends(efficientnet_lite("lite0")) == {7: 80, 10: 112, 14: 192, 15: 320}
    assert stage_ends(efficientnet_lite("lite2")) == {10: 88, 14: 120, 19: 208, 20: 352}
    with pytest.raises(ValueError, match="variant"):
        efficientnet_lite("lite9")


def _picture():
    img = np.zeros((96, 96, 3), np.uint8)
    img[:30] = 255
    img[50:, 10:40] = (200, 40, 90)
    return img


@pytest.mark.parametrize("variant, size, stages_dim", [("lite1", 240, 1984), ("lite2", 260, 2048)])
def test_larger_lites_are_other_networks_at_their_own_input_size(variant, size, stages_dim):
    """The Lite1 / Lite2 levers: their own weights and input size (not Lite0's features under
    another name), their several-blocks view ending with their pooled features."""
    img = _picture()
    lite0 = get_encoder("efficientnet_lite0", device="cpu").encode([img, img[::-1]])
    pooled = get_encoder(f"efficientnet_{variant}", device="cpu", image_size=64)  # the params' size is Lite0's
    stages = get_encoder(f"efficientnet_{variant}_stages", device="cpu")
    assert pooled.image_size == stages.image_size == size and pooled.dim == 1280 and stages.dim == stages_dim
    X, S = pooled.encode([img, img[::-1]]), stages.encode([img, img[::-1]])
    assert S.shape == (2, stages_dim) and np.allclose(S[:, -1280:], X, atol=1e-4)
    assert not np.allclose(X, lite0, atol=1e-2)  # another network's features
    assert stages.name == f"efficientnet_{variant}_stages"


def test_the_universal_sentence_encoder_gives_unit_vectors_of_its_own():
    use = get_encoder("use")
    texts = ["what a lovely day", "this is the worst service ever", "what a lovely day"]
    X = use.encode(texts, batch_size=2)
    assert X.shape == (3, 512) and use.dim == 512 and use.modality == "text" and X.dtype == np.float32
    assert np.allclose(np.linalg.norm(X, axis=1), 1, atol=1e-4)
    assert np.allclose(X[0], X[2], atol=1e-6) and X[0] @ X[1] < 0.9  # the same text twice, two different texts
    assert use.encode([]).shape == (0, 512)
