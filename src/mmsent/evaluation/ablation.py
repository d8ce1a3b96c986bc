"""``reports/ablation.md``: forward selection, one row per accuracy lever.

The first row that names a model is the declared start (the thesis's attention fusion): a fixed
choice, so no rerun's noise can flip it. It was written into params.yaml (commit 9da43db) after
every configuration's scores existed, so it is post hoc, and the reports say so. A ``reference`` row (the source system's
concat head) is scored against the configuration kept so far and never replaces it; its test
comparison is a declared question of REPORT.md. Each lever row is the configuration kept so far with
exactly that one lever added (never a rejected row), so its difference is the lever's own. It is
*kept* only when its cross-validated weighted F1 beats the configuration kept so far by more than
the corrected standard error of their paired fold differences
(:func:`mmsent.training.protocol.beats`); otherwise the simpler configuration stays, and what ships
carries only levers that passed. Test is never read for the decision. Test figures are shown for
every row (mean ± std over seeds and a bootstrap interval over test pairs), plus seed ensembles in
their own rows and the final configuration on the de-duplicated test split (test pairs whose image
or text also occurs in train removed).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.data.mvsa import load_prepared
from mmsent.evaluation.ensemble import decide as ensemble_decide, lines as ensemble_lines
from mmsent.evaluation.metrics import aggregate, compute_metrics, fmt, fmt_interval, markdown_table, save_frame
from mmsent.evaluation.stats import DECLARED, load_predictions
from mmsent.io import read_json, write_text
from mmsent.models.registry import family
from mmsent.paths import ABLATION_GROUP, PREPARED_DIR, RunPaths
from mmsent.training.protocol import beats, protocol_config
from mmsent.training.specs import chain_path, derive, describe_kept, model_specs, read_chain, spec_from


def ensemble_metrics(params: Params, models: str | list[str], dataset: str = "single") -> dict[str, Any]:
    """Metrics of an ensemble: probabilities averaged over every seed of each model in ``models``
    (one model: its seed ensemble; several: an ensemble of model families)."""
    frames = [f for model in ([models] if isinstance(models, str) else models)
              for f in load_predictions(params, model, dataset).values()]
    ids = frames[0]["id"].astype(str).tolist()
    if any(f["id"].astype(str).tolist() != ids for f in frames):
        raise ValueError(f"predictions of {models} are not on the same test pairs in the same order")
    cols = [c for c in frames[0].columns if c.startswith("p_")]
    probs = np.mean([f[cols].to_numpy() for f in frames], axis=0)
    gold = frames[0]["gold"].map(LABEL2ID).to_numpy()
    order = [LABEL2ID[c.removeprefix("p_")] for c in cols]
    return compute_metrics(gold, np.asarray(order)[probs.argmax(1)])


def has_predictions(params: Params, model: str, dataset: str = "single") -> bool:
    return any(RunPaths(params).predictions(model, dataset).glob("seed*.csv"))


def cpu_seconds_per_seed(metrics: dict[str, Any]) -> float:
    """A seed's training time plus its share of work done once per model (distillation teachers)."""
    return metrics["train_seconds_per_seed"] + metrics.get("teacher_cpu_seconds", 0.0) / max(1, metrics["seeds"])


def dedup_metrics(params: Params, model: str, dataset: str = "single") -> dict[str, Any] | None:
    """Mean ± std over seeds on the test pairs that have no duplicate in train (None if none remain)."""
    table = load_prepared(params.path(PREPARED_DIR) / f"{dataset}.parquet", "test")
    clean_ids = set(table.loc[~table["leak"], "id"].astype(str))
    if not clean_ids:
        return None
    per_seed = []
    for frame in load_predictions(params, model, dataset).values():
        kept = frame[frame["id"].astype(str).isin(clean_ids)]
        per_seed.append(compute_metrics(kept["gold"].map(LABEL2ID), kept["predicted"].map(LABEL2ID)))
    out = aggregate(per_seed)
    out["n"] = per_seed[0]["n"]
    return out


