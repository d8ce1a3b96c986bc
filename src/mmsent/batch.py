"""Batch scoring of a CSV of (text, image) pairs with a progress bar; bad rows never stop it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from mmsent.evaluate import save_frame


def score_csv(pipe, csv_in: Path, out: Path, batch_size: int = 32, image_root: Path | None = None,
              progress: bool = True) -> dict[str, Any]:
    """Read ``csv_in`` (columns ``text`` and/or ``image``), write ``out`` with label, probabilities
    and an ``error`` column; returns counts and the list of bad rows."""
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
            image = root / image
        pairs.append({"text": row.get("text") or None, "image": image})
    results = []
    for start in tqdm(range(0, len(pairs), batch_size), disable=not progress, desc="scoring"):
        results += pipe.predict_batch(pairs[start:start + batch_size], batch_size=batch_size)
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
