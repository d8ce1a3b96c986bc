"""CLMLF's back-translated tweets as more training pairs: cached for train and dev pairs only,
added to every training set (fold models and final models), never a held-out or test pair's."""

import json

import numpy as np
import pytest

from mmsent.paths import RunPaths
from mmsent.training import fitting
from mmsent.features import cache as features
from mmsent.data import prepare
from mmsent.data.mvsa import load_parts
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.features.cache import feature_path
from mmsent.io import save_arrays

from test_experiments import project  # noqa: F401


def _write_translations(root, ids):
    path = root / "augment/clmlf_back_translation/single.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps([{"id": i, "text_translation": f"I am so very happy, number {i}!"} for i in ids]))


def test_the_cache_holds_train_and_dev_translations_only(tiny_params):
    prepare.run(tiny_params, progress=False)
    parts = load_parts(tiny_params, "single")
    all_ids = [i for df in parts.values() for i in df["id"].astype(str)]
    _write_translations(tiny_params.data.root, all_ids)  # the file has test tweets' translations too
    features.run(tiny_params, progress=False, only=["vader"], datasets=("single",))
    cache = features.load_features(tiny_params, "vader", "single_aug-back_translation")
    ok = dict(zip(cache.ids, cache.ok))
    test_ids = set(parts["test"]["id"].astype(str))
    assert test_ids and all(not ok[i] for i in test_ids)  # never a test pair's translation
    assert all(ok[i] for i in all_ids if i not in test_ids)
    assert (cache.X[~cache.ok] == 0).all()
    tweets = features.load_features(tiny_params, "vader", "single")
    train_id = parts["train"]["id"].astype(str).iloc[0]
    assert not np.allclose(cache.select([train_id])[0], tweets.select([train_id])[0])  # another text indeed
    with pytest.raises(KeyError, match="unknown augmentation"):
        features.augmented_texts(tiny_params, "nope", "single")


@pytest.fixture
def augmented(project):  # noqa: F811
    """The tiny project with an augmentation cache of the fake text encoder (train + dev rows only)."""
    parts = load_parts(project, "single")
    ids = np.concatenate([d["id"].to_numpy() for d in parts.values()]).astype(str)
    ok = ~np.isin(ids, parts["test"]["id"].astype(str).to_numpy())
    X = np.where(ok[:, None], 7.0, 0.0).astype(np.float32) * np.ones((len(ids), 6), np.float32)
    save_arrays(feature_path(project, "fake_text", "single_aug-back_translation"), meta={"encoder": "fake_text"},
                ids=ids, X=X, ok=ok)
    project.models["augmented"] = dict(project.models["attention_fusion"], augment="back_translation")
    return project


def test_every_training_set_has_the_augmented_rows_and_no_held_out_or_test_one(augmented, monkeypatch):
    parts = load_parts(augmented, "single")
    test_ids = set(parts["test"]["id"].astype(str))
    seen = []
    original = fitting.fit

    def spy(model, train, dev, cfg, **kw):
        watch = kw.get("watch")
        seen.append((list(train.ids), train.inputs["text"].numpy().copy(), list(dev.ids) if dev is not None else None,
                     list(watch.ids) if watch is not None else []))
        return original(model, train, dev, cfg, **kw)

    monkeypatch.setattr(fitting, "fit", spy)
    run_model(augmented, model_specs(augmented)["augmented"])
    pool = len(parts["train"]) + len(parts["dev"])
    folds, finals = seen[:2], seen[2:]
    for ids, text, stop, held in folds:  # each fold: its training pairs twice, the second time with their translation
        assert len(ids) == 2 * (pool - len(held) - len(stop)) and not (set(held) | set(stop)) & set(ids)
        assert (text[len(ids) // 2:] == 7.0).all() and not (text[: len(ids) // 2] == 7.0).all()
    for ids, text, dev, _ in finals:
        assert dev is None and len(ids) == 2 * pool and not set(ids) & test_ids


def test_as_views_the_translations_ride_beside_their_pairs_in_every_training_set(augmented, monkeypatch):
    from mmsent.training.loop import VIEW, VIEW_OK

    augmented.models["viewed"] = dict(augmented.models["augmented"], augment_as="view",
                                               train={"view_contrastive_weight": 0.1})
    parts = load_parts(augmented, "single")
    seen = []
    original = fitting.fit

    def spy(model, train, dev, cfg, **kw):
        seen.append((list(train.ids), {k: v.numpy().copy() for k, v in train.inputs.items()}, cfg))
        return original(model, train, dev, cfg, **kw)

    monkeypatch.setattr(fitting, "fit", spy)
    run_model(augmented, model_specs(augmented)["viewed"])
    pool = len(parts["train"]) + len(parts["dev"])
    test_ids = set(parts["test"]["id"].astype(str))
    for ids, inputs, cfg in seen:  # fold models and final models alike
        assert len(ids) == len(set(ids)) <= pool and not set(ids) & test_ids  # no pair twice, no test pair
        assert inputs[VIEW_OK].all() and (inputs[VIEW + "text"] == 7.0).all() and not (inputs["text"] == 7.0).all()
        assert VIEW + "image" not in inputs and cfg.view_contrastive_weight == 0.1
    assert len(seen[-1][0]) == pool
    augmented.models["bad_view"] = dict(augmented.models["augmented"], augment_as="copies")
    with pytest.raises(ValueError, match="pairs or view"):
        model_specs(augmented)


def test_the_lever_changes_the_model(augmented):
    from mmsent.training.loop import load_checkpoint

    for name in ("augmented", "attention_fusion"):
        run_model(augmented, model_specs(augmented)[name])
    a, b = (load_checkpoint(RunPaths(augmented).checkpoint(n, "single", 0))[1]["state_dict"]
            for n in ("augmented", "attention_fusion"))
    assert a.keys() == b.keys() and any(not (a[k] == b[k]).all() for k in a)  # same seed, other training data
    bad = dict(augmented.models["lstm"], augment="back_translation")
    augmented.models["bad"] = bad
    with pytest.raises(ValueError, match="augment works for heads"):
        run_model(augmented, model_specs(augmented)["bad"])
