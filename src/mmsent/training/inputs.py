"""The tensors a model trains on: cached features (with masks, augmentations, soft targets),
tokens or pixels, per train / dev / test part, or the cross-validation pool."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmsent.config import Params
from mmsent.data.images import open_image, square_crop
from mmsent.data.labels import LABEL2ID
from mmsent.data.mvsa import load_parts
from mmsent.data.text import tokenize
from mmsent.features.cache import cache_name, load_features
from mmsent.models import family, make_config
from mmsent.models.fusion import SOURCES
from mmsent.models.lstm import build_vocab, encode_tokens
from mmsent.parallel import run_jobs, share_bounds
from mmsent.training.loop import SOFT_LABEL, TensorData
from mmsent.training.protocol import pool
from mmsent.training.specs import ModelSpec


def _labels(df: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(df["label_id"].astype(int).to_numpy(), dtype=torch.long)


def feature_data(params: Params, spec: ModelSpec, dataset: str,
                 parts: dict[str, pd.DataFrame]) -> tuple[dict[str, TensorData], dict[str, int]]:
    cache = {m: load_features(params, enc, cache_name(m, dataset, spec.text_variant)) for m, enc in spec.inputs.items()}
    out = {}
    for part, df in parts.items():
        inputs = {}
        for modality, feats in cache.items():
            X, ok = feats.select(df["id"])
            inputs[modality] = torch.from_numpy(X.astype(np.float32, copy=False))  # token/region caches are float16
            inputs[f"{modality}_mask"] = torch.from_numpy(ok.astype(np.float32))
        for modality in ("text", "image"):  # per-modality labels, for multi-task heads
            inputs[f"{modality}_label"] = torch.tensor(df[f"{modality}_label"].map(LABEL2ID).to_numpy(np.int64), dtype=torch.long)
        out[part] = TensorData(inputs, _labels(df), list(df["id"]))
    return out, {m: int(f.X.shape[-1]) for m, f in cache.items()}


def text_inputs(spec: ModelSpec) -> list[str]:
    """The model inputs computed from the tweet text (tweet vectors, lexicon scores, ...): what an
    augmentation's other text of the tweet replaces."""
    return [m for m in spec.inputs if SOURCES.get(m) == "text"]


def augment_data(params: Params, spec: ModelSpec, dataset: str, train: TensorData) -> tuple[TensorData, np.ndarray]:
    """``train``'s rows again with every text-derived input (:func:`text_inputs`) read from the
    augmentation's cache instead, and which rows have an augmented text (test pairs never do)."""
    inputs, ok = dict(train.inputs), np.ones(len(train), bool)
    for modality in text_inputs(spec):
        X, has = load_features(params, spec.inputs[modality], cache_name(f"aug-{spec.augment}", dataset)).select(train.ids)
        inputs[modality] = torch.from_numpy(X.astype(np.float32, copy=False))
        ok &= has
    return TensorData(inputs, train.labels.clone(), list(train.ids)), ok


def token_data(parts: dict[str, pd.DataFrame], config) -> dict[str, TensorData]:
    tokens = {part: [tokenize(t) for t in df["text"]] for part, df in parts.items()}
    config.vocab = build_vocab(tokens["train"], min_freq=config.min_freq)  # train split only
    out = {}
    for part, df in parts.items():
        ids, lengths = encode_tokens(tokens[part], config.vocab, config.max_len)
        out[part] = TensorData({"tokens": torch.from_numpy(ids), "lengths": torch.from_numpy(lengths)},
                               _labels(df), list(df["id"]))
    return out


def add_transformer_tokens(data: dict[str, TensorData], parts: dict[str, pd.DataFrame], config) -> None:
    """Tokenise each split's normalised texts for a fine-tuned encoder (padded to max_length)."""
    from transformers import AutoTokenizer

    from mmsent.features.base import local_model_path

    tokenizer = AutoTokenizer.from_pretrained(local_model_path(config.encoder), local_files_only=True)
    for part, df in parts.items():
        enc = tokenizer(list(df["text"]), padding="max_length", truncation=True, max_length=config.max_length,
                        return_tensors="pt")
        data[part].inputs["input_ids"] = enc["input_ids"]
        data[part].inputs["attention_mask"] = enc["attention_mask"]
        data[part].inputs["text_mask"] = torch.ones(len(df))


