"""Model families, registered by name so ``params.yaml`` picks them.

Every model is an ``nn.Module`` built from a config dataclass; ``forward(batch)`` takes a
dict of tensors and returns a dict with ``logits`` (and, for attention fusion, ``weights``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

from mmsent.models.fusion import (AttentionFusion, AttentionFusionConfig, ConcatFusion,
                                  ConcatFusionConfig, LateFusion, LateFusionConfig)
from mmsent.models.crossmodal import CrossModalFusion, CrossModalFusionConfig
from mmsent.models.densenet import DenseNetClassifier, DenseNetConfig
from mmsent.models.finetune import FinetuneFusion, FinetuneFusionConfig
from mmsent.models.heads import MLPHead, MLPHeadConfig
from mmsent.models.imagetop import ImageTopFusion, ImageTopFusionConfig
from mmsent.models.lstm import BiLSTMClassifier, BiLSTMConfig

REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {
    "mlp_head": (MLPHeadConfig, MLPHead),
    "concat_fusion": (ConcatFusionConfig, ConcatFusion),
    "attention_fusion": (AttentionFusionConfig, AttentionFusion),
    "late_fusion": (LateFusionConfig, LateFusion),
    "bilstm": (BiLSTMConfig, BiLSTMClassifier),
    "densenet121": (DenseNetConfig, DenseNetClassifier),
    "finetune_fusion": (FinetuneFusionConfig, FinetuneFusion),
    "crossmodal_fusion": (CrossModalFusionConfig, CrossModalFusion),
    "imagetop_fusion": (ImageTopFusionConfig, ImageTopFusion),
}


def register(name: str, config_cls: type, module_cls: type[nn.Module]) -> None:
    REGISTRY[name] = (config_cls, module_cls)


def make_config(family: str, values: dict[str, Any]):
    if family not in REGISTRY:
        raise KeyError(f"unknown model family {family!r}; known: {sorted(REGISTRY)}")
    config_cls = REGISTRY[family][0]
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s) for {family}: {sorted(unknown)}; known: {sorted(known)}")
    return config_cls(**values)


def build_model(family: str, config) -> nn.Module:
    if not dataclasses.is_dataclass(config):
        config = make_config(family, dict(config))
    return REGISTRY[family][1](config)
