"""Adapting the text encoder itself to tweet sentiment, a lever of the accuracy ablation.

:mod:`mmsent.training.pretrain` pre-trains only the fusion head's text projection on MVSA-Multiple.
Here the encoder's own weights move: MiniLM (mean-pooled, as sentence-transformers pools it)
is fine-tuned with a throw-away linear head on MVSA-Multiple's ~17k text labels and saved as a
sentence-transformers folder (``adapt.dest``). The features stage then reads it like any other
encoder (``st:<dest>``), so heads train on frozen adapted features in seconds. Every Multiple
text that matches an MVSA-Single dev or test text is removed first
(:func:`mmsent.training.pretrain.without_eval_texts`). About 7 minutes an epoch on 2 CPU cores: the
``full`` profile (``mmsent adapt --profile full``).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.device import pick_device, seed_everything
from mmsent.features.base import local_model_path
from mmsent.features.text_encoders import mean_pool
from mmsent.io import replace_dir, write_json
from mmsent.progress import bar
from mmsent.sections import AdaptConfig  # noqa: F401  (re-exported)

SUMMARY = "mmsent_adapt.json"  # written inside the saved folder: what it was trained on





def adapt_config(params: Params) -> AdaptConfig:
    return params.adapt


def training_texts(params: Params) -> tuple[list[str], np.ndarray, int]:
    """MVSA-Multiple's labelled texts less those matching an MVSA-Single dev/test text
    (:func:`mmsent.training.pretrain.labelled_multiple`): ``(texts, label ids, number removed)``."""
    from mmsent.data.mvsa import load_parts
    from mmsent.training.pretrain import labelled_multiple

    kept, removed = labelled_multiple(params, load_parts(params, "single"))
    return list(kept["text"]), kept["text_label"].map(LABEL2ID).to_numpy(np.int64), removed


def fine_tune(model, texts: list[str], labels: np.ndarray, cfg: AdaptConfig,
              progress: bool = False) -> list[float]:
    """Train ``model`` (a SentenceTransformer) in place on ``texts``; mean loss per epoch."""
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    transformer = model[0].auto_model.to(device)
    tokenizer = model.tokenizer
    head = nn.Linear(transformer.config.hidden_size, len(LABEL2ID)).to(device)
    optimiser = torch.optim.AdamW([{"params": transformer.parameters(), "lr": cfg.lr},
                                   {"params": head.parameters(), "lr": cfg.head_lr}],
                                  weight_decay=cfg.weight_decay)
    generator = torch.Generator().manual_seed(cfg.seed)
    y = torch.from_numpy(labels)
    losses = []
    transformer.train()
    for _ in range(cfg.epochs):
        order, total = torch.randperm(len(y), generator=generator), 0.0
        for start in bar(range(0, len(y), cfg.batch_size), progress, desc="adapt"):
            rows = order[start:start + cfg.batch_size]
            batch = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                              max_length=cfg.max_length, return_tensors="pt").to(device)
            pooled = mean_pool(transformer(**batch).last_hidden_state, batch["attention_mask"])  # as the folder pools
            loss = nn.functional.cross_entropy(head(pooled), y[rows].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        losses.append(total / len(y))
    transformer.eval()
    return losses


def run(params: Params, progress: bool = True) -> dict[str, Any]:
    """The lever: fine-tune, then save the folder to ``adapt.dest`` (written aside, then renamed
    into place, so a crash keeps the last good folder)."""
    from sentence_transformers import SentenceTransformer

    cfg = adapt_config(params)
    texts, labels, removed = training_texts(params)
    if not texts:
        raise ValueError("no MVSA-Multiple texts left to adapt the encoder on")
    model = SentenceTransformer(local_model_path(cfg.encoder), device="cpu", local_files_only=True)
    start = time.perf_counter()
    losses = fine_tune(model, texts, labels, cfg, progress=progress)
    summary = {"config": asdict(cfg), "texts": len(texts), "removed_as_single_dev_test": removed,
               "label_counts": {k: int((labels == i).sum()) for k, i in LABEL2ID.items()},
               "epoch_losses": losses, "seconds": time.perf_counter() - start,
               "device": str(pick_device(cfg.device)), "torch_threads": torch.get_num_threads()}
    dest = params.path(cfg.dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}-", dir=dest.parent) as tmp:
        built = Path(tmp) / "model"
        model.to("cpu").save(str(built))
        write_json(built / SUMMARY, summary)
        replace_dir(built, dest)
    return {**summary, "dest": str(dest)}