def cv_text(m: dict[str, Any]) -> str:
    return f"{m['cv']['weighted_f1']['mean']:.2f} ± {m['cv']['weighted_f1']['se']:.2f}"


def decide(params: Params, dataset: str = "single", train=None) -> list[dict[str, Any]]:
    """Walk ``ablation.rows`` in order: forward selection with the noise-aware rule. A row that
    ``adds`` a lever is the configuration kept so far with that one lever on top (never a rejected
    row), so its difference is that lever's own; a row without ``adds`` names a model of
    ``params.yaml`` (the start, or a swap such as attention for concat); a ``reference`` row is
    compared with the incumbent and never kept. One record per row with metrics: its metrics,
    whether it was kept, its difference from the incumbent, the incumbent after it.

    ``train(specs)``: trains lever rows before their metrics are read (the ``ablation`` stage). Rows
    up to the next kept lever all build on the same incumbent, so a lever row is trained together with
    the lever rows after it, as one pool of jobs; a row trained on an incumbent that has since been
    replaced is trained again on the new one, so the outcome is that of one row at a time. Without
    ``train`` the stored chain's specs are used."""
    ratio = protocol_config(params).test_train_ratio
    specs = model_specs(params, chained=train is None)
    rows = params.ablation.rows
    out, incumbent, trained = [], None, {}  # trained: name -> the spec its metrics come from
    for i, step in enumerate(rows):
        spec, built_on = specs.get(step["model"]), None
        if "adds" in step:
            if incumbent is None:
                raise ValueError(f"ablation row {step['model']} adds a lever but no row before it was kept")
            built_on = incumbent["model"]
            needs = step.get("needs_family")
            if needs and incumbent["spec"].family != needs:  # e.g. a loss on attention's fused vector
                out.append({"lever": step["lever"], "model": step["model"], "metrics": None, "kept": False,
                            "verdict": None, "built_on": built_on, "spec": None, "incumbent": incumbent["model"],
                            "skipped": f"needs {needs}; the kept configuration is a {incumbent['spec'].family}"})
                continue
            if train is not None:
                spec = spec_from(step["model"], derive(incumbent["spec"], step["model"], step["adds"]))
                if trained.get(spec.name) != spec:
                    batch = [spec_from(r["model"], derive(incumbent["spec"], r["model"], r["adds"]))
                             for r in itertools.takewhile(lambda r: "adds" in r, rows[i:])
                             if r.get("needs_family") in (None, incumbent["spec"].family)]
                    train(batch)
                    trained.update({b.name: b for b in batch})
        if spec is None or not (path := RunPaths(params).record(spec, dataset)).is_file():
            continue
        m = read_json(path)
        record = {"lever": step["lever"], "model": step["model"], "metrics": m, "kept": False, "verdict": None,
                  "built_on": built_on, "spec": spec, "reference": bool(step.get("reference"))}
        if "cv" not in m:  # trained on the dev protocol only (too slow for k folds): not comparable
            record["incumbent"] = incumbent["model"] if incumbent else None
            out.append(record)
            continue
        scores = m["cv"]["per_fold"]["weighted_f1"]
        if record["reference"] and incumbent is None:
            raise ValueError(f"ablation row {step['model']} is a reference but no row before it was kept")
        if incumbent is None:
            record["kept"] = True
        else:
            record["verdict"] = beats(scores, incumbent["scores"], ratio)
            record["compared_with"] = {"model": incumbent["model"], "scores": list(incumbent["scores"])}
            record["kept"] = record["verdict"].better and not record["reference"]
        if record["kept"]:
            incumbent = {"model": step["model"], "scores": scores, "spec": spec}
        record["incumbent"] = incumbent["model"]
        out.append(record)
    return out


