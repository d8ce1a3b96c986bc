"""DenseNet-121 image classifier (torchvision's architecture), as in the thesis.

ImageNet weights are on no package registry: they load from ``weights`` (a path) or
the torch hub cache when present; otherwise the network trains from scratch and
``pretrained`` in the config (and so every report) says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mmsent.features.image_encoders import load_state_dict, torchvision_weights
from mmsent.models.registry import FamilyModel, register

IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


@dataclass
class DenseNetConfig:
    image_size: int = 64
    weights: str | None = None  # a .pth with ImageNet weights; None → torch cache, else scratch
    pretrained: bool = False  # set when weights were loaded
    dropout: float = 0.2
    num_labels: int = 3


# end to end on pixels: too slow on a CPU for k folds, and the Pipeline serves cached-feature heads only
@register("densenet121", DenseNetConfig, reads="pixels", modality="image")
class DenseNetClassifier(FamilyModel):

    def __init__(self, config: DenseNetConfig) -> None:
        super().__init__()
        import torchvision

        self.config = config
        self.net = torchvision.models.densenet121(weights=None)
        self.net.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(1024, config.num_labels))

    def load_pretrained(self) -> None:
        """Load ImageNet weights if a file is available; ``config.pretrained`` says whether it did."""
        from pathlib import Path

        path = Path(self.config.weights) if self.config.weights else torchvision_weights("densenet121")
        if path is None or not path.is_file():
            self.config.pretrained = False
            return
        state = {k: v for k, v in load_state_dict(path).items() if not k.startswith("classifier.")}
        self.net.load_state_dict(state, strict=False)
        self.config.pretrained = True

    def facts(self) -> dict:
        """Copied into the model's metrics: whether ImageNet weights were loaded."""
        return {"imagenet_pretrained": bool(self.config.pretrained)}

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        x = batch["pixels"].float() / 255.0  # uint8 (B, 3, H, W)
        if self.training:  # horizontal flip: the one augmentation that never changes sentiment
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        x = (x - IMAGENET_MEAN.to(x.device)) / IMAGENET_STD.to(x.device)
        return {"logits": self.net(x)}
