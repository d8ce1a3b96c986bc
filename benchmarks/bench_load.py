"""Load test of the REST API on 127.0.0.1: concurrent clients for a fixed time, requests capped.

Starts `mmsent serve` in a subprocess (shipped model) twice with real MVSA (text, image) pairs: a
baseline server that runs one forward pass per request, then the default one, which merges the
requests that wait into one pass: prediction alone, and prediction while a real training job
(POST /train, in a scratch copy of the project so nothing under models/ changes) runs in the background.
Reports throughput, p50/p95/p99 latency, errors and the server's resident memory.

Run: python benchmarks/bench_load.py [--clients 20] [--seconds 30] [--max-requests 5000]
Writes the "API load" section of reports/benchmarks.md.
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import yaml

from mmsent.workflow.bench import update_section
from mmsent.config import load_params
from mmsent.data.mvsa import read_single
from mmsent.serving.pipeline import MAX_BATCH_ENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def scratch_project(params) -> Path:
    """A params.yaml in a temp folder that reads the real prepared data and features."""
    root = Path(tempfile.mkdtemp(prefix="mmsent-load-"))
    raw = yaml.safe_load(params.base_dir.joinpath("params.yaml").read_text())
    raw["data"]["root"] = str(params.data.root)
    (root / "data").mkdir()
    for sub in ("prepared", "features", "folds"):
        (root / "data" / sub).symlink_to(params.path(f"data/{sub}").resolve())
    if params.path("params").is_dir():
        (root / "params").symlink_to(params.path("params").resolve())
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root / "params.yaml"


def run_phase(url: str, pairs, clients: int, seconds: float, cap: int, pid: int) -> dict:
    latencies, statuses, rss = [], [], [rss_mb(pid)]
    lock, sent = threading.Lock(), [0]
    deadline = time.monotonic() + seconds

    def client(k: int) -> None:
        with httpx.Client(timeout=60) as http:
            i = k
            while time.monotonic() < deadline:
                with lock:
                    if sent[0] >= cap:
                        return
                    sent[0] += 1
                text, image = pairs[i % len(pairs)]
                start = time.perf_counter()
                try:
                    status = http.post(f"{url}/predict", data={"text": text},
                                       files={"image": ("i.jpg", image, "image/jpeg")}).status_code
                except httpx.HTTPError:
                    status = -1
                with lock:
                    latencies.append(1000 * (time.perf_counter() - start))
                    statuses.append(status)
                i += clients

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        time.sleep(1)
        rss.append(rss_mb(pid))
    wall = time.perf_counter() - start
    lat = np.array(latencies)
    return {"requests": len(lat), "errors": int(sum(s != 200 for s in statuses)),
            "req/s": round(len(lat) / wall, 1), "p50 ms": round(float(np.percentile(lat, 50)), 0),
            "p95 ms": round(float(np.percentile(lat, 95)), 0), "p99 ms": round(float(np.percentile(lat, 99)), 0),
            "RSS start MB": round(rss[0]), "RSS end MB": round(rss[-1]), "RSS max MB": round(max(rss))}


def start_server(project: Path, warm_pairs, max_batch: int | None = None) -> tuple[subprocess.Popen, str]:
    """`mmsent serve` on a free loopback port, answering and warm (encoders loaded)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if max_batch is not None:
        env[MAX_BATCH_ENV] = str(max_batch)
    server = subprocess.Popen([sys.executable, "-m", "mmsent", "serve", "--port", str(port), "--params", str(project)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(240):
        try:
            httpx.get(f"{url}/health", timeout=2)
            break
        except httpx.HTTPError:
            time.sleep(0.5)
    for text, image in warm_pairs:
        httpx.post(f"{url}/predict", data={"text": text}, files={"image": ("i.jpg", image)}, timeout=120)
    return server, url


def stop(server: subprocess.Popen) -> None:
    server.terminate()
    server.wait(timeout=60)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--max-requests", type=int, default=5000)
    ap.add_argument("--train-model", default="attention_fusion", help="model the background /train job trains")
    args = ap.parse_args()
    params = load_params()
    pairs = [(p.text_raw, (params.data.root / p.image).read_bytes()) for p in read_single(params.data.root)[:40]]
    project = scratch_project(params)
    rows = []
    server, url = start_server(project, pairs[:5], max_batch=1)  # the baseline: one pair a forward pass
    try:
        rows.append({"phase": "predict only, one pair a pass (baseline)", **run_phase(
            url, pairs, args.clients, args.seconds, args.max_requests, server.pid)})
    finally:
        stop(server)
    server, url = start_server(project, pairs[:5])
    try:
        rows.append({"phase": "predict only, waiting requests merged", **run_phase(
            url, pairs, args.clients, args.seconds, args.max_requests, server.pid)})
        job = httpx.post(f"{url}/train", json={"model": args.train_model}, timeout=30).json()["job_id"]
        phase = run_phase(url, pairs, args.clients, args.seconds, args.max_requests, server.pid)
        status = httpx.get(f"{url}/jobs/{job}", timeout=30).json()
        while status["status"] in ("queued", "running"):
            time.sleep(2)
            status = httpx.get(f"{url}/jobs/{job}", timeout=30).json()
        rows.append({"phase": f"merged, while /train ({args.train_model}) runs", **phase})
        rows.append({"phase": "merged, again (memory still flat?)", **run_phase(
            url, pairs, args.clients, args.seconds, args.max_requests, server.pid)})
        alive = httpx.get(f"{url}/health", timeout=10).status_code == 200
    finally:
        stop(server)
    table = pd.DataFrame(rows)
    table["p95 / baseline"] = (table["p95 ms"] / table["p95 ms"].iloc[0]).map(lambda x: f"{x:.2f}x")
    body = (f"{args.clients} concurrent clients for {args.seconds:.0f} s per phase (at most {args.max_requests} "
            f"requests), each `POST /predict` a real MVSA-Single text + JPEG (multipart), one uvicorn worker, "
            f"shipped model on CPU. The baseline server runs one forward pass per request "
            f"(`{MAX_BATCH_ENV}=1`); the default one merges the requests that wait while a pass runs into the "
            f"next pass (`mmsent.serving.coalesce`, up to 32 pairs), in the same run.\n\n" + table.to_markdown(index=False)
            + f"\n\nThe background training job ended `{status['status']}`"
            + (f" (test acc {status['metrics']['accuracy']['mean']:.2f} over its seeds; the server then switched "
               f"to its seed {status['served_seed']})" if status.get("metrics") else f" ({status.get('error')})")
            + f"; the server answered /health afterwards: {alive}. One forward pass runs at a time "
              "(tokenizers are not thread-safe, and one pass already uses every core); image decoding "
              "runs in parallel worker threads.\n")
    out = update_section(params.path("reports/benchmarks.md"), "API load", body, "python " + " ".join(sys.argv))
    print(body, f"written to {out}", sep="\n")


if __name__ == "__main__":
    main()
