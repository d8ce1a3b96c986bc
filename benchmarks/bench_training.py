"""Training cost per seed of every model, read from the metrics the training stages wrote.

Run: python benchmarks/bench_training.py   (after `dvc repro`)
Writes the "Training time" section of reports/benchmarks.md.
"""

import sys

import pandas as pd

from mmsent.bench import update_section
from mmsent.config import load_params
from mmsent.experiments import METRICS_DIR
from mmsent.io import read_json


def main() -> None:
    params = load_params()
    rows = []
    for path in sorted(params.path(METRICS_DIR).glob("*.json")):
        m = read_json(path)
        rows.append({"model": m["model"], "dataset": m["dataset"], "modalities": m["modalities"],
                     "seconds per seed": round(m["train_seconds_per_seed"], 1), "seeds": m["seeds"]})
    body = ("Wall-clock seconds to train and evaluate one seed, as measured inside the training stages "
            "(heads train on cached features; DenseNet and the BiLSTM train end to end). Each seed runs on one "
            "torch thread, as many seeds at once as there are cores (`train.workers: auto`), so a model's five "
            "seeds take about three times this on 2 cores.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False))
    out = update_section(params.path("reports/benchmarks.md"), "Training time", body, "python " + " ".join(sys.argv))
    print(body, f"\nwritten to {out}")


if __name__ == "__main__":
    main()
