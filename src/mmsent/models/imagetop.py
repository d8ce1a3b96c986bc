"""Fine-tuning EfficientNet-Lite0's last layer jointly with the attention-fusion head.

The image input is the cached output of EfficientNet's last block (``efficientnet_lite0_map``,
49 positions x 320 channels). The model holds its own copy of the backbone's head: the 1x1
convolution 320 → 1280, batch norm and ReLU6, initialised from the ImageNet weights by
:meth:`ImageTopFusion.load_pretrained`, then average-pooled to the 1280-d image vector that
the frozen ``efficientnet_lite0`` features are (so at the start the two models see the same
image vector). The head convolution trains at ``top_lr_scale`` times the head's learning
rate; ``freeze_norm_stats`` keeps the batch norm's ImageNet statistics (its scale and shift
still train), which scored higher on dev than re-estimating them from training batches.
Everything below stays frozen and cached, so an epoch costs seconds, not the minutes a pass
through the whole backbone would. Cached inputs rule out image augmentation here (a flipped
map pools to the same vector through a 1x1 convolution).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsent.models.fusion import AttentionFusionConfig, attention_head
from mmsent.models.registry import FamilyModel, register

HEAD_WIDTH = 1280  # EfficientNet-Lite0's head convolution


@dataclass
class ImageTopFusionConfig(AttentionFusionConfig):
    image_dim: int = 320  # channels of the cached block output
    top_lr_scale: float = 0.1
    freeze_norm_stats: bool = False  # keep the batch norm's ImageNet statistics (its scale and shift still train)


@register("imagetop_fusion", ImageTopFusionConfig)
class ImageTopFusion(FamilyModel):

    def __init__(self, config: ImageTopFusionConfig) -> None:
        super().__init__()
        self.config = config
        self.top_conv = nn.Linear(config.image_dim, HEAD_WIDTH, bias=False)  # a 1x1 convolution per position
        self.top_norm = nn.BatchNorm1d(HEAD_WIDTH, eps=1e-3, momentum=0.01)  # EfficientNet's settings
        self.head = attention_head(config, image_dim=HEAD_WIDTH)
        self.modalities = self.head.modalities

    def load_pretrained(self) -> None:
        """The head convolution and its batch norm from the ImageNet EfficientNet-Lite0."""
        from mmsent.features.image_encoders import efficientnet_lite

        net = efficientnet_lite("lite0")
        self.top_conv.weight.data.copy_(net._conv_head.weight.detach().flatten(1))
        self.top_norm.load_state_dict(net._bn1.state_dict())

    def train(self, mode: bool = True) -> "ImageTopFusion":
        super().train(mode)
        if self.config.freeze_norm_stats:
            self.top_norm.eval()  # ImageNet running statistics, not those of a 64-image batch
        return self

    def param_groups(self, lr: float) -> list[dict]:
        top = list(self.top_conv.parameters()) + list(self.top_norm.parameters())
        return [{"params": list(self.head.parameters()), "lr": lr},
                {"params": top, "lr": lr * self.config.top_lr_scale}]

    def image_vector(self, fmap: torch.Tensor) -> torch.Tensor:
        """``(B, positions, channels)`` → ``(B, 1280)``; a 2-D input (an absent image at predict
        time) is one position."""
        x = fmap.unsqueeze(1) if fmap.dim() == 2 else fmap
        h = self.top_norm(self.top_conv(x).transpose(1, 2))  # (B, 1280, positions)
        return nn.functional.relu6(h).mean(-1)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.head(dict(batch, image=self.image_vector(batch["image"])))
