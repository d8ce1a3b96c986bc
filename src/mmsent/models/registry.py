"""The model registry: family name → (config dataclass, module class). Filled by
:mod:`mmsent.models`; kept apart so a model made of other models (:mod:`mmsent.models.ensemble`)
builds its members without importing the package that registers it."""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

REGISTRY: dict[str, tuple[type, type[nn.Module]]] = {}


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


def input_width(config: dict[str, Any], modality: str) -> int:
    """A saved config's input width for ``modality`` (an ensemble records its own in ``dims``)."""
    width = ((config.get("dims") or {}).get(modality) or config.get(f"{modality}_dim")
             or (config.get("extra_dims") or {}).get(modality) or config.get("input_dim"))
    if not width:
        raise KeyError(f"the model's config gives no input width for {modality!r}")
    return int(width)


FEATURE_FAMILIES = ("mlp_head", "concat_fusion", "attention_fusion", "late_fusion", "crossmodal_fusion",
                    "imagetop_fusion")
