"""Batch scoring of a table of (text, image) pairs; bad rows never stop it.

The schema (docs/serving.md): a CSV, JSON Lines or Parquet file (by extension) with a text column
and/or an image column (``text`` / ``image`` unless named otherwise); relative image paths start at
``image_root`` (default: the input file's folder). The output (CSV, JSON Lines or Parquet, by its
extension) is every input column as it was, then :data:`OUTPUT_COLUMNS`; an input that already has
one of those columns is refused rather than overwritten. With a gold label column, the summary adds
accuracy, weighted F1 and the confusion matrix over the rows that were scored.

Two backends with one output: in this process (:func:`score_file`), or spread over Ray workers
(``workers``/``address``), a local Ray instance by default or a running cluster at
``ray://host:10001``. Each Ray worker loads the model once and scores chunks of rows; the chunks
come back in order. On a cluster, image paths must resolve on every worker (a shared filesystem),
like the model file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from mmsent.data.labels import LABEL2ID, LABELS
from mmsent.io import atomic_path
from mmsent.progress import bar

OUTPUT_COLUMNS = ("pred_label", "pred_score", *(f"p_{label}" for label in LABELS), "pred_modalities", "error")
FORMATS = (".csv", ".jsonl", ".parquet")


def table_format(path: Path) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: unknown table format {suffix or '(none)'}; use one of {', '.join(FORMATS)}")
    return suffix


def read_table(path: Path) -> pd.DataFrame:
    """A CSV, JSON Lines or Parquet file as strings (empty cells as ""), with a clear error if unreadable."""
    suffix = table_format(path)
    try:
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding_errors="replace")
        df = pd.read_json(path, lines=True, dtype=False) if suffix == ".jsonl" else pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError, pd.errors.EmptyDataError, ImportError) as exc:
        raise ValueError(f"cannot read {path} as {suffix[1:]}: {exc}") from exc
    return df.astype(object).where(df.notna(), "").astype(str)


def write_table(df: pd.DataFrame, path: Path) -> Path:
    """Written whole or not at all (temp file, then rename), in the format of ``path``'s extension."""
    suffix = table_format(path)
    with atomic_path(path, suffix=suffix) as tmp:
        if suffix == ".csv":
            df.to_csv(tmp, index=False)
        elif suffix == ".jsonl":
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        else:
            df.to_parquet(tmp, index=False)
    return Path(path)


def read_pairs(path: Path, image_root: Path | None = None, text_col: str = "text", image_col: str = "image",
               label_col: str | None = None) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """The table and its rows as pairs. At least one of ``text_col`` / ``image_col`` must be a
    column; ``label_col``, when given, must be one, holding label names."""
    df = read_table(path)
    present = [c for c in (text_col, image_col) if c in df.columns]
    if not present:
        raise ValueError(f"{path} needs a {text_col!r} and/or an {image_col!r} column; it has {list(df.columns)} "
                         "(--text-col / --image-col name others)")
    if label_col is not None and label_col not in df.columns:
        raise ValueError(f"{path} has no label column {label_col!r}; it has {list(df.columns)}")
    clash = sorted(set(OUTPUT_COLUMNS) & set(df.columns))
    if clash:
        raise ValueError(f"{path} already has the output column(s) {clash}: rename them, nothing was scored")
    root = Path(image_root) if image_root else Path(path).parent
    pairs = []
    for _, row in df.iterrows():
        image = row.get(image_col) or None
        if image is not None and not Path(image).is_absolute():
            image = str(root / image)
        pairs.append({"text": row.get(text_col) or None, "image": image})
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


def scored_columns(results: list[dict]) -> pd.DataFrame:
    """:data:`OUTPUT_COLUMNS` for each result: the label, its probability (``pred_score``), every
    class's probability, the modalities used, or the row's error."""
    rows = []
    for res in results:
        if "error" in res:
            rows.append({"pred_label": "", "error": res["error"]})
        else:
            rows.append({"pred_label": res["label"], "pred_score": res["score"],
                         **{f"p_{k}": v for k, v in res["probabilities"].items()},
                         "pred_modalities": "+".join(res["modalities"]), "error": ""})
    return pd.DataFrame(rows, columns=list(OUTPUT_COLUMNS))


