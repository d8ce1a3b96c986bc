"""Feature-extraction throughput (pairs/s) of each backbone on real MVSA-Single pairs.

Run: python benchmarks/bench_features.py [--n-text 512] [--n-images 256] [--profile full]
(``--profile full`` adds that profile's encoders: all-mpnet-base-v2, the MVSA-Multiple-adapted
MiniLM, flip test-time-augmented EfficientNet; run `make mpnet` and `mmsent adapt --profile full` first)
Writes the "Feature extraction" section of reports/benchmarks.md: each encoder timed with torch
and with ONNX Runtime in the same run (VADER and USE have one path each), their ratio, and how far the two
backends' features are apart.
"""

import argparse
import sys
import time

import numpy as np
import pandas as pd

from mmsent.workflow.bench import update_section
from mmsent.config import load_params
from mmsent.data.mvsa import read_single
from mmsent.features.encoders import get_encoder


ONE_PATH = {"vader", "use"}  # a lexicon and a numpy network: no torch graph to export


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-text", type=int, default=512)
    ap.add_argument("--n-images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--profile", default=None, help="profile from params.yaml whose encoders to time")
    args = ap.parse_args()
    params = load_params(profile=args.profile)
    pairs = read_single(params.data.root)
    rows = []
    jobs = [(name, [p.text for p in pairs[: args.n_text]]) for name in params.features.text_encoders]
    jobs += [(name, [params.data.root / p.image for p in pairs[: args.n_images]])
             for name in params.features.image_encoders]
    for name, items in jobs:
        timed, feats = {}, {}
        for backend in ("torch", "onnx") if name not in ONE_PATH else ("torch",):
            encoder = get_encoder(name, device=params.features.device, image_size=params.features.image_size,
                                  backend=backend)
            encoder.encode(items[: args.batch_size], batch_size=args.batch_size)  # warm-up (and ONNX export)
            start = time.perf_counter()
            feats[backend] = encoder.encode(items, batch_size=args.batch_size)
            timed[backend] = len(items) / (time.perf_counter() - start)
        best = max(timed.values())
        rows.append({"backbone": name, "modality": encoder.modality, "pairs": len(items),
                     "torch pairs/s": round(timed["torch"], 1),
                     "onnx pairs/s": round(timed["onnx"], 1) if "onnx" in timed else "–",
                     "onnx / torch": f"{timed['onnx'] / timed['torch']:.2f}x" if "onnx" in timed else "–",
                     "max abs difference": f"{np.abs(feats['onnx'] - feats['torch']).max():.1e}" if "onnx" in feats
                     else "–", "device": str(encoder.device),
                     "est. full MVSA-Single (4511), faster backend": f"{4511 / best / 60:.1f} min"})
    table = pd.DataFrame(rows).to_markdown(index=False)
    out = update_section(params.path("reports/benchmarks.md"), "Feature extraction", table,
                         "python " + " ".join(sys.argv))
    print(table, f"\nwritten to {out}", sep="\n")


if __name__ == "__main__":
    main()
