"""Accuracy levers that must never silently turn off: OCR text inside images, VADER lexicon
scores, extra attention inputs (masks honoured), their path through training and the Pipeline,
and ensembles of model families."""

from __future__ import annotations

from mmsent.paths import RunPaths
from mmsent import sections
from mmsent.config import params_from_dict
import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageDraw, ImageFont

from mmsent.evaluation import ablation
from mmsent.features import cache as features
from mmsent.data import ocr
from mmsent.data import prepare
from mmsent.config import load_params
from mmsent.features.text_encoders import VaderEncoder
from mmsent.training.inputs import build_inputs
from mmsent.data.mvsa import load_parts
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.features.cache import feature_path
from mmsent.io import save_arrays
from mmsent.models import build_model
from mmsent.models.fusion import AttentionFusionConfig

from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)


def text_image(words: str, size=(360, 120)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    ImageDraw.Draw(img).text((12, 30), words, fill="black", font=ImageFont.load_default(size=44))
    return img


# --------------------------------------------------------------------------- OCR


@pytest.fixture(scope="module")
def reader():
    return ocr.OcrReader(ocr.OcrConfig())


def test_ocr_reads_text_rendered_into_an_image_and_nothing_from_a_blank_one(reader):
    found = reader.read(text_image("GOOD MORNING"))
    assert "GOOD" in found.upper() and "MORNING" in found.upper()
    assert reader.read(Image.new("RGB", (200, 120), "white")) == ""


def test_ocr_settings_are_checked():
    with pytest.raises(ValueError, match="det_limit_type"):
        params_from_dict({"ocr": {"det_limit_type": "sideways"}})
    with pytest.raises(ValueError, match="unknown key"):
        params_from_dict({"ocr": {"lang": "fr"}})
    with pytest.raises(ValueError, match="unknown section"):
        params_from_dict({"ocrr": {}})  # a typo of a section name fails at load too


def test_an_all_empty_ocr_result_on_a_real_sized_set_is_refused():
    empty = pd.DataFrame({"id": [str(i) for i in range(60)], "ocr_text": [""] * 60})
    with pytest.raises(RuntimeError, match="found no text"):  # a broken reader, not a fact of the data
        ocr.check_found(empty)
    ocr.check_found(empty.head(10))  # a handful of photos may well have none
    ocr.check_found(empty.assign(ocr_text=["SALE"] + [""] * 59))


def test_ocr_stage_caches_the_text(tiny_params, tiny_root):
    prepare.run(tiny_params, progress=False)
    assert ocr.run(tiny_params, progress=False)["with_text"] == 0  # random-noise images
    text_image("LOVE IT").save(tiny_root / "single/images/1.jpg")
    summary = ocr.run(tiny_params, progress=False)
    table = ocr.load_ocr(tiny_params)
    assert set(table["id"]) == {"1", "2", "3", "4", "6", "7"}  # every clean pair, the conflict dropped
    assert "LOVE" in table.set_index("id").loc["1", "ocr_text"].upper()
    assert summary["with_text"] >= 1 and summary["fraction_with_text"] == summary["with_text"] / 6
    # the wall-clock sits apart from the cache: a re-run that reads the same text leaves data/ocr unchanged
    cached = tiny_params.path("data/ocr/summary.json").read_bytes()
    assert b"seconds" not in cached and ocr.read_ocr_summary(tiny_params)["seconds_per_image"] > 0
    ocr.run(tiny_params, progress=False)
    assert tiny_params.path("data/ocr/summary.json").read_bytes() == cached
    # a model trained on this cache records the settings it was read with, whatever profile is in force later
    later = dataclasses.replace(tiny_params, ocr=sections.OcrConfig(det_limit_side_len=512, det_limit_type="min"))
    assert ocr.used_settings(later) == summary["settings"] and summary["settings"]["det_limit_side_len"] == 256


class CountingEncoder:
    """A text encoder that records what it was asked to encode: [length, 1] per text."""

    modality, dim, name = "text", 2, "fake"
    calls: list[list[str]] = []

    def encode(self, items, batch_size=64, progress=False):
        CountingEncoder.calls.append(list(items))
        return np.array([[len(t), 1.0] for t in items], np.float32).reshape(len(items), 2)


def test_ocr_features_are_masked_where_no_text_was_found(tiny_params, monkeypatch):
    prepare.run(tiny_params, progress=False)
    ids = prepare.clean_pairs(tiny_params, "single")["id"].astype(str).tolist()
    path = ocr.ocr_path(tiny_params, "single")
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ids[:2], "ocr_text": ["sale", ""], "boxes": [1, 0]}).to_parquet(path)
    monkeypatch.setattr(features, "_LOADED", {})
    monkeypatch.setattr(features, "get_encoder", lambda name, **kw: CountingEncoder())
    tiny_params.features = dataclasses.replace(tiny_params.features, text_encoders=[], image_encoders=[],
                                               ocr_encoders=["fake"])
    features.run(tiny_params, progress=False)
    cache = features.load_features(tiny_params, "fake", "single_ocr")
    assert cache.ids.tolist() == ids
    assert cache.ok.tolist() == [True] + [False] * (len(ids) - 1)
    assert cache.X[0].tolist() == [4.0, 1.0] and np.abs(cache.X[1:]).sum() == 0