def agreement_summary(gold: pd.Series, predicted: pd.Series) -> dict[str, Any]:
    """Accuracy, weighted F1 and the confusion matrix (rows gold, columns predicted, in LABELS order)
    over the rows that have both a known gold label and a prediction."""
    from mmsent.evaluation.metrics import compute_metrics

    known = gold.isin(LABELS) & predicted.isin(LABELS)
    out: dict[str, Any] = {"evaluated": int(known.sum()), "unknown_gold": int((~gold.isin(LABELS)).sum())}
    if known.any():
        m = compute_metrics(gold[known].map(LABEL2ID), predicted[known].map(LABEL2ID))
        out.update(accuracy=round(m["accuracy"], 2), weighted_f1=round(m["weighted_f1"], 2),
                   confusion_matrix={"labels": list(LABELS), "rows_gold_columns_predicted": m["confusion_matrix"]})
    return out


def write_scored(df: pd.DataFrame, results: list[dict], out: Path, label_col: str | None = None,
                 id_col: str | None = None) -> dict[str, Any]:
    """The input columns, then the output columns; returns counts, the bad rows (by ``id_col`` or
    line) and, with ``label_col``, the agreement with it."""
    scored = scored_columns(results)
    bad = [{"row": (df[id_col].iloc[i] if id_col else i + 2), "error": err}  # +2: header line, 1-based
           for i, err in enumerate(scored["error"]) if err]
    write_table(pd.concat([df.reset_index(drop=True), scored], axis=1), out)
    summary = {"rows": len(df), "scored": len(df) - len(bad), "bad": len(bad), "bad_rows": bad, "out": str(out)}
    if label_col:
        summary["against_" + label_col] = agreement_summary(df[label_col].str.strip().str.lower(), scored["pred_label"])
    return summary


def score_file(pipe, path: Path, out: Path, batch_size: int = 32, image_root: Path | None = None,
               progress: bool = True, workers: int = 0, address: str | None = None,
               model_path: str | Path | None = None, text_col: str = "text", image_col: str = "image",
               id_col: str | None = None, label_col: str | None = None) -> dict[str, Any]:
    """Score the table ``path`` into ``out``; returns counts, the bad rows and any agreement summary.

    ``workers`` > 0 or an ``address`` scores on Ray (``pipe`` is then not used; the workers
    load ``model_path``, default the shipped model); otherwise ``pipe`` scores here. Nothing is
    written when the input is refused (unreadable, missing or clashing columns).
    """
    table_format(out)
    df, pairs = read_pairs(path, image_root, text_col, image_col, label_col)
    if id_col is not None and id_col not in df.columns:
        raise ValueError(f"{path} has no id column {id_col!r}; it has {list(df.columns)}")
    if workers or address:
        results = score_ray(model_path, pairs, workers=workers or 2, address=address, batch_size=batch_size,
                            progress=progress)
    else:
        results = score_local(pipe, pairs, batch_size, progress)
    return write_scored(df, results, out, label_col, id_col)


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as a person reads it: counts, and the agreement with a gold column as a table."""
    lines = [json.dumps({k: v for k, v in summary.items() if not k.startswith("against_")}, default=str)]
    for key, agree in summary.items():
        if key.startswith("against_") and "accuracy" in agree:
            cm = agree["confusion_matrix"]["rows_gold_columns_predicted"]
            width = max(len(label) for label in LABELS) + 2
            lines += [f"{key.removeprefix('against_')}: accuracy {agree['accuracy']:.2f} %, weighted F1 "
                      f"{agree['weighted_f1']:.2f} % over {agree['evaluated']} rows "
                      f"({agree['unknown_gold']} without a known gold label)",
                      "gold \\ predicted".ljust(width + 6) + "".join(label.rjust(width) for label in LABELS),
                      *[label.ljust(width + 6) + "".join(str(v).rjust(width) for v in row)
                        for label, row in zip(LABELS, cm)]]
    return "\n".join(lines)
