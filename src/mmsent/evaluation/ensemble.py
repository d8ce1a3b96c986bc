"""Ensembles chosen by cross-validation and shipped as one checkpoint.

Every cross-validated model leaves its fold models' out-of-fold probabilities
(``data/predictions/<model>/single/folds.npz``). An ensemble is scored on them, never on test:

* **bagged** (``bag: true``): a configuration's fold models averaged. Each train + dev pair is
  held out once per repeat, so averaging a pair's out-of-fold probabilities over the repeats
  scores a bag of ``repeats`` models none of which saw it (repeated bagging, as AutoGluon scores
  its bags). The shipped bag averages all fold models, more than the score counts: the CV score
  is the conservative one.
* **families**: several configurations averaged (their fold models, or refits when not bagged).

Fold scores are read on repeat 0's folds: the single configuration's is its repeat-0 fold
model's held-out weighted F1 (the ``cv.per_fold`` figure), an ensemble's is its averaged
probabilities on the same pairs. ``ensemble.candidates`` are walked in order from the single
configuration the ablation keeps, each scored against the incumbent with the ablation's rule
(:func:`mmsent.training.protocol.beats`: more than the corrected SE of the paired fold differences).

Whether that rule may replace the single configuration by an ensemble is declared in
``ensemble.ship``. The default is no: the ensembles are reported, never chosen. Their CV gains sat
near one corrected SE, where a keep rule follows the rerun noise rather than the ensemble (a
simulated other machine kept what this one dropped); a declared choice cannot flip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import f1_score

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.data.mvsa import load_parts
from mmsent.evaluation.metrics import aggregate, bootstrap_interval, compute_metrics
from mmsent.evaluation.stats import load_predictions
from mmsent.features.encoders import COLUMNS_OF
from mmsent.io import read_json
from mmsent.models.registry import input_width
from mmsent.paths import RunPaths
from mmsent.training.loop import load_checkpoint, save_checkpoint
from mmsent.training.protocol import beats, held_out, pool, protocol_config

KEPT = "kept"  # in ensemble.candidates' members: the configuration the ablation keeps


def load_folds(params: Params, model: str, dataset: str = "single") -> dict[str, np.ndarray]:
    path = RunPaths(params).predictions(model, dataset) / "folds.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {model} has no fold predictions (not cross-validated, or "
                                "trained before they were kept); rerun its stage")
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def candidates(params: Params, kept: str) -> list[dict[str, Any]]:
    """``ensemble.candidates`` with ``kept`` resolved (members deduplicated, in order)."""
    out = []
    for c in params.ensemble.candidates:
        members = list(dict.fromkeys(kept if m == KEPT else m for m in c["members"]))
        out.append({"name": c["name"], "members": members, "bag": bool(c.get("bag", False))})
    return out


def averaged(runs: list[dict[str, np.ndarray]], bag: bool) -> np.ndarray:
    """Out-of-fold probabilities (pool pairs, labels) averaged over members (and repeats when bagged)."""
    return np.mean([r["oof"].mean(0) if bag else r["oof"][0] for r in runs], axis=0)


def fold_scores(params: Params, members: list[str], bag: bool, dataset: str = "single") -> np.ndarray:
    """Weighted F1 (%) on each of repeat 0's held-out folds of the members' averaged probabilities."""
    runs = [load_folds(params, m, dataset) for m in members]
    ids = runs[0]["ids"]
    if any(not np.array_equal(r["ids"], ids) for r in runs):
        raise ValueError(f"the fold predictions of {members} are over different pairs; rerun their stages")
    gold = pool_gold(params, dataset, ids)
    probs = averaged(runs, bag)
    masks = held_out(params, list(ids), dataset, repeats=1)
    return np.array([100 * f1_score(gold[m], probs[m].argmax(1), average="weighted", zero_division=0) for m in masks])


def pool_gold(params: Params, dataset: str, ids: np.ndarray) -> np.ndarray:
    frame = pool(load_parts(params, dataset)).assign(id=lambda d: d["id"].astype(str)).set_index("id")
    return frame.loc[list(ids), "label_id"].astype(int).to_numpy()


def may_ship(params: Params) -> bool:
    """``ensemble.ship``: whether the keep rule may replace the single configuration by an ensemble."""
    return bool(params.ensemble.ship)


def decide(params: Params, kept: str, dataset: str = "single") -> list[dict[str, Any]]:
    """Walk the candidates from the single kept configuration; one record each (scores, verdict, kept).
    Without ``ensemble.ship`` each is scored against the single configuration and none is kept."""
    ratio = protocol_config(params).test_train_ratio
    incumbent = {"name": kept, "members": [kept], "bag": False}
    incumbent["scores"] = fold_scores(params, [kept], False, dataset)
    out = []
    for c in candidates(params, kept):
        c["scores"] = fold_scores(params, c["members"], c["bag"], dataset)
        c["verdict"] = beats(c["scores"], incumbent["scores"], ratio)
        c["kept"] = c["verdict"].better and may_ship(params)
        if c["kept"]:
            incumbent = c
        c["incumbent"] = incumbent["name"]
        out.append(c)
    return out


def shipped(decided: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ensemble the walk ends with, or None when the single configuration stays."""
    kept = [c for c in decided if c["kept"]]
    return kept[-1] if kept else None