# the full profile's tweet-aware-text variants (the default profile encodes none)
VARIANTS = {"raw": {"raw": True}, "hashtags_whole": {"split_hashtags": False}}


def test_each_distinct_text_is_encoded_once_and_reused(tiny_params, monkeypatch):
    """A tweet repeated within a dataset, across datasets or unchanged by a text variant is encoded
    once, and every cache still gets its own row for every pair."""
    tiny_params.features.text_variants = VARIANTS
    prepare.run(tiny_params, progress=False)
    monkeypatch.setattr(features, "_LOADED", {})
    monkeypatch.setattr(features, "get_encoder", lambda name, **kw: CountingEncoder())
    CountingEncoder.calls = []
    tiny_params.features = dataclasses.replace(tiny_params.features, text_encoders=["fake"], image_encoders=[],
                                               ocr_encoders=[], variant_encoders=None)
    summary = features.run(tiny_params, progress=False)
    encoded = [t for call in CountingEncoder.calls for t in call]
    assert len(encoded) == len(set(encoded))
    for cache in ["single", "multiple", *(f"single_text-{v}" for v in tiny_params.features.text_variants)]:
        feats = features.load_features(tiny_params, "fake", cache)
        dataset = cache.split("_")[0]
        df = prepare.clean_pairs(tiny_params, dataset)
        texts = features.variant_texts(tiny_params, df, cache.split("-")[1]) if "-" in cache else list(df["text"])
        assert feats.X[:, 0].tolist() == [len(t) for t in texts] and feats.ok.all()
        assert summary[f"fake/{cache}"]["pairs"] == len(df)
    assert sum(v["new_inputs"] for v in summary.values()) == len(encoded)
    # the wall-clock sits apart from the caches: a re-run writing the same arrays leaves data/features unchanged
    cached = tiny_params.path("data/features/summary.json").read_bytes()
    assert b"seconds" not in cached
    assert features.read_features_summary(tiny_params)["fake/single"]["seconds"] >= 0
    assert features.run(tiny_params, progress=False) and \
        tiny_params.path("data/features/summary.json").read_bytes() == cached


# --------------------------------------------------------------------------- VADER


def test_vader_scores_separate_polar_tweets():
    X = VaderEncoder().encode(["I love this, best day ever :)", "terrible, awful, I hate it", ""])
    assert X.shape == (3, 4) and X.dtype == np.float32
    compound = X[:, 3]
    assert compound[0] > 0.5 and compound[1] < -0.5 and compound[2] == 0


# --------------------------------------------------------------------------- extra attention inputs