def carried(decided: list[dict[str, Any]]) -> dict[str, Any]:
    """What the kept configuration is made of, as the chain file holds it: ``start``, the last kept
    row that named a model (the declared start, or a swap kept over it), and ``levers_kept``, every
    lever kept on top of it."""
    start, levers = None, []
    for r in decided:
        if r["kept"]:
            start, levers = (start, [*levers, r["lever"]]) if r["built_on"] else (r["lever"], [])
    return {"start": start, "levers_kept": levers}


def keep_label(record: dict[str, Any]) -> str:
    """A row's keep/drop column: a reference row is neither kept nor dropped."""
    return "reference" if record.get("reference") else "yes" if record["kept"] else "no"


def write_chain(params: Params, decided: list[dict[str, Any]]) -> Path:
    """``params/ablation_chain.yaml``: each lever row's spec as trained, what it was built on, its
    verdict and what ships; read by every later stage (:func:`mmsent.training.specs.model_specs`)."""
    import dataclasses

    import yaml

    rows = [{"model": r["model"], "lever": r["lever"], "built_on": r["built_on"], "kept": r["kept"],
             **({"reference": True} if r.get("reference") else {}),
             "spec": ({k: v for k, v in dataclasses.asdict(r["spec"]).items() if k != "name"}
                      if r["built_on"] and r["spec"] else None),
             **({"skipped": r["skipped"]} if r.get("skipped") else {})} for r in decided]
    body = {"kept": kept_model(params, decided=decided), "rows": rows, **carried(decided)}
    return write_text(chain_path(params), "# written by the ablation stage: forward selection, each lever on the "
                      "configuration kept before it\n" + yaml.safe_dump(body, sort_keys=False, width=120))


def kept_model(params: Params, dataset: str = "single", decided: list[dict[str, Any]] | None = None) -> str:
    """The configuration the ablation ends with: what ships (``decided``: :func:`decide`'s records, if at hand)."""
    if decided is None and read_chain(params).get("kept"):
        return read_chain(params)["kept"]
    decided = [r for r in (decided if decided is not None else decide(params, dataset)) if r["incumbent"]]
    if not decided:
        raise FileNotFoundError("no cross-validated ablation row has metrics yet; train params.yaml ablation.rows")
    return decided[-1]["incumbent"]


def rows(params: Params, dataset: str = "single", decided: list[dict[str, Any]] | None = None) -> pd.DataFrame:
    out = []
    for r in decided if decided is not None else decide(params, dataset):
        m, v = r["metrics"], r["verdict"]
        if m is None:  # a lever that does not apply to the kept configuration
            out.append({"lever": r["lever"], "model": r["model"], "built on": r["built_on"],
                        "CV wF1 (± SE)": f"not applicable: {r['skipped']}", "kept (CV)": "no", "_cv": float("nan")})
            continue
        out.append({"lever": r["lever"], "model": r["model"], "built on": r["built_on"] or "–",
                    "CV wF1 (± SE)": cv_text(m) if "cv" in m else "not cross-validated",
                    "Δ vs kept (± SE)": f"{v.difference:+.2f} ± {v.se:.2f}" if v else "–",
                    "kept (CV)": keep_label(r),
                    "test accuracy": fmt(m["accuracy"]),
                    "test weighted F1": fmt(m["weighted_f1"]), "95 % CI wF1": fmt_interval(m, "weighted_f1"),
                    "test macro F1": fmt(m["macro_f1"]),
                    "CPU s / seed": f"{cpu_seconds_per_seed(m):.1f}",
                    "_cv": m["cv"]["weighted_f1"]["mean"] if "cv" in m else float("nan")})
    return pd.DataFrame(out)


