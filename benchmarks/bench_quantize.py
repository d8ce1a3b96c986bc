"""Dynamic int8 quantisation of the text encoder: its speed and its accuracy cost, in one run.

Run: python benchmarks/bench_quantize.py [--models text_head attention_fusion] [--threads 1]
(after `dvc repro features folds`). MiniLM encodes every MVSA-Single tweet three ways (torch,
ONNX Runtime, ONNX Runtime with int8 MatMul weights: ``features.backend: {text: onnx-int8}``) on
``--threads`` threads (1: what each features-stage worker uses). Then each model's fold models are
trained by cross-validation on train + dev twice, once on the float features and once on the int8
ones, on the same folds and seeds; the cost is the mean paired fold difference of held-out
weighted F1 ± its corrected SE (``mmsent.training.protocol``). Test is not read. The rule
(issue 21): int8 becomes a default only if it costs less than 0.3 points. Writes the
"Int8 quantisation" section of reports/benchmarks.md.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mmsent.config import load_params
from mmsent.data.mvsa import load_parts
from mmsent.data.prepare import clean_pairs
from mmsent.features.cache import feature_path, load_features
from mmsent.features.encoders import get_encoder
from mmsent.io import save_arrays
from mmsent.training.fitting import run_fold
from mmsent.training.inputs import cv_inputs
from mmsent.training.protocol import beats, held_out, protocol_config
from mmsent.training.specs import model_specs
from mmsent.workflow.bench import update_section


def cached_texts(params, ids: np.ndarray) -> list[str]:
    """The normalised tweet of each cached id, in the cache's order (what the features stage encoded)."""
    table = clean_pairs(params, "single").assign(id=lambda d: d["id"].astype(str)).set_index("id")
    return list(table.loc[list(ids), "text"])


def encode_all(texts: list[str], backend: str, batch_size: int) -> tuple[np.ndarray, float]:
    encoder = get_encoder("minilm", device="cpu", backend={"text": backend})
    encoder.encode(texts[:64], batch_size=batch_size)  # warm-up (and the one-off export)
    start = time.perf_counter()
    X = encoder.encode(texts, batch_size=batch_size)
    return np.asarray(X, np.float32), time.perf_counter() - start


def project_with(params, X: np.ndarray, ids: np.ndarray, ok: np.ndarray, root: Path):
    """A copy of the project whose MiniLM cache for MVSA-Single is ``X``; every other input is the real one."""
    for rel in ("data/prepared", "data/folds", "params"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(params.path(rel), root / rel)
    features = params.path("data/features")
    for enc in features.iterdir():
        if enc.is_dir() and enc.name != "minilm":
            (root / "data/features").mkdir(parents=True, exist_ok=True)
            os.symlink(enc, root / "data/features" / enc.name)
    copy = load_params(params.base_dir / "params.yaml")
    copy.base_dir = root
    save_arrays(feature_path(copy, "minilm", "single"), meta={"encoder": "minilm"}, ids=ids, X=X, ok=ok)
    return copy


def cv_scores(params, model: str) -> np.ndarray:
    spec = model_specs(params)[model]
    parts = load_parts(params, "single")
    config, data = cv_inputs(params, spec, "single", parts)
    masks = held_out(params, data["train"].ids, "single")
    return np.array([run_fold(params, spec, "single", config, data, m, j)["weighted_f1"] for j, m in enumerate(masks)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["text_head", "attention_fusion"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params()
    cached = load_features(params, "minilm", "single")
    texts = [str(t) for t in cached_texts(params, cached.ids)]
    timings, feats = {}, {}
    for backend in ("torch", "onnx", "onnx-int8"):
        feats[backend], timings[backend] = encode_all(texts, backend, args.batch_size)
    cos = (feats["torch"] * feats["onnx-int8"]).sum(1) / (
        np.linalg.norm(feats["torch"], axis=1) * np.linalg.norm(feats["onnx-int8"], axis=1)).clip(1e-9)
    rows = [f"| {b} | {len(texts) / timings[b]:.0f} | {timings['torch'] / timings[b]:.2f}× |" for b in timings]
    cost_rows, costs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        projects = {b: project_with(params, feats[b], cached.ids, cached.ok, Path(tmp) / b) for b in ("torch", "onnx-int8")}
        for model in args.models:
            base, quant = cv_scores(projects["torch"], model), cv_scores(projects["onnx-int8"], model)
            v = beats(quant, base, protocol_config(params).folds)
            cost_rows.append(f"| {model} | {base.mean():.2f} | {quant.mean():.2f} | {v.difference:+.2f} ± {v.se:.2f} |")
            costs.append(-v.difference)
    body = "\n".join([
        f"MiniLM on all {len(texts)} MVSA-Single tweets, {args.threads} thread(s), batch {args.batch_size}, "
        "texts batched by length; ratios against torch in the same run.", "",
        "| text backend | texts/s | vs torch |", "|---|---|---|", *rows, "",
        f"Int8 sentence vectors against torch's: cosine mean {cos.mean():.4f}, min {cos.min():.4f}.", "",
        "Accuracy cost, by cross-validation on train + dev (the features cache's MiniLM vectors replaced; same folds "
        "and seeds; test not read):", "",
        "| model | CV wF1, float features | CV wF1, int8 features | Δ (± corrected SE) |", "|---|---|---|---|",
        *cost_rows, "",
        (f"Largest cost {max(costs):+.2f} points: " + ("below 0.3, so int8 may become the text default."
         if max(costs) < 0.3 else "not below 0.3, so the text encoder stays float (`features.backend` default); "
         "`onnx-int8` is an option.")),
    ])
    update_section("reports/benchmarks.md", "Int8 quantisation", body, "python " + " ".join(sys.argv))
    print(body)


if __name__ == "__main__":
    main()