def test_extra_inputs_are_attended_to_and_their_masks_honoured():
    torch.manual_seed(0)
    model = build_model("attention_fusion", AttentionFusionConfig(
        text_dim=3, image_dim=2, d_model=8, hidden=[8], dropout=0.0, extra_dims={"lexicon": 4, "ocr": 5})).eval()
    assert model.modalities == ("text", "image", "lexicon", "ocr")
    batch = {"text": torch.randn(2, 3), "image": torch.randn(2, 2), "lexicon": torch.randn(2, 4),
             "ocr": torch.randn(2, 5), "ocr_mask": torch.tensor([1.0, 0.0])}
    out = model(batch)
    assert out["weights"].shape == (2, 4)
    assert out["weights"][1, 3] == 0 and out["weights"][0, 3] > 0  # no text in image 1: masked out
    changed = model({**batch, "ocr": batch["ocr"] + 3})["logits"]
    assert not torch.allclose(changed[0], out["logits"][0])  # present: the OCR input moves the output
    assert torch.allclose(changed[1], out["logits"][1])      # masked: it cannot
    with pytest.raises(ValueError, match="unknown extra input"):
        build_model("attention_fusion", AttentionFusionConfig(extra_dims={"audio": 3}))


def add_fake_extras(params):
    parts = load_parts(params, "single")
    ids = np.concatenate([d["id"].to_numpy() for d in parts.values()]).astype(str)
    rng = np.random.default_rng(1)
    ok = np.arange(len(ids)) % 2 == 0  # text found in every other image
    save_arrays(feature_path(params, "fake_text", "single_ocr"), meta={"encoder": "fake_text"}, ids=ids,
                X=rng.normal(size=(len(ids), 6)).astype(np.float32) * ok[:, None], ok=ok)
    save_arrays(feature_path(params, "fake_lex", "single"), meta={"encoder": "fake_lex"}, ids=ids,
                X=rng.normal(size=(len(ids), 4)).astype(np.float32), ok=np.ones(len(ids), bool))
    return ok


def test_extra_inputs_reach_training_and_the_checkpoint(project):  # noqa: F811
    ok = add_fake_extras(project)
    project.models["fusion_extra"] = {
        "family": "attention_fusion", "group": "ablation",
        "inputs": {"text": "fake_text", "image": "fake_image", "lexicon": "fake_lex", "ocr": "fake_text"},
        "options": {"d_model": 8, "hidden": [8]}}
    spec = model_specs(project)["fusion_extra"]
    config, data = build_inputs(project, spec, "single", load_parts(project, "single"))
    assert config.extra_dims == {"lexicon": 4, "ocr": 6}
    masks = np.concatenate([data[p].inputs["ocr_mask"].numpy() for p in ("train", "dev", "test")])
    assert masks.tolist() == ok.astype(np.float32).tolist()
    run_model(project, spec)
    from mmsent.training.loop import load_checkpoint

    model, payload = load_checkpoint(RunPaths(project).checkpoint("fusion_extra", "single", 0))
    assert model.modalities == ("text", "image", "lexicon", "ocr")
    assert payload["ocr_config"] == {"det_limit_side_len": 256, "det_limit_type": "max", "min_score": 0.5,
                                     "max_chars": 300}


def test_a_family_without_extra_inputs_says_so(project):  # noqa: F811
    add_fake_extras(project)
    project.models["concat_extra"] = {
        "family": "concat_fusion", "group": "fusion",
        "inputs": {"text": "fake_text", "image": "fake_image", "lexicon": "fake_lex"}}
    with pytest.raises(ValueError, match=r"models.concat_extra: ConcatFusion reads no \['lexicon'\]"):
        build_inputs(project, model_specs(project)["concat_extra"], "single", load_parts(project, "single"))


