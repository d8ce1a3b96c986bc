"""Latency of the shipped model: one (text, image) pair warm (p50/p95), and batch throughput over
the MVSA-Single test pairs, with the frozen encoders on torch, on the shipped model's runtime (ONNX
Runtime for images) and with the text encoder in bf16 (an option), in the same run.

Run: python benchmarks/bench_predict.py [--n 50] [--batch 32]
Writes the "Prediction latency" section of reports/benchmarks.md.
"""

import argparse
import sys
import time

import numpy as np
import pandas as pd

from mmsent.workflow.bench import update_section
from mmsent.config import load_params
from mmsent.data.mvsa import load_prepared, read_single
from mmsent.serving.pipeline import Pipeline
from mmsent.paths import PREPARED_DIR


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    params = load_params()
    pairs = [{"text": p.text_raw, "image": params.data.root / p.image} for p in read_single(params.data.root)[: args.n + 5]]
    test = load_prepared(params.path(PREPARED_DIR) / "single.parquet", "test")
    batch = [{"text": t, "image": params.data.root / i} for t, i in zip(test["text_raw"], test["image"])]
    rows, speed, labels = [], {}, {}
    # None: the runtime the shipped model's features came from; bf16: an option for CPUs with bf16 instructions
    runs = (("torch", "torch"), ("shipped", None), ("bf16 text", {"text": "torch-bf16", "image": "onnx"}))
    for name, backend in runs:
        pipe = Pipeline.load(device=params.features.device, backend=backend)
        for label, make in [("text + image", lambda p: p), ("text only", lambda p: {"text": p["text"]}),
                            ("image only", lambda p: {"image": p["image"]})]:
            for p in pairs[:5]:
                pipe.predict(**make(p))  # warm-up: encoders loaded (ONNX exported), caches filled
            times = []
            for p in pairs[5:]:
                start = time.perf_counter()
                pipe.predict(**make(p))
                times.append(1000 * (time.perf_counter() - start))
            rows.append({"backend": f"{name} ({pipe.backend})", "input": label, "pairs": len(times),
                         "p50 ms": round(float(np.percentile(times, 50)), 1),
                         "p95 ms": round(float(np.percentile(times, 95)), 1)})
        start = time.perf_counter()
        labels[name] = [r["label"] for r in pipe.predict_batch(batch, batch_size=args.batch)]
        speed[name] = len(batch) / (time.perf_counter() - start)
    same = np.mean([a == b for a, b in zip(labels["bf16 text"], labels["shipped"])])
    body = (pd.DataFrame(rows).to_markdown(index=False)
            + f"\n\nBatch scoring of the {len(batch)} MVSA-Single test pairs (`predict_batch`, batch size {args.batch}, "
              f"text + image): torch {speed['torch']:.1f} pairs/s, the shipped model's runtime (ONNX Runtime for images) "
              f"{speed['shipped']:.1f} pairs/s ({speed['shipped'] / speed['torch']:.2f}x in the same run); with the "
              f"text encoder in bf16 {speed['bf16 text']:.1f} pairs/s ({speed['bf16 text'] / speed['torch']:.2f}x), "
              f"whose labels equal the shipped runtime's on {100 * same:.1f} % of the pairs (the model was trained on "
              f"float features; bf16 is an option, not portable: \"Reduced precision\").\n")
    out = update_section(params.path("reports/benchmarks.md"), "Prediction latency", body, "python " + " ".join(sys.argv))
    print(body, f"written to {out}", sep="\n")


if __name__ == "__main__":
    main()
