"""Nested cross-validation of one tuned model (``nested.model``): how far its tuned CV score
overstates unseen pairs because the trials were chosen on the same folds that score them.

Each outer fold of the protocol's first repeat is held out in turn. On the rest, the study's own
candidate values (its Sobol points, which no score chose, so tuning on this part would ask the same)
are scored by an inner stratified k-fold, and the one-SE rule picks one as tuning does; the values
picked then train one model on the outer training part, scored on the outer fold. The optimism is
the picked trial's inner CV score minus that outer score. Both sides train with tuning's trial
settings; inner fold models learn from 80 % of what an outer one does, which lowers the inner side:
the figure is a lower bound of the optimism, not an overstatement of it."""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna
import yaml
from sklearn.model_selection import KFold, StratifiedKFold

from mmsent.config import Params
from mmsent.io import read_json, write_json
from mmsent.parallel import run_jobs
from mmsent.paths import METRICS_DIR
from mmsent.training.fitting import run_fold, train_workers
from mmsent.training.protocol import held_out, protocol_config
from mmsent.training.specs import best_path
from mmsent.training.tune import FINISHED, choose_trial, study, trial_inputs, tuning_config

NESTED_DIR = f"{METRICS_DIR}/nested"


def nested_model(params: Params) -> str | None:
    """``nested.model``, checked to be a tuned model; None when params.yaml names none."""
    model = params.nested.model
    if model is None:
        return None
    if model not in tuning_config(params).models:
        raise ValueError(f"nested.model must be one of tuning.models {tuning_config(params).models}, not {model!r}")
    return model


def load(params: Params) -> dict[str, Any] | None:
    """The last nested-CV result of ``nested.model``, or None (none configured or not yet run)."""
    model = nested_model(params)
    path = result_path(params, model) if model else None
    return read_json(path) if path is not None and path.is_file() else None


def result_path(params: Params, model: str):
    return params.path(NESTED_DIR) / f"{model}_{tuning_config(params).dataset}.json"


def candidates(params: Params, model: str) -> list[optuna.trial.FrozenTrial]:
    """The tune stage's finished trials of ``model``, in trial order (their values, not their scores)."""
    done = sorted((t for t in study(params, model).get_trials(deepcopy=False, states=FINISHED)),
                  key=lambda t: t.number)
    if not done:
        raise FileNotFoundError(f"the study of {model} has no finished trial: run the tune stage first")
    return done


def inner_masks(labels: np.ndarray, outer: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Stratified folds of the rows outside ``outer``, as boolean masks over all rows."""
    index = np.flatnonzero(~outer)
    try:
        cuts = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(index, labels[index]))
    except ValueError:  # a class rarer than the folds (tiny data sets only)
        cuts = list(KFold(folds, shuffle=True, random_state=seed).split(index))
    masks = []
    for _, held in cuts:
        mask = np.zeros(len(labels), bool)
        mask[index[held]] = True
        masks.append(mask)
    return masks


def nested_fold(params: Params, model: str, values: dict[str, Any], outer: int, inner: int | None) -> dict[str, Any]:
    """One fold model: inner fold ``inner`` of outer fold ``outer`` (trained on the outer training
    part less that inner fold), or with ``inner=None`` the outer fold model itself."""
    spec, dataset, config, data, train = trial_inputs(params, model, values)
    outer_mask = held_out(params, data["train"].ids, dataset, 1)[outer]
    if inner is None:
        out = run_fold(params, spec, dataset, config, data, outer_mask, outer, train)
    else:
        protocol = protocol_config(params)
        held = inner_masks(data["train"].labels.numpy(), outer_mask, protocol.folds, protocol.seed + outer)[inner]
        out = run_fold(params, spec, dataset, config, data, held, inner, train, pool=~outer_mask)
    return {"weighted_f1": out["weighted_f1"], "parameters": out["parameters"]}


def pick(trials: list[optuna.trial.FrozenTrial], folds: list[list[dict[str, Any]]], ratio: float) -> tuple[int, float]:
    """The one-SE rule over one outer fold's inner scores: (index into ``trials``, its inner CV score)."""
    st = optuna.create_study(direction="maximize")
    for t, scores in zip(trials, folds):
        values = [f["weighted_f1"] for f in scores]
        st.add_trial(optuna.trial.create_trial(
            params=t.params, distributions=t.distributions, value=float(np.mean(values)),
            user_attrs={"fold_scores": values, "parameters": scores[0]["parameters"]}))
    chosen, _ = choose_trial(st, ratio)
    return chosen.number, float(chosen.value)


def run(params: Params) -> dict[str, Any]:
    """Nested CV of ``nested.model``; writes ``metrics/nested/<model>_<dataset>.json``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    model = nested_model(params)
    if model is None:
        return {"skipped": "params.yaml names no nested.model"}
    protocol = protocol_config(params)
    trials = candidates(params, model)
    outers, inners = range(protocol.folds), range(protocol.folds)
    jobs = [(params, model, t.params, k, j) for k in outers for t in trials for j in inners]
    done = iter(run_jobs(nested_fold, jobs, train_workers(params, len(jobs))))
    scored = {k: [[next(done) for _ in inners] for _ in trials] for k in outers}
    picked = {k: pick(trials, scored[k], protocol.test_train_ratio) for k in outers}
    outer = run_jobs(nested_fold, [(params, model, trials[picked[k][0]].params, k, None) for k in outers],
                     train_workers(params, len(outers)))
    full = yaml.safe_load(best_path(params, model).read_text(encoding="utf-8"))
    rows = [{"outer_fold": k, "chosen_trial": trials[picked[k][0]].number,
             "best_inner_cv": round(max(float(np.mean([f["weighted_f1"] for f in s])) for s in scored[k]), 4),
             "chosen_inner_cv": round(picked[k][1], 4), "outer_score": round(outer[k]["weighted_f1"], 4),
             "optimism": round(picked[k][1] - outer[k]["weighted_f1"], 4)} for k in outers]
    optimism = np.array([r["optimism"] for r in rows])
    summary = {
        "model": model, "dataset": tuning_config(params).dataset, "outer_folds": protocol.folds,
        "inner_folds": protocol.folds, "trials": len(trials), "trial_train": tuning_config(params).trial_train,
        "full_tuning_chosen_trial": full.get("trial"),
        "same_choice_as_full_tuning": sum(r["chosen_trial"] == full.get("trial") for r in rows),
        "per_outer_fold": rows,
        "optimism": {"mean": round(float(optimism.mean()), 4), "sd": round(float(optimism.std(ddof=1)), 4),
                     "min": round(float(optimism.min()), 4), "max": round(float(optimism.max()), 4)},
    }
    write_json(result_path(params, model), summary)
    return summary


def sentence(summary: dict[str, Any], cv_minus_test: float | None = None) -> str:
    """What the nested CV measured, for docs/protocol.md (generated by the results stage)."""
    o = summary["optimism"]
    text = (f"Nested CV of `{summary['model']}` ({summary['outer_folds']} outer folds × {summary['trials']} trials × "
            f"{summary['inner_folds']} inner folds, tuning's trial settings): the trial the one-SE rule picks on an "
            f"outer fold's training part scores {o['mean']:+.2f} ± {o['sd']:.2f} points (mean ± sd over outer folds, "
            f"range {o['min']:+.2f} to {o['max']:+.2f}) more in its inner CV than on the outer fold it never saw. "
            "That is tuning's optimism, a lower bound (inner fold models learn from 80 % of an outer one's pairs)")
    if cv_minus_test is not None:
        text += f"; this model's CV − fold models on test is {cv_minus_test:+.2f}"
    return text + "."
