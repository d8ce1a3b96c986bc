"""The ``protocols`` stage: the headline models on MVSA-Single's two other published protocols.

* ``agreement`` — the 2,592 pairs whose text and image labels agree (the QMF / PDF / MMBT line of
  work; ``splits/agreement``): 1,555 / 518 / 519, one model per seed of ``train.seeds``;
* ``cheema`` — Cheema et al.'s 10 folds of the 4,511 pairs (``splits/cheema``): one model per
  fold (the first seed), mean ± std over the folds.

Each model trains on the protocol's own train part, early-stops on its own dev (val) part and
reads its own test part once. The configurations are those chosen on the CLMLF protocol (tuned
values, the ablation's kept configuration); since CLMLF's train + dev overlaps these protocols'
test parts, that choice of hyperparameters (not of weights) has seen some of their test pairs,
and the report says so. Written: ``metrics/protocols/<model>_<protocol>.json`` and the test
predictions, ``data/predictions/protocols/<model>_<protocol>.npz``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmsent.config import Params
from mmsent.data.splits import cheema_fold_numbers, protocol_parts
from mmsent.evaluation.metrics import aggregate, bootstrap_interval, compute_metrics, write_scores
from mmsent.io import atomic_path, read_json, write_json
from mmsent.parallel import run_jobs
from mmsent.paths import METRICS_DIR, PREDICTIONS_DIR
from mmsent.paths import SCORES_DIR
from mmsent.training.fitting import job_workers, train_once
from mmsent.training.inputs import build_inputs
from mmsent.training.loop import predict_proba
from mmsent.training.loop import with_augment
from mmsent.training.specs import ModelSpec, model_specs, seeds

PROTOCOL_METRICS = METRICS_DIR / "protocols"
PROTOCOLS = ("agreement", "cheema")
DESCRIBED = {
    "clmlf": "CLMLF 8:1:1 (4,511 pairs: 3,611 / 450 / 450); selection by CV over train + dev",
    "agreement": "label agreement (2,592 pairs: 1,555 / 518 / 519; QMF / PDF); early stopping on its dev",
    "cheema": "Cheema et al. 10 folds (4,511 pairs, ~3,609 / 451 / 451 each); early stopping on each fold's val, "
              "one model per fold",
}


def protocol_job(params: Params, spec: ModelSpec, scheme: str, fold: int, seed: int) -> dict[str, Any]:
    """One model on one protocol cut: built, trained and scored inside the worker."""
    parts = protocol_parts(params, scheme, fold)
    config, data = build_inputs(params, spec, "single", parts, protocol_parts=parts)
    data = {**data, "train": with_augment(data)}  # a protocol's train pairs that have an augmented text
    model, _ = train_once(params, spec, config, data, seed, dataset="single")
    probs, _ = predict_proba(model, data["test"])
    gold = parts["test"]["label_id"].astype(int).to_numpy()
    return {"metrics": {"seed": seed, "fold": fold, **compute_metrics(gold, probs.argmax(1))},
            "gold": gold, "predicted": probs.argmax(1), "ids": parts["test"]["id"].astype(str).to_numpy(),
            "sizes": {p: len(df) for p, df in parts.items()}}


def save_predictions(params: Params, name: str, scheme: str, runs: list[dict[str, Any]]) -> None:
    """``data/predictions/protocols/<model>_<protocol>.npz`` for the significance tests: ``ids`` and
    ``gold`` of the test pairs and ``predicted`` (runs, pairs). Cheema's folds cut disjoint test
    parts, so their runs pool into one prediction of every pair (one run: no seed to vary)."""
    if scheme == "cheema":
        runs = [{key: np.concatenate([r[key] for r in runs]) for key in ("ids", "gold", "predicted")}]
    if any(list(r["ids"]) != list(runs[0]["ids"]) for r in runs):
        raise ValueError(f"{name} on {scheme}: runs are not on the same test pairs")
    path = params.path(PREDICTIONS_DIR) / "protocols" / f"{name}_{scheme}.npz"
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, ids=runs[0]["ids"].astype(str), gold=runs[0]["gold"],
                                predicted=np.stack([r["predicted"] for r in runs]))


def protocol_models(params: Params) -> list[str]:
    """``protocols.models`` and the configuration the ablation kept (what ships)."""
    from mmsent.evaluation.ablation import kept_model

    names = list(params.protocols.models)
    shipped = kept_model(params)
    return names + ([shipped] if shipped not in names else [])


def run(params: Params) -> dict[str, Any]:
    specs = model_specs(params)
    names = protocol_models(params)
    cheema_folds = cheema_fold_numbers(params)
    jobs = [(name, "agreement", 1, seed) for name in names for seed in seeds(params)]
    jobs += [(name, "cheema", fold, seeds(params)[0]) for name in names for fold in cheema_folds]
    workers = job_workers(params, [specs[n] for n in names], len(jobs))
    outs = run_jobs(protocol_job, [(params, specs[n], scheme, fold, seed) for n, scheme, fold, seed in jobs], workers)
    summary = {}
    for name in names:
        for scheme in PROTOCOLS:
            runs = [o for (n, s, _, _), o in zip(jobs, outs) if n == name and s == scheme]
            m = {"model": name, "protocol": scheme, "described": DESCRIBED[scheme],
                 "measured_on": f"MVSA-Single, {DESCRIBED[scheme]}, {specs[name].modalities}",
                 **aggregate([r["metrics"] for r in runs]), "per_run": [r["metrics"] for r in runs],
                 "sizes": runs[0]["sizes"]}
            if scheme == "agreement":  # one test part for every seed: an interval over its pairs
                m["test_interval"] = bootstrap_interval(runs[0]["gold"], np.stack([r["predicted"] for r in runs]))
            write_json(params.path(PROTOCOL_METRICS) / f"{name}_{scheme}.json", m)
            save_predictions(params, name, scheme, runs)
            write_scores(params.path(SCORES_DIR) / "protocols", f"{name}_{scheme}", m)
            summary[f"{name}/{scheme}"] = {k: round(m[k]["mean"], 2) for k in ("accuracy", "weighted_f1")}
    return summary


def load(params: Params, model: str, scheme: str) -> dict[str, Any] | None:
    path = params.path(PROTOCOL_METRICS) / f"{model}_{scheme}.json"
    return read_json(path) if path.is_file() else None
