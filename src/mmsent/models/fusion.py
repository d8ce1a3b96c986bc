"""Fusion of a text vector and an image vector.

* :class:`ConcatFusion` — the source system: [text ; image] → FC 1024 → 512 → labels with
  batch norm, ReLU, dropout 0.5.
* :class:`AttentionFusion` — the thesis: each modality projected to a shared width, a learned
  score per modality, softmax over modalities gives per-sample weights (returned), weighted
  sum → classifier. A missing modality is masked out of the softmax, so the model needs no
  invented input for it.
  With ``gate: feature`` it is a gated fusion instead (a gated multimodal unit, Arevalo et
  al. 2017): gates per feature, computed from all projected inputs together, so a modality
  can win some dimensions and lose others.
* :class:`LateFusion` — unimodal classifiers whose probabilities are averaged, or mixed
  with one learned weight.

Missing modalities: the batch may carry ``text_mask`` / ``image_mask`` (1 = present).
``modality_dropout`` hides one modality of a training sample with that probability, so
a model has seen the missing case before it meets it at prediction time.

Attention fusion also takes further inputs (``extra_dims``): VADER lexicon scores of the
tweet (``lexicon``), a second text encoder's vector of the tweet (``text2``, e.g. USE) and the
text found inside the image by OCR (``ocr``), each with its own
mask (no text in the image: masked out of the softmax). ``SOURCES`` says what each reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from mmsent.models.heads import mlp
from mmsent.models.registry import FamilyModel, register

MODALITIES = ("text", "image")
# model input → the part of a pair it is computed from (the Pipeline encodes it from there)
SOURCES = {"text": "text", "image": "image", "lexicon": "text", "text2": "text", "ocr": "ocr", "tokens": "text",
           "regions": "image"}
SEQUENCE_INPUTS = ("tokens", "regions")  # (positions, dim) per pair: read by cross-modal attention only


def modality_masks(batch: dict[str, torch.Tensor], training: bool, p_drop: float,
                   modalities: tuple[str, ...] = MODALITIES) -> dict[str, torch.Tensor]:
    """Presence masks (B,) per modality, with random hiding of text or image when training."""
    n = batch[MODALITIES[0]].shape[0]
    device = batch[MODALITIES[0]].device
    masks = {m: batch.get(f"{m}_mask", torch.ones(n, device=device)).float() for m in modalities}
    if training and p_drop > 0:
        drop = torch.rand(n, device=device) < p_drop
        which = torch.rand(n, device=device) < 0.5  # hide text or image, never both
        both = (masks["text"] > 0) & (masks["image"] > 0)
        masks["text"] = torch.where(drop & which & both, torch.zeros_like(masks["text"]), masks["text"])
        masks["image"] = torch.where(drop & ~which & both, torch.zeros_like(masks["image"]), masks["image"])
    return masks


def input_dims(config) -> dict[str, int]:
    """Every input of a fusion config with its width: text, image, then any extras."""
    return {"text": config.text_dim, "image": config.image_dim, **getattr(config, "extra_dims", {})}


def input_norms(config) -> nn.ModuleDict:
    """Per-modality feature standardisation (BatchNorm without affine) or identity."""
    return nn.ModuleDict({
        m: nn.BatchNorm1d(dim, affine=False) if config.input_norm else nn.Identity()
        for m, dim in input_dims(config).items()
    })


@dataclass
class ConcatFusionConfig:
    text_dim: int = 384
    image_dim: int = 1280
    hidden: list[int] = field(default_factory=lambda: [1024, 512])
    dropout: float = 0.5
    modality_dropout: float = 0.0
    input_norm: bool = False  # standardise each modality's features first (their scales differ a lot)
    num_labels: int = 3


@register("concat_fusion", ConcatFusionConfig)
class ConcatFusion(FamilyModel):

    def __init__(self, config: ConcatFusionConfig) -> None:
        super().__init__()
        self.config = config
        # a learned stand-in for an absent modality (seen in training via modality dropout)
        self.missing = nn.ParameterDict({
            "text": nn.Parameter(torch.zeros(config.text_dim)),
            "image": nn.Parameter(torch.zeros(config.image_dim)),
        })
        self.norm = input_norms(config)
        dims = [config.text_dim + config.image_dim, *config.hidden]
        self.body = mlp(dims, config.dropout)
        self.out = nn.Linear(dims[-1], config.num_labels)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masks = modality_masks(batch, self.training, self.config.modality_dropout)
        parts = [self.norm[m](batch[m]) * masks[m][:, None] + self.missing[m] * (1 - masks[m][:, None])
                 for m in MODALITIES]
        return {"logits": self.out(self.body(torch.cat(parts, dim=-1)))}


@dataclass
class AttentionFusionConfig:
    text_dim: int = 384
    image_dim: int = 1280
    d_model: int = 256
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.5
    modality_dropout: float = 0.0
    aux_weight: float = 0.0  # > 0: also predict the separate text and image labels (multi-task)
    input_norm: bool = False
    extra_dims: dict[str, int] = field(default_factory=dict)  # further inputs (lexicon, ocr) → width
    gate: str = "modality"  # modality: one softmax weight per input | feature: per-feature gates
    num_labels: int = 3

    def __post_init__(self) -> None:
        if self.gate not in ("modality", "feature"):
            raise ValueError(f"attention fusion gate must be modality or feature, not {self.gate!r}")


@register("attention_fusion", AttentionFusionConfig)
class AttentionFusion(FamilyModel):

    def __init__(self, config: AttentionFusionConfig) -> None:
        super().__init__()
        self.config = config
        known = set(SOURCES) - set(MODALITIES) - set(SEQUENCE_INPUTS)
        unknown = set(config.extra_dims) - known
        if unknown:
            raise ValueError(f"unknown extra input(s) {sorted(unknown)}; known: {sorted(known)}"
                             + (" (tokens / regions: family crossmodal_fusion)" if unknown & set(SEQUENCE_INPUTS) else ""))
        self.modalities = tuple(input_dims(config))  # order of the attention weights
        self.norm = input_norms(config)
        self.project = nn.ModuleDict({
            m: nn.Sequential(nn.Linear(dim, config.d_model), nn.LayerNorm(config.d_model), nn.GELU(),
                             nn.Dropout(config.dropout))
            for m, dim in input_dims(config).items()
        })
        if config.gate == "feature":
            width = len(self.modalities) * config.d_model
            self.gates = nn.Linear(width, width)
        else:
            self.score = nn.Sequential(nn.Linear(config.d_model, config.d_model // 2), nn.Tanh(),
                                       nn.Linear(config.d_model // 2, 1))
        self.body = mlp([config.d_model, *config.hidden], config.dropout)
        self.out = nn.Linear(([config.d_model, *config.hidden])[-1], config.num_labels)
        if config.aux_weight > 0:
            self.aux = nn.ModuleDict({f"{m}_label": nn.Linear(config.d_model, config.num_labels) for m in MODALITIES})

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masks = modality_masks(batch, self.training, self.config.modality_dropout, self.modalities)
        h = torch.stack([self.project[m](self.norm[m](batch[m])) for m in self.modalities], dim=1)  # (B, M, d)
        present = torch.stack([masks[m] for m in self.modalities], dim=1) > 0
        if self.config.gate == "feature":
            seen = h * present.unsqueeze(-1)  # an absent input's projection must not steer the gates
            gates = self.gates(seen.flatten(1)).view_as(h).masked_fill(~present.unsqueeze(-1), float("-inf"))
            per_feature = torch.softmax(gates, dim=1)  # (B, M, d): each feature's mix of the inputs
            fused, weights = (per_feature * h).sum(1), per_feature.mean(-1)
        else:
            scores = self.score(h).squeeze(-1)  # (B, M)
            weights = torch.softmax(scores.masked_fill(~present, float("-inf")), dim=1)
            fused = (weights.unsqueeze(-1) * h).sum(1)
        out = {"logits": self.out(self.body(fused)), "weights": weights}
        if self.training:  # what a contrastive loss pulls together (train.contrastive_weight)
            out["fused"] = fused
        if self.config.aux_weight > 0 and self.training:
            # each modality's own label from its own projection; the loop adds it to the loss
            out["aux_loss"] = self.config.aux_weight * sum(
                nn.functional.cross_entropy(self.aux[f"{m}_label"](h[:, i]), batch[f"{m}_label"])
                for i, m in enumerate(MODALITIES) if f"{m}_label" in batch)
        return out


def attention_head(config: AttentionFusionConfig, **widths: int) -> AttentionFusion:
    """The attention-fusion head inside a larger model: ``config``'s head options (a subclass of
    :class:`AttentionFusionConfig` adds its own), with input widths changed by ``widths``."""
    head_fields = {f.name for f in fields(AttentionFusionConfig)}
    values = {k: v for k, v in asdict(config).items() if k in head_fields}
    return AttentionFusion(AttentionFusionConfig(**{**values, **widths}))


@dataclass
class LateFusionConfig:
    text_dim: int = 384
    image_dim: int = 1280
    hidden: list[int] = field(default_factory=lambda: [256])
    dropout: float = 0.5
    learned_weight: bool = True
    num_labels: int = 3


@register("late_fusion", LateFusionConfig)
class LateFusion(FamilyModel):
    """Two unimodal classifiers trained jointly; their probabilities are mixed."""


    def __init__(self, config: LateFusionConfig) -> None:
        super().__init__()
        self.config = config
        self.heads = nn.ModuleDict({
            m: nn.Sequential(mlp([dim, *config.hidden], config.dropout),
                             nn.Linear(([dim, *config.hidden])[-1], config.num_labels))
            for m, dim in (("text", config.text_dim), ("image", config.image_dim))
        })
        self.mix = nn.Parameter(torch.zeros(1), requires_grad=config.learned_weight)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        masks = modality_masks(batch, False, 0.0)
        w_text = torch.sigmoid(self.mix).expand(batch["text"].shape[0])
        w_text = torch.where(masks["image"] > 0, w_text, torch.ones_like(w_text))
        w_text = torch.where(masks["text"] > 0, w_text, torch.zeros_like(w_text))
        probs = (w_text[:, None] * torch.softmax(self.heads["text"](batch["text"]), -1)
                 + (1 - w_text[:, None]) * torch.softmax(self.heads["image"](batch["image"]), -1))
        # log-probabilities work as logits for cross-entropy and argmax alike
        return {"logits": torch.log(probs.clamp_min(1e-8)),
                "weights": torch.stack([w_text, 1 - w_text], dim=1)}
