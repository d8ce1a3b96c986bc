"""Load ``params.yaml`` (plus environment overrides) into typed dataclasses.

``params.yaml`` is the only configuration. Stages, notebooks, the CLI and tests all
call :func:`load_params`; nothing else reads the file.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mmsent.sections import (SECTIONS, AblationConfig, AdaptConfig, EnsembleConfig, GroupConfig, NestedConfig,
                             OcrConfig, PerturbConfig, ProtocolConfig, ProtocolsConfig, ReportConfig, TrainSection,
                             TuningConfig)

PARAMS_ENV = "MMSENT_PARAMS"
DATA_ROOT_ENV = "MMSENT_DATA_ROOT"
DEVICE_ENV = "MMSENT_DEVICE"
PROFILE_ENV = "MMSENT_PROFILE"


@dataclass
class DataConfig:
    root: Path = Path("../shared/data/mvsa")
    split: str = "clmlf"
    fold: int = 1
    dedup: bool = False
    phash_max_distance: int = 4
    max_image_pixels: int = 40_000_000

    def __post_init__(self) -> None:
        if self.split not in ("clmlf", "cheema"):
            raise ValueError(f"data.split must be 'clmlf' or 'cheema', got {self.split!r}")
        if not 1 <= int(self.fold) <= 10:
            raise ValueError(f"data.fold must be in 1..10, got {self.fold!r}")


@dataclass
class TextConfig:
    urls: str = "url"
    mentions: str = "@user"
    drop_rt: bool = True
    split_hashtags: bool = True
    emoji: str = "words"
    max_elongation: int = 2
    lowercase: bool = False
    raw: bool = False  # True: the tweet as written (only control characters and spacing cleaned)

    def __post_init__(self) -> None:
        if self.emoji not in ("words", "keep", "drop"):
            raise ValueError(f"text.emoji must be words, keep or drop, got {self.emoji!r}")
        if self.max_elongation < 1:
            raise ValueError("text.max_elongation must be >= 1")


BACKENDS = ("torch", "onnx", "onnx-int8", "torch-bf16")  # how the frozen encoders run (mmsent.features.onnx);
# onnx-int8: weights dynamically quantised to int8; torch-bf16: transformer text encoders under bfloat16
# autocast, several times faster only on CPUs with bf16 instructions (AMX, AVX512-BF16), and their vectors
# differ between instruction sets by about as much as from float's. Neither is a default (reports/benchmarks.md)


def check_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"encoder backend must be one of {BACKENDS}, not {backend!r}")
    return backend


def backend_for(backend: str | dict, modality: str) -> str:
    """The backend an encoder of ``modality`` runs on: ``backend`` is one for every encoder, or a
    mapping ``{text: ..., image: ...}`` (a modality it leaves out runs on torch)."""
    if isinstance(backend, dict):
        unknown = set(backend) - {"text", "image"}
        if unknown:
            raise ValueError(f"encoder backends are set per modality (text, image), not {sorted(unknown)}")
        chosen = check_backend(str(backend.get(modality, "torch")))
    else:
        chosen = check_backend(str(backend))
    if chosen == "torch-bf16" and modality == "image":  # measured slower than ONNX Runtime's float for them
        raise ValueError("torch-bf16 is for the text encoders; set it per modality, e.g. "
                         "{text: torch-bf16, image: onnx}")
    return chosen


@dataclass
class FeaturesConfig:
    device: str = "auto"
    batch_size: int = 64
    text_encoders: list[str] = field(default_factory=lambda: ["minilm"])
    image_encoders: list[str] = field(default_factory=lambda: ["efficientnet_lite0"])
    ocr_encoders: list[str] = field(default_factory=list)  # text encoders for the text found inside images
    # other text normalisations (name → overrides of the text section), each encoded on
    # MVSA-Single for the tweet-aware-text ablation rows (models' text_variant) by every text
    # encoder that variant_encoders also names (None: every text encoder)
    text_variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    variant_encoders: list[str] | None = None
    # other texts of the same tweets, for training pairs only (name → file under the data root, with
    # {dataset}): e.g. CLMLF's back-translations, encoded by the variant encoders (models' augment)
    augmentations: dict[str, str] = field(default_factory=dict)
    image_size: int = 224
    # torch | onnx (ONNX Runtime for the CPU encoders, mmsent.features.onnx), or one per modality
    backend: str | dict[str, str] = "torch"

    def __post_init__(self) -> None:
        for modality in ("text", "image"):
            backend_for(self.backend, modality)  # a clear error for a bad value
        for name, overrides in self.text_variants.items():
            try:
                TextConfig(**overrides)
            except TypeError as exc:
                raise ValueError(f"features.text_variants.{name}: {exc}") from exc

    def text_config(self, base: TextConfig, variant: str | None) -> TextConfig:
        """``base`` with a variant's overrides (``None``: ``base`` itself)."""
        if variant is None:
            return base
        if variant not in self.text_variants:
            raise KeyError(f"unknown text variant {variant!r}; features.text_variants has {sorted(self.text_variants)}")
        return dataclasses.replace(base, **self.text_variants[variant])


