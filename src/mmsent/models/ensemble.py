"""Several trained heads as one model: their class probabilities averaged.

Each member reads the batch the Pipeline builds for the ensemble's encoders; ``columns`` cuts a
member's input from a wider one (``efficientnet_lite0`` is the last 1280 columns of
``efficientnet_lite0_stages``: :data:`mmsent.features.encoders.COLUMNS_OF`), so the encoders run once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from mmsent.models.registry import FamilyModel, build_model, register


@dataclass
class EnsembleConfig:
    # one per member: {"family": ..., "config": {...}, "columns": {modality: [start, stop]}}
    members: list[dict[str, Any]] = field(default_factory=list)
    dims: dict[str, int] = field(default_factory=dict)  # the ensemble's input widths (what the Pipeline builds)
    num_labels: int = 3

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("an ensemble needs at least one member")


@register("ensemble", EnsembleConfig, reads="members", servable=True)
class ProbabilityEnsemble(FamilyModel):
    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(build_model(m["family"], m["config"]) for m in config.members)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        probs, weights = [], []
        for member, spec in zip(self.members, self.config.members):
            view = dict(batch)
            for modality, (start, stop) in (spec.get("columns") or {}).items():
                view[modality] = batch[modality][..., start:stop]
            out = member(view)
            probs.append(torch.softmax(out["logits"].float(), -1))
            if "weights" in out:
                weights.append(out["weights"])
        mean = torch.stack(probs).mean(0)
        # log of the averaged probabilities: softmax of these logits gives the average back
        out = {"logits": torch.log(mean.clamp_min(1e-12))}
        if len(weights) == len(probs) and len({w.shape for w in weights}) == 1:
            out["weights"] = torch.stack(weights).mean(0)
        return out
