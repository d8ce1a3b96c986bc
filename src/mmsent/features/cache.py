"""The ``features`` stage: frozen backbone features, computed once per pair and cached.

Layout: ``data/features/<encoder>/<dataset>.npz`` with ``ids`` (str), ``X`` (float32,
n x dim) and ``ok`` (bool: False where the input could not be read), plus a checksum. Text
found inside the images (``features.ocr_encoders``) goes to ``<encoder>/<dataset>_ocr.npz``,
``ok`` False where the image has no text. The tweet text under another normalisation
(``features.text_variants``, MVSA-Single only) goes to ``<encoder>/<dataset>_text-<variant>.npz``.
Another text of the same tweet (``features.augmentations``, e.g. CLMLF's back-translations) goes
to ``<encoder>/<dataset>_aug-<name>.npz`` for train and dev pairs only: a test pair's row stays
zero with ``ok`` False, so no test translation can reach training.
Only clean pairs (those in train/dev/test) are encoded.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.data.prepare import clean_pairs
from mmsent.data.text import normalize_tweet
from mmsent.device import pick_device
from mmsent.features.base import encoder_dirname, item_shape, uses_onnx
from mmsent.features.encoders import computed_by, get_encoder
from mmsent.io import load_arrays, read_summary, save_arrays, write_summary
from mmsent.models.fusion import SOURCES
from mmsent.parallel import resolve_workers, run_jobs, share_bounds
from mmsent.paths import FEATURES_DIR, TIMINGS_DIR


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
    if modality.startswith("aug-"):  # an augmentation's texts (see augmented_texts)
        return f"{dataset}_{modality}"
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
    return FeatureSet(meta["encoder"], arrays["ids"].astype(str), perturbed(params, arrays["X"], encoder, dataset),
                      arrays["ok"])


def perturbed(params: Params, X: np.ndarray, encoder: str, dataset: str) -> np.ndarray:
    """``X`` times (1 + scale · N(0, 1)) when ``perturb.scale`` is set: another machine's float
    kernels, simulated (``mmsent check-reproducible --perturb``). Seeded per cache, so repeatable."""
    scale = float(params.perturb.scale)
    if not scale:
        return X
    key = zlib.crc32(f"{encoder}/{dataset}/{params.perturb.seed}".encode())
    noise = np.random.default_rng(key).standard_normal(X.shape, dtype=np.float32)
    return (X.astype(np.float32) * (1 + scale * noise)).astype(X.dtype)


_LOADED: dict[tuple, Any] = {}  # encoders this process has loaded: a pool worker keeps them between shares


def loaded_encoder(name: str, device: str, image_size: int, backend: str | dict = "torch"):
    key = (name, str(device), image_size, json.dumps(backend, sort_keys=True))
    if key not in _LOADED:
        _LOADED[key] = get_encoder(name, device=device, image_size=image_size, backend=backend)
    return _LOADED[key]


def encode_share(name: str, device: str, image_size: int, items: list, batch_size: int,
                 progress: bool = False, backend: str | dict = "torch") -> tuple[np.ndarray, np.ndarray, float]:
    """One share of one encoder's inputs: ``(X, ok, seconds)``; ``ok`` False for unreadable images."""
    encoder = loaded_encoder(name, device, image_size, backend)
    start = time.perf_counter()
    X = np.asarray(encoder.encode(items, batch_size=batch_size, progress=progress), np.float32)
    ok = encoder.last_ok.copy() if encoder.modality == "image" else np.ones(len(items), bool)
    return X.reshape(len(items), *item_shape(encoder)), ok, time.perf_counter() - start


def job_inputs(params: Params, df: pd.DataFrame, source: str, variant: str | None) -> tuple[list, np.ndarray]:
    """What one cache encodes for the pairs of ``df``: the inputs, and which pairs have one
    (an image without text inside has no OCR input: its row stays zero and ``ok`` False)."""
    if source == "image":
        return [params.data.root / rel for rel in df["image"]], np.ones(len(df), bool)
    if source == "ocr":
        from mmsent.data.ocr import load_ocr

        found = df["id"].astype(str).map(load_ocr(params, "single").set_index("id")["ocr_text"]).fillna("")
        has = (found.str.len() > 0).to_numpy()
        return list(found[has]), has
    if source == "augment":  # training pairs only: train and dev (cross-validation trains on both)
        texts = augmented_texts(params, variant, "single")
        has = (df["split"].isin(["train", "dev"]) & df["id"].astype(str).isin(texts)).to_numpy()
        return [texts[i] for i in df.loc[has, "id"].astype(str)], has
    texts = variant_texts(params, df, variant) if variant else list(df["text"])
    return texts, np.ones(len(df), bool)


def augmented_texts(params: Params, name: str, dataset: str) -> dict[str, str]:
    """id → the augmentation's text of that tweet, normalised as the tweets are."""
    if name not in params.features.augmentations:
        raise KeyError(f"unknown augmentation {name!r}; features.augmentations has {sorted(params.features.augmentations)}")
    path = params.data.root / params.features.augmentations[name].format(dataset=dataset)
    items = json.loads(path.read_text(encoding="utf-8"))
    return {str(item["id"]): normalize_tweet(str(item["text_translation"]), params.text) for item in items}


def variant_texts(params: Params, df: pd.DataFrame, variant: str) -> list[str]:
    """The tweets of ``df`` (from their raw text) normalised as ``features.text_variants.<variant>`` says."""
    text_cfg = params.features.text_config(params.text, variant)
    return [normalize_tweet(t, text_cfg) for t in df["text_raw"]]


