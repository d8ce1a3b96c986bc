"""What each accuracy lever costs on the CPU, beside what cross-validation says it is worth.

Run: python benchmarks/bench_levers.py   (after `dvc repro`)
Reads what the last `dvc repro` recorded in one run: the CPU seconds of every feature cache
(``data/features/summary.json``) and each ablation row's seconds per fold model and per final
model (``metrics/<model>_single.json``). A row's cost is its feature caches' encoding time plus
its training (every fold model and every final seed, one thread each), given as a ratio to the
configuration the ablation keeps, measured in the same run. Writes the "Lever cost" section of
reports/benchmarks.md.
"""

import sys

import pandas as pd

from mmsent.config import load_params
from mmsent.evaluation.ablation import cpu_seconds_per_seed, decide, kept_model
from mmsent.features.cache import cache_name, read_features_summary
from mmsent.features.encoders import computed_by
from mmsent.models.fusion import SOURCES
from mmsent.training.protocol import protocol_config
from mmsent.training.specs import model_specs
from mmsent.workflow.bench import update_section


def feature_seconds(summary: dict, spec) -> float:
    """CPU seconds (one thread) of the caches ``spec`` reads: MVSA-Single's, its augmentation's,
    and MVSA-Multiple's text where it pre-trains on it; an encoder cut from another's pass
    (``COLUMNS_OF``) costs what that pass cost."""
    configured = {key.split("/")[0] for key in summary}
    caches = set()
    for modality, encoder in spec.inputs.items():
        run_as = computed_by(encoder, configured)[0]
        caches.add(f"{run_as}/{cache_name(modality, 'single', spec.text_variant)}")
        if SOURCES.get(modality) == "text" and spec.augment:
            caches.add(f"{run_as}/single_aug-{spec.augment}")
        if modality == "text" and spec.pretrain:
            caches.add(f"{run_as}/multiple")
    return sum(pass_seconds(summary, c) for c in caches)


def pass_seconds(summary: dict, cache: str) -> float:
    """CPU seconds of the pass that wrote ``cache``: its own and those of the caches cut from its columns."""
    run_as, _, part = cache.partition("/")
    return sum(s.get("seconds", 0.0) for key, s in summary.items()
               if key.partition("/")[2] == part and run_as in (key.partition("/")[0], s.get("columns_of")))


def training_seconds(metrics: dict) -> float:
    """Every fold model and every final seed of a cross-validated model, one thread each."""
    folds = len(metrics["cv"]["per_fold"]["weighted_f1"]) if "cv" in metrics else 0
    return folds * metrics.get("cv_seconds_per_fold", 0.0) + metrics["seeds"] * cpu_seconds_per_seed(metrics)


def main() -> None:
    params = load_params()
    summary = read_features_summary(params)
    specs = model_specs(params)
    decided = decide(params)
    kept = kept_model(params, decided=decided)
    cv = protocol_config(params)
    rows = []
    for r in decided:
        m, v, spec = r["metrics"], r["verdict"], specs[r["model"]]
        features, training = feature_seconds(summary, spec), training_seconds(m)
        rows.append({"lever": r["lever"], "model": r["model"], "features CPU s": features,
                     "CPU s / fold model": m.get("cv_seconds_per_fold", float("nan")),
                     "CPU s / final seed": cpu_seconds_per_seed(m), "training CPU s": training,
                     "total CPU s": features + training,
                     "CV Δ wF1 (± SE)": f"{v.difference:+.2f} ± {v.se:.2f}" if v else "–",
                     "kept": "yes" if r["kept"] else "no"})
    table = pd.DataFrame(rows)
    base = float(table.loc[table["model"] == kept, "total CPU s"].iloc[0])
    table[f"total / {kept}"] = (table["total CPU s"] / base).map(lambda x: f"{x:.2f}x")
    body = ("Each ablation row's CPU cost, from what one `dvc repro` recorded (every number of a row in the same run "
            "as the kept configuration it is divided by): the encoding time of the feature caches it reads (one "
            "thread; an encoder that is columns of another's pass costs that pass), and its training: "
            f"{cv.folds * cv.repeats} fold models plus every final seed, one thread each. The features are computed "
            "once for every row that reads them, so two rows on the same encoders share that cost. CV Δ is the "
            "row's cross-validated effect against the configuration kept before it (reports/ablation.md).\n\n"
            + table.round(1).to_markdown(index=False))
    out = update_section(params.path("reports/benchmarks.md"), "Lever cost", body, "python " + " ".join(sys.argv))
    print(body, f"\nwritten to {out}")


if __name__ == "__main__":
    main()