def build(params: Params, dataset: str = "single") -> Path:
    decided = decide(params, dataset)
    table = rows(params, dataset, decided)
    if table.empty:
        raise FileNotFoundError("no ablation rows have metrics yet; train the models in params.yaml ablation.rows")
    best = table[table["model"] == kept_model(params, dataset, decided)].iloc[0]
    # a row whose per-seed predictions are not in this checkout (a DVC output not pulled) has no ensemble
    ens = [{"ensemble of seeds": r.model, **{k: f"{ensemble_metrics(params, r.model, dataset)[k]:.2f}"
                                           for k in ("accuracy", "weighted_f1", "macro_f1")}}
           for r in table.drop_duplicates("model").itertuples() if has_predictions(params, r.model, dataset)]
    families = [{"ensemble of models (all seeds)": name, "models": ", ".join(members),
                 **{k: f"{ensemble_metrics(params, members, dataset)[k]:.2f}" for k in ("accuracy", "weighted_f1", "macro_f1")}}
                for name, members in params.ablation.family_ensembles.items()
                if all(has_predictions(params, m, dataset) for m in members)]
    predicted = has_predictions(params, best.model, dataset)
    dd = dedup_metrics(params, best.model, dataset) if predicted else None
    lines = [
        "# Accuracy ablation (MVSA-Single, CLMLF split)", "",
        "Generated by the `ablation` stage (`dvc repro`). **Forward selection**: a *lever* is one change to the "
        "model; each lever row adds exactly one to the configuration *kept* so far (`built on`; never to a rejected "
        "row), so its `Δ vs kept` is that lever's own (`params.yaml` → `ablation.rows`; what each row was built "
        f"on: `params/ablation_chain.yaml`). **Decided by cross-validation** ({protocol_text(params)}): "
        "`CV wF1` is the mean held-out weighted F1 over the folds ± its corrected standard error (Nadeau & Bengio; "
        "each fold model stopped on an inner split of its own training part, so the fold that scores it chose "
        "nothing; tuning chose its values on the same folds, so rows built on tuned values read slightly high); "
        "a row is kept only when it beats the configuration kept so far by more than the corrected standard "
        "error of their paired fold differences (`Δ vs kept`); otherwise the simpler one stays. Test is never read "
        "for a decision: test scores are % over the 450-pair test split, mean ± std over the final models' seeds "
        "(each trained on train + dev for the cross-validated epoch count), with a 95 % bootstrap interval over "
        "test pairs of the seed mean. CPU seconds are per final seed on this machine's CPU, with a "
        "seed's share of any work done once per row, such as distillation teachers (the fold models cost about "
        "as much again per fold; features are cached once and not counted; see benchmarks.md).", "",
        markdown_table(table.drop(columns=["_cv"])), "",
        f"Fold by fold: `reports/figures/{ABLATION_GROUP}/{figure_name(params)}.png` (each line one fold model of each row; the "
        "keep/drop rule reads these paired differences).", "",
        "*Kept* is a selection rule (better on the folds by more than one corrected SE of the paired fold "
        "differences), not a significance test; whether a kept configuration also beats its predecessor on test "
        "is one of REPORT.md's declared questions. A row without `built on` names a model of its own (its own "
        "tuned values), not one lever. The first such row is the declared start (the thesis's model), "
        f"fixed so that no rerun can change it; it was declared post hoc, after every configuration's scores "
        f"existed ({DECLARED['ablation_start']}); a `reference` row is scored against the configuration "
        "kept so far for comparison only and is never kept (its comparison on test is a declared question).", "",
        f"**The configuration kept (shipped): `{best.model}`**: "
        + describe_kept(carried(decided))
        + f" — {best['test accuracy']} accuracy, {best['test weighted F1']} weighted F1 on test.", "",
        *fold_ensemble_lines(decided),
        *ensemble_lines(params, ensemble_decide(params, best.model, dataset), best.model),
        "## Seed ensembles (probabilities averaged over seeds; not single models)", "",
        pd.DataFrame(ens).to_markdown(index=False), "",
        *(["## Ensembles of model families (probabilities averaged over every seed of each; not single models)", "",
           pd.DataFrame(families).to_markdown(index=False), ""] if families else []),
        *text_variant_lines(params, dataset),
        *ocr_lines(params),
        *adapt_lines(params, table),
        "## De-duplicated test split", "",
        (f"`{best.model}` on the {dd['n']} test pairs whose image (byte-identical or pHash-near) or normalised text "
         f"does not occur in train: accuracy {fmt(dd['accuracy'])}, weighted F1 {fmt(dd['weighted_f1'])}, "
         f"macro F1 {fmt(dd['macro_f1'])} (vs {best['test accuracy']} / {best['test weighted F1']} on the full test split).")
        if dd else (f"`{best.model}`: no test pairs are left once duplicates of train are removed." if predicted
                    else f"`{best.model}`: its per-seed predictions are not in this checkout (`dvc pull` them)."), "",
    ]
    cv_rows = [r for r in decided if r["metrics"] and "cv" in r["metrics"]]
    if cv_rows:
        from mmsent.evaluation.plots import cv_by_fold, save_figure

        save_figure(cv_by_fold(cv_rows), params, f"{ABLATION_GROUP}/{figure_name(params)}")
        folds = pd.DataFrame([{"model": r["model"], "fold": j, "weighted_f1": round(v, 4), "kept": r["kept"]}
                              for r in cv_rows for j, v in enumerate(r["metrics"]["cv"]["per_fold"]["weighted_f1"])])
        save_frame(folds, params.path("reports/tables") / f"{figure_name(params)}.csv")  # for `dvc plots show`
    report = params.ablation.report
    return write_text(params.path(report), "\n".join(lines))


