"""Text-side pre-training on MVSA-Multiple, a lever of the accuracy ablation.

MVSA-Multiple's labelled tweet texts (~17k, text labels by majority of three annotators)
pre-train the text branch of an attention-fusion model (its text projection, through a
throw-away linear head) before the model trains on MVSA-Single as usual. Every Multiple text
equal, after normalisation and case-folding, to an MVSA-Single dev or test text is removed
first (under cross-validation, where train pairs are held out too, the training models pass
every Single text of the protocol as ``dev``), so no pair the model is selected or scored on
was seen with a label. (The staged MVSA
has no such overlap; ``tests/test_pretrain.py`` checks the removal on made-up overlap.)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.data.leakage import text_key
from mmsent.data.prepare import clean_pairs
from mmsent.device import seed_everything
from mmsent.features.cache import load_features
from mmsent.training.loop import TensorData


@dataclass
class PretrainConfig:
    dataset: str = "multiple"
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 128

    def __post_init__(self) -> None:
        if self.dataset != "multiple":
            raise ValueError(f"text pre-training reads MVSA-Multiple only, not {self.dataset!r}")
        if self.epochs < 1:
            raise ValueError("pretrain.epochs must be >= 1")


def without_eval_texts(multiple: pd.DataFrame, single_parts: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """``multiple`` less every row whose text matches an MVSA-Single dev or test text."""
    held_out = {text_key(t) for part in ("dev", "test") for t in single_parts[part]["text"]}
    keep = ~multiple["text"].map(text_key).isin(held_out)
    return multiple[keep.to_numpy()].reset_index(drop=True)


def labelled_multiple(params: Params, single_parts: dict[str, pd.DataFrame]) -> tuple[pd.DataFrame, int]:
    """MVSA-Multiple's pairs that have a text label, less those whose text matches an MVSA-Single
    dev or test text: ``(kept, how many were removed)``. What every text-side lever trains on."""
    multiple = clean_pairs(params, "multiple")
    multiple = multiple[multiple["text_label"].isin(LABEL2ID)].reset_index(drop=True)
    kept = without_eval_texts(multiple, single_parts)
    return kept, len(multiple) - len(kept)


def pretraining_data(params: Params, encoder: str, single_parts: dict[str, pd.DataFrame]) -> TensorData:
    """Cached ``encoder`` features and text labels of the MVSA-Multiple tweets kept."""
    multiple, _ = labelled_multiple(params, single_parts)
    X, _ = load_features(params, encoder, "multiple").select(multiple["id"])
    labels = torch.tensor(multiple["text_label"].map(LABEL2ID).to_numpy(np.int64))
    return TensorData({"text": torch.from_numpy(X)}, labels, list(multiple["id"].astype(str)))


def pretrain_text(model: nn.Module, data: TensorData, config: PretrainConfig, seed: int) -> list[float]:
    """Train ``model.norm['text']`` + ``model.project['text']`` on ``data``; mean loss per epoch."""
    if not hasattr(model, "project") or "text" not in model.project:
        raise TypeError(f"{type(model).__name__} has no text projection to pre-train")
    seed_everything(seed)
    branch = nn.Sequential(model.norm["text"], model.project["text"])
    head = nn.Linear(model.config.d_model, model.config.num_labels)
    params = list(branch.parameters()) + list(head.parameters())
    optimiser = torch.optim.Adam(params, lr=config.lr)
    generator = torch.Generator().manual_seed(seed)
    X, y = data.inputs["text"], data.labels
    losses = []
    branch.train()
    for _ in range(config.epochs):
        order, total = torch.randperm(len(y), generator=generator), 0.0
        for start in range(0, len(y), config.batch_size):
            rows = order[start:start + config.batch_size]
            loss = nn.functional.cross_entropy(head(branch(X[rows])), y[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        losses.append(total / len(y))
    return losses
