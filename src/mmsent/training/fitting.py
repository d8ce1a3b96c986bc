"""One model trained: a final seed (reads test once, writes its checkpoint and predictions) or a
fold model (early-stopped on an inner split of its own training part, scored on the fold it holds
out); how many run side by side."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from mmsent.config import Params
from mmsent.device import pick_device, seed_everything
from mmsent.evaluation.metrics import compute_metrics, predictions_frame, save_frame
from mmsent.io import read_json
from mmsent.models import build_model
from mmsent.models.baselines import BASELINES
from mmsent.parallel import resolve_workers
from mmsent.paths import RunPaths
from mmsent.training.protocol import protocol_config
from mmsent.training.loop import TensorData, fit, predict_proba, save_checkpoint, with_augment
from mmsent.training.specs import ModelSpec, train_config


def train_once(params: Params, spec: ModelSpec, config, data: dict[str, TensorData], seed: int,
               train_overrides: dict[str, Any] | None = None, on_epoch=None, resume: Path | None = None,
               dataset: str | None = None, watch: TensorData | None = None):
    """Build (seeded), initialise and fit one model; returns ``(model, history)``.

    ``resume``: a per-epoch resume file (see :func:`mmsent.training.loop.fit`) so a killed run continues."""
    seed_everything(seed)
    model = build_model(spec.family, copy.deepcopy(config))
    model.load_pretrained()
    if spec.pretrain:
        from mmsent.training.pretrain import PretrainConfig, pretrain_text

        pretrain_text(model, data["pretrain"], PretrainConfig(**spec.pretrain), seed)
    cfg = train_config(params, spec, dataset)
    if train_overrides:
        cfg = dataclasses.replace(cfg, **train_overrides)
    history = fit(model, data["train"], data["dev"], cfg, seed=seed, on_epoch=on_epoch, resume=resume, watch=watch)
    return model, history


def ocr_meta(params: Params, spec: ModelSpec) -> dict[str, Any]:
    """A model that reads text inside images keeps the OCR settings its cached inputs were made
    with (not those of the profile in force now), so the Pipeline reads new images the same way."""
    from mmsent.data.ocr import used_settings

    return {"ocr_config": used_settings(params)} if "ocr" in spec.inputs else {}


def checkpoint_meta(params: Params, spec: ModelSpec, dataset: str) -> dict[str, Any]:
    """What a checkpoint needs beside its weights for the Pipeline to compute its inputs the way
    its training features were computed."""
    return {"encoders": spec.inputs, "model_name": spec.name, "dataset": dataset,
            "text_config": dataclasses.asdict(params.features.text_config(params.text, spec.text_variant)),
            "image_size": params.features.image_size, "feature_backend": params.features.backend,
            **ocr_meta(params, spec)}


def run_seed(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
             config, data: dict[str, TensorData] | None, seed: int,
             overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One seed: train, read test once, write its predictions and checkpoint (in any process).
    ``overrides`` (train settings): e.g. the cross-validated ``stop_after`` of a final model."""
    start = time.perf_counter()
    if spec.family in BASELINES:
        clf_kwargs = dict(spec.options, **({"seed": seed} if spec.family == "tfidf_lr" else {}))
        clf = BASELINES[spec.family](**clf_kwargs).fit(list(parts["train"]["text"]),
                                                       parts["train"]["label_id"].astype(int))
        probs, extras, history, model = clf.predict_proba(list(parts["test"]["text"])), {}, [], None
    else:
        run_dir = RunPaths(params).models(spec, dataset)
        model, history = train_once(params, spec, config, data, seed, train_overrides=overrides,
                                    resume=run_dir / f".seed{seed}.resume.pt", dataset=dataset)
        probs, extras = predict_proba(model, data["test"], device=next(model.parameters()).device)
        model.cpu()
    seconds = time.perf_counter() - start
    gold = parts["test"]["label_id"].astype(int).to_numpy()
    metrics = compute_metrics(gold, probs.argmax(1))
    save_frame(predictions_frame(parts["test"]["id"], gold, probs, extras),
               RunPaths(params).predictions(spec, dataset) / f"seed{seed}.csv")
    facts = dict(data["train"].facts) if data else {}
    if model is not None:
        save_checkpoint(RunPaths(params).checkpoint(spec, dataset, seed), model,
                        spec.family, **checkpoint_meta(params, spec, dataset), seed=seed, history=history,
                        test_metrics=metrics)
        facts.update(model.facts())  # what a family reports of itself (ImageNet weights, GloVe coverage)
    return {"metrics": {"seed": seed, **metrics}, "history": [{"seed": seed, **h} for h in history],
            "seconds": seconds, "facts": facts, "predicted": probs.argmax(1)}


def train_workers(params: Params, jobs: int, device: str = "auto") -> int:
    """How many training jobs (seeds, tuning studies) run at once: ``train.workers`` on ``device``."""
    return resolve_workers(params.train.workers, jobs, str(pick_device(device)))