def figure_name(params: Params) -> str:
    """``ablation_cv_folds`` (another report, e.g. the full profile's, names its own: ``<report>_cv_folds``)."""
    return f"{Path(params.ablation.report).stem}_cv_folds"


def protocol_text(params: Params) -> str:
    cfg = protocol_config(params)
    return f"{cfg.folds} stratified folds × {cfg.repeats} repeat(s) of MVSA-Single train + dev, seed {cfg.seed}"


def fold_ensemble_lines(decided: list[dict[str, Any]]) -> list[str]:
    """Final model refit on all of train + dev, or the fold models averaged: measured for every
    cross-validated row, so the choice between them is a measurement too."""
    out = []
    for r in decided:
        m = r["metrics"] or {}
        if "fold_ensemble" in m:
            e = m["fold_ensemble"]
            out.append({"model": r["model"], "refit on train + dev, mean of seeds (acc / wF1)":
                        f"{m['accuracy']['mean']:.2f} / {m['weighted_f1']['mean']:.2f}",
                        f"ensemble of its {m['cv']['folds'] * m['cv']['repeats']} fold models (acc / wF1)":
                        f"{e['accuracy']:.2f} / {e['weighted_f1']:.2f}"})
    if not out:
        return []
    return ["## Final model: refit, or the fold models averaged", "",
            "Each row's reported test figures are its refit models (one per seed, trained on all of train + dev for "
            "the cross-validated epoch count). The fold models (each trained on 64 % of train + dev: 4/5 less its "
            "inner early-stopping split) averaged into one "
            "ensemble are scored beside them: an ensemble, not a single model.", "",
            pd.DataFrame(out).to_markdown(index=False), ""]


def text_variant_lines(params: Params, dataset: str) -> list[str]:
    """How many tweets each tweet-aware-text row actually changes (a row that changes none is
    no experiment, and the reader should know it)."""
    import emoji

    from mmsent.features.cache import variant_texts
    from mmsent.data.prepare import clean_pairs

    variants = params.features.text_variants
    if not variants:
        return []
    df = clean_pairs(params, dataset)
    changed = {name: sum(v != t for v, t in zip(variant_texts(params, df, name), df["text"])) for name in variants}
    with_emoji = sum(emoji.emoji_count(t) > 0 for t in df["text_raw"])
    return ["## Tweet-aware text", "",
            f"Of the {len(df)} MVSA-{dataset.title()} tweets, "
            + ", ".join(f"`{name}` ({', '.join(f'{k}: {v}' for k, v in variants[name].items())}) changes {n}"
                        for name, n in changed.items())
            + f" against the default normalisation. {with_emoji} of them hold an emoji character, so emoji "
              "handling (names or characters) cannot move a number on this dataset.", ""]


