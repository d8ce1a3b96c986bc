"""The selection protocol: stratified folds of train + dev, the corrected standard error, the
noise-aware rule, fixed-epoch final models, and no selection path that reads test."""

import numpy as np
import pandas as pd
import pytest
import torch

from mmsent.paths import RunPaths
from mmsent.training import fitting
from mmsent.training import protocol
from mmsent.data.mvsa import load_parts
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.training.protocol import ProtocolConfig, beats, corrected_se, cv_epochs, make_folds
from mmsent.training.loop import TensorData, TrainConfig, fit

from test_experiments import project  # noqa: F401


def test_folds_are_stratified_disjoint_and_cover_every_pair():
    rng = np.random.default_rng(1)
    labels = rng.choice(3, size=403, p=[0.6, 0.1, 0.3])
    ids = [f"id{i}" for i in range(len(labels))]
    table = make_folds(ids, labels, ProtocolConfig(folds=5, repeats=2, seed=7))
    assert list(table["id"]) == ids and list(table.columns) == ["id", "label_id", "r0", "r1"]
    for col in ("r0", "r1"):
        assert set(table[col]) == set(range(5))  # every pair is held out by exactly one fold of each repeat
        for fold in range(5):
            held = table[table[col] == fold]
            for label in range(3):  # each fold keeps the class balance, to within one pair
                expected = (labels == label).sum() / 5
                assert abs((held["label_id"] == label).sum() - expected) <= 1
    assert (table["r0"] != table["r1"]).any()  # the repeats cut differently
    again = make_folds(ids, labels, ProtocolConfig(folds=5, repeats=2, seed=7))
    assert again.equals(table)  # fixed by the seed


def test_folds_stage_covers_train_and_dev_only(project):  # noqa: F811
    parts = load_parts(project, "single")
    table = protocol.run(project)
    assert table["single"]["pairs"] == len(parts["train"]) + len(parts["dev"])
    pool_ids = list(protocol.pool(parts)["id"].astype(str))
    masks = protocol.held_out(project, pool_ids)
    assert len(masks) == 2 and (sum(m.astype(int) for m in masks) == 1).all()  # disjoint, covering
    stored = pd.read_csv(protocol.folds_path(project), dtype={"id": str})
    assert sorted(stored["id"]) == sorted(pool_ids)  # train + dev exactly: no test pair is ever in a fold
    with pytest.raises(ValueError, match="does not cover"):
        protocol.held_out(project, pool_ids[:-1])  # a stale table is an error, never a silent re-cut


def test_corrected_standard_error_and_the_rule():
    diffs = np.array([1.0, -1.0, 2.0, 0.0, 1.0, -0.5, 1.5, 0.5, 0.0, 0.5])
    naive = diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert corrected_se(diffs, ratio=0.25) == pytest.approx(np.sqrt((1 / 10 + 1 / 4) * diffs.var(ddof=1)))
    assert corrected_se(diffs, ratio=0.25) > 1.8 * naive  # overlapping training sets: the naive SE is too small
    base = np.array([70, 72, 69, 71, 70, 73, 68, 71, 70, 72], float)
    assert not beats(base + diffs, base, 0.25).better  # +0.5 on average, within the noise
    assert beats(base + 1.0 + 0.01 * np.arange(10), base, 0.25).better  # better on every fold
    assert not beats(base, base, 0.25).better  # a tie keeps the incumbent
    with pytest.raises(ValueError, match="not paired"):
        beats(base[:5], base, 0.25)


def test_cv_epochs_is_the_rounded_up_median():
    assert cv_epochs([1, 3, 10, 2, 4]) == 3 and cv_epochs([2, 3]) == 3 and cv_epochs([0]) == 1


def test_a_final_model_trains_the_fixed_epochs_without_dev():
    torch.manual_seed(0)
    data = TensorData({"x": torch.randn(16, 3)}, torch.randint(0, 3, (16,)))

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 3)

        def forward(self, inputs):
            return {"logits": self.lin(inputs["x"])}

    history = fit(Tiny(), data, None, TrainConfig(epochs=10, stop_after=3, scheduler="cosine", batch_size=8))
    assert [h["epoch"] for h in history] == [1, 2, 3] and "dev_weighted_f1" not in history[0]
    with pytest.raises(ValueError, match="plateau"):
        TrainConfig(epochs=10, stop_after=3, scheduler="plateau")
    with pytest.raises(ValueError, match="needs a dev split"):
        fit(Tiny(), data, None, TrainConfig(epochs=2, scheduler="cosine"))


