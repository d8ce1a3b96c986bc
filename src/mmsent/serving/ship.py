"""The ``ship`` stage: the default model inside the package, and its model card.

The model is the configuration the ablation ends with (:func:`mmsent.evaluation.ablation.kept_model`: each
lever kept only when it beats the configuration before it by more than the corrected standard
error of their cross-validated fold differences); test is never read for it. Its first seed's
final model (trained on train + dev for the cross-validated epoch count) ships: no seed is picked
by a score, which would be selection on noise. Where ``ensemble.ship`` allows it (by default it does
not) and an ensemble of ``ensemble.candidates`` beats it under the same rule
(:mod:`mmsent.evaluation.ensemble`), that ensemble ships instead, as one checkpoint.
The test figures (mean ± std over seeds, the bootstrap interval, and the shipped model's own) go
into the card.
"""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import torch

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID, LABELS
from mmsent.evaluation.metrics import fmt, markdown_table
from mmsent.io import atomic_path, read_json, replace_block, write_text
from mmsent.paths import ASSETS, RunPaths
from mmsent.training.specs import describe_kept, model_specs, read_chain, train_config


def shipped_seed(params: Params) -> int:
    """The seed whose final model ships or is served: the first final seed, not a chosen one."""
    from mmsent.training.protocol import protocol_config

    return protocol_config(params).final_seeds[0]


def choose(params: Params, dataset: str = "single") -> tuple[str, int, pd.DataFrame]:
    from mmsent.evaluation.ablation import decide, keep_label, kept_model

    decided = decide(params, dataset)
    rows = [{"lever": r["lever"], "model": r["model"], "built on": r["built_on"] or "–",
             "CV weighted F1": f"{r['metrics']['cv']['weighted_f1']['mean']:.2f}",
             "corrected SE": f"{r['metrics']['cv']['weighted_f1']['se']:.2f}",
             "Δ vs kept": f"{r['verdict'].difference:+.2f}" if r["verdict"] else "– (the start)",
             "kept": keep_label(r)}
            for r in decided if r["metrics"] and "cv" in r["metrics"]]
    return kept_model(params, dataset, decided), shipped_seed(params), pd.DataFrame(rows)


def reads_ocr(m: dict) -> str:
    """The card's line on text inside images, from the encoders the model was trained with."""
    if "ocr" in m["encoders"]:
        return ("Text inside the image is read by RapidOCR (as in training: MVSA's 256-px images, small text is "
                "missed) and used as a further input; the answer returns it as `text_in_image`.")
    return "Text inside images (memes, screenshots) is not read: only the image's look counts."


def training_extras(params: Params, model: str) -> str:
    """The card's words on training beyond the train split's labels (pre-training, distillation)."""
    spec = model_specs(params)[model]
    notes = []
    if spec.pretrain:
        from mmsent.training.pretrain import PretrainConfig

        notes.append(f"its text branch first pre-trained for {PretrainConfig(**spec.pretrain).epochs} epoch(s) on "
                     "MVSA-Multiple's text labels (texts matching any MVSA-Single text removed)")
    if spec.augment:
        notes.append(f"every training pair also seen with its `{spec.augment}` text (features.augmentations; "
                     "train and dev pairs only, same label and image)")
    if spec.distill:
        from mmsent.training.specs import DistillConfig

        d = DistillConfig(**spec.distill)
        notes.append(f"trained against its own out-of-fold predictions on train as well as the labels "
                     f"(self-distillation, weight {d.weight:g}: {len(d.seeds)} teacher seed(s) × {d.folds} parts of "
                     "train; teachers saw train and dev only)")
    return "".join(f"; {n}" for n in notes)


