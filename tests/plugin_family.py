"""A model family defined outside mmsent, as docs/extending.md walks through: a gated fusion head.

The whole of what the project needs to know is in this file: the config (its options and input
widths), the module, and ``@register``. Importing the module registers it, so a spawned training
worker that unpickles its config registers it too.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsent.models.fusion import MODALITIES, modality_masks
from mmsent.models.registry import FamilyModel, register


@dataclass
class GatedFusionConfig:
    text_dim: int = 384  # set from the cached features it reads (mmsent.training.inputs)
    image_dim: int = 1280
    d_model: int = 32
    dropout: float = 0.3
    modality_dropout: float = 0.1
    num_labels: int = 3


@register("gated_fusion", GatedFusionConfig)  # reads cached features: cross-validated and served
class GatedFusion(FamilyModel):
    """Both inputs projected to ``d_model``; a sigmoid gate of both decides, per feature, how much
    of each to keep; an absent modality is replaced by a learned vector."""


    def __init__(self, config: GatedFusionConfig) -> None:
        super().__init__()
        self.config = config
        self.proj = nn.ModuleDict({"text": nn.Linear(config.text_dim, config.d_model),
                                   "image": nn.Linear(config.image_dim, config.d_model)})
        self.missing = nn.ParameterDict({m: nn.Parameter(torch.zeros(config.d_model)) for m in MODALITIES})
        self.gate = nn.Linear(2 * config.d_model, config.d_model)
        self.out = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.d_model, config.num_labels))

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masks = modality_masks(batch, self.training, self.config.modality_dropout)
        h = {m: torch.tanh(self.proj[m](batch[m])) * masks[m][:, None] + self.missing[m] * (1 - masks[m][:, None])
             for m in MODALITIES}
        g = torch.sigmoid(self.gate(torch.cat([h["text"], h["image"]], dim=-1)))
        return {"logits": self.out(g * h["text"] + (1 - g) * h["image"])}