def run(params: Params, progress: bool = True, only: list[str] | None = None,
        datasets: tuple[str, ...] = ("single", "multiple")) -> dict:
    """Encode every clean pair of each dataset with every configured encoder (or just the
    encoders in ``only``, on ``datasets``: adding one encoder leaves the other caches alone).

    Each encoder reads each distinct input once (a tweet that MVSA-Multiple or a text variant
    repeats is not encoded again), in contiguous shares on every core (one process and thread
    each, the encoder loaded once per process). An encoder whose features are columns of another
    configured one (``encoders.COLUMNS_OF``) is cut from that one's pass instead of run again."""
    cfg = params.features
    # (encoder, dataset, model input it feeds, text variant)
    jobs = [(name, ds, "text", None) for name in cfg.text_encoders for ds in ("single", "multiple")]
    jobs += [(name, "single", "image", None) for name in cfg.image_encoders]  # MVSA-Multiple has no images
    jobs += [(name, "single", "ocr", None) for name in cfg.ocr_encoders]  # text inside the images (ocr stage)
    variant_encoders = [n for n in cfg.text_encoders if cfg.variant_encoders is None or n in cfg.variant_encoders]
    jobs += [(name, "single", "text", v) for v in cfg.text_variants for name in variant_encoders]
    jobs += [(name, "single", "augment", a) for a in cfg.augmentations for name in variant_encoders]
    jobs = [job for job in jobs if (not only or job[0] in only) and job[1] in datasets]
    tables = {ds: clean_pairs(params, ds) for ds in {job[1] for job in jobs}}
    inputs = {job: job_inputs(params, tables[job[1]], job[2], job[3]) for job in jobs}
    configured = {job[0] for job in jobs}
    run_from = {name: computed_by(name, configured) for name in configured}  # -> (encoder run, its columns)
    seen: dict[str, dict] = {}  # encoder -> {input: row in its encoded rows}
    added = {}  # job -> how many distinct inputs it adds to its encoder's rows
    tasks, owner = [], []  # one task per share of the inputs a job adds; the job it belongs to
    device = pick_device(cfg.device)
    workers = resolve_workers("auto", sum(len(items) for items, _ in inputs.values()), str(device))
    for job in jobs:
        run_as = run_from[job[0]][0]
        rows = seen.setdefault(run_as, {})
        new = [x for x in dict.fromkeys(inputs[job][0]) if x not in rows]
        rows.update({x: i for i, x in enumerate(new, start=len(rows))})
        added[job] = len(new)
        for a, b in share_bounds(len(new), workers) if new else []:
            tasks.append((run_as, str(device), cfg.image_size, new[a:b], cfg.batch_size, progress and a == 0,
                          cfg.backend))
            owner.append(job)
    # export each ONNX model here, once, before the workers read the cache (torch encoders, and every
    # encoder on a GPU, need nothing: building them here would only load their weights twice)
    on_onnx = {t[0] for t, job in zip(tasks, owner)
               if uses_onnx(cfg.backend, "image" if job[2] == "image" else "text", device)}
    for name in sorted(on_onnx):
        get_encoder(name, device=str(device), image_size=cfg.image_size, backend=cfg.backend)
    done = run_jobs(encode_share, tasks, workers)
    spent = dict.fromkeys(jobs, 0.0)  # CPU seconds (one thread) each job's shares took
    for job, (_, _, seconds) in zip(owner, done):
        spent[job] += seconds
    encoded, readable = {}, {}
    for name in seen:
        mine = [d for t, d in zip(tasks, done) if t[0] == name]
        shape = mine[0][0].shape[1:] if mine else item_shape(loaded_encoder(name, str(device), cfg.image_size,
                                                                            cfg.backend))
        encoded[name] = np.concatenate([X for X, _, _ in mine]) if mine else np.zeros((0, *shape), np.float32)
        readable[name] = np.concatenate([ok for _, ok, _ in mine]) if mine else np.zeros(0, bool)
    summary: dict = {}
    for job in jobs:
        name, dataset, source, variant = job
        df, (items, has) = tables[dataset], inputs[job]
        run_as, columns = run_from[name]
        rows = [seen[run_as][x] for x in items]
        mine = encoded[run_as][..., columns]
        X = np.zeros((len(df), *mine.shape[1:]), np.float32)
        X[has] = mine[rows]
        if X.ndim == 3:  # token / region vectors: half the disk and memory, ample precision
            X = X.astype(np.float16)
        ok = has.copy()
        ok[has] = readable[run_as][rows]
        cache = cache_name(f"aug-{variant}" if source == "augment" else source, dataset, variant)
        save_arrays(feature_path(params, name, cache), meta={"encoder": name, "dataset": cache, "dim": int(X.shape[-1])},
                    ids=df["id"].astype(str).to_numpy(), X=X, ok=ok)
        summary[f"{name}/{cache}"] = {
            "pairs": len(df), "dim": int(X.shape[-1]), "unreadable_inputs": int((~ok).sum()),
            "new_inputs": added[job], "seconds": round(spent[job], 1), "device": str(device),
            "backend": cfg.backend,
        }
        if run_as != name:
            summary[f"{name}/{cache}"]["columns_of"] = run_as
    if only:  # keep what the other encoders' caches said
        summary = {**read_features_summary(params), **summary}
    write_summary(params.path(FEATURES_DIR) / "summary.json", summary, params.path(TIMINGS_DIR) / "features.json")
    return summary


def read_features_summary(params: Params) -> dict:
    """What the features stage wrote per cache (pairs, width, unreadable inputs, seconds); {} if none."""
    path = params.path(FEATURES_DIR) / "summary.json"
    return read_summary(path, params.path(TIMINGS_DIR) / "features.json") if path.is_file() else {}
