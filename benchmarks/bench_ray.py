"""Throughput of batch scoring a CSV of real MVSA (text, image) pairs: in one process, and on
1 and 2 Ray workers (local Ray instance, one torch thread per worker).

Run: python benchmarks/bench_ray.py [--n 600] [--workers 1 2]
Writes the "Ray batch scoring" section of reports/benchmarks.md.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from mmsent.serving.batch import read_pairs, score_local, score_ray
from mmsent.workflow.bench import update_section
from mmsent.config import load_params
from mmsent.data.mvsa import read_single
from mmsent.serving.pipeline import Pipeline


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=600, help="pairs in the CSV")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    params = load_params()
    csv = Path(tempfile.mkdtemp()) / "pairs.csv"
    pd.DataFrame([{"text": p.text_raw, "image": str(params.data.root / p.image)}
                  for p in read_single(params.data.root)[: args.n]]).to_csv(csv, index=False)
    _, pairs = read_pairs(csv)
    rows = []
    for threads in (1, torch.get_num_threads()):
        torch.set_num_threads(threads)
        pipe = Pipeline.load(device="cpu")
        score_local(pipe, pairs[:8], args.batch, progress=False)  # warm-up
        start = time.perf_counter()
        score_local(pipe, pairs, args.batch, progress=False)
        seconds = time.perf_counter() - start
        rows.append({"backend": f"one process, {threads} torch thread(s)", "pairs": len(pairs),
                     "seconds": round(seconds, 1), "pairs/s": round(len(pairs) / seconds, 1)})
    for workers in args.workers:
        start = time.perf_counter()
        score_ray(None, pairs, workers=workers, batch_size=args.batch, progress=False)
        seconds = time.perf_counter() - start
        rows.append({"backend": f"Ray, {workers} worker(s) × 1 thread", "pairs": len(pairs),
                     "seconds": round(seconds, 1), "pairs/s": round(len(pairs) / seconds, 1)})
    body = ("Scoring a CSV of real MVSA-Single pairs (text + image path) with the shipped model, "
            f"batch size {args.batch}. Ray rows include starting the local Ray instance and loading the model "
            "in each worker (a few seconds), as a user of `mmsent predict-batch --workers N` sees it.\n\n"
            + pd.DataFrame(rows).to_markdown(index=False) + "\n")
    out = update_section(params.path("reports/benchmarks.md"), "Ray batch scoring", body, "python " + " ".join(sys.argv))
    print(body, f"written to {out}", sep="\n")


if __name__ == "__main__":
    main()
