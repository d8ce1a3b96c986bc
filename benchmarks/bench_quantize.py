"""Reduced precision for the text encoder (int8, bfloat16): speed, accuracy cost and portability, in one run.

Run: python benchmarks/bench_quantize.py [--models text_head attention_fusion] [--threads 1]
(after `dvc repro features folds`). MiniLM encodes every MVSA-Single tweet four ways (torch,
ONNX Runtime, ONNX Runtime with int8 MatMul weights ``onnx-int8``, torch under bfloat16 autocast
``torch-bf16``) on ``--threads`` threads (1: what each features-stage worker uses). Then each
model's fold models are trained by cross-validation on train + dev on the float features and on
each reduced-precision set, on the same folds and seeds; the cost is the mean paired fold
difference of held-out weighted F1 ± its corrected SE (``mmsent.training.protocol``). Test is not
read. The rule (issue 21): a reduced precision becomes a default only if it costs less than 0.3
points. bf16 is also run with oneDNN held to older instruction sets (``ONEDNN_MAX_CPU_ISA``, in a
subprocess): its speed where the CPU has no bf16 instructions, and whether its vectors are the
same there. Writes the "Reduced precision" section of reports/benchmarks.md.
"""

import argparse
import json
import os
import subprocess
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


REDUCED = ("onnx-int8", "torch-bf16")
OLDER_ISAS = ("AVX512_CORE", "AVX2")  # AVX-512 without bf16 / AMX; AVX2 only
PROBE_TEXTS = 512


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)).clip(1e-9)


def probe(texts_file: str, out: str, batch_size: int) -> None:
    """(subprocess) float and bf16 vectors of the texts, and their speeds, under this process's ISA limit."""
    texts = json.loads(Path(texts_file).read_text(encoding="utf-8"))
    result = {}
    for backend in ("torch", "torch-bf16"):
        X, seconds = encode_all(texts, backend, batch_size)
        result[backend], result[backend + "_rate"] = X, len(texts) / seconds
    np.savez(out, **result)


def on_older_isa(texts: list[str], isa: str, batch_size: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "texts.json").write_text(json.dumps(texts), encoding="utf-8")
        env = {**os.environ, "ONEDNN_MAX_CPU_ISA": isa}
        subprocess.run([sys.executable, __file__, "--probe", tmp, "--threads", str(threads),
                        "--batch-size", str(batch_size)], env=env, check=True)
        with np.load(Path(tmp, "probe.npz")) as z:
            return {k: z[k] for k in z.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="+", default=["text_head", "attention_fusion"])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--probe", help=argparse.SUPPRESS)  # internal: the subprocess of on_older_isa
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.probe:
        return probe(str(Path(args.probe, "texts.json")), str(Path(args.probe, "probe.npz")), args.batch_size)
    params = load_params()
    cached = load_features(params, "minilm", "single")
    texts = [str(t) for t in cached_texts(params, cached.ids)]
    timings, feats = {}, {}
    for backend in ("torch", "onnx", *REDUCED):
        feats[backend], timings[backend] = encode_all(texts, backend, args.batch_size)
    rows = [f"| {b} | {len(texts) / timings[b]:.0f} | {timings['torch'] / timings[b]:.2f}× |" for b in timings]
    closeness = [f"| {b} | {cosine(feats['torch'], feats[b]).mean():.5f} | {cosine(feats['torch'], feats[b]).min():.5f} "
                 f"| {np.abs(feats['torch'] - feats[b]).max():.1e} |" for b in REDUCED]
    cost_rows, costs = [], {b: [] for b in REDUCED}
    with tempfile.TemporaryDirectory() as tmp:
        projects = {b: project_with(params, feats[b], cached.ids, cached.ok, Path(tmp) / b) for b in ("torch", *REDUCED)}
        for model in args.models:
            base = cv_scores(projects["torch"], model)
            for b in REDUCED:
                v = beats(cv_scores(projects[b], model), base, protocol_config(params).folds)
                cost_rows.append(f"| {model} | {b} | {base.mean():.2f} | {base.mean() + v.difference:.2f} "
                                 f"| {v.difference:+.2f} ± {v.se:.2f} |")
                costs[b].append(-v.difference)
    sample = texts[:PROBE_TEXTS]
    native = {"torch": feats["torch"][:PROBE_TEXTS], "torch-bf16": feats["torch-bf16"][:PROBE_TEXTS]}
    isa_rows, isa_moves = [], []
    for isa in OLDER_ISAS:
        other = on_older_isa(sample, isa, args.batch_size, args.threads)
        move = float(np.abs(other["torch-bf16"] - native["torch-bf16"]).max())
        isa_moves.append(move)
        isa_rows.append(f"| {isa} | {float(other['torch_rate']):.0f} | {float(other['torch-bf16_rate']):.0f} "
                        f"| {float(other['torch-bf16_rate'] / other['torch_rate']):.2f}× "
                        f"| {np.abs(other['torch'] - native['torch']).max():.1e} | {move:.1e} |")
    bf16_error = float(np.abs(native["torch-bf16"] - native["torch"]).max())
    verdict = []
    for b in REDUCED:
        worst = max(costs[b])
        verdict.append(f"- `{b}`: largest cost {worst:+.2f} points, " + (
            "below 0.3." if worst < 0.3 else "not below 0.3, so it is not a default."))
    portable = max(isa_moves) < 0.1 * bf16_error
    verdict.append("- `torch-bf16` across instruction sets: its vectors move by up to "
                   f"{max(isa_moves):.1e} between this CPU's bf16 instructions and an older instruction set, against "
                   f"{bf16_error:.1e} from float; " + (
                       "small beside its own error." if portable else
                       "as much as its own error, so features computed in bf16 would differ from machine to machine "
                       "beyond float noise, and it is several times slower than float where the CPU lacks bf16 "
                       "instructions. It stays an option (`features.backend: {text: torch-bf16}`, or "
                       "`Pipeline.load(backend=...)`) for CPUs with AMX or AVX512-BF16, never a default."))
    body = "\n".join([
        f"MiniLM on all {len(texts)} MVSA-Single tweets, {args.threads} thread(s), batch {args.batch_size}, "
        "texts batched by length; ratios against torch in the same run.", "",
        "| text backend | texts/s | vs torch |", "|---|---|---|", *rows, "",
        "Sentence vectors against torch's float ones:", "",
        "| backend | cosine mean | cosine min | max abs difference |", "|---|---|---|---|", *closeness, "",
        "Accuracy cost, by cross-validation on train + dev (the features cache's MiniLM vectors replaced; same folds "
        "and seeds; test not read):", "",
        "| model | backend | CV wF1, float features | CV wF1, this backend | Δ (± corrected SE) |", "|---|---|---|---|---|",
        *cost_rows, "",
        f"bf16 with oneDNN held to an older instruction set (`ONEDNN_MAX_CPU_ISA`, the first {len(sample)} tweets; "
        "float matmuls go through MKL, which the limit does not reach; differences against this run's own vectors):", "",
        "| instruction set | float texts/s | bf16 texts/s | bf16 / float | float moved | bf16 moved |",
        "|---|---|---|---|---|---|", *isa_rows, "",
        *verdict,
    ])
    update_section("reports/benchmarks.md", "Reduced precision", body, "python " + " ".join(sys.argv))
    print(body)


if __name__ == "__main__":
    main()
