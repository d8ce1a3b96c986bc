"""Train and evaluate the models named in ``params.yaml`` over seeds: the protocol.

Models on cached features (heads and fusion heads, MVSA-Single) are chosen and stopped by
cross-validation (:mod:`mmsent.training.protocol`): one fold model per fold of train + dev,
early-stopped on an inner split of its own training part and scored on the fold it holds out; then
each seed's final model trains on all of train + dev for the folds' median best epoch count and
reads test once. Models too slow for k folds (the BiLSTM, DenseNet-121, end-to-end fine-tuning,
self-distillation) and every MVSA-Multiple model keep the older protocol: train on train,
early-stop on dev, read test once. Written per model and dataset:

* ``models/<model>/<dataset>/seed<k>.pt`` — self-contained checkpoint (neural models)
* ``models/<model>/single/fold<j>.pt`` — each fold model of a cross-validated model
* ``data/predictions/<model>/<dataset>/seed<k>.csv`` — id, gold, predicted, probabilities
* ``data/predictions/<model>/single/folds.npz`` — the fold models' held-out (out-of-fold)
  probabilities per repeat and their test probabilities (:mod:`mmsent.evaluation.ensemble`)
* ``metrics/<model>_<dataset>.json`` — mean ± std over seeds, each seed, what it was measured on
* ``metrics/history/<model>_<dataset>.csv`` — per-epoch curves (all seeds)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.data.mvsa import load_parts
from mmsent.evaluation.metrics import aggregate, bootstrap_interval, compute_metrics, save_frame, scores
from mmsent.io import atomic_path, write_json
from mmsent.models.baselines import BASELINES
from mmsent.parallel import run_jobs
from mmsent.paths import RunPaths
from mmsent.training import metrics_file
from mmsent.training.fitting import expected_seconds, job_workers, run_fold, run_seed
from mmsent.training.inputs import build_inputs, cv_inputs
from mmsent.training.loop import with_augment
from mmsent.training.protocol import corrected_se, cv_epochs, held_out, pool, protocol_config
from mmsent.training.specs import ModelSpec, model_specs, seeds, uses_cv


def cv_summary(params: Params, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """What cross-validation says of a model: per-fold held-out scores, their mean and corrected
    standard error (mmsent.training.protocol), and the epoch count its final models train for."""
    cfg = protocol_config(params)
    out: dict[str, Any] = {"protocol": f"repeated stratified {cfg.folds}-fold CV over train + dev, "
                                       f"{cfg.repeats} repeat(s), seed {cfg.seed}",
                           "folds": cfg.folds, "repeats": len(folds) // cfg.folds,
                           "epochs": cv_epochs([f["epoch"] for f in folds])}
    for key in ("weighted_f1", "accuracy"):
        values = np.array([f[key] for f in folds])
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)),
                    "se": corrected_se(values, cfg.test_train_ratio)}
    out["per_fold"] = {key: [float(f[key]) for f in folds] for key in ("weighted_f1", "accuracy", "epoch")}
    # the earlier estimator, on the same fold models: each scored at the epoch its held-out fold liked best
    peeked = np.array([f["selected_on_held"]["weighted_f1"] for f in folds])
    out["selected_on_held"] = {"weighted_f1": {"mean": float(peeked.mean()),
                                               "se": corrected_se(peeked, cfg.test_train_ratio)},
                               "note": "biased upward: each fold scored at the epoch it chose itself; never used"}
    return out


def summarize(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
              runs: list[dict[str, Any]], folds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write (and return) one model's metrics over its seeds (and folds), and its training curves."""
    per_seed = [r["metrics"] for r in runs]
    histories = [h for r in runs for h in r["history"]]
    seconds = [r["seconds"] for r in runs]
    gold = parts["test"]["label_id"].astype(int).to_numpy()
    pred = np.stack([r["predicted"] for r in runs])
    trained = (f"trained on train + dev ({len(parts['train']) + len(parts['dev'])} pairs) for the "
               "cross-validated epoch count" if folds else "early-stopped on dev")
    summary = {
        "model": spec.name, "family": spec.family, "dataset": dataset, "modalities": spec.modalities,
        "encoders": spec.inputs,
        "measured_on": (f"MVSA-{dataset.title()} {params.data.split} test split"
                        f"{' (de-duplicated)' if params.data.dedup else ''}, n={len(parts['test'])}, "
                        f"{spec.modalities}{' (text only: no images exist)' if dataset == 'multiple' else ''}; "
                        f"{trained}"),
        "selection": "cross-validation" if folds else "dev split",
        **aggregate(per_seed), "test_interval": bootstrap_interval(gold, pred),
        "train_seconds_per_seed": float(np.mean(seconds)),
        "per_seed": per_seed, **runs[-1]["facts"],
    }
    if folds:
        summary["cv"] = cv_summary(params, folds)
        summary["cv_seconds_per_fold"] = float(np.mean([f["seconds"] for f in folds]))
        ensemble = np.mean([f["test_probs"] for f in folds], axis=0).argmax(1)  # the fold models averaged
        save_fold_probs(params, spec, dataset, parts, folds)
        summary["fold_ensemble"] = {k: v for k, v in compute_metrics(gold, ensemble).items() if k in
                                    ("accuracy", "weighted_f1", "macro_f1")}
        histories = [{"fold": j, "seed": j, **h} for j, f in enumerate(folds) for h in f["history"]]
    metrics_file.write(RunPaths(params).training_metrics(spec, dataset),
                       [(f"fold{j}", f["history"]) for j, f in enumerate(folds or [])]
                       + [(f"seed{r['metrics']['seed']}", r["history"]) for r in runs])
    write_json(RunPaths(params).record(spec, dataset), summary)
    write_json(RunPaths(params).score(spec, dataset), scores(summary))
    if histories:
        save_frame(pd.DataFrame(histories), RunPaths(params).history(spec, dataset))
    return summary