def test_metrics(params: Params, members: list[str], bag: bool, seeds: list[int],
                 dataset: str = "single") -> dict[str, Any]:
    """Test figures of an ensemble (read after it is chosen): a bag is one model (its fold models
    averaged); a family of refits is scored once per final seed, each seed's members averaged."""
    if bag:
        runs = [load_folds(params, m, dataset) for m in members]
        probs = [np.mean([r["test"].mean(0) for r in runs], axis=0)]
        test = load_parts(params, dataset)["test"]
        if list(test["id"].astype(str)) != list(runs[0]["test_ids"]):
            raise ValueError("the fold predictions list other test pairs than the prepared data; rerun their stages")
        gold = test["label_id"].astype(int).to_numpy()
    else:
        preds = {m: load_predictions(params, m, dataset) for m in members}
        frame = preds[members[0]][seeds[0]]
        columns = [c for c in frame.columns if c.startswith("p_")]
        probs = [np.mean([preds[m][s][columns].to_numpy() for m in members], axis=0) for s in seeds]
        gold = frame["gold"].map(LABEL2ID).to_numpy()
    predicted = np.stack([p.argmax(1) for p in probs])
    out = aggregate([{"seed": i, **compute_metrics(gold, p)} for i, p in enumerate(predicted)])
    out["test_interval"] = bootstrap_interval(gold, predicted)
    return out


def lines(params: Params, decided: list[dict[str, Any]], single: str) -> list[str]:
    """The ablation report's section on ensembles."""
    if not decided:
        return []
    cfg = protocol_config(params)
    refit = read_json(RunPaths(params).record(single, "single"))
    base = np.array(refit["cv"]["per_fold"]["weighted_f1"][: cfg.folds])  # its repeat-0 fold models
    choosing = may_ship(params)
    versus = "Δ vs kept (± SE)" if choosing else "Δ vs the single configuration (± SE)"
    table = [{"ensemble": "the single configuration (CV: its fold models; test: its refits, mean of seeds)",
              "members": single, "CV wF1, repeat-0 folds": f"{base.mean():.2f}", versus: "–",
              **({"kept (CV)": "yes"} if choosing else {}),
              "test acc / wF1": f"{refit['accuracy']['mean']:.2f} / {refit['weighted_f1']['mean']:.2f}"}]
    for c in decided:
        t = test_metrics(params, c["members"], c["bag"], cfg.final_seeds)
        table.append({"ensemble": c["name"], "members": ", ".join(c["members"]) + (" (fold models)" if c["bag"] else ""),
                      "CV wF1, repeat-0 folds": f"{c['scores'].mean():.2f}",
                      versus: f"{c['verdict'].difference:+.2f} ± {c['verdict'].se:.2f}",
                      **({"kept (CV)": "yes" if c["kept"] else "no"} if choosing else {}),
                      "test acc / wF1": f"{t['accuracy']['mean']:.2f} / {t['weighted_f1']['mean']:.2f}"})
    chosen = shipped(decided)
    if not choosing:
        verdict = (f"Reported, not chosen: `ensemble.ship` is false in params.yaml, so `{single}` ships alone "
                   "whatever these differences are. It was declared after the perturbation check found the keep "
                   "rule following rerun noise on these ensembles (docs/levers.md, reports/reproducibility.md); set "
                   "`ensemble.ship: true` to let the rule choose.")
    elif chosen:
        verdict = f"`{chosen['name']}` is kept and ships as one checkpoint (`mmsent.models.ensemble`)."
    else:
        verdict = f"No ensemble beats the single configuration by more than its noise: `{single}` ships alone."
    title = "chosen by cross-validation" if choosing else "scored by cross-validation, not shipped"
    return [f"## Ensembles, {title} (mmsent.evaluation.ensemble)", "",
            "Scored on the fold models' out-of-fold probabilities, on repeat 0's folds; a bag's score averages a "
            "pair's repeats (2 fold models that never saw it), a bag's test figure averages all its fold models. "
            "Test figures are read after the CV scores.", "", pd.DataFrame(table).to_markdown(index=False), "",
            verdict, ""]


