"""The typed sections of ``params.yaml`` other than the data's (:mod:`mmsent.config` has those).

Each section is a dataclass with its defaults: ``load_params`` builds every one and refuses an
unknown key, so a typo fails at load, not as a silent default deep inside a stage. Plain data
only (no torch, no stage code), so every module may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TrainConfig:
    """The one training loop's settings (``mmsent.training.loop.fit``); a model may override any."""

    epochs: int = 30
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    scheduler: str = "plateau"  # plateau | cosine | none
    patience: int = 6  # epochs without a better dev weighted F1 before stopping
    grad_clip: float = 1.0
    class_weights: bool = False
    label_smoothing: float = 0.0
    soft_weight: float = 0.0  # > 0: also cross-entropy against the train split's SOFT_LABEL (mmsent.training.distill)
    # > 0: also the supervised contrastive loss on the model's fused representation (mmsent.training.losses)
    contrastive_weight: float = 0.0
    contrastive_temperature: float = 0.1
    # > 0: also the view-contrastive loss between each training pair and its augmented view (the model's
    # ``augment_as: view``; CLMLF's data-based half), at contrastive_temperature
    view_contrastive_weight: float = 0.0
    # a final model: train exactly this many epochs of the ``epochs``-long schedule, no dev, last weights kept
    # (the count cross-validation chose; the schedule is the one the fold models followed)
    stop_after: int | None = None
    device: str = "auto"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.scheduler not in ("plateau", "cosine", "none"):
            raise ValueError(f"train.scheduler must be plateau, cosine or none, not {self.scheduler!r}")
        if self.soft_weight < 0:
            raise ValueError("train.soft_weight must be >= 0")
        if self.contrastive_weight < 0 or self.view_contrastive_weight < 0 or self.contrastive_temperature <= 0:
            raise ValueError("train.contrastive_weight and train.view_contrastive_weight must be >= 0 and "
                             "train.contrastive_temperature > 0")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.epochs:
            raise ValueError(f"train.stop_after must be within 1..epochs ({self.epochs}), not {self.stop_after}")
        if self.stop_after is not None and self.scheduler == "plateau":
            raise ValueError("a fixed-epoch final model has no dev split to drive the plateau scheduler: "
                             "use scheduler cosine or none")


