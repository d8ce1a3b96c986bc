"""The ``features`` stage: frozen backbone features, computed once per pair and cached.

Layout: ``data/features/<encoder>/<dataset>.npz`` with ``ids`` (str), ``X`` (float32,
n x dim) and ``ok`` (bool: False where the input could not be read), plus a checksum.
Only clean pairs (those in train/dev/test) are encoded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.data import PARTS
from mmsent.encoders import encoder_dirname, get_encoder
from mmsent.io import load_arrays, save_arrays, write_json
from mmsent.prepare import PREPARED_DIR

FEATURES_DIR = Path("data/features")


@dataclass
class FeatureSet:
    encoder: str
    ids: np.ndarray
    X: np.ndarray
    ok: np.ndarray

    def select(self, ids) -> tuple[np.ndarray, np.ndarray]:
        """Rows for ``ids`` in that order (KeyError names the first missing id)."""
        index = {k: i for i, k in enumerate(self.ids)}
        try:
            rows = [index[str(k)] for k in ids]
        except KeyError as exc:
            raise KeyError(f"id {exc.args[0]} has no cached {self.encoder} features; rerun `dvc repro`") from exc
        return self.X[rows], self.ok[rows]


def feature_path(params: Params, encoder: str, dataset: str) -> Path:
    return params.path(FEATURES_DIR) / encoder_dirname(encoder) / f"{dataset}.npz"


def load_features(params: Params, encoder: str, dataset: str) -> FeatureSet:
    path = feature_path(params, encoder, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `dvc repro features` first")
    arrays, meta = load_arrays(path)
    return FeatureSet(meta["encoder"], arrays["ids"].astype(str), arrays["X"], arrays["ok"])


def encode_table(encoder, df: pd.DataFrame, root: Path, batch_size: int,
                 progress: bool) -> tuple[np.ndarray, np.ndarray]:
    if encoder.modality == "text":
        X = encoder.encode(list(df["text"]), batch_size=batch_size, progress=progress)
        return X, np.ones(len(df), bool)
    X = encoder.encode([root / rel for rel in df["image"]], batch_size=batch_size, progress=progress)
    return X, encoder.last_ok.copy()


def run(params: Params, progress: bool = True) -> dict:
    """Encode every clean pair of each dataset with every configured encoder."""
    cfg = params.features
    summary: dict = {}
    jobs = [(name, ds) for name in cfg.text_encoders for ds in ("single", "multiple")]
    jobs += [(name, "single") for name in cfg.image_encoders]  # MVSA-Multiple has no images
    encoders: dict = {}
    for name, dataset in jobs:
        df = pd.read_parquet(params.path(PREPARED_DIR) / f"{dataset}.parquet")
        df = df[df["split"].isin(PARTS)].reset_index(drop=True)
        if name not in encoders:
            encoders[name] = get_encoder(name, device=cfg.device, image_size=cfg.image_size)
        encoder = encoders[name]
        start = time.perf_counter()
        X, ok = encode_table(encoder, df, params.data.root, cfg.batch_size, progress)
        seconds = time.perf_counter() - start
        save_arrays(feature_path(params, name, dataset),
                    meta={"encoder": name, "dataset": dataset, "dim": int(X.shape[1])},
                    ids=df["id"].astype(str).to_numpy(), X=X.astype(np.float32), ok=ok)
        summary[f"{name}/{dataset}"] = {
            "pairs": len(df), "dim": int(X.shape[1]), "unreadable_inputs": int((~ok).sum()),
            "seconds": round(seconds, 1), "device": str(encoder.device),
        }
    write_json(params.path(FEATURES_DIR) / "summary.json", summary)
    return summary
