"""Self-distillation from cross-fitted teachers, a lever of the accuracy ablation.

For each teacher seed, the training split is cut into ``folds`` parts (a cut of its own per
seed); for each part, a teacher (the same model without this lever) trains on the other parts,
with early stopping on dev as always, and predicts that part. Every training pair so gets class
probabilities from models that never saw it: what is learnable about the pair, not its own label
memorised (a teacher trained on all of train would hand back near one-hot targets). The student,
the model itself, then trains on its labels plus ``weight`` × the cross-entropy against these
soft targets (:func:`mmsent.training.loop.fit` reads them as the train split's ``soft_label`` input).

Teachers read train and dev only; test is never touched. Measured on dev (probe, 5 seeds):
label smoothing 0.1 / 0.2, the obvious cheaper stand-in, lowered dev weighted F1, and teachers
of three model families did no better than the model's own. The teachers cost as much as ten
more trainings of the model, so the lever lives in the ``full`` profile.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import numpy as np
import torch

from mmsent.parallel import run_jobs
from mmsent.training.loop import TensorData, predict_proba
from mmsent.training.specs import DistillConfig


def fold_ids(n: int, folds: int, seed: int = 0) -> np.ndarray:
    """A part (0 … folds-1) for each of ``n`` rows: a seeded shuffle dealt round-robin, so parts
    differ in size by at most one."""
    if n < folds:
        raise ValueError(f"cannot cut {n} training pairs into {folds} parts")
    parts = np.empty(n, np.int64)
    parts[np.random.default_rng(seed).permutation(n)] = np.arange(n) % folds
    return parts


def _teach(params, spec, config, data: dict[str, TensorData], held: TensorData, seed: int,
           dataset: str) -> tuple[np.ndarray, float]:
    from mmsent.training.fitting import train_once

    start = time.perf_counter()
    model, _ = train_once(params, spec, config, data, seed, dataset=dataset)
    probs, _ = predict_proba(model, held)
    return probs, time.perf_counter() - start


def soft_targets(params, spec, config, data: dict[str, TensorData], dataset: str) -> tuple[torch.Tensor, float]:
    """Out-of-fold teacher probabilities (train pairs × labels) for ``spec`` (which has ``distill``),
    and the teachers' CPU seconds in all (each trains single-threaded, side by side like seeds)."""
    from mmsent.training.fitting import job_workers

    cfg = DistillConfig(**spec.distill)
    teacher = dataclasses.replace(spec, distill=None)
    train = data["train"]
    shared: dict[str, Any] = {k: v for k, v in data.items() if k not in ("train", "test")}  # never test
    # each teacher seed cuts train its own way, so the targets average over cuts as well as seeds
    cuts = {seed: fold_ids(len(train), cfg.folds, seed) for seed in cfg.seeds}
    keys = [(seed, k) for seed in cfg.seeds for k in range(cfg.folds)]
    jobs = [(params, teacher, config, {**shared, "train": train.subset(cuts[seed] != k)},
             train.subset(cuts[seed] == k), seed, dataset) for seed, k in keys]
    workers = job_workers(params, [teacher], len(jobs))
    out, seconds = np.zeros((len(train), config.num_labels), np.float32), 0.0
    for (seed, k), (probs, took) in zip(keys, run_jobs(_teach, jobs, workers)):
        out[cuts[seed] == k] += probs / len(cfg.seeds)
        seconds += took
    return torch.from_numpy(out), seconds