def test_the_pipeline_reads_text_inside_the_image_for_a_model_trained_with_it(tmp_path, monkeypatch):
    from mmsent.serving import pipeline as pl
    from mmsent.training.loop import save_checkpoint

    class MeanColour:  # a stand-in image backbone: 3-d mean colour
        dim = 3

        def encode(self, items, batch_size=64, progress=False):
            return np.stack([np.asarray(i, np.float32).mean((0, 1)) / 255 for i in items])

    built = []

    def fake_get_encoder(name, device="auto", **kw):
        built.append(name)
        return VaderEncoder() if name == "vader" else MeanColour()

    monkeypatch.setattr(pl, "get_encoder", fake_get_encoder)
    torch.manual_seed(0)
    model = build_model("attention_fusion", AttentionFusionConfig(text_dim=4, image_dim=3, d_model=8, hidden=[8],
                                                                  extra_dims={"ocr": 4}))
    path = save_checkpoint(tmp_path / "m.pt", model, "attention_fusion",
                           encoders={"text": "vader", "image": "colour", "ocr": "vader"},
                           ocr_config=ocr.OcrConfig().__dict__)
    pipe = pl.Pipeline.load(path, device="cpu")
    with_text = pipe.predict(text="nice", image=text_image("GOOD MORNING"))
    assert "GOOD" in with_text["text_in_image"].upper()
    assert with_text["modalities"] == ["text", "image"]  # what the user gave; the OCR input is derived from it
    assert set(with_text["modality_weights"]) == {"text", "image", "ocr"} and with_text["modality_weights"]["ocr"] > 0
    blank = pipe.predict(text="nice", image=Image.new("RGB", (200, 120), "white"))
    assert blank["modalities"] == ["text", "image"] and "text_in_image" not in blank
    assert blank["modality_weights"]["ocr"] == 0
    assert sorted(set(built)) == ["colour", "vader"]  # one VADER serves the tweet and the text in its image


# --------------------------------------------------------------------------- ensembles


def test_family_ensemble_averages_every_seed_of_every_member(project):  # noqa: F811
    for name in ("attention_fusion", "text_head"):
        run_model(project, model_specs(project)[name])
    from mmsent.evaluation.stats import load_predictions

    frames = [f for m in ("attention_fusion", "text_head") for f in load_predictions(project, m, "single").values()]
    cols = [c for c in frames[0].columns if c.startswith("p_")]
    mean = np.mean([f[cols].to_numpy() for f in frames], axis=0)
    expected = [c.removeprefix("p_") for c in np.asarray(cols)[mean.argmax(1)]]
    gold = frames[0]["gold"].tolist()
    got = ablation.ensemble_metrics(project, ["attention_fusion", "text_head"])
    assert got["n"] == len(gold)
    assert got["accuracy"] == pytest.approx(100 * np.mean([e == g for e, g in zip(expected, gold)]))
    project.ablation = sections.AblationConfig(**{"rows": [{"lever": "attention", "model": "attention_fusion"}],
                                 "family_ensembles": {"both": ["attention_fusion", "text_head"],
                                                      "not trained": ["attention_fusion", "absent"]}})
    md = ablation.build(project).read_text()
    assert "Ensembles of model families" in md and "| both" in md and "not trained" not in md


def test_text_variants_are_encoded_only_by_the_variant_encoders(tiny_params):
    tiny_params.features.text_variants = VARIANTS
    prepare.run(tiny_params, progress=False)
    cfg = tiny_params.features
    cfg.text_encoders, cfg.image_encoders, cfg.ocr_encoders = ["vader", "vader_copy"], [], []
    cfg.variant_encoders = ["vader"]
    import mmsent.features.encoders as encoders

    encoders.ENCODERS.add("vader_copy", encoders.ENCODERS["vader"])  # a second cheap text encoder
    try:
        summary = features.run(tiny_params, progress=False, datasets=("single",))
    finally:
        del encoders.ENCODERS["vader_copy"]
    variants = {k for k in summary if "_text-" in k}
    assert variants == {f"vader/single_text-{v}" for v in tiny_params.features.text_variants} != set()
    assert "vader_copy/single" in summary


