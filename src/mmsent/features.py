"""The ``features`` stage: frozen backbone features, computed once per pair and cached.

Layout: ``data/features/<encoder>/<dataset>.npz`` with ``ids`` (str), ``X`` (float32,
n x dim) and ``ok`` (bool: False where the input could not be read), plus a checksum. Text
found inside the images (``features.ocr_encoders``) goes to ``<encoder>/<dataset>_ocr.npz``,
``ok`` False where the image has no text. The tweet text under another normalisation
(``features.text_variants``, MVSA-Single only) goes to ``<encoder>/<dataset>_text-<variant>.npz``.
Only clean pairs (those in train/dev/test) are encoded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.encoders import encoder_dirname, get_encoder
from mmsent.io import load_arrays, read_json, save_arrays, write_json
from mmsent.models.fusion import SOURCES
from mmsent.prepare import clean_pairs
from mmsent.text import normalize_tweet

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


def cache_name(modality: str, dataset: str, text_variant: str | None = None) -> str:
    """The cache file of a model input: text inside the images and other normalisations of the
    tweet are cached beside the tweet text."""
    if modality == "ocr":
        return f"{dataset}_ocr"
    if text_variant and SOURCES.get(modality) == "text":
        return f"{dataset}_text-{text_variant}"
    return dataset


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


def encode_ocr(encoder, df: pd.DataFrame, ocr: pd.DataFrame, batch_size: int,
               progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """The text found inside each pair's image; ``ok`` is False (and the row zero) where none was."""
    found = df["id"].astype(str).map(ocr.set_index("id")["ocr_text"]).fillna("")
    ok = (found.str.len() > 0).to_numpy()
    X = np.zeros((len(df), encoder.dim), np.float32)
    if ok.any():
        X[ok] = encoder.encode(list(found[ok]), batch_size=batch_size, progress=progress)
    return X, ok


def variant_texts(params: Params, df: pd.DataFrame, variant: str) -> list[str]:
    """The tweets of ``df`` (from their raw text) normalised as ``features.text_variants.<variant>`` says."""
    text_cfg = params.features.text_config(params.text, variant)
    return [normalize_tweet(t, text_cfg) for t in df["text_raw"]]


def run(params: Params, progress: bool = True, only: list[str] | None = None,
        datasets: tuple[str, ...] = ("single", "multiple")) -> dict:
    """Encode every clean pair of each dataset with every configured encoder (or just the
    encoders in ``only``, on ``datasets``: adding one encoder leaves the other caches alone)."""
    cfg = params.features
    summary: dict = {}
    # (encoder, dataset, model input it feeds, text variant)
    jobs = [(name, ds, "text", None) for name in cfg.text_encoders for ds in ("single", "multiple")]
    jobs += [(name, "single", "image", None) for name in cfg.image_encoders]  # MVSA-Multiple has no images
    jobs += [(name, "single", "ocr", None) for name in cfg.ocr_encoders]  # text inside the images (ocr stage)
    jobs += [(name, "single", "text", v) for v in cfg.text_variants for name in cfg.text_encoders]
    jobs = [job for job in jobs if (not only or job[0] in only) and job[1] in datasets]
    encoders: dict = {}
    for name, dataset, source, variant in jobs:
        df = clean_pairs(params, dataset)
        if name not in encoders:
            encoders[name] = get_encoder(name, device=cfg.device, image_size=cfg.image_size)
        encoder = encoders[name]
        start = time.perf_counter()
        if source == "ocr":
            from mmsent.ocr import load_ocr

            X, ok = encode_ocr(encoder, df, load_ocr(params, dataset), cfg.batch_size, progress)
        else:
            if variant:
                df = df.assign(text=variant_texts(params, df, variant))
            X, ok = encode_table(encoder, df, params.data.root, cfg.batch_size, progress)
        seconds = time.perf_counter() - start
        dataset = cache_name(source, dataset, variant)
        save_arrays(feature_path(params, name, dataset),
                    meta={"encoder": name, "dataset": dataset, "dim": int(X.shape[1])},
                    ids=df["id"].astype(str).to_numpy(), X=X.astype(np.float32), ok=ok)
        summary[f"{name}/{dataset}"] = {
            "pairs": len(df), "dim": int(X.shape[1]), "unreadable_inputs": int((~ok).sum()),
            "seconds": round(seconds, 1), "device": str(encoder.device),
        }
    if only:  # keep what the other encoders' caches said
        path = params.path(FEATURES_DIR) / "summary.json"
        summary = {**(read_json(path) if path.is_file() else {}), **summary}
    write_json(params.path(FEATURES_DIR) / "summary.json", summary)
    return summary
