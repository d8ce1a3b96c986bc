"""What ``params.yaml`` says each model is: its spec, its training settings, the tuned values
applied to it, and whether it is chosen by cross-validation."""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsent.config import Params
from mmsent.models.baselines import BASELINES
from mmsent.models import family
from mmsent.paths import BEST_DIR, best_path  # noqa: F401  (re-exported)
from mmsent.training.loop import TrainConfig


@dataclass
class ModelSpec:
    name: str
    family: str
    group: str  # text | image | fusion: which stage trains it
    datasets: list[str] = field(default_factory=lambda: ["single"])
    inputs: dict[str, str] = field(default_factory=dict)  # modality → encoder name
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    train_per_dataset: dict[str, dict[str, Any]] = field(default_factory=dict)  # e.g. {multiple: {epochs: 6}}
    tuned_from: str | None = None  # use params/tuned/best_<that model>.yaml (default: its own name)
    text_variant: str | None = None  # read the tweet normalised as features.text_variants.<name> says
    pretrain: dict[str, Any] | None = None  # text branch pre-trained on MVSA-Multiple first (mmsent.training.pretrain)
    distill: dict[str, Any] | None = None  # trained on its own out-of-fold predictions too (mmsent.training.distill)
    augment: str | None = None  # features.augmentations.<name>: training pairs again with that text of the tweet
    # how the augmented texts are used: "pairs" — further training pairs (same label and image);
    # "view" — a second view of each training pair for train.view_contrastive_weight, never a pair of its own
    augment_as: str = "pairs"
    caveat: str | None = None  # what a reader must know to read its numbers (e.g. a CPU-budget stand-in)

    def __post_init__(self) -> None:
        if self.augment_as not in ("pairs", "view"):
            raise ValueError(f"models.{self.name}.augment_as must be pairs or view, not {self.augment_as!r}")

    @property
    def modalities(self) -> str:
        if self.family in BASELINES:
            return "text"
        return family(self.family).modality or " + ".join(sorted(self.inputs, reverse=True))


def spec_from(name: str, raw: dict[str, Any], where: str = "models") -> ModelSpec:
    unknown = set(raw) - ({f.name for f in dataclasses.fields(ModelSpec)} - {"name"})
    if unknown:
        raise ValueError(f"{where}.{name}: unknown key(s) {sorted(unknown)}")
    return ModelSpec(name=name, **copy.deepcopy(raw))


def model_specs(params: Params, chained: bool = True) -> dict[str, ModelSpec]:
    """Every model of ``params.yaml`` (tuned values applied) and, with ``chained``, the ablation's
    lever rows as the ``ablation`` stage built them on the configuration kept before each
    (``params/ablation_chain.yaml``)."""
    specs = {name: spec_from(name, raw) for name, raw in params.models.items()}
    for spec in specs.values():
        apply_best(params, spec)
    if chained:
        for row in read_chain(params).get("rows", []):
            if row.get("spec") is not None:
                specs[row["model"]] = spec_from(row["model"], row["spec"], "ablation_chain")
    return specs


def chain_path(params: Params) -> Path:
    """Written by the ``ablation`` stage: each row's spec, what it was built on, kept or not, what ships."""
    report = Path(params.ablation.report).stem
    return params.path(BEST_DIR) / f"{report}_chain.yaml"  # a profile's own ablation keeps its own chain


def read_chain(params: Params) -> dict[str, Any]:
    path = chain_path(params)
    return (yaml.safe_load(path.read_text(encoding="utf-8")) or {}) if path.is_file() else {}


def describe_kept(chain: dict[str, Any]) -> str:
    """What ships, in words: the configuration the ablation started from, then each lever it kept."""
    levers = chain.get("levers_kept") or []
    start = f"“{chain['start']}”" if chain.get("start") else "its start"
    return (f"{start}, then the levers kept: " + "; ".join(f"“{lever}”" for lever in levers) if levers
            else f"{start}; no lever passed the keep rule")


MERGED = ("inputs", "options", "train", "train_per_dataset")  # a lever adds to these; it replaces other keys


def derive(base: ModelSpec, name: str, adds: dict[str, Any]) -> dict[str, Any]:
    """A lever row's spec: the kept configuration ``base`` (tuned values already in it) with one
    lever's settings on top; mappings (inputs, options, train) merge key by key, the rest replace."""
    raw = {k: copy.deepcopy(v) for k, v in dataclasses.asdict(base).items() if k != "name"}
    unknown = set(adds) - set(raw)
    if unknown:
        raise ValueError(f"ablation row {name}: unknown key(s) in adds: {sorted(unknown)}")
    for key, value in adds.items():
        raw[key] = {**(raw[key] or {}), **value} if key in MERGED else value
    raw.update(group="ablation", tuned_from=None, datasets=["single"])
    return raw


def train_config(params: Params, spec: ModelSpec, dataset: str | None = None) -> TrainConfig:
    """``train`` in params, then the model's ``train``, then its ``train_per_dataset[dataset]``."""
    raw = dict(params.train.loop)
    raw.update(spec.train)
    unknown = set(spec.train_per_dataset) - {"single", "multiple"}
    if unknown:
        raise ValueError(f"models.{spec.name}.train_per_dataset: unknown dataset(s) {sorted(unknown)}")
    raw.update(spec.train_per_dataset.get(dataset, {}) if dataset else {})
    if spec.distill:

        raw["soft_weight"] = distill_weight(spec)
    return TrainConfig(**raw)


def seeds(params: Params) -> list[int]:
    return list(params.train.seeds)


def uses_cv(spec: ModelSpec, dataset: str) -> bool:
    """Whether the model is chosen and stopped by cross-validation (cheap heads on MVSA-Single)."""
    return (dataset == "single" and spec.family not in BASELINES and family(spec.family).cross_validated
            and not spec.distill)


def apply_best(params: Params, spec) -> None:
    """Merge ``params/tuned/best_<model>.yaml`` (when tuning.apply is on and it exists) into a spec."""
    if not params.tuning.apply:
        return
    path = best_path(params, spec.tuned_from or spec.name)
    if path.is_file():
        best = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        # tuned values first, then what the spec sets on top (e.g. an ablation's own lever)
        spec.options = {**(best.get("options") or {}), **spec.options} if spec.tuned_from else {
            **spec.options, **(best.get("options") or {})}
        spec.train = {**(best.get("train") or {}), **spec.train} if spec.tuned_from else {
            **spec.train, **(best.get("train") or {})}


@dataclass
class DistillConfig:
    folds: int = 5
    seeds: list[int] = field(default_factory=lambda: [100, 101])  # teacher seeds, averaged per part
    weight: float = 1.0  # of the soft-target cross-entropy, next to the label's (weight 1)

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("distill.folds must be >= 2: teachers must leave part of train out")
        if not self.seeds:
            raise ValueError("distill.seeds must name at least one teacher seed")
        if self.weight <= 0:
            raise ValueError("distill.weight must be > 0 (leave distill out to turn the lever off)")


def distill_weight(spec) -> float:
    """The soft-target weight the student trains with (0: the lever is off)."""
    return DistillConfig(**spec.distill).weight if spec.distill else 0.0
