"""Feature-extraction throughput (pairs/s) of each backbone on real MVSA-Single pairs.

Run: python benchmarks/bench_features.py [--n-text 512] [--n-images 256] [--profile full]
(``--profile full`` adds that profile's encoders: all-mpnet-base-v2, the MVSA-Multiple-adapted
MiniLM, flip test-time-augmented EfficientNet; run `make mpnet` and `mmsent adapt --profile full` first)
Writes the "Feature extraction" section of reports/benchmarks.md.
"""

import argparse
import sys
import time

import pandas as pd

from mmsent.bench import update_section
from mmsent.config import load_params
from mmsent.data import read_single
from mmsent.encoders import get_encoder


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
        encoder = get_encoder(name, device=params.features.device, image_size=params.features.image_size)
        encoder.encode(items[: args.batch_size], batch_size=args.batch_size)  # warm-up
        start = time.perf_counter()
        encoder.encode(items, batch_size=args.batch_size)
        seconds = time.perf_counter() - start
        rows.append({"backbone": name, "modality": encoder.modality, "pairs": len(items),
                     "seconds": round(seconds, 2), "pairs/s": round(len(items) / seconds, 1),
                     "device": str(encoder.device),
                     "est. full MVSA-Single (4511)": f"{4511 / (len(items) / seconds) / 60:.1f} min"})
    table = pd.DataFrame(rows).to_markdown(index=False)
    out = update_section(params.path("reports/benchmarks.md"), "Feature extraction", table,
                         "python " + " ".join(sys.argv))
    print(table, f"\nwritten to {out}", sep="\n")


if __name__ == "__main__":
    main()
