"""Fine-tuning the text encoder end to end, jointly with the attention-fusion head.

The transformer (MiniLM by default, or any local transformers folder) is mean-pooled and fed
with the cached image features into :class:`AttentionFusion`. Layer-wise learning rates: the
head trains at the base rate, the encoder's top layer at ``encoder_lr_scale`` times it, each
lower layer ``layer_decay`` times the one above. Expensive on CPU: the ``full`` profile.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from mmsent.features.base import local_model_path
from mmsent.features.text_encoders import mean_pool
from mmsent.models.fusion import AttentionFusionConfig, attention_head
from mmsent.models.registry import FamilyModel, register


@dataclass
class FinetuneFusionConfig(AttentionFusionConfig):
    """The attention-fusion head's options (``text_dim`` follows the encoder) plus the encoder's."""

    encoder: str = "minilm"
    max_length: int = 64
    encoder_lr_scale: float = 0.05
    layer_decay: float = 0.9


# fine-tunes MiniLM end to end: minutes a seed on a CPU, so no k folds
@register("finetune_fusion", FinetuneFusionConfig, reads="features+tokens", expensive=True)
class FinetuneFusion(FamilyModel):

    def __init__(self, config: FinetuneFusionConfig) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        self.config = config
        path = local_model_path(config.encoder)
        # weights are loaded by load_pretrained(); a checkpoint reload restores them from its state dict
        self.encoder = AutoModel.from_config(AutoConfig.from_pretrained(path, local_files_only=True))
        config.text_dim = int(self.encoder.config.hidden_size)
        self.head = attention_head(config)

    def load_pretrained(self) -> None:
        from transformers import AutoModel

        pretrained = AutoModel.from_pretrained(local_model_path(self.config.encoder), local_files_only=True)
        self.encoder.load_state_dict(pretrained.state_dict())

    def param_groups(self, lr: float) -> list[dict]:
        groups = [{"params": list(self.head.parameters()), "lr": lr}]
        layers = list(getattr(self.encoder, "encoder").layer)
        top = lr * self.config.encoder_lr_scale
        for depth, layer in enumerate(reversed(layers)):
            groups.append({"params": list(layer.parameters()), "lr": top * self.config.layer_decay ** depth})
        seen = {id(p) for g in groups for p in g["params"]}
        rest = [p for p in self.encoder.parameters() if id(p) not in seen]  # embeddings, pooler
        groups.append({"params": rest, "lr": top * self.config.layer_decay ** len(layers)})
        return groups

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        # tweets are padded to max_length; cut each batch to its longest (~1.5x faster on MVSA)
        longest = max(int(batch["attention_mask"].sum(1).max()), 1)
        ids, attention = batch["input_ids"][:, :longest], batch["attention_mask"][:, :longest]
        hidden = self.encoder(input_ids=ids, attention_mask=attention).last_hidden_state
        head_batch = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
        head_batch["text"] = mean_pool(hidden, attention)
        return self.head(head_batch)
