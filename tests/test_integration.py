"""End to end on the real MVSA: full readers (fast) and a 50-pair slice through every stage."""

import json

import numpy as np
import pandas as pd
import pytest

from mmsent.data import report as data_report
from mmsent.features import cache as features
from mmsent.data import ocr
from mmsent.data import prepare
from mmsent.config import load_params
from mmsent.data.mvsa import clmlf_labels, read_multiple, read_single

from conftest import write_params

pytestmark = pytest.mark.integration


def test_real_single_counts_and_labels_match_the_published_split(real_root):
    pairs = read_single(real_root)
    clean = [p for p in pairs if p.label is not None]
    assert len(pairs) == 4869 and len(clean) == 4511
    counts = pd.Series([p.label for p in clean]).value_counts().to_dict()
    assert counts == {"positive": 2683, "negative": 1358, "neutral": 470}
    published = clmlf_labels(real_root, "single")
    assert all(published[p.id] == p.label for p in clean)
    enc = pd.Series([p.encoding for p in pairs]).value_counts().to_dict()
    assert enc == {"utf-8": 3738, "gbk": 1129, "cp1252": 2}


def test_real_multiple_is_text_only_and_matches_clmlf(real_root):
    clean = [p for p in read_multiple(real_root) if p.label is not None]
    assert len(clean) == 17027 and all(p.image is None for p in clean)
    published = clmlf_labels(real_root, "multiple")
    assert sum(published.get(p.id) == p.label for p in clean) == 17024


def test_prepare_features_and_report_on_a_50_pair_slice(real_root, tmp_path):
    params = load_params(write_params(tmp_path, real_root, features={"device": "cpu", "batch_size": 16}))
    summary = prepare.run(params, limit=50, progress=False)
    assert summary["single"]["raw_pairs"] == 50
    assert summary["single"]["image_status"] == {"ok": 50}
    found = ocr.run(params, progress=False)
    feats = features.run(params, progress=False)
    n_single = summary["single"]["clean_pairs"] - summary["single"]["unassigned_clean_pairs"]
    # text inside real images: some memes/screenshots have it, most photos do not
    assert found["images"] == n_single and 0 < found["with_text"] < n_single
    in_image = features.load_features(params, "minilm", "single_ocr")
    assert int(in_image.ok.sum()) == found["with_text"] == n_single - feats["minilm/single_ocr"]["unreadable_inputs"]
    assert np.abs(in_image.X[~in_image.ok]).sum() == 0 and np.abs(in_image.X[in_image.ok]).sum(1).min() > 0
    lexicon = features.load_features(params, "vader", "single")
    assert lexicon.X.shape == (n_single, 4) and np.abs(lexicon.X[:, 3]).max() > 0  # compound scores vary
    assert feats["minilm/single"]["pairs"] == n_single and feats["minilm/single"]["dim"] == 384
    assert feats["efficientnet_lite0/single"]["dim"] == 1280
    assert feats["efficientnet_lite0/single"]["unreadable_inputs"] == 0
    image = features.load_features(params, "efficientnet_lite0", "single")
    text = features.load_features(params, "minilm", "single")
    assert list(image.ids) == list(text.ids) and image.ok.all()
    assert np.isfinite(image.X).all() and np.abs(text.X).sum(1).min() > 0
    written = data_report.build(params)
    md = written["data.md"].read_text()
    assert "Only the first 50 pairs" in md and "text-only" in md
    assert all(path.stat().st_size > 0 for path in written.values())
    assert json.loads((tmp_path / "data/prepared/summary.json").read_text())["config"]["limit"] == 50