def ocr_lines(params: Params) -> list[str]:
    """How often the ocr stage found text inside the images (what the OCR rows had to work with)."""
    path = params.path("data/ocr/summary.json")
    if not path.is_file():
        return []
    s = read_json(path)
    cfg = s["settings"]
    return ["## Text inside the images (RapidOCR)", "",
            f"The `ocr` stage found text in {s['with_text']} of {s['images']} MVSA-Single images "
            f"({100 * s['fraction_with_text']:.1f} %, {s['mean_chars_when_found']:.0f} characters on average where found) "
            f"at detector side limit {cfg['det_limit_side_len']} ({cfg['det_limit_type']}); its time per image is in "
            "`reports/data.md`. Images without text have the OCR input masked.", ""]


def adapt_lines(params: Params, table: pd.DataFrame) -> list[str]:
    """What the MVSA-Multiple-adapted MiniLM was trained on and what it cost (once, not per seed),
    when a row reads it."""
    from mmsent.training.adapt import SUMMARY, adapt_config
    dest = adapt_config(params).dest
    specs = model_specs(params)
    readers = [m for m in table["model"] if m in specs and f"st:{dest}" in specs[m].inputs.values()]
    path = params.path(dest) / SUMMARY
    if not readers or not path.is_file():
        return []
    s = read_json(path)
    cfg = s["config"]
    tuned = [m for m in readers if family(specs[m].family).expensive]  # fine-tune it further, end to end
    frozen = [m for m in readers if m not in tuned]
    use = " ".join(f"`{', '.join(names)}` {verb}." for names, verb in (
        (frozen, "reads it frozen"), (tuned, "starts from it and fine-tunes it further, end to end with the head"))
        if names)
    return ["## MiniLM adapted on MVSA-Multiple", "",
            f"MiniLM fine-tuned ({cfg['epochs']} epoch(s), LR {cfg['lr']:g}, mean-pooled, through a throw-away linear "
            f"head) on {s['texts']} MVSA-Multiple text labels "
            f"({', '.join(f'{k} {v}' for k, v in s['label_counts'].items())}; {s['removed_as_single_dev_test']} texts "
            f"matching an MVSA-Single dev/test text removed first). {use} Trained once in "
            f"{s['seconds'] / 60:.1f} min on {s['device']} (`mmsent adapt`); the rows' CPU seconds leave it out.", ""]


def run(params: Params, force: bool = False, only: list[str] | None = None) -> Path:
    """The stage: walk the rows, training each lever row on the configuration kept so far, and
    every ``ablation``-group model of ``params.yaml`` (a profile's own rows; ``only``: just those,
    leaving the default rows' results as they are); then write the chain and the report.
    Expensive levers (end-to-end fine-tuning) that already have metrics are kept unless ``force``."""
    from mmsent.training.runs import run_models

    specs = model_specs(params, chained=False)
    unknown = sorted(set(only or []) - {n for n, s in specs.items() if s.group == "ablation"})
    if unknown:
        raise KeyError(f"not ablation models in params.yaml: {unknown}")
    todo = []
    for spec in specs.values():
        done = RunPaths(params).record(spec, "single").is_file()
        wanted = spec.group == "ablation" and (only is None or spec.name in only)
        if wanted and (force or not (done and family(spec.family).expensive)):
            todo.append(spec)
    run_models(params, todo)
    decided = decide(params, train=(lambda batch: run_models(params, batch)) if only is None else None)
    write_chain(params, decided)
    return build(params)