def test_one_backbone_pass_serves_the_usual_image_features_and_several_blocks_pooled(tiny_params):
    """The default image cache is cut from the stages view's pass (its last 1280 columns) when both
    are configured; alone, efficientnet_lite0 is run itself, and the two caches agree."""
    prepare.run(tiny_params, progress=False)
    cfg = tiny_params.features
    cfg.text_encoders, cfg.ocr_encoders, cfg.variant_encoders = [], [], []
    cfg.image_encoders, cfg.image_size = ["efficientnet_lite0", "efficientnet_lite0_stages"], 64
    both = features.run(tiny_params, progress=False, datasets=("single",))
    usual, stages = (features.load_features(tiny_params, e, "single") for e in cfg.image_encoders)
    n = len(usual.ids)
    assert both["efficientnet_lite0/single"]["columns_of"] == "efficientnet_lite0_stages"
    assert both["efficientnet_lite0/single"]["new_inputs"] + both["efficientnet_lite0_stages/single"]["new_inputs"] == n
    assert usual.X.shape == (n, 1280) and stages.X.shape == (n, 1984) and (usual.ok == stages.ok).all()
    assert np.array_equal(usual.X, stages.X[:, -1280:]) and np.abs(usual.X).sum() > 0
    alone = features.run(tiny_params, progress=False, only=["efficientnet_lite0"], datasets=("single",))
    assert "columns_of" not in alone["efficientnet_lite0/single"]
    direct = features.load_features(tiny_params, "efficientnet_lite0", "single")
    assert direct.X.shape == (n, 1280) and np.allclose(direct.X, stages.X[:, -1280:], atol=1e-4)


def test_features_for_one_added_encoder_leave_the_other_caches_alone(tiny_params):
    tiny_params.features.text_variants = VARIANTS
    prepare.run(tiny_params, progress=False)
    other = feature_path(tiny_params, "minilm", "single")
    save_arrays(other, meta={"encoder": "minilm"}, ids=np.array(["x"]), X=np.zeros((1, 2), np.float32),
                ok=np.ones(1, bool))
    before = other.read_bytes()
    from mmsent.io import write_json

    write_json(tiny_params.path("data/features/summary.json"), {"minilm/single": {"pairs": 1}})
    summary = features.run(tiny_params, progress=False, only=["vader"], datasets=("single",))
    variants = {f"vader/single_text-{v}" for v in tiny_params.features.text_variants}
    variants |= {f"vader/single_aug-{a}" for a in tiny_params.features.augmentations}
    assert variants  # params.yaml's tweet-aware-text and augmentation rows need them
    assert set(summary) == {"minilm/single", "vader/single"} | variants  # the earlier entry kept, new ones added
    assert other.read_bytes() == before
    assert not feature_path(tiny_params, "vader", "multiple").exists()
    lexicon = features.load_features(tiny_params, "vader", "single")
    assert lexicon.X.shape == (6, 4) and lexicon.ok.all()


def test_text_variant_rows_read_the_tweet_normalised_their_way(tiny_params):
    """The tweet-aware-text rows: a variant cache really holds other text, a model with
    ``text_variant`` trains on it, and its checkpoint makes the Pipeline normalise the same way."""
    from mmsent.training.inputs import feature_data
    from mmsent.data.mvsa import load_parts
    from mmsent.training.specs import model_specs
    from mmsent.data.text import normalize_tweet

    tiny_params.features.text_variants = VARIANTS
    prepare.run(tiny_params, progress=False)
    features.run(tiny_params, progress=False, only=["vader"], datasets=("single",))
    normalised = features.load_features(tiny_params, "vader", "single")
    raw = features.load_features(tiny_params, "vader", "single_text-raw")
    assert (normalised.ids == raw.ids).all() and not np.allclose(normalised.X, raw.X)  # "#HappyDays" vs "Happy Days"
    spec = model_specs(load_params(tiny_params.path("params.yaml"), profile="full"))["attention_raw_text"]
    spec.inputs = {"text": "vader"}  # the tiny project has no MiniLM cache
    data, _ = feature_data(tiny_params, spec, "single", load_parts(tiny_params, "single"))
    first = data["train"].ids[0]
    assert np.allclose(data["train"].inputs["text"][0].numpy(), raw.select([first])[0][0])
    cfg = tiny_params.features.text_config(tiny_params.text, "raw")
    assert cfg.raw and normalize_tweet("RT @bob: #HappyDays &amp; http://x.co", cfg) == "RT @bob: #HappyDays &amp; http://x.co"
    assert tiny_params.features.text_config(tiny_params.text, "hashtags_whole").split_hashtags is False
    with pytest.raises(KeyError, match="unknown text variant"):
        tiny_params.features.text_config(tiny_params.text, "nope")
