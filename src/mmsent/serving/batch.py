"""Batch scoring of a CSV of (text, image) pairs; bad rows never stop it.

Two backends with one output: in this process (:func:`score_csv`), or spread over Ray
workers (:func:`score_csv` with ``workers``/``address``), a local Ray instance by default or
a running cluster at ``ray://host:10001``. Each Ray worker loads the model once and scores
chunks of rows; the chunks come back in order. On a cluster, image paths must resolve on
every worker (a shared filesystem), like the model file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from mmsent.evaluation.metrics import save_frame
from mmsent.progress import bar


def read_pairs(csv_in: Path, image_root: Path | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The CSV (columns ``text`` and/or ``image``) and its rows as pairs; relative image paths
    start at ``image_root`` (default: the CSV's folder)."""
    try:
        df = pd.read_csv(csv_in, dtype=str, keep_default_na=False, encoding_errors="replace")
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"cannot read {csv_in} as CSV: {exc}") from exc
    if not {"text", "image"} & set(df.columns):
        raise ValueError(f"{csv_in} needs a 'text' and/or an 'image' column; it has {list(df.columns)}")
    root = Path(image_root) if image_root else Path(csv_in).parent
    pairs = []
    for _, row in df.iterrows():
        image = row.get("image") or None
        if image is not None and not Path(image).is_absolute():
            image = str(root / image)
        pairs.append({"text": row.get("text") or None, "image": image})
    return df, pairs


def chunks(pairs: list, size: int) -> list[list]:
    return [pairs[start:start + size] for start in range(0, len(pairs), size)]


def score_local(pipe, pairs: list[dict[str, Any]], batch_size: int = 32, progress: bool = True) -> list[dict]:
    results: list[dict] = []
    for chunk in bar(chunks(pairs, batch_size), progress, desc="scoring"):
        results += pipe.predict_batch(chunk, batch_size=batch_size)
    return results


def score_ray(model_path: str | Path | None, pairs: list[dict[str, Any]], workers: int = 2,
              address: str | None = None, batch_size: int = 32, threads_per_worker: int = 1,
              progress: bool = True) -> list[dict]:
    """Score ``pairs`` on ``workers`` Ray actors (each loads the model once, uses
    ``threads_per_worker`` torch threads); a local Ray instance unless ``address`` is given."""
    import ray
    from ray.util import ActorPool

    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers * threads_per_worker, include_dashboard=False, log_to_driver=False)

    @ray.remote(num_cpus=threads_per_worker)
    class Scorer:
        def __init__(self, path: str | None, threads: int) -> None:
            import torch

            from mmsent.serving.pipeline import Pipeline

            torch.set_num_threads(threads)
            self.pipe = Pipeline.load(path, device="cpu")

        def score(self, chunk: list[dict[str, Any]]) -> list[dict]:
            return self.pipe.predict_batch(chunk, batch_size=batch_size)

    try:
        pool = ActorPool([Scorer.remote(str(model_path) if model_path else None, threads_per_worker)
                          for _ in range(workers)])
        results: list[dict] = []
        parts = chunks(pairs, batch_size)
        for scored in bar(pool.map(lambda actor, chunk: actor.score.remote(chunk), parts), progress,
                          total=len(parts), desc=f"scoring on {workers} Ray workers"):
            results += scored  # ActorPool.map keeps the input order
        return results
    finally:
        if started_here:
            ray.shutdown()


def write_scored(df: pd.DataFrame, results: list[dict], out: Path) -> dict[str, Any]:
    """The input columns plus label, probabilities, modalities and an ``error`` column."""
    rows, bad = [], []
    for i, res in enumerate(results):
        if "error" in res:
            bad.append({"row": i + 2, "error": res["error"]})  # +2: header line, 1-based
            rows.append({"label": "", "error": res["error"]})
        else:
            rows.append({"label": res["label"], **{f"p_{k}": v for k, v in res["probabilities"].items()},
                         "modalities": "+".join(res["modalities"]), "error": ""})
    save_frame(pd.concat([df, pd.DataFrame(rows)], axis=1), out)
    return {"rows": len(df), "scored": len(df) - len(bad), "bad": len(bad), "bad_rows": bad, "out": str(out)}


def score_csv(pipe, csv_in: Path, out: Path, batch_size: int = 32, image_root: Path | None = None,
              progress: bool = True, workers: int = 0, address: str | None = None,
              model_path: str | Path | None = None) -> dict[str, Any]:
    """Score ``csv_in`` into ``out``; returns counts and the list of bad rows.

    ``workers`` > 0 or an ``address`` scores on Ray (``pipe`` is then not used; the workers
    load ``model_path``, default the shipped model); otherwise ``pipe`` scores here.
    """
    df, pairs = read_pairs(csv_in, image_root)
    if workers or address:
        results = score_ray(model_path, pairs, workers=workers or 2, address=address, batch_size=batch_size,
                            progress=progress)
    else:
        results = score_local(pipe, pairs, batch_size, progress)
    return write_scored(df, results, out)
