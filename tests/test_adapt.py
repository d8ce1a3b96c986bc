"""Adapting MiniLM itself on MVSA-Multiple (mmsent.training.adapt): the encoder really moves, it never
sees an MVSA-Single dev/test text, the saved folder loads as an encoder, and a crash keeps the
last good folder."""

import numpy as np
import pandas as pd
import pytest

from mmsent.training import adapt
from mmsent.data import prepare
from mmsent.training import pretrain
from mmsent.config import load_params
from mmsent.features.encoders import get_encoder

from conftest import write_params


@pytest.fixture
def project(tmp_path, tiny_root):
    params = load_params(write_params(tmp_path / "p", tiny_root, adapt={
        "dest": "weights/adapted", "epochs": 2, "batch_size": 2, "max_length": 16, "lr": 5e-4, "device": "cpu"}))
    prepare.run(params, progress=False)
    return params


def with_leaked_test_text(monkeypatch, params):
    """MVSA-Multiple plus one row whose text is an MVSA-Single test text (spaced and cased otherwise)."""
    from mmsent.data.mvsa import load_parts

    test_text = load_parts(params, "single")["test"]["text"].iloc[0]
    real = prepare.clean_pairs

    def clean_pairs(p, dataset):
        df = real(p, dataset)
        if dataset == "multiple":
            leak = df.iloc[[0]].assign(id="leak", text=f"  {test_text.upper()} ", text_label="negative")
            df = pd.concat([df, leak], ignore_index=True)
        return df

    monkeypatch.setattr(pretrain, "clean_pairs", clean_pairs)
    return test_text


def test_adapted_encoder_is_saved_loads_and_differs_from_minilm(project, monkeypatch):
    leaked = with_leaked_test_text(monkeypatch, project)
    texts, labels, removed = adapt.training_texts(project)
    assert removed == 1 and leaked not in texts and len(texts) == len(labels) > 0

    summary = adapt.run(project, progress=False)
    dest = project.path("weights/adapted")
    assert summary["texts"] == len(texts) and summary["removed_as_single_dev_test"] == 1
    assert (dest / adapt.SUMMARY).is_file() and len(summary["epoch_losses"]) == 2
    assert not [p for p in dest.parent.iterdir() if p.name.startswith(".")]  # no temp folder left

    probe = ["what a lovely day", "this is awful"]
    before = get_encoder("minilm", device="cpu").encode(probe)
    after = get_encoder(f"st:{dest}", device="cpu").encode(probe)
    assert after.shape == before.shape == (2, 384)
    assert np.abs(after - before).max() > 1e-3  # the encoder's weights moved


def test_a_crash_while_adapting_keeps_the_last_good_folder(project, monkeypatch):
    dest = project.path("weights/adapted")
    dest.mkdir(parents=True)
    (dest / "sentinel").write_text("last good model")

    def crash(*args, **kwargs):
        raise RuntimeError("killed mid-epoch")

    monkeypatch.setattr(adapt, "fine_tune", crash)
    with pytest.raises(RuntimeError, match="killed"):
        adapt.run(project, progress=False)
    assert (dest / "sentinel").read_text() == "last good model"


def test_adapt_config_refuses_what_it_cannot_load():
    with pytest.raises(ValueError, match="epochs"):
        adapt.AdaptConfig(epochs=0)
    with pytest.raises(ValueError, match="st:<folder>"):
        adapt.AdaptConfig(encoder="hf:bert-base-uncased")


def test_the_ablation_report_says_what_the_adapted_encoder_was_trained_on(project):
    from mmsent.evaluation.ablation import adapt_lines
    from mmsent.io import write_json

    write_json(project.path("weights/adapted") / adapt.SUMMARY, {
        "config": {"epochs": 1, "lr": 3e-5}, "texts": 1234, "removed_as_single_dev_test": 5,
        "label_counts": {"positive": 700, "neutral": 500, "negative": 34}, "seconds": 420.0, "device": "cpu"})
    project.models["adapted"] = {"family": "attention_fusion", "group": "ablation",
                                          "inputs": {"text": "st:weights/adapted", "image": "efficientnet_lite0"}}
    project.models["adapted_tuned"] = {"family": "finetune_fusion", "group": "ablation",
                                                "inputs": {"text": "st:weights/adapted", "image": "efficientnet_lite0"}}
    text = "\n".join(adapt_lines(project, pd.DataFrame({"model": ["adapted", "attention_fusion", "adapted_tuned"]})))
    assert "`adapted` reads it frozen" in text and "1234 MVSA-Multiple text labels" in text and "7.0 min" in text
    assert "`adapted_tuned` starts from it and fine-tunes it further" in text
    assert adapt_lines(project, pd.DataFrame({"model": ["attention_fusion"]})) == []  # no row reads it