def save_fold_probs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
                    folds: list[dict[str, Any]]) -> Path:
    """``folds.npz``: out-of-fold probabilities (repeats, pool pairs, labels; each pair is held out
    once per repeat) and each fold model's test probabilities (fold models, test pairs, labels)."""
    cfg = protocol_config(params)
    ids = np.asarray(pool(parts)["id"].astype(str), dtype=str)  # not object arrays: loadable without pickle
    oof = np.full((len(folds) // cfg.folds, len(ids), folds[0]["held_probs"].shape[1]), np.nan, dtype=np.float32)
    for f in folds:  # each fold's own mask over the pool (the rows it held out)
        oof[f["fold"] // cfg.folds, f["held"]] = f["held_probs"]
    path = RunPaths(params).predictions(spec, dataset) / "folds.npz"
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, ids=ids, test_ids=np.asarray(parts["test"]["id"].astype(str), dtype=str), oof=oof,
                                test=np.stack([f["test_probs"] for f in folds]).astype(np.float32))
    return path


def run_models(params: Params, specs: list[ModelSpec]) -> dict[str, dict[str, dict]]:
    """All datasets × seeds of several models; writes checkpoints, predictions and metrics.

    Two pools of jobs (one process and thread each; see :mod:`mmsent.parallel`), longest first,
    so no core idles while another model's jobs wait: first every fold model of the
    cross-validated models with every seed of the others, then the cross-validated models' final
    seeds, which need the folds' epoch count. Each job seeds itself, so the numbers do not depend
    on the order or the worker count."""
    tasks = []  # (spec, dataset, parts, config, data): one per model and dataset
    for spec in specs:
        for dataset in spec.datasets:
            parts = load_parts(params, dataset)
            if spec.family in BASELINES:
                config, data = None, None
            elif uses_cv(spec, dataset):
                config, data = cv_inputs(params, spec, dataset, parts)
            else:
                config, data = build_inputs(params, spec, dataset, parts)
                data = {**data, "train": with_augment(data)}
            tasks.append((spec, dataset, parts, config, data))
    cost = [expected_seconds(params, spec.name, dataset) for spec, dataset, *_ in tasks]
    workers = job_workers(params, specs, len(tasks) * max(len(seeds(params)), protocol_config(params).n_fits))
    first, folds_of = [], {}
    for t, (spec, dataset, parts, config, data) in enumerate(tasks):
        if uses_cv(spec, dataset):
            masks = held_out(params, data["train"].ids, dataset)
            first += [(t, ("fold", j), (params, spec, dataset, config, data, mask, j, None, True))
                      for j, mask in enumerate(masks)]
        else:
            first += [(t, ("seed", seed), (params, spec, dataset, parts, config, data, seed)) for seed in seeds(params)]
    first.sort(key=lambda job: -cost[job[0]])  # stable: each task's jobs stay in order
    done = run_jobs(_first_job, [(kind, args) for _, (kind, _), args in first], workers)
    runs: dict[int, list[dict]] = {}
    for (t, (kind, _), _), out in zip(first, done):
        (folds_of if kind == "fold" else runs).setdefault(t, []).append(out)
    final = []
    for t in sorted(folds_of, key=lambda t: -cost[t]):
        spec, dataset, parts, config, data = tasks[t]
        stop = {"stop_after": cv_epochs([f["epoch"] for f in folds_of[t]])}
        final_data = {**data, "train": with_augment(data), "dev": None}
        final += [(t, (params, spec, dataset, parts, config, final_data, seed, stop))
                  for seed in protocol_config(params).final_seeds]
    for (t, _), out in zip(final, run_jobs(run_seed, [args for _, args in final], workers)):
        runs.setdefault(t, []).append(out)
    results: dict[str, dict[str, dict]] = {}
    for t, (spec, dataset, parts, _, _) in enumerate(tasks):
        results.setdefault(spec.name, {})[dataset] = summarize(params, spec, dataset, parts, runs[t], folds_of.get(t))
    return results


def _first_job(kind: str, args: tuple) -> dict[str, Any]:
    return run_fold(*args) if kind == "fold" else run_seed(*args)


def run_model(params: Params, spec: ModelSpec) -> dict[str, dict]:
    """All datasets × seeds of one model (see :func:`run_models`)."""
    return run_models(params, [spec])[spec.name]


def load_group(params: Params, group: str) -> dict[str, dict]:
    """What the stage of ``group`` last wrote (``metrics/<model>_<dataset>.json``), in
    :func:`run_group`'s shape, reading and writing nothing else: a notebook shows it without retraining."""
    from mmsent.io import read_json

    out: dict[str, dict] = {}
    for spec in model_specs(params).values():
        for dataset in spec.datasets if spec.group == group else []:
            path = RunPaths(params).record(spec, dataset)
            if path.is_file():
                out.setdefault(spec.name, {})[dataset] = read_json(path)
    if not out:
        raise FileNotFoundError(f"no metrics of the {group!r} models yet: run the stage (`dvc repro`) first")
    return out


def run_group(params: Params, group: str) -> dict[str, dict]:
    """Every model of one stage group (text, image or fusion)."""
    specs = [s for s in model_specs(params).values() if s.group == group]
    if not specs:
        raise ValueError(f"no models with group {group!r} in params.yaml")
    return run_models(params, specs)