@dataclass
class Params:
    data: DataConfig = field(default_factory=DataConfig)
    text: TextConfig = field(default_factory=TextConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    ocr: OcrConfig = field(default_factory=OcrConfig)
    train: TrainSection = field(default_factory=TrainSection)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    protocols: ProtocolsConfig = field(default_factory=ProtocolsConfig)
    ablation: AblationConfig = field(default_factory=AblationConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    tuning: TuningConfig = field(default_factory=TuningConfig)
    nested: NestedConfig = field(default_factory=NestedConfig)
    adapt: AdaptConfig = field(default_factory=AdaptConfig)
    perturb: PerturbConfig = field(default_factory=PerturbConfig)
    # model name → its row (family, group, datasets, inputs, options, train...): validated into a
    # ModelSpec by mmsent.training.specs, which knows the families
    models: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, GroupConfig] = field(default_factory=dict)  # the training stages (dvc.yaml's foreach)
    raw: dict[str, Any] = field(default_factory=dict)  # the merged file as read: provenance and fingerprints only
    base_dir: Path = Path(".")

    def path(self, relative: str | Path) -> Path:
        """A project path, resolved against the folder of ``params.yaml``."""
        p = Path(relative)
        return p if p.is_absolute() else self.base_dir / p


_SECTIONS = {"data": DataConfig, "text": TextConfig, "features": FeaturesConfig, **SECTIONS}


def build_section(cls: type, values: dict[str, Any], section: str):
    """A typed params section; unknown keys are an error (a typo must not silently fall back to a default)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown key(s) in params section {section!r}: {sorted(unknown)}")
    return cls(**values)


def deep_merge(base: dict, override: dict) -> dict:
    """Return ``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def find_params_file(start: Path | None = None) -> Path:
    """``$MMSENT_PARAMS`` if set, else the nearest ``params.yaml`` upwards from ``start``."""
    if os.environ.get(PARAMS_ENV):
        return Path(os.environ[PARAMS_ENV]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "params.yaml"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"no params.yaml found in {here} or its parents; set {PARAMS_ENV} to its path"
    )


PROFILES_DIR = "profiles"  # beside params.yaml: profiles/<name>.yaml, each merged on top when chosen


def profile_settings(raw: dict[str, Any], base_dir: Path, name: str) -> dict[str, Any]:
    """What profile ``name`` changes: ``profiles.<name>`` inside the params, else ``profiles/<name>.yaml``."""
    inline = raw.get("profiles") or {}
    if name in inline:
        return inline[name] or {}
    path = Path(base_dir) / PROFILES_DIR / f"{name}.yaml"
    if path.is_file():
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    files = sorted(p.stem for p in (Path(base_dir) / PROFILES_DIR).glob("*.yaml"))
    raise ValueError(f"unknown profile {name!r}; known: {sorted(set(inline) | set(files))}")


def params_from_dict(raw: dict[str, Any], base_dir: Path = Path("."),
                     profile: str | None = None) -> Params:
    """Typed params from a plain dict; ``profile`` merges that profile's settings on top."""
    raw = copy.deepcopy(raw)
    profile = profile or os.environ.get(PROFILE_ENV) or raw.get("profile")
    if profile and profile != "default":
        raw = deep_merge(raw, profile_settings(raw, base_dir, profile))
    raw.pop("profiles", None)
    raw.pop("profile", None)
    merged = copy.deepcopy(raw)
    typed = {name: (cls.build(raw.pop(name, {}) or {}) if hasattr(cls, "build") else
                    build_section(cls, raw.pop(name, {}) or {}, name)) for name, cls in _SECTIONS.items()}
    models = raw.pop("models", {}) or {}
    groups = {name: build_section(GroupConfig, g or {}, f"groups.{name}") for name, g in (raw.pop("groups", {}) or {}).items()}
    if raw:
        raise ValueError(f"unknown section(s) in params: {sorted(raw)}; known: {sorted([*_SECTIONS, 'models', 'groups'])}")
    params = Params(**typed, models=models, groups=groups, raw=merged, base_dir=base_dir)
    if os.environ.get(DATA_ROOT_ENV):
        params.data.root = Path(os.environ[DATA_ROOT_ENV])
    if os.environ.get(DEVICE_ENV):
        params.features.device = os.environ[DEVICE_ENV]
    params.data.root = data_root(params)
    return params


def data_root(params: Params) -> Path:
    """The data root, absolute. A relative one is relative to params.yaml's folder, except inside
    ``dvc exp run --temp``'s copy of the repository (under its ``.dvc/tmp``), where it is relative to
    the repository the copy was made from: the data stay beside that one."""
    root = Path(params.data.root)
    if root.is_absolute():
        return root
    base = params.base_dir.resolve()
    if ".dvc" in base.parts[:-1] and "tmp" in base.parts:
        repo = Path(*base.parts[:base.parts.index(".dvc")])
        if not (base / root).exists() and (repo / root).exists():
            return (repo / root).resolve()
    return (base / root).resolve()


def load_params(path: str | Path | None = None, overrides: dict[str, Any] | None = None,
                profile: str | None = None) -> Params:
    """Load ``params.yaml`` (found as in :func:`find_params_file` when ``path`` is None).

    ``overrides`` is a nested dict merged on top (e.g. from the CLI or a notebook's
    parameters cell). ``MMSENT_DATA_ROOT`` and ``MMSENT_DEVICE`` win over the file.
    """
    path = Path(path).resolve() if path else find_params_file()
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if overrides:
        raw = deep_merge(raw, overrides)
    return params_from_dict(raw, base_dir=path.parent, profile=profile)