@dataclass
class TrainSection:
    """``train``: the loop's settings (``loop``, every TrainConfig key) plus who runs them."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    workers: int | str = "auto"  # seeds (and tuning studies) side by side, one process and thread each
    loop: dict[str, Any] = field(default_factory=dict)  # the TrainConfig keys as params.yaml sets them

    @classmethod
    def build(cls, values: dict[str, Any]) -> TrainSection:
        values = dict(values)
        out = cls(seeds=list(values.pop("seeds", [0, 1, 2, 3, 4])), workers=values.pop("workers", "auto"), loop=values)
        try:
            TrainConfig(**values)  # every other key must be a loop setting
        except TypeError as exc:
            raise ValueError(f"params section 'train': {exc}") from exc
        return out


def test_train_ratio(folds: int, inner_fraction: float = 0.0) -> float:
    """n_test / n_train of a k-fold model that holds back ``inner_fraction`` of its training part."""
    return (1 / folds) / ((1 - 1 / folds) * (1 - inner_fraction))


test_train_ratio.__test__ = False  # not a pytest test


@dataclass
class ProtocolConfig:
    folds: int = 5  # k
    repeats: int = 2  # each repeat cuts train + dev anew
    seed: int = 0  # the cut (and each fold model's seed is its fold number)
    # seeds of a cross-validated model's final models: they cost seconds each, and more of them keep
    # the reported mean within its rerun interval (the perturbation check, reports/reproducibility.md)
    final_seeds: list[int] = field(default_factory=lambda: list(range(10)))
    # share of a fold model's training part held back to pick its epoch, so the fold it is scored on
    # chooses nothing (scoring on the fold that stopped it read 2-4 points high: docs/protocol.md)
    inner_fraction: float = 0.2

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ValueError("protocol.folds must be >= 2")
        if self.repeats < 1:
            raise ValueError("protocol.repeats must be >= 1")
        if not 0 < self.inner_fraction < 1:
            raise ValueError("protocol.inner_fraction must be between 0 and 1")
        if not self.final_seeds:
            raise ValueError("protocol.final_seeds must name at least one seed")

    @property
    def n_fits(self) -> int:
        return self.folds * self.repeats

    @property
    def test_train_ratio(self) -> float:
        """n_test / n_train of a fold model, the Nadeau-Bengio correction's ratio: it is scored on
        1/k of the pool and trained on the rest less its inner split (0.2 / 0.64 = 0.3125 at k = 5)."""
        return test_train_ratio(self.folds, self.inner_fraction)


@dataclass
class OcrConfig:
    det_limit_side_len: int = 256
    det_limit_type: str = "max"   # max: never upscale (fast) | min: upscale the short side (finds more)
    min_score: float = 0.5        # recognition confidence below this is dropped
    max_chars: int = 300          # keep the start of very long page screenshots

    def __post_init__(self) -> None:
        if self.det_limit_type not in ("max", "min"):
            raise ValueError(f"ocr.det_limit_type must be 'max' or 'min', not {self.det_limit_type!r}")


@dataclass
class AdaptConfig:
    encoder: str = "minilm"  # "minilm" or st:<sentence-transformers folder>
    dest: str = "data/weights/minilm-mvsa-multiple"
    epochs: int = 1
    lr: float = 3e-5  # the encoder's rate; the throw-away head trains at head_lr
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 32
    max_length: int = 64
    seed: int = 0
    device: str = "auto"

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("adapt.epochs must be >= 1")
        if not (self.encoder == "minilm" or self.encoder.startswith("st:")):
            raise ValueError(f"adapt.encoder must be 'minilm' or st:<folder>, not {self.encoder!r}")


@dataclass
class ProtocolsConfig:
    models: list[str] = field(default_factory=list)  # scored on the agreement split and Cheema's folds
    cheema_folds: list[int] = field(default_factory=lambda: list(range(1, 11)))


@dataclass
class AblationConfig:
    report: str = "reports/ablation.md"
    rows: list[dict[str, Any]] = field(default_factory=list)
    family_ensembles: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ReportConfig:
    primary_protocol: str = "clmlf"
    questions: list[dict[str, Any]] = field(default_factory=list)
    alpha: float = 0.05
    error_analysis: dict[str, str] = field(default_factory=dict)


@dataclass
class EnsembleConfig:
    ship: bool = False
    candidates: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class TuningConfig:
    apply: bool = False
    models: list[str] = field(default_factory=list)
    dataset: str = "single"
    n_trials: int = 20
    trials: dict[str, int] = field(default_factory=dict)  # per-model trial counts
    repeats: int = 1
    seed: int = 0
    trial_train: dict[str, Any] = field(default_factory=dict)
    storage: str = "sqlite:///data/optuna.db"
    spaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    heartbeat_seconds: int = 30
    grace_seconds: int = 120

    def __post_init__(self) -> None:
        unspaced = [m for m in self.models if m not in self.spaces]
        if unspaced:
            raise ValueError(f"tuning.models {unspaced} have no search space in tuning.spaces")

    def n_trials_for(self, model: str) -> int:
        return int(self.trials.get(model, self.n_trials))


@dataclass
class NestedConfig:
    model: str | None = None


@dataclass
class PerturbConfig:
    scale: float = 0.0  # > 0: the feature caches perturbed (mmsent check-reproducible --perturb)
    seed: int = 1


@dataclass
class GroupConfig:
    """A training stage of dvc.yaml's ``foreach`` (``groups`` in params.yaml)."""

    notebook: str  # notebooks/<notebook>.ipynb runs the stage
    title: str = ""


SECTIONS: dict[str, type] = {
    "train": TrainSection, "protocol": ProtocolConfig, "ocr": OcrConfig, "adapt": AdaptConfig,
    "protocols": ProtocolsConfig, "ablation": AblationConfig, "report": ReportConfig, "ensemble": EnsembleConfig,
    "tuning": TuningConfig, "nested": NestedConfig, "perturb": PerturbConfig,
}
