"""Wall-clock time of the whole features stage, torch against ONNX Runtime, in one run.

Run: python benchmarks/bench_features_stage.py   (after `dvc repro prepare`)
Runs the features stage (``mmsent.features.cache.run``, every core) into a scratch folder four
times: the encoders the stage had when the speed issue was filed (MiniLM + VADER on MVSA-Single and
MVSA-Multiple, EfficientNet-Lite0 on MVSA-Single) on the torch path, on the configured backends
and with MiniLM in bf16 (``torch-bf16``, an option), then today's default configuration (the
ablation's further encoders, text variants, the back-translations, the text inside the images) on
the configured backends. Nothing under data/ is written. Writes the "Features stage" section of
reports/benchmarks.md.
"""

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from mmsent.config import load_params
from mmsent.features import cache
from mmsent.paths import OCR_DIR, PREPARED_DIR
from mmsent.workflow.bench import update_section


def timed_stage(params, features: dict) -> tuple[float, int]:
    """Seconds the features stage takes with ``features`` in a scratch project beside the real
    prepared data and OCR, and how many inputs it encoded."""
    with tempfile.TemporaryDirectory() as tmp:
        for rel in (PREPARED_DIR, OCR_DIR):
            (Path(tmp) / rel).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(params.path(rel).resolve(), Path(tmp) / rel)
        scratch = dataclasses.replace(params, base_dir=Path(tmp),
                                      features=dataclasses.replace(params.features, **features))
        start = time.perf_counter()
        summary = cache.run(scratch, progress=False)
        return time.perf_counter() - start, sum(s["new_inputs"] for s in summary.values())


def main() -> None:
    params = load_params()
    issue_time = {"text_encoders": ["minilm", "vader"], "image_encoders": ["efficientnet_lite0"],
                  "ocr_encoders": [], "text_variants": {}, "augmentations": {}}
    issue_set = "MiniLM + VADER + EfficientNet-Lite0 (when the issue was filed)"
    runs = [(issue_set, "torch", issue_time), (issue_set, params.features.backend, issue_time),
            (issue_set + ", MiniLM in bf16 (an option: not portable)", {"text": "torch-bf16", "image": "onnx"},
             issue_time),
            ("today's default (params.yaml features)", params.features.backend, {})]
    rows = []
    for what, backend, features in runs:
        seconds, inputs = timed_stage(params, {**features, "backend": backend})
        rows.append({"encoders": what, "backend": str(backend), "inputs encoded": inputs,
                     "minutes": round(seconds / 60, 2), "_s": seconds})
    table = pd.DataFrame(rows)
    torch_s = table["_s"].iloc[0]
    table["torch path / this"] = (torch_s / table["_s"]).map(lambda x: f"{x:.2f}x")
    body = ("The features stage as `dvc repro` runs it (every core, one share of each encoder's inputs per core, "
            "every distinct input encoded once), timed whole, the runs one after the other. The ratio "
            "divides the first run's time by each run's. The bf16 row runs MiniLM under bfloat16 autocast, which "
            "this CPU has instructions for; its vectors differ between instruction sets beyond float noise and it "
            "is slower than float without them (\"Reduced precision\"), so it is not the default.\n\n"
            + table.drop(columns="_s").to_markdown(index=False))
    out = update_section(params.path("reports/benchmarks.md"), "Features stage", body, "python " + " ".join(sys.argv))
    print(body, f"\nwritten to {out}")


if __name__ == "__main__":
    main()
