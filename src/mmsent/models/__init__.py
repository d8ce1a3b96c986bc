"""Model families, registered by name so ``params.yaml`` picks them.

Every model is an ``nn.Module`` built from a config dataclass; ``forward(batch)`` takes a
dict of tensors and returns a dict with ``logits`` (and, for attention fusion, ``weights``). ``ensemble`` averages the
probabilities of several of them (the bagged fold models a shipped ensemble is made of).
"""

from __future__ import annotations

from mmsent.models.crossmodal import CrossModalFusion, CrossModalFusionConfig
from mmsent.models.densenet import DenseNetClassifier, DenseNetConfig
from mmsent.models.ensemble import EnsembleConfig, ProbabilityEnsemble
from mmsent.models.finetune import FinetuneFusion, FinetuneFusionConfig
from mmsent.models.fusion import (AttentionFusion, AttentionFusionConfig, ConcatFusion,
                                  ConcatFusionConfig, LateFusion, LateFusionConfig)
from mmsent.models.heads import MLPHead, MLPHeadConfig
from mmsent.models.imagetop import ImageTopFusion, ImageTopFusionConfig
from mmsent.models.lstm import BiLSTMClassifier, BiLSTMConfig
from mmsent.models.registry import REGISTRY, build_model, make_config, register

__all__ = ["REGISTRY", "build_model", "make_config", "register"]

REGISTRY.update({
    "mlp_head": (MLPHeadConfig, MLPHead),
    "concat_fusion": (ConcatFusionConfig, ConcatFusion),
    "attention_fusion": (AttentionFusionConfig, AttentionFusion),
    "late_fusion": (LateFusionConfig, LateFusion),
    "bilstm": (BiLSTMConfig, BiLSTMClassifier),
    "densenet121": (DenseNetConfig, DenseNetClassifier),
    "finetune_fusion": (FinetuneFusionConfig, FinetuneFusion),
    "crossmodal_fusion": (CrossModalFusionConfig, CrossModalFusion),
    "imagetop_fusion": (ImageTopFusionConfig, ImageTopFusion),
    "ensemble": (EnsembleConfig, ProbabilityEnsemble),
})