def load_pixels(root: Path, images: list[str], size: int) -> torch.Tensor:
    """uint8 (n, 3, size, size) centre-square crops of ``images`` (paths under ``root``)."""
    from torchvision.transforms import functional as F

    pixels = torch.zeros((len(images), 3, size, size), dtype=torch.uint8)
    for row, rel in enumerate(images):
        pixels[row] = F.pil_to_tensor(square_crop(open_image(root / rel), size))
    return pixels


def pixel_data(params: Params, parts: dict[str, pd.DataFrame], size: int) -> dict[str, TensorData]:
    """Every split's pixels, decoded in contiguous shares on every core (the same tensors as one by one)."""
    images = [rel for df in parts.values() for rel in df["image"]]
    bounds = share_bounds(len(images))
    pixels = torch.cat(run_jobs(load_pixels, [(params.data.root, images[a:b], size) for a, b in bounds], len(bounds)))
    out, start = {}, 0
    for part, df in parts.items():
        out[part] = TensorData({"pixels": pixels[start:start + len(df)].clone()}, _labels(df), list(df["id"]))
        start += len(df)
    return out


def set_feature_dims(config, dims: dict[str, int], spec: ModelSpec) -> None:
    """The widths of the cached inputs, written into the config by the family (FamilyModel.set_input_dims)."""
    try:
        family(spec.family).module.set_input_dims(config, dims)
    except ValueError as err:
        raise ValueError(f"models.{spec.name}: {err}") from None


def feature_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame], config,
                   protocol_parts: dict[str, pd.DataFrame] | None) -> dict[str, Any]:
    data, dims = feature_data(params, spec, dataset, parts)
    set_feature_dims(config, dims, spec)
    if spec.pretrain:
        from mmsent.training.pretrain import pretraining_data

        # every text of the protocol, not ``parts``: tuning passes an empty test part, and
        # cross-validation holds out train pairs too, so no Single text may be pre-trained on
        held = protocol_parts or load_parts(params, dataset)
        data["pretrain"] = pretraining_data(params, spec.inputs["text"], {"dev": pool(held), "test": held["test"]})
    return data


def finetune_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame], config,
                    protocol_parts=None) -> dict[str, Any]:
    # the tweet goes through the encoder being trained; the rest (image, lexicon, ocr) is cached
    cached_spec = dataclasses.replace(spec, inputs={m: e for m, e in spec.inputs.items() if m != "text"})
    data, dims = feature_data(params, cached_spec, dataset, parts)
    set_feature_dims(config, dims, spec)
    add_transformer_tokens(data, parts, config)
    return data


# what a family reads (its ``register(..., reads=...)``) → how its inputs are built
BUILDERS = {
    "features": feature_inputs,
    "features+tokens": finetune_inputs,
    "tokens": lambda params, spec, dataset, parts, config, protocol_parts=None: token_data(parts, config),
    "pixels": lambda params, spec, dataset, parts, config, protocol_parts=None: pixel_data(params, parts,
                                                                                           config.image_size),
}


def build_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
                 options: dict[str, Any] | None = None, protocol_parts: dict[str, pd.DataFrame] | None = None):
    """The family's config (``spec.options`` updated by ``options``) and its train/dev/test data.

    ``protocol_parts``: the protocol's own train/dev/test (default: ``load_parts``), whose texts
    pre-training on MVSA-Multiple must not see."""
    config = make_config(spec.family, {**spec.options, **(options or {})})
    reads = family(spec.family).reads
    if reads not in BUILDERS:
        raise KeyError(f"no input builder for family {spec.family!r} (it reads {reads!r})")
    data = BUILDERS[reads](params, spec, dataset, parts, config, protocol_parts)
    if spec.augment:
        if reads != "features" or spec.distill:
            raise ValueError(f"models.{spec.name}: augment works for heads on cached features without distill")
        data["augment"], data["augment_ok"] = augment_data(params, spec, dataset, data["train"])
        data["augment_as"] = spec.augment_as
        data["augment_keys"] = text_inputs(spec)  # what augment_data replaced
    if spec.distill:
        from mmsent.training.distill import soft_targets

        data["train"].inputs[SOFT_LABEL], seconds = soft_targets(params, spec, config, data, dataset)
        data["train"].facts["teacher_cpu_seconds"] = seconds  # once per model, not per seed
    return config, data


def cv_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
              options: dict[str, Any] | None = None):
    """The config and data of a cross-validated model: ``train`` is train + dev (the pool the folds
    cut), ``dev`` is empty (each fold holds out its own), ``test`` is test."""
    cv_parts = {"train": pool(parts), "dev": parts["dev"].iloc[:0], "test": parts["test"]}
    return build_inputs(params, spec, dataset, cv_parts, options, protocol_parts=parts)
