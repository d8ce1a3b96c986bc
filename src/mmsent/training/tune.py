"""Optuna studies over the one training loop, scored by cross-validation on train + dev.

Each trial is scored on the folds of the protocol (:mod:`mmsent.training.protocol`; ``tuning.repeats``
of its repeats: one by default), never on test. The trials themselves do not depend on the
scores: a seeded quasi-random (Sobol) sampler and no pruner, so a 1e-6 change in the features
can change a trial's score but not which trials are run. The value written is not the top
score but the simplest trial (fewest parameters, then the higher mean) whose mean fold score is
within one corrected standard error of the best one's (the one-standard-error rule).
Search spaces and trial counts come from ``params.yaml`` (``tuning``). Storage: an SQLite file under ``data/`` by
default, or any Optuna RDB URL (e.g. ``postgresql://...``) so workers on many machines
share one study; a study resumes from its storage. Workers send heartbeats: a trial whose
worker died (killed mid-trial) is marked failed after ``tuning.grace_seconds`` and its
parameters are tried again by the next worker. Each worker has its own sampler seed
(``seed + worker``) so parallel workers do not propose the same trials. The best values go
to ``params/tuned/best_<model>.yaml``, which the training stages merge into the model's options.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from mmsent.config import Params
from mmsent.data.mvsa import load_parts
from mmsent.io import write_text
from mmsent.parallel import run_jobs
from mmsent.training.fitting import expected_seconds, run_fold, train_workers
from mmsent.training.inputs import cv_inputs
from mmsent.training.protocol import corrected_se, held_out, protocol_config
from mmsent.training.specs import best_path, model_specs

TRAIN_KEYS = {"lr", "weight_decay", "batch_size", "label_smoothing", "class_weights", "epochs", "patience"}


def tuning_config(params: Params):
    return params.tuning


def storage_url(params: Params) -> str:
    url = tuning_config(params).storage
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):  # relative → project path
        path = params.path(url.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    return url


def suggest(trial: optuna.Trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out = {}
    for name, spec in space.items():
        kind = spec["type"]
        if kind == "float":
            out[name] = trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "int":
            out[name] = trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            # list-valued choices (layer widths) are stored as JSON strings: Optuna's storage
            # only keeps scalars, and a list would come back as a different value space
            choices = [json.dumps(c) if isinstance(c, list) else c for c in spec["choices"]]
            value = trial.suggest_categorical(name, choices)
            out[name] = json.loads(value) if isinstance(value, str) and value.startswith("[") else value
        else:
            raise ValueError(f"unknown search-space type {kind!r} for {name}")
    return out


def split_values(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sampled values → (model options, train overrides)."""
    values = {k: json.loads(v) if isinstance(v, str) and v.startswith("[") else v for k, v in values.items()}
    return ({k: v for k, v in values.items() if k not in TRAIN_KEYS},
            {k: v for k, v in values.items() if k in TRAIN_KEYS})


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def storage(params: Params) -> optuna.storages.BaseStorage:
    """The study's storage: RDB (SQLite, PostgreSQL, MySQL) with worker heartbeats."""
    cfg = tuning_config(params)
    url = storage_url(params)
    if not url.startswith(("sqlite:", "postgresql", "mysql")):
        raise ValueError(f"tuning.storage must be an Optuna RDB URL (sqlite:///, postgresql://, mysql://), not {url!r}")
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}  # concurrent local workers wait
    import sqlalchemy.exc

    def open_storage() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeats are marked experimental in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine, heartbeat_interval=int(cfg.heartbeat_seconds),
                grace_period=int(cfg.grace_seconds),
                heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1))

    for attempt in range(5):
        try:
            return open_storage()
        except sqlalchemy.exc.SQLAlchemyError:
            # workers started together on a new database race to create its tables ("table already
            # exists"); creating the storage is idempotent, so the losers simply try again
            time.sleep(0.2 * (attempt + 1))
    return open_storage()  # the sixth try raises whatever it meets


