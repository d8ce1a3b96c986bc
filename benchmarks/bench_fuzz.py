"""The long API fuzzing run: tests/test_fuzz.py with many more generated requests per operation.

Run: python benchmarks/bench_fuzz.py [--examples 500]
Writes the "API fuzzing" section of reports/benchmarks.md (requests sent per operation, result).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

from mmsent.workflow.bench import update_section
from mmsent.config import load_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--examples", type=int, default=500, help="generated examples per operation")
    args = ap.parse_args()
    params = load_params()
    record = Path(tempfile.mkstemp(suffix=".json")[1])
    env = {**os.environ, "MMSENT_FUZZ_EXAMPLES": str(args.examples), "MMSENT_FUZZ_RECORD": str(record)}
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(params.base_dir / "tests/test_fuzz.py")], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    cases = json.loads(record.read_text() or "{}")
    per_path: dict = defaultdict(dict)
    for key, n in cases.items():
        method, path = key.split(" ", 1)
        per_path[path][method] = n
    rows = []
    for path, methods in sorted(per_path.items()):
        main_method = max(methods, key=methods.get)  # the documented one; the rest are probes
        rows.append({"operation": f"{main_method} {path}", "generated requests": methods.pop(main_method),
                     "undocumented methods probed": sum(methods.values())})
    verdict = "passed" if run.returncode == 0 else "FAILED"
    body = (f"schemathesis (positive and negative generation, every check except positive-data acceptance, "
            f"see tests/test_fuzz.py), up to {args.examples} examples per operation: **{verdict}** — "
            f"{sum(cases.values())} requests in {seconds:.0f} s, no 5xx, every answer matched the schema."
            if run.returncode == 0 else f"**{verdict}** after {seconds:.0f} s:\n\n```\n{run.stdout[-3000:]}\n```")
    body += "\n\n" + pd.DataFrame(rows).to_markdown(index=False) + "\n"
    out = update_section(params.path("reports/benchmarks.md"), "API fuzzing", body, "python " + " ".join(sys.argv))
    print(body, f"written to {out}", sep="\n")
    sys.exit(run.returncode)


if __name__ == "__main__":
    main()