def protocol_lines(params: Params, model: str) -> str:
    """The same configuration on MVSA-Single's other two protocols (the ``protocols`` stage)."""
    from mmsent.training.protocols import DESCRIBED, PROTOCOLS, load

    rows = [f"| {scheme}: {DESCRIBED[scheme]} | {fmt(m['accuracy'])} | {fmt(m['weighted_f1'])} | {m['seeds']} |"
            for scheme in PROTOCOLS if (m := load(params, model, scheme))]
    if not rows:
        return ""
    return ("## The same configuration on the other protocols (MVSA-Single)\n\n"
            "| protocol | accuracy | weighted F1 | runs |\n|---|---|---|---|\n" + "\n".join(rows) + "\n")


def ensemble_section(params: Params, model: str, chosen: dict | None, dataset: str = "single") -> str:
    """The card's words on the shipped ensemble: what it averages, its CV verdict and its test figures."""
    if not chosen:
        return ""
    from mmsent.evaluation.ensemble import test_metrics
    from mmsent.training.protocol import protocol_config

    t = test_metrics(params, chosen["members"], chosen["bag"], protocol_config(params).final_seeds, dataset)
    what = (f"the {protocol_config(params).n_fits} cross-validation fold models of each of "
            if chosen["bag"] else f"the seed-{shipped_seed(params)} final models of ")
    v = chosen["verdict"]
    return f"""## Shipped: an ensemble, one checkpoint

**{chosen['name']}**: the probabilities of {what}{', '.join(f'`{m}`' for m in chosen['members'])} averaged
(`mmsent.models.ensemble`; the encoders run once). Chosen by the same rule on the fold models' out-of-fold
probabilities: {v.difference:+.2f} ± {v.se:.2f} weighted F1 over the single configuration on repeat 0's folds.
On test (read after the choice): accuracy {fmt(t['accuracy'])}, weighted F1 {fmt(t['weighted_f1'])}
(95 % bootstrap interval {t['test_interval']['weighted_f1'][0]:.1f} – {t['test_interval']['weighted_f1'][1]:.1f}),
macro F1 {fmt(t['macro_f1'])}{' over its seeds' if not chosen['bag'] else ' (one ensemble: no seeds to vary)'}.
The figures below are the single configuration `{model}`, which the ensemble builds on; its other
protocols are those of the single configuration.

"""


