"""The ``prepare`` stage: MVSA → cleaned, split, audited tables under ``data/prepared``.

Outputs (paths relative to the project):

* ``data/prepared/{single,multiple}.parquet`` — one row per raw pair with raw and
  normalised text, decoding used, labels, ``split`` (train/dev/test, ``dropped`` by the
  cleaning rule) and, for MVSA-Single, image checks and fingerprints, plus ``leak``
  (dev/test pair with a duplicate image or text in train)
* ``data/prepared/summary.json`` — every count the data report states
* ``reports/tables/leakage_summary.csv`` and ``reports/tables/leakage_pairs.csv``
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mmsent.config import Params
from mmsent.data.leakage import audit, fingerprint_image, leaked_ids
from mmsent.data.mvsa import PARTS, count_label_rows, class_counts, pairs_to_frame, read_dataset, split_assignment
from mmsent.io import write_json
from mmsent.paths import PREPARED_DIR, TABLES_DIR
from mmsent.progress import bar


def clean_pairs(params: Params, dataset: str) -> pd.DataFrame:
    """The prepared pairs of ``dataset`` that the split assigns to train, dev or test."""
    df = pd.read_parquet(params.path(PREPARED_DIR) / f"{dataset}.parquet")
    return df[df["split"].isin(PARTS)].reset_index(drop=True)


def add_image_checks(df: pd.DataFrame, root: Path, max_pixels: int, progress: bool = True) -> pd.DataFrame:
    prints = [fingerprint_image(root / rel, max_pixels)
              for rel in bar(df["image"], progress, desc="images")]
    df = df.copy()
    for field in ("status", "sha256", "phash", "width", "height", "error"):
        df[f"image_{field}" if field in ("status", "width", "height", "error") else field] = [
            getattr(p, field) for p in prints]
    return df


def summarize(df: pd.DataFrame) -> dict:
    clean = df[df["label"].notna()]
    out = {
        "raw_pairs": len(df),
        "label_rows": None,
        "clean_pairs": len(clean),
        "dropped_conflicts": int((df["split"] == "dropped").sum()),
        "clean_by_label": class_counts(clean),
        "raw_text_labels": class_counts(df, "text_label"),
        "raw_image_labels": class_counts(df, "image_label"),
        "decoding": {k: int(v) for k, v in df["encoding"].value_counts().items()},
        "empty_texts": int((df["text_raw"].str.len() == 0).sum()),
        "missing_texts": int((df["encoding"] == "missing").sum()),
        "splits": {part: {"n": int((clean["split"] == part).sum()),
                          **class_counts(clean[clean["split"] == part])} for part in PARTS},
        "unassigned_clean_pairs": int((clean["split"] == "unassigned").sum()),
        "text_image_label_agreement": float((df["text_label"] == df["image_label"]).mean()),
    }
    if "image_status" in df.columns:
        out["image_status"] = {k: int(v) for k, v in df["image_status"].value_counts().items()}
    if "leak" in df.columns:
        out["leaked_eval_pairs"] = {part: int(df.loc[df["split"] == part, "leak"].sum())
                                    for part in ("dev", "test")}
    return out


def prepare_dataset(params: Params, dataset: str, limit: int | None = None,
                    progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Read, clean, split and audit one dataset. Returns (table, leakage summary, members)."""
    root = params.data.root
    pairs = read_dataset(root, dataset, params.text)
    if limit:
        pairs = pairs[:limit]
    df = pairs_to_frame(pairs, split_assignment(root, dataset, params.data.split, params.data.fold))
    if dataset == "single":
        df = add_image_checks(df, root, params.data.max_image_pixels, progress)
    summary, members = audit(df, params.data.phash_max_distance)
    df["leak"] = df["id"].isin(leaked_ids(df, members))
    summary.insert(0, "dataset", dataset)
    members.insert(0, "dataset", dataset)
    return df, summary, members


def run(params: Params, limit: int | None = None, progress: bool = True) -> dict:
    """The stage: both datasets, all outputs. Returns the summary that is also written."""
    out_dir = params.path(PREPARED_DIR)
    tables = params.path(TABLES_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables.mkdir(parents=True, exist_ok=True)
    summary, leak_rows, member_rows = {}, [], []
    for dataset in ("single", "multiple"):
        df, leak, members = prepare_dataset(params, dataset, limit, progress)
        df.to_parquet(out_dir / f"{dataset}.parquet", index=False)
        summary[dataset] = summarize(df)
        summary[dataset]["label_rows"] = count_label_rows(params.data.root, dataset)
        leak_rows.append(leak)
        member_rows.append(members)
    summary["config"] = {"split": params.data.split, "fold": params.data.fold,
                         "phash_max_distance": params.data.phash_max_distance,
                         "limit": limit or 0}
    pd.concat(leak_rows).to_csv(tables / "leakage_summary.csv", index=False)
    pd.concat(member_rows).to_csv(tables / "leakage_pairs.csv", index=False)
    write_json(out_dir / "summary.json", summary)
    return summary
