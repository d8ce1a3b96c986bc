"""MLP head on one cached feature vector (text-only or image-only)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from mmsent.models.registry import FamilyModel, register


def mlp(dims: list[int], dropout: float, batch_norm: bool = True) -> nn.Sequential:
    """Linear → [BatchNorm] → ReLU → Dropout for each hidden width in ``dims[1:]``."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(dims[:-1], dims[1:]):
        layers.append(nn.Linear(d_in, d_out))
        if batch_norm:
            layers.append(nn.BatchNorm1d(d_out))
        layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


@dataclass
class MLPHeadConfig:
    input: str = "text"  # which batch key to read
    input_dim: int = 384
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.5
    num_labels: int = 3


@register("mlp_head", MLPHeadConfig)
class MLPHead(FamilyModel):
    @classmethod
    def set_input_dims(cls, config: MLPHeadConfig, dims: dict[str, int]) -> None:
        """One cached input: its name and width."""
        if len(dims) != 1:
            raise ValueError(f"mlp_head reads one input, not {sorted(dims)}")
        (config.input, config.input_dim), = dims.items()


    def __init__(self, config: MLPHeadConfig) -> None:
        super().__init__()
        self.config = config
        self.body = mlp([config.input_dim, *config.hidden], config.dropout)
        self.out = nn.Linear(([config.input_dim, *config.hidden])[-1], config.num_labels)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": self.out(self.body(batch[self.config.input]))}