def test_a_cross_validated_model_records_folds_and_trains_its_final_seeds_on_train_and_dev(project):  # noqa: F811
    out = run_model(project, model_specs(project)["attention_fusion"])["single"]
    cv = out["cv"]
    assert cv["folds"] == 2 and cv["repeats"] == 1 and len(cv["per_fold"]["weighted_f1"]) == 2
    assert cv["epochs"] == cv_epochs([int(e) for e in cv["per_fold"]["epoch"]])
    assert "train + dev" in out["measured_on"] and out["selection"] == "cross-validation"
    lo, hi = out["test_interval"]["accuracy"]
    assert lo <= out["accuracy"]["mean"] <= hi
    from mmsent.training.loop import load_checkpoint

    _, payload = load_checkpoint(RunPaths(project).checkpoint("attention_fusion", "single", 0))
    assert len(payload["history"]) == cv["epochs"]  # the final model trained exactly that many epochs
    # the LSTM is too slow for k folds: it keeps the dev protocol, and says so
    lstm = run_model(project, model_specs(project)["lstm"])["single"]
    assert "cv" not in lstm and lstm["selection"] == "dev split"


def test_no_fold_model_trains_or_stops_on_a_test_pair(project, monkeypatch):  # noqa: F811
    """Selection (fold scores, epoch counts) never sees test; final models read it once, for the report."""
    test_ids = set(load_parts(project, "single")["test"]["id"].astype(str))
    fits = []
    original = fitting.fit

    def spy(model, train, dev, cfg, **kw):
        fits.append((set(train.ids), set(dev.ids) if dev is not None else None))
        return original(model, train, dev, cfg, **kw)

    monkeypatch.setattr(fitting, "fit", spy)
    run_model(project, model_specs(project)["attention_fusion"])
    assert len(fits) == 2 + 2  # two fold models, two final seeds
    assert all(not (train | (dev or set())) & test_ids for train, dev in fits)
    assert all(dev is None for _, dev in fits[2:])  # final models: no dev, so nothing is chosen on one


def test_the_held_out_fold_chooses_nothing_for_its_fold_model(project, monkeypatch):  # noqa: F811
    """A fold model trains and early-stops on its own training part only: the pairs that score it
    never reach training or the epoch choice, and its score is its held-out fold at that epoch."""
    fits = []
    original = fitting.fit

    def spy(model, train, dev, cfg, **kw):
        watch = kw.get("watch")
        fits.append((set(train.ids), set(dev.ids) if dev is not None else None,
                     set(watch.ids) if watch is not None else None))
        return original(model, train, dev, cfg, **kw)

    monkeypatch.setattr(fitting, "fit", spy)
    out = run_model(project, model_specs(project)["attention_fusion"])["single"]
    folds = [f for f in fits if f[2] is not None]
    assert len(folds) == 2
    for train, stop, held in folds:
        assert held and stop and not (held & (train | stop)) and not (train & stop)
    history = pd.read_csv(RunPaths(project).history("attention_fusion", "single"))
    for j, score in enumerate(out["cv"]["per_fold"]["weighted_f1"]):
        curve = history[history["fold"] == j]
        chosen = curve.loc[curve["dev_weighted_f1"].idxmax()]  # the inner split's best epoch
        assert score == pytest.approx(100 * chosen["held_weighted_f1"])
        assert out["cv"]["per_fold"]["epoch"][j] == chosen["epoch"]
    # the earlier estimator (each fold scored at its own best epoch) is recorded, never lower
    assert out["cv"]["selected_on_held"]["weighted_f1"]["mean"] >= out["cv"]["weighted_f1"]["mean"]


def test_inner_split_is_stratified_inside_the_training_part():
    labels = np.array([0, 1, 2] * 40)
    rows = np.arange(120) % 5 != 0
    stop = fitting.inner_split(labels, rows, 0.25, seed=3)
    assert not (stop & ~rows).any()
    assert stop.sum() == round(0.25 * rows.sum())
    assert sorted(np.bincount(labels[stop])) == [8, 8, 8]
    assert (stop == fitting.inner_split(labels, rows, 0.25, seed=3)).all()


def test_the_correction_reads_the_fold_models_true_sizes():
    # a fold model of 5-fold CV trains on 4/5 of the pool less its inner split (0.2): 0.64 of it, scored on 0.2
    assert ProtocolConfig(folds=5, inner_fraction=0.2).test_train_ratio == pytest.approx(0.2 / 0.64)
    assert ProtocolConfig(folds=10, inner_fraction=0.5).test_train_ratio == pytest.approx(0.1 / 0.45)
    diffs = np.linspace(-1, 2, 10)
    assert corrected_se(diffs, ProtocolConfig().test_train_ratio) > corrected_se(diffs, 0.25)
