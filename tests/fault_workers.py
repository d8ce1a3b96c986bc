"""Processes the fault tests kill on purpose (run as ``python tests/fault_workers.py ...``).

Not a test module: each command does real work and SIGKILLs itself at a chosen point, the
way an out-of-memory kill or a pulled plug would stop it (no cleanup, no ``finally``).
"""

from __future__ import annotations

import os
import signal
import sys

import torch

from mmsent.device import seed_everything
from mmsent.models import build_model
from mmsent.training.loop import TensorData, TrainConfig, fit


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def tiny_run(resume=None, kill_at_batch: int | None = None):
    """A seeded tiny training run; ``kill_at_batch`` dies inside that training batch."""
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(64, 6, generator=generator)
    y = (X[:, 0] > 0).long() + (X[:, 1] > 0.8).long()
    train, dev = TensorData({"text": X[:48]}, y[:48]), TensorData({"text": X[48:]}, y[48:])
    seed_everything(3)
    model = build_model("mlp_head", {"input_dim": 6, "hidden": [8], "dropout": 0.3})
    if kill_at_batch is not None:
        calls = {"n": 0}

        def count(module, args):
            if module.training:
                calls["n"] += 1
                if calls["n"] == kill_at_batch:
                    die()

        model.register_forward_pre_hook(count)
    cfg = TrainConfig(epochs=5, batch_size=8, patience=10, device="cpu")
    history = fit(model, train, dev, cfg, seed=3, resume=resume)
    return model, history


def tune_and_die(params_path: str, model: str, kill_at_trial: int) -> None:
    """Tune with the real CLI code path, dying in the middle of trial ``kill_at_trial``."""
    from mmsent.training import tune
    from mmsent.config import load_params

    original = tune.run_fold
    folds = []

    def run_fold(*args):
        trials = tune.study(load_params(params_path), model).trials
        if len(trials) - 1 == kill_at_trial:
            folds.append(1)
            if len(folds) == 2:  # the trial's first fold model is done, its second is being trained
                die()
        return original(*args)

    tune.run_fold = run_fold
    tune.tune_model(load_params(params_path), model)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "train":
        tiny_run(resume=args[0], kill_at_batch=int(args[1]))
    elif command == "tune":
        tune_and_die(args[0], args[1], int(args[2]))
    else:
        raise SystemExit(f"unknown command {command}")
