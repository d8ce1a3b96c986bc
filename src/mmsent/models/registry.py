"""The model family contract (:class:`FamilyModel`) and its registry: each family registers itself
where it is defined (:func:`register`, a class decorator) with its traits: its config, what its
inputs are built from, whether it is cross-validated, served, or too expensive to retrain at
will. :mod:`mmsent.models` imports every module of the package, so a new module there is found
without being listed. Kept apart so a model made of other models
(:mod:`mmsent.models.ensemble`) builds its members without importing the package that fills it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from torch import nn

from mmsent.registry import Registry

READS = ("features", "features+tokens", "tokens", "pixels", "members")


@dataclass(frozen=True)
class Family:
    """What a model family declares where it is defined (see :func:`register`)."""

    name: str
    config: type
    module: type[nn.Module]
    # what its inputs are built from (mmsent.training.inputs.BUILDERS): cached encoder features,
    # features + the tweet's tokens for an encoder it fine-tunes, word tokens, pixels, or other models
    reads: str = "features"
    cross_validated: bool = True  # chosen and early-stopped by cross-validation (cheap enough for k folds)
    servable: bool = True  # the Pipeline computes its inputs from a raw (text, image) pair
    modality: str | None = None  # fixed ("text", "image") when it reads no encoder inputs
    expensive: bool = False  # the ablation reuses its finished runs instead of retraining it


class FamilyModel(nn.Module):
    """What a family implements: ``__init__(config)`` and ``forward(batch) -> {"logits", ...}``;
    the rest has defaults a family overrides where it differs.

    * :meth:`set_input_dims` — the widths of the cached inputs it reads, written into its config
    * :meth:`load_pretrained` — the weights it starts from (GloVe, ImageNet, a sentence encoder)
    * :meth:`param_groups` — optimiser groups (a fine-tuned encoder below a head takes a lower rate)
    * :meth:`facts` — what the report says of a trained model (e.g. whether ImageNet weights loaded)
    """

    @classmethod
    def set_input_dims(cls, config, dims: dict[str, int]) -> None:
        """Each cached input's width into the config's ``<input>_dim``; inputs it has no field for
        go to ``extra_dims`` (lexicon scores, text inside the image) where the config has one."""
        extra = {}
        for key, width in dims.items():
            if hasattr(config, f"{key}_dim"):
                setattr(config, f"{key}_dim", width)
            else:
                extra[key] = width
        if extra and not hasattr(config, "extra_dims"):
            raise ValueError(f"{cls.__name__} reads no {sorted(extra)} (its config has no width for them)")
        if extra:
            config.extra_dims = extra

    def load_pretrained(self) -> None:
        """Load the weights it starts from; trained from scratch by default."""

    def param_groups(self, lr: float) -> list[dict]:
        return [{"params": [p for p in self.parameters() if p.requires_grad], "lr": lr}]

    def facts(self) -> dict[str, Any]:
        return {}


FAMILIES: Registry = Registry("model family")


def register(name: str, config: type, *, reads: str = "features", cross_validated: bool | None = None,
             servable: bool | None = None, modality: str | None = None, expensive: bool = False):
    """Class decorator: ``@register("my_fusion", MyFusionConfig)`` above the module makes the family
    trainable, cross-validated, served and reported by name; nothing else lists families. Families on
    cached features are cross-validated and served unless they say otherwise."""
    if reads not in READS:
        raise ValueError(f"family {name}: reads must be one of {READS}, not {reads!r}")

    def add(module_cls: type[FamilyModel]) -> type[FamilyModel]:
        if not issubclass(module_cls, FamilyModel):
            raise TypeError(f"family {name}: {module_cls.__name__} must subclass FamilyModel")
        on_features = reads == "features"
        FAMILIES.add(name, Family(name, config, module_cls, reads,
                                  on_features if cross_validated is None else cross_validated,
                                  on_features if servable is None else servable, modality, expensive))
        return module_cls

    return add


def family(name: str) -> Family:
    return FAMILIES[name]


def make_config(name: str, values: dict[str, Any]):
    config_cls = family(name).config
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown option(s) for {name}: {sorted(unknown)}; known: {sorted(known)}")
    return config_cls(**values)


def build_model(name: str, config) -> nn.Module:
    if not dataclasses.is_dataclass(config):
        config = make_config(name, dict(config))
    return family(name).module(config)


def input_width(config: dict[str, Any], modality: str) -> int:
    """A saved config's input width for ``modality`` (an ensemble records its own in ``dims``)."""
    width = ((config.get("dims") or {}).get(modality) or config.get(f"{modality}_dim")
             or (config.get("extra_dims") or {}).get(modality) or config.get("input_dim"))
    if not width:
        raise KeyError(f"the model's config gives no input width for {modality!r}")
    return int(width)

