"""Training cost per seed of every model, read from the metrics the training stages wrote.

Run: python benchmarks/bench_training.py   (after `dvc repro`)
Writes the "Training time" section of reports/benchmarks.md, with the one-off cost of adapting
MiniLM on MVSA-Multiple (`mmsent adapt`, full profile) when its folder is here.
"""

import sys

import pandas as pd

from mmsent.training.adapt import SUMMARY, adapt_config
from mmsent.workflow.bench import update_section
from mmsent.config import load_params
from mmsent.paths import METRICS_DIR
from mmsent.io import read_json


def main() -> None:
    params = load_params()
    rows, once = [], []
    for path in sorted(params.path(METRICS_DIR).glob("*.json")):
        m = read_json(path)
        rows.append({"model": m["model"], "dataset": m["dataset"], "modalities": m["modalities"],
                     "seconds per seed": round(m["train_seconds_per_seed"], 1), "seeds": m["seeds"]})
        if "teacher_cpu_seconds" in m:
            once.append(f"`{m['model']}` also trains its distillation teachers once, before its seeds: "
                        f"{m['teacher_cpu_seconds']:.0f} CPU seconds in all (`mmsent.training.distill`).")
    body = ("Wall-clock seconds to train and evaluate one seed, as measured inside the training stages "
            "(heads train on cached features; DenseNet and the BiLSTM train end to end). Each seed runs on one "
            "torch thread, as many seeds at once as there are cores (`train.workers: auto`), so a model's five "
            "seeds take about three times this on 2 cores.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False) + "".join(f"\n\n{line}" for line in once))
    adapted = params.path(adapt_config(params).dest) / SUMMARY
    if adapted.is_file():
        a = read_json(adapted)
        body += (f"\n\nOnce, before the features (full profile): MiniLM fine-tuned on {a['texts']} MVSA-Multiple texts, "
                 f"{len(a['epoch_losses'])} epoch(s), batch {a['config']['batch_size']}, in {a['seconds'] / 60:.1f} min "
                 f"on {a['device']} (`mmsent adapt`; {a['seconds'] / len(a['epoch_losses']) / 60:.1f} min an epoch, "
                 f"one process, torch's default threads).")
    out = update_section(params.path("reports/benchmarks.md"), "Training time", body, "python " + " ".join(sys.argv))
    print(body, f"\nwritten to {out}")


if __name__ == "__main__":
    main()