# --------------------------------------------------------------------------- one checkpoint


def _member_files(params: Params, model: str, bag: bool, seed: int, dataset: str) -> list[Path]:
    folder = RunPaths(params).models(model, dataset)
    if not bag:
        return [folder / f"seed{seed}.pt"]
    files = [folder / f"fold{j}.pt" for j in range(protocol_config(params).n_fits)]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"fold models missing for {model}: {missing[0]} (rerun its stage)")
    return files


def shared_encoders(encoders: list[dict[str, str]]) -> tuple[dict[str, str], list[dict[str, list]]]:
    """One encoder per modality for all members, and each member's column cut of it: a member that
    reads ``efficientnet_lite0`` beside one reading ``efficientnet_lite0_stages`` takes its columns."""
    union: dict[str, str] = {}
    for modality in dict.fromkeys(m for e in encoders for m in e):
        names = {e[modality] for e in encoders if modality in e}
        wide = [n for n in names if all(o == n or COLUMNS_OF.get(o, ("",))[0] == n for o in names)]
        if not wide:
            raise ValueError(f"the members read different {modality} encoders ({sorted(names)}); an ensemble "
                             "runs each modality's encoder once")
        union[modality] = wide[0]
    cuts = []
    for e in encoders:
        cut = {}
        for modality, name in e.items():
            if name != union[modality]:
                columns = COLUMNS_OF[name][1]
                cut[modality] = [columns.start, columns.stop]
        cuts.append(cut)
    return union, cuts


def build_checkpoint(params: Params, members: list[str], bag: bool, seed: int, path: Path,
                     dataset: str = "single", **meta: Any) -> Path:
    """Write the ensemble as one checkpoint the Pipeline loads like any other."""
    from mmsent.models import build_model

    loaded = [load_checkpoint(f) for m in members for f in _member_files(params, m, bag, seed, dataset)]
    payloads = [p for _, p in loaded]
    for key in ("text_config", "image_size", "feature_backend"):
        if len({repr(p.get(key)) for p in payloads}) > 1:
            raise ValueError(f"the members were trained on features made differently ({key}); cannot share encoders")
    union, cuts = shared_encoders([p["encoders"] for p in payloads])
    dims = {}
    for (model, payload), cut in zip(loaded, cuts):
        for modality in payload["encoders"]:
            if modality not in cut:
                dims[modality] = input_width(payload["config"], modality)
    config = {"members": [{"family": p["family"], "config": p["config"], "columns": cut}
                          for p, cut in zip(payloads, cuts)], "dims": dims}
    model = build_model("ensemble", config)
    for member, (trained, _) in zip(model.members, loaded):
        member.load_state_dict(trained.state_dict())
    first = payloads[0]
    return save_checkpoint(path, model, "ensemble", encoders=union, dataset=dataset,
                           text_config=first["text_config"], image_size=first["image_size"],
                           feature_backend=first["feature_backend"],
                           **{k: first[k] for k in ("ocr_config",) if k in first}, **meta)

