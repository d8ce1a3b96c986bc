"""Model families, registered by name so ``params.yaml`` picks them.

Every model is an ``nn.Module`` built from a config dataclass; ``forward(batch)`` takes a
dict of tensors and returns a dict with ``logits`` (and, for attention fusion, ``weights``). Each
family registers itself where it is defined (``@register`` in :mod:`mmsent.models.registry`); importing
this package imports every module in it, so adding a family is adding a module (docs/extending.md).
"""

from __future__ import annotations

import importlib
import pkgutil

from mmsent.models.registry import FAMILIES, build_model, family, make_config, register

__all__ = ["FAMILIES", "build_model", "family", "make_config", "register"]

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