def expected_seconds(params: Params, name: str, dataset: str) -> float:
    """A seed's training time in the last run (its metrics file), for scheduling only; unknown
    models count as the longest, so nothing slow is left for the end."""
    path = RunPaths(params).record(name, dataset)
    try:
        return float(read_json(path)["train_seconds_per_seed"])
    except (OSError, KeyError, TypeError, ValueError):
        return float("inf")


def job_workers(params: Params, specs: list[ModelSpec], jobs: int) -> int:
    """How many seed jobs of ``specs`` run at once: one per core on CPU, one when any trains on a GPU.
    Baselines alone are too quick to be worth a process."""
    neural = [s for s in specs if s.family not in BASELINES]
    if not neural:
        return 1
    return min(train_workers(params, jobs, train_config(params, s).device) for s in neural)


def inner_split(labels: np.ndarray, rows: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A stratified ``fraction`` of the boolean mask ``rows`` (a fold model's training part): the
    pairs that stop it early, so the fold it holds out chooses nothing for it."""
    index = np.flatnonzero(rows)
    try:
        _, stop = train_test_split(index, test_size=fraction, stratify=labels[index], random_state=seed)
    except ValueError:  # a class too rare to stratify (tiny data sets only)
        _, stop = train_test_split(index, test_size=fraction, random_state=seed)
    mask = np.zeros(len(labels), bool)
    mask[stop] = True
    return mask


def fit_fold(labels: np.ndarray, usable: np.ndarray, fraction: float, fold: int,
             train: Callable[[np.ndarray, np.ndarray], tuple[Any, list[dict]]]) -> tuple[Any, list[dict], dict]:
    """The protocol's one fold model, for the pipeline and ``mmsent fit`` alike: ``train(fit_rows,
    stop_rows)`` learns on ``usable`` less a stratified inner split (``fraction``), which alone picks
    the epoch; returns the model, its history and the picked epoch's record (the first of equal
    scores; its weights are the ones kept). The final model refits on everything for
    :func:`mmsent.training.protocol.cv_epochs` of the picked epochs."""
    stop = inner_split(labels, usable, fraction, fold)
    model, history = train(usable & ~stop, stop)
    return model, history, max(history, key=lambda h: h["dev_weighted_f1"])


def run_fold(params: Params, spec: ModelSpec, dataset: str, config, data: dict[str, TensorData],
             held: np.ndarray, seed: int, overrides: dict[str, Any] | None = None,
             save: bool = False, pool: np.ndarray | None = None) -> dict[str, Any]:
    """One fold model (fold number ``seed``): trains on the pool less ``held`` less an inner
    stratified split (``protocol.inner_fraction`` of the rest), which picks its epoch; then its
    scores (%) and probabilities on ``held``, untouched by any choice, and, when ``data`` has a test
    part, its test probabilities. ``save``: write it as ``fold<j>.pt`` beside the final models.

    ``held`` is also scored after every epoch, for the record only: ``selected_on_held`` is what the
    earlier estimator reported (the best of those epochs), so the two can be compared.

    ``pool``: the rows of ``data["train"]`` the fold model may learn from (default all; nested CV
    passes an outer fold's training part, ``held`` then being an inner fold inside it)."""
    fold = seed
    start = time.perf_counter()
    usable = ~held if pool is None else pool & ~held
    held_data = data["train"].subset(held)

    def train(rows: np.ndarray, stop: np.ndarray):
        fold_data = {**data, "train": with_augment(data, rows), "dev": data["train"].subset(stop)}
        return train_once(params, spec, config, fold_data, seed, train_overrides=overrides, dataset=dataset,
                          watch=held_data)

    model, history, best = fit_fold(data["train"].labels.numpy(), usable, protocol_config(params).inner_fraction,
                                    fold, train)
    peeked = max(history, key=lambda h: h["held_weighted_f1"])
    test = data.get("test")
    probs = predict_proba(model, test)[0] if test is not None and len(test) else None
    if save:  # the fold models are what a bagged ensemble ships (mmsent.evaluation.ensemble)
        save_checkpoint(RunPaths(params).checkpoint(spec, dataset, f"fold{fold}"), model, spec.family,
                        **checkpoint_meta(params, spec, dataset), fold=fold, history=history)
    return {"weighted_f1": 100 * best["held_weighted_f1"], "accuracy": 100 * best["held_acc"],
            "epoch": int(best["epoch"]), "history": history, "test_probs": probs,
            "selected_on_held": {"weighted_f1": 100 * peeked["held_weighted_f1"], "accuracy": 100 * peeked["held_acc"],
                                 "epoch": int(peeked["epoch"])},
            "held_probs": predict_proba(model, held_data)[0], "held": held, "fold": fold,
            "parameters": int(sum(p.numel() for p in model.parameters())), "seconds": time.perf_counter() - start}