def study_name(params: Params, model: str) -> str:
    """``<model>-<dataset>-<hash>``: the hash covers what a trial's score depends on besides its
    values (search space, protocol, trial settings, the model's spec), so a study run under other
    settings is never resumed as if it were this one."""
    cfg = tuning_config(params)
    spec = model_specs(params, chained=False)[model]
    train = {**params.train.loop, "seeds": params.train.seeds, "workers": params.train.workers}
    what = {"space": cfg.spaces[model], "protocol": dataclasses.asdict(params.protocol), "repeats": cfg.repeats,
            "trial_train": cfg.trial_train, "train": train, "seed": cfg.seed,
            "spec": {k: v for k, v in dataclasses.asdict(spec).items() if k not in ("options", "train")},
            "raw": params.models.get(model), "estimator": "inner-split early stopping"}
    digest = hashlib.sha256(json.dumps(what, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{model}-{cfg.dataset}-{digest}"


def load_summary(params: Params) -> dict[str, Any]:
    """What the stage last chose, from ``params/tuned/best_<model>.yaml`` (nothing is tuned or written)."""
    out = {}
    for model in tuning_config(params).models:
        path = best_path(params, model)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run the tune stage (`dvc repro tune`) first")
        best = yaml.safe_load(path.read_text(encoding="utf-8"))
        out[model] = {"chosen_cv_weighted_f1": best["cv_weighted_f1"], "best_cv_weighted_f1": best["best_cv_weighted_f1"],
                      "one_se": best["one_se"], "chosen_params": {**best["options"], **best["train"]},
                      "trials": best["trials"]}
    return out


def study(params: Params, model: str, worker: int = 0) -> optuna.Study:
    cfg = tuning_config(params)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created / reused" lines in stage logs
    with warnings.catch_warnings():  # QMC falls back to a seeded random sampler for categorical values
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=int(cfg.seed) + worker,
                                             warn_independent_sampling=False)
    return optuna.create_study(
        study_name=study_name(params, model), storage=storage(params), direction="maximize",
        sampler=sampler, pruner=optuna.pruners.NopPruner(), load_if_exists=True)


def trial_count(params: Params, model: str) -> int:
    """``tuning.n_trials``, or the model's own count in ``tuning.trials`` (slow heads get fewer)."""
    return tuning_config(params).n_trials_for(model)


def trial_fold(params: Params, model: str, values: dict[str, Any], fold: int) -> dict[str, Any]:
    """One fold model of one trial, trained on the trial's ``values`` (a job of its own, so the
    stage can spread every study's fold models over the cores)."""
    spec, dataset, config, data, train = trial_inputs(params, model, values)
    mask = held_out(params, data["train"].ids, dataset, int(tuning_config(params).repeats))[fold]
    return run_fold(params, spec, dataset, config, data, mask, fold, train)


def trial_inputs(params: Params, model: str, values: dict[str, Any]):
    """What a fold model of a trial with ``values`` trains from: (spec, dataset, config, train + dev
    data without test, train settings: tuning's ``trial_train`` under the trial's own)."""
    cfg = tuning_config(params)
    spec = model_specs(params)[model]
    dataset = cfg.dataset
    options, overrides = split_values(values)
    config, data = cv_inputs(params, spec, dataset, load_parts(params, dataset), options)
    data.pop("test")  # never read by a trial
    return spec, dataset, config, data, {**cfg.trial_train, **overrides}


def fold_count(params: Params) -> int:
    return protocol_config(params).folds * int(tuning_config(params).repeats)


def record(trial: optuna.Trial, folds: list[dict[str, Any]]) -> float:
    """A trial's score: the mean of its fold models' held-out weighted F1 (each kept on the trial)."""
    scores = [f["weighted_f1"] for f in folds]
    trial.set_user_attr("fold_scores", scores)
    trial.set_user_attr("parameters", folds[0]["parameters"])
    return float(sum(scores) / len(scores))


def remaining_trials(params: Params, model: str, st: optuna.Study, n_trials: int | None = None) -> tuple[int, int]:
    """(the finished trials the study should reach, how many it still needs)."""
    total = int(n_trials if n_trials is not None else trial_count(params, model))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(st)  # trials of dead workers: failed, queued again
    return total, total - len(st.get_trials(deepcopy=False, states=FINISHED))


def tune_model(params: Params, model: str, n_trials: int | None = None, worker: int = 0) -> optuna.Study:
    """Run (or resume) the study for ``model`` until it has ``n_trials`` finished trials.

    Many processes (``worker`` 0, 1, ...) may run this at once on one storage: each stops when
    the study as a whole has ``n_trials`` finished trials (in-flight trials may add a few)."""
    space = tuning_config(params).spaces[model]
    st = study(params, model, worker)

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        return record(trial, [trial_fold(params, model, values, j) for j in range(fold_count(params))])

    total, remaining = remaining_trials(params, model, st, n_trials)
    if remaining > 0:
        st.optimize(objective, n_trials=remaining, gc_after_trial=False,
                    callbacks=[optuna.study.MaxTrialsCallback(total, states=FINISHED)])
    return st


def tune_pooled(params: Params, models: list[str], workers: int) -> dict[str, optuna.Study]:
    """Every study of the stage to its trial count, every trial's fold models in one pool of jobs
    (the slowest model's first), so no core waits for the slowest study to finish alone.

    The trials are the ones :func:`tune_model` would run: the Sobol sampler does not read scores,
    but it takes its search space from the first completed trial, so each study's first trial is
    scored before the rest are asked; each study asks in trial order from its own sampler."""
    studies = {m: study(params, m) for m in models}
    dataset = tuning_config(params).dataset
    cost = {m: expected_seconds(params, m, dataset) for m in models}
    for first in (True, False):
        asked = []
        for m, st in studies.items():
            total, remaining = remaining_trials(params, m, st)
            if first and remaining < total:
                continue  # resumed: its search space is known already
            for _ in range(min(remaining, 1) if first else remaining):
                with warnings.catch_warnings():  # Optuna's heartbeats serve optimize()'s own workers only
                    warnings.simplefilter("ignore", UserWarning)
                    trial = st.ask()
                asked.append((m, trial, suggest(trial, tuning_config(params).spaces[m])))
        jobs = sorted(((m, trial, values, j) for m, trial, values in asked for j in range(fold_count(params))),
                      key=lambda job: -cost[job[0]])  # stable: a trial's folds stay in order
        done = run_jobs(trial_fold, [(params, m, values, j) for m, _, values, j in jobs], workers)
        for m, trial, _ in asked:
            folds = [out for (jm, jt, _, _), out in zip(jobs, done) if jm == m and jt is trial]
            studies[m].tell(trial, record(trial, folds))
    return studies


def choose_trial(st: optuna.Study, ratio: float) -> tuple[optuna.trial.FrozenTrial, float]:
    """The one-standard-error rule: the simplest completed trial (fewest parameters, then the
    higher mean) whose mean fold score is within one corrected standard error of the best mean.
    Returns the trial and that standard error."""
    done = [t for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "fold_scores" in t.user_attrs]
    if not done:
        raise ValueError(f"study {st.study_name} has no completed cross-validated trial")
    best = max(done, key=lambda t: (t.value, -t.number))
    se = corrected_se(best.user_attrs["fold_scores"], ratio)
    within = [t for t in done if t.value >= best.value - se]
    # among equally small trials the better score, not the earlier trial: the trial order is arbitrary,
    # and a tie-break on it flipped the choice when the features moved by 1e-5 (reports/reproducibility.md)
    return min(within, key=lambda t: (t.user_attrs["parameters"], -t.value, t.number)), se


def write_best(params: Params, model: str, st: optuna.Study) -> Path:
    chosen, se = choose_trial(st, protocol_config(params).test_train_ratio)
    options, overrides = split_values(chosen.params)
    body = {"model": model, "study": st.study_name, "trial": chosen.number,
            "cv_weighted_f1": round(chosen.value, 2), "best_cv_weighted_f1": round(st.best_value, 2),
            "one_se": round(se, 2), "parameters": chosen.user_attrs["parameters"],
            "chosen_by": "fewest parameters (then the higher mean) within one corrected SE of the best mean fold score",
            "trials": len(st.trials), "options": options, "train": overrides}
    return write_text(best_path(params, model), "# written by the tune stage; read by the training stages\n"
                      + yaml.safe_dump(body, sort_keys=True))


def history_figure(st: optuna.Study, ratio: float, title: str | None = None):
    """Each completed trial's CV weighted F1 in trial order, the running best, the band within
    one corrected SE of the best, and the trial :func:`choose_trial` writes (a star, labelled).
    Drawn here rather than by Optuna so the axis says what the value is: trial values are the
    mean fold weighted F1 in percent already (``run_fold``), so they are not rescaled. ``title``
    names the model (the study's name carries a hash of its settings, which no reader needs)."""
    import numpy as np
    import seaborn as sns

    from mmsent.evaluation.plots import figure

    chosen, se = choose_trial(st, ratio)
    done = [t for t in st.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "fold_scores" in t.user_attrs]  # the trials choose_trial reads
    best = max(t.value for t in done)
    numbers, values = np.array([t.number for t in done]), np.array([t.value for t in done])
    colours = sns.color_palette("colorblind")
    fig, ax = figure(height=3.3)
    ax.axhspan(best - se, best, color=colours[0], alpha=0.12, lw=0, label="within one corrected SE of the best")
    ax.step(numbers, np.maximum.accumulate(values), where="post", color=colours[0], lw=1, label="best so far")
    ax.scatter(numbers, values, s=18, color="0.35", zorder=3, label="trial (mean over folds)")
    ax.scatter([chosen.number], [chosen.value], marker="*", s=180, color=colours[3], edgecolor="black", lw=0.5,
               zorder=4, label=f"chosen: trial {chosen.number}, {chosen.value:.2f} (simplest within one SE)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set(xlabel="trial", ylabel="CV weighted F1 (%)", title=f"{title or st.study_name}: {len(done)} completed trials")
    fig.legend(loc="outside lower center", ncol=2, frameon=False, fontsize="small")
    return fig


def figures(params: Params, model: str, st: optuna.Study) -> dict[str, Path]:
    """The tuning history (:func:`history_figure`), saved as ``tuning_<model>_history``. Optuna's
    parallel-coordinate and importance plots are not drawn: on 6-12 trials they show noise."""
    from mmsent.evaluation.plots import save_figure

    fig = history_figure(st, protocol_config(params).test_train_ratio, title=f"{model}, MVSA-Single")
    return {"history": save_figure(fig, params, f"tuning/{model}_history")}


def run(params: Params) -> dict[str, Any]:
    """The stage: every model in ``tuning.models``; writes the best-params files and figures.

    Every trial's fold models are jobs of one pool (:func:`tune_pooled`), one process and one
    thread each (``train.workers``); which trials run and their scores do not depend on how many
    ran at once."""
    cfg = tuning_config(params)
    models = list(cfg.models)
    workers = train_workers(params, len(models) * fold_count(params),  # the first round's jobs
                            params.train.loop.get("device", "auto"))
    studies = tune_pooled(params, models, workers)
    summary = {}
    for model in models:
        st = studies[model]
        write_best(params, model, st)
        figures(params, model, st)
        chosen, se = choose_trial(st, protocol_config(params).test_train_ratio)
        summary[model] = {"chosen_cv_weighted_f1": chosen.value, "best_cv_weighted_f1": st.best_value,
                          "one_se": se, "chosen_params": chosen.params, "trials": len(st.trials)}
    return summary