def cross_fitted(params: Params, model: str, seed: int, dataset: str = "single") -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold probabilities of models trained as the shipped one was (repeat 0's folds of
    train + dev; each trains on the rest for the final models' epoch count, no inner split) and
    their labels: what the shipped model's temperature is fitted on."""
    from mmsent.data.mvsa import load_parts
    from mmsent.training.fitting import train_once
    from mmsent.training.inputs import cv_inputs
    from mmsent.training.loop import predict_proba, with_augment
    from mmsent.training.protocol import held_out

    spec = model_specs(params)[model]
    config, data = cv_inputs(params, spec, dataset, load_parts(params, dataset))
    epochs = read_json(RunPaths(params).record(model, dataset))["cv"]["epochs"]
    probs = np.zeros((len(data["train"]), len(LABELS)))
    for held in held_out(params, data["train"].ids, dataset, repeats=1):
        net, _ = train_once(params, spec, config, {**data, "train": with_augment(data, ~held), "dev": None}, seed,
                            train_overrides={"stop_after": epochs}, dataset=dataset)
        probs[held] = predict_proba(net, data["train"].subset(held))[0]
    return probs, data["train"].labels.numpy()


def calibrate(params: Params, model: str, seed: int, dataset: str = "single") -> dict:
    """The temperature fitted on cross-fitted out-of-fold probabilities (never test); ECE, NLL and
    Brier on test before and after for every final seed (mean ± std, 95 % t-interval over seeds),
    the fold models' temperature beside it for comparison, and the reliability figure (shipped seed)."""
    from scipy import stats as sps

    from mmsent.evaluation.calibration import fit_temperature, reliability_figure, scaled, scores
    from mmsent.evaluation.ensemble import load_folds, pool_gold
    from mmsent.evaluation.plots import save_figure
    from mmsent.evaluation.stats import load_predictions
    from mmsent.training.protocol import protocol_config

    oof, labels = cross_fitted(params, model, seed, dataset)
    t = fit_temperature(oof, labels)
    folds = load_folds(params, model, dataset)
    t_folds = fit_temperature(np.concatenate(list(folds["oof"])),
                              np.tile(pool_gold(params, dataset, folds["ids"]), len(folds["oof"])))
    preds = load_predictions(params, model, dataset)
    per_seed = {"before": [], "after": [], "fold models' T": []}
    for s in protocol_config(params).final_seeds:
        probs = preds[s][[f"p_{lab}" for lab in LABELS]].to_numpy(float)
        gold = preds[s]["gold"].map(LABEL2ID).to_numpy()
        for name, temperature in (("before", 1.0), ("after", t), ("fold models' T", t_folds)):
            sc = scores(scaled(probs, temperature), gold)
            sc["gap"] = 100 * float(scaled(probs, temperature).max(1).mean() - (probs.argmax(1) == gold).mean())
            per_seed[name].append(sc)
    summary = {}
    for name, runs in per_seed.items():
        summary[name] = {}
        for key in runs[0]:
            v = np.array([r[key] for r in runs])
            half = float(sps.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else 0.0
            summary[name][key] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                                  "low": float(v.mean() - half), "high": float(v.mean() + half)}
    test = preds[seed]
    probs = test[[f"p_{lab}" for lab in LABELS]].to_numpy(float)
    save_figure(reliability_figure(probs, scaled(probs, t), test["gold"].map(LABEL2ID).to_numpy()), params,
                "calibration_reliability")
    return {"temperature": round(t, 4), "fold_temperature": round(t_folds, 4),
            "fitted_on": f"{len(labels)} cross-fitted out-of-fold predictions of {model} (repeat 0's "
            f"{protocol_config(params).folds} folds of train + dev, each model trained as the shipped one was; never test)",
            "n_test": len(test), "seeds": len(protocol_config(params).final_seeds), "test": summary}


def by_modality(params: Params, model: str, dataset: str = "single") -> dict[str, dict]:
    """The configuration's final models on the test split with both modalities, text only and image
    only (the other side masked, as the Pipeline masks a missing one): accuracy and weighted F1,
    mean ± std over its final seeds, and per-class F1 with both."""
    import dataclasses

    from mmsent.data.mvsa import load_parts
    from mmsent.evaluation.metrics import aggregate, compute_metrics
    from mmsent.models.fusion import SOURCES
    from mmsent.training.inputs import build_inputs
    from mmsent.training.loop import TensorData, load_checkpoint, predict_proba
    from mmsent.training.protocol import protocol_config

    # only the test inputs matter: nothing to pre-train, augment or distil
    spec = dataclasses.replace(model_specs(params)[model], pretrain=None, augment=None, distill=None)
    test = build_inputs(params, spec, dataset, load_parts(params, dataset))[1]["test"]
    gold = test.labels.numpy()
    side = {m: "image" if SOURCES.get(m, m) in ("image", "ocr") else "text" for m in spec.inputs}
    views = {"text + image": set(), "text only": {"image"}, "image only": {"text"}}
    masked = {}
    for view, hidden in views.items():
        inputs = dict(test.inputs)
        for m, source in side.items():
            if source in hidden and f"{m}_mask" in inputs:
                inputs[f"{m}_mask"] = torch.zeros_like(inputs[f"{m}_mask"])
        masked[view] = TensorData(inputs, test.labels, test.ids)
    runs: dict[str, list] = {view: [] for view in views}
    for seed in protocol_config(params).final_seeds:  # each checkpoint loaded once, scored on every view
        net, _ = load_checkpoint(RunPaths(params).checkpoint(model, dataset, seed))
        for view, data in masked.items():
            runs[view].append(compute_metrics(gold, predict_proba(net, data)[0].argmax(1)))
    return {view: aggregate(scored) for view, scored in runs.items()}


def expectations(params: Params, model: str, views: dict[str, dict]) -> str:
    """What a user should expect of the shipped model (README and model card: the same generated text)."""
    m = views["text + image"]
    rows = "\n".join(f"| {view} | {fmt(v['accuracy'])} | {fmt(v['weighted_f1'])} |" for view, v in views.items())
    classes = ", ".join(f"{lab} {fmt(m['per_class_f1'][lab])}" for lab in LABELS)
    return f"""The shipped configuration (`{model}`) on the {params.data.split.upper()} test split of MVSA-Single,
mean ± std over its {m['seeds']} final seeds, measured by the `ship` stage:

| input | accuracy | weighted F1 |
|---|---|---|
{rows}

Per-class F1 with both inputs: {classes}. With one side missing, the model masks that side
(it was trained with modality dropout). Images are centre-cropped to a
square before encoding; text inside images is not read unless the model was trained with it;
English, 2015-era tweets."""


def calibration_summary(c: dict) -> str:
    """One sentence of what the temperature does on test (README and model card)."""
    after, before = c["test"]["after"], c["test"]["before"]
    lean = "over-confident" if after["gap"]["mean"] > 0 else "under-confident"
    return (f"Scores are temperature-scaled (T = {c['temperature']:.3f}, cross-fitted on train + dev): on test, over "
            f"{c['seeds']} final seeds, the expected calibration error goes from {before['ece']['mean']:.1f} % to "
            f"{after['ece']['mean']:.1f} % (95 % interval over seeds {after['ece']['low']:.1f} – {after['ece']['high']:.1f}), "
            f"and the model stays {lean} by {abs(after['gap']['mean']):.1f} points on average (mean score against "
            "accuracy); read a score as that close to a probability, no closer.")


def calibration_section(c: dict) -> str:
    rows = "\n".join(
        f"| {name} | {r['ece']['mean']:.2f} ± {r['ece']['std']:.2f} [{r['ece']['low']:.2f}, {r['ece']['high']:.2f}] | "
        f"{r['nll']['mean']:.3f} ± {r['nll']['std']:.3f} | {r['brier']['mean']:.3f} ± {r['brier']['std']:.3f} | "
        f"{r['gap']['mean']:+.2f} |" for name, r in (
            ("no scaling", c["test"]["before"]), (f"T = {c['temperature']:.3f} (cross-fitted; shipped)", c["test"]["after"]),
            (f"T = {c['fold_temperature']:.3f} (fitted on the CV fold models)", c["test"]["fold models' T"])))
    return f"""## Calibration

`score` and `probabilities` are temperature-scaled: the model's log-probabilities are divided by
T = {c['temperature']:.3f}, fitted on {c['fitted_on']}, and applied to the shipped final model.
It changes how confident the model is, never which label it picks. On the {c['n_test']} test pairs,
each of the {c['seeds']} final seeds scored alone (mean ± std over seeds, 95 % t-interval of the mean
ECE; ECE over 10 equal-width confidence bins; confidence gap: mean score minus accuracy, > 0 is
over-confident):

| probabilities | ECE (%) | NLL | Brier | confidence gap (points) |
|---|---|---|---|---|
{rows}

{calibration_summary(c)}

![reliability diagram](../../../reports/figures/calibration_reliability.png)

"""


def model_card(params: Params, model: str, seed: int, table: pd.DataFrame, dataset: str = "single",
               chosen: dict | None = None, calibration: dict | None = None, expect: str = "") -> str:
    m = read_json(RunPaths(params).record(model, dataset))
    own = next(s for s in m["per_seed"] if s["seed"] == seed)
    per_class = "\n".join(f"| {lab} | {fmt(m['per_class_f1'][lab])} | {own['per_class'][lab]['f1']:.2f} |" for lab in LABELS)
    return f"""# Model card: mmsent default model

Generated by the `ship` stage (`dvc repro`); do not edit by hand.

- **Model**: {f"an ensemble ({chosen['name']}) built on " if chosen else ""}`{model}` ({m['family']}), seed {seed}; encoders (frozen, offline): {', '.join(f'{k}: `{v}`' for k, v in m['encoders'].items())}.
- **Training data**: MVSA-Single, {params.data.split} split, train + dev parts (4,061 pairs), {m['cv']['epochs']} epochs: the median best epoch of its cross-validation fold models{training_extras(params, model)}.
- **Labels**: positive, neutral, negative (per-pair label from the standard cleaning rule).
- **What it is** (forward selection: the declared start, then each lever that passed the keep rule): {describe_kept(read_chain(params))}.
- **Levers chosen by cross-validation, never on test** ({m['cv']['protocol']}): the ablation adds one lever at a time to the configuration kept so far and keeps it only when it beats that configuration by more than the corrected standard error of their paired fold differences; the shipped seed is the first, not a chosen one. Cross-validated weighted F1 of each configuration (held-out folds, each fold model stopped on an inner split of its own training part; %):

{markdown_table(table)}

{ensemble_section(params, model, chosen, dataset)}## Test figures (MVSA-Single test split, 450 pairs, text + image)

| metric | {model}: mean ± std over {m['seeds']} seeds | 95 % bootstrap interval (seed mean) | shipped seed {seed} |
|---|---|---|---|
| accuracy | {fmt(m['accuracy'])} | {m['test_interval']['accuracy'][0]:.1f} – {m['test_interval']['accuracy'][1]:.1f} | {own['accuracy']:.2f} |
| weighted F1 | {fmt(m['weighted_f1'])} | {m['test_interval']['weighted_f1'][0]:.1f} – {m['test_interval']['weighted_f1'][1]:.1f} | {own['weighted_f1']:.2f} |
| macro F1 | {fmt(m['macro_f1'])} | – | {own['macro_f1']:.2f} |

| class | F1 mean ± std | shipped seed |
|---|---|---|
{per_class}

{protocol_lines(params, model)}
{calibration_section(calibration) if calibration else ""}{f"## What to expect{chr(10)}{chr(10)}{expect}{chr(10)}{chr(10)}" if expect else ""}## Intended use and limits

- For research and for scoring English-language tweets with an attached image, in the style of MVSA (2015-era Twitter).
- A text-only or image-only input works: the model masks the absent modality and was trained with
  modality dropout, but expect lower accuracy than with both (see `reports/results.md`).
- Neutral is the weakest class (few training examples). Sarcasm and non-English text are not understood.
- {reads_ocr(m)}
- Not for decisions about individuals. MVSA labels come from one annotator per pair.
"""


def run(params: Params, dataset: str = "single") -> dict:
    from mmsent.evaluation import ensemble

    model, seed, table = choose(params, dataset=dataset)
    decided = ensemble.decide(params, model, dataset)
    chosen = ensemble.shipped(decided)
    assets = params.path(ASSETS)
    calibration = calibrate(params, model, seed, dataset)
    expect = expectations(params, model, by_modality(params, model, dataset)) + "\n\n" + calibration_summary(calibration)
    write_text(params.path("reports/tables/readme_expect.md"), expect + "\n")
    if params.path("README.md").is_file() and "<!-- expect:start -->" in params.path("README.md").read_text("utf-8"):
        replace_block(params.path("README.md"), "expect", expect)
    with atomic_path(assets / "default_model.pt") as tmp:
        if chosen:
            ensemble.build_checkpoint(params, chosen["members"], chosen["bag"], seed, tmp, dataset,
                                      model_name=chosen["name"], member_models=chosen["members"],
                                      bagged=chosen["bag"])
        else:
            shutil.copyfile(RunPaths(params).checkpoint(model, dataset, seed), tmp)
        payload = torch.load(tmp, map_location="cpu", weights_only=True)
        # what `mmsent fit` needs to train this head's configuration on someone else's pairs
        train = dataclasses.asdict(train_config(params, model_specs(params)[model], dataset))
        payload.update(temperature=calibration["temperature"], calibration=calibration["fitted_on"], train_config=train)
        torch.save(payload, tmp)
    write_text(assets / "MODEL_CARD.md", model_card(params, model, seed, table, dataset, chosen, calibration, expect))
    return {"model": model, "seed": seed, "ensemble": chosen["name"] if chosen else None}
