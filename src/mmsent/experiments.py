"""Train and evaluate the models named in ``params.yaml`` over seeds: the protocol.

Models on cached features (heads and fusion heads, MVSA-Single) are chosen and stopped by
cross-validation (:mod:`mmsent.protocol`): one fold model per fold of train + dev, early-stopped
on the fold it holds out; then each seed's final model trains on all of train + dev for the
folds' median best epoch count and reads test once. Models too slow for k folds (the BiLSTM,
DenseNet-121, end-to-end fine-tuning, self-distillation) and every MVSA-Multiple model keep the
older protocol: train on train, early-stop on dev, read test once. Written per model and dataset:

* ``models/<model>/<dataset>/seed<k>.pt`` — self-contained checkpoint (neural models)
* ``models/<model>/single/fold<j>.pt`` — each fold model of a cross-validated model
* ``data/predictions/<model>/<dataset>/seed<k>.csv`` — id, gold, predicted, probabilities
* ``data/predictions/<model>/single/folds.npz`` — the fold models' held-out (out-of-fold)
  probabilities per repeat and their test probabilities (:mod:`mmsent.ensemble`)
* ``metrics/<model>_<dataset>.json`` — mean ± std over seeds, each seed, what it was measured on
* ``metrics/history/<model>_<dataset>.csv`` — per-epoch curves (all seeds)
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mmsent.config import Params
from mmsent.data import PARTS, load_prepared
from mmsent.device import pick_device, seed_everything
from mmsent.evaluate import (SCORES_DIR, aggregate, bootstrap_interval, compute_metrics, predictions_frame,
                             save_frame, write_scores)
from mmsent.features import cache_name, load_features
from mmsent.images import open_image, square_crop
from mmsent.io import atomic_path, read_json, write_json
from mmsent.labels import LABEL2ID
from mmsent.models import build_model, make_config
from mmsent.models.baselines import BASELINES
from mmsent.models.fusion import SEQUENCE_INPUTS
from mmsent.models.lstm import build_vocab, encode_tokens
from mmsent.parallel import resolve_workers, run_jobs, share_bounds
from mmsent.prepare import PREPARED_DIR
from mmsent.protocol import corrected_se, cv_epochs, held_out, pool, protocol_config
from mmsent.text import tokenize
from mmsent.train import SOFT_LABEL, TensorData, TrainConfig, fit, predict_proba, save_checkpoint

MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")
PREDICTIONS_DIR = Path("data/predictions")
FEATURE_FAMILIES = ("mlp_head", "concat_fusion", "attention_fusion", "late_fusion", "crossmodal_fusion",
                    "imagetop_fusion")


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
    tuned_from: str | None = None  # use params/best_<that model>.yaml (default: its own name)
    text_variant: str | None = None  # read the tweet normalised as features.text_variants.<name> says
    pretrain: dict[str, Any] | None = None  # text branch pre-trained on MVSA-Multiple first (mmsent.pretrain)
    distill: dict[str, Any] | None = None  # trained on its own out-of-fold predictions too (mmsent.distill)
    augment: str | None = None  # features.augmentations.<name>: training pairs again with that text of the tweet

    @property
    def modalities(self) -> str:
        if self.family == "densenet121":
            return "image"
        if self.family in BASELINES or self.family == "bilstm":
            return "text"
        return " + ".join(sorted(self.inputs, reverse=True))


def model_specs(params: Params) -> dict[str, ModelSpec]:
    specs = {}
    for name, raw in (params.extra.get("models") or {}).items():
        known = {f.name for f in dataclasses.fields(ModelSpec)} - {"name"}
        unknown = set(raw) - known
        if unknown:
            raise ValueError(f"models.{name}: unknown key(s) {sorted(unknown)}")
        specs[name] = ModelSpec(name=name, **copy.deepcopy(raw))
    from mmsent.tune import apply_best  # tuned values override the hand-set ones

    for spec in specs.values():
        apply_best(params, spec)
    return specs


def train_config(params: Params, spec: ModelSpec, dataset: str | None = None) -> TrainConfig:
    """``train`` in params, then the model's ``train``, then its ``train_per_dataset[dataset]``."""
    raw = {k: v for k, v in (params.extra.get("train") or {}).items() if k not in ("seeds", "workers")}
    raw.update(spec.train)
    unknown = set(spec.train_per_dataset) - {"single", "multiple"}
    if unknown:
        raise ValueError(f"models.{spec.name}.train_per_dataset: unknown dataset(s) {sorted(unknown)}")
    raw.update(spec.train_per_dataset.get(dataset, {}) if dataset else {})
    if spec.distill:
        from mmsent.distill import distill_weight

        raw["soft_weight"] = distill_weight(spec)
    return TrainConfig(**raw)


def seeds(params: Params) -> list[int]:
    return list((params.extra.get("train") or {}).get("seeds", [0, 1, 2, 3, 4]))


def load_parts(params: Params, dataset: str) -> dict[str, pd.DataFrame]:
    """Train/dev/test tables; ``data.dedup`` drops leaked pairs from dev and test."""
    path = params.path(PREPARED_DIR) / f"{dataset}.parquet"
    parts = {part: load_prepared(path, part, dedup=params.data.dedup) for part in PARTS}
    empty = [part for part, df in parts.items() if df.empty]
    if empty:
        raise ValueError(f"MVSA-{dataset.title()} has no {'/'.join(empty)} pairs"
                         f"{' after de-duplication' if params.data.dedup else ''}; check data.split / data.fold")
    return parts


def _labels(df: pd.DataFrame) -> torch.Tensor:
    return torch.tensor(df["label_id"].astype(int).to_numpy(), dtype=torch.long)


# --------------------------------------------------------------------------- inputs per family


def feature_data(params: Params, spec: ModelSpec, dataset: str,
                 parts: dict[str, pd.DataFrame]) -> tuple[dict[str, TensorData], dict[str, int]]:
    cache = {m: load_features(params, enc, cache_name(m, dataset, spec.text_variant)) for m, enc in spec.inputs.items()}
    out = {}
    for part, df in parts.items():
        inputs = {}
        for modality, feats in cache.items():
            X, ok = feats.select(df["id"])
            inputs[modality] = torch.from_numpy(X.astype(np.float32, copy=False))  # token/region caches are float16
            inputs[f"{modality}_mask"] = torch.from_numpy(ok.astype(np.float32))
        for modality in ("text", "image"):  # per-modality labels, for multi-task heads
            inputs[f"{modality}_label"] = torch.tensor(df[f"{modality}_label"].map(LABEL2ID).to_numpy(np.int64), dtype=torch.long)
        out[part] = TensorData(inputs, _labels(df), list(df["id"]))
    return out, {m: int(f.X.shape[-1]) for m, f in cache.items()}


def augment_data(params: Params, spec: ModelSpec, dataset: str, train: TensorData) -> tuple[TensorData, np.ndarray]:
    """``train``'s rows again with every text-derived input (tweet vector, lexicon scores, ...) read
    from the augmentation's cache instead, and which rows have an augmented text (test pairs never do)."""
    from mmsent.models.fusion import SOURCES

    inputs, ok = dict(train.inputs), np.ones(len(train), bool)
    for modality, encoder in spec.inputs.items():
        if SOURCES.get(modality) != "text":
            continue
        X, has = load_features(params, encoder, cache_name(f"aug-{spec.augment}", dataset)).select(train.ids)
        inputs[modality] = torch.from_numpy(X.astype(np.float32, copy=False))
        ok &= has
    return TensorData(inputs, train.labels.clone(), list(train.ids)), ok


def with_augment(data: dict[str, TensorData], rows: np.ndarray | None = None) -> TensorData:
    """The training rows (``rows`` of ``data["train"]``, default all) and their augmented copies."""
    rows = np.ones(len(data["train"]), bool) if rows is None else rows
    train = data["train"].subset(rows) if not rows.all() else data["train"]
    if "augment" not in data:
        return train
    return TensorData.concat([train, data["augment"].subset(rows & data["augment_ok"])])


def token_data(parts: dict[str, pd.DataFrame], config) -> dict[str, TensorData]:
    tokens = {part: [tokenize(t) for t in df["text"]] for part, df in parts.items()}
    config.vocab = build_vocab(tokens["train"], min_freq=config.min_freq)  # train split only
    out = {}
    for part, df in parts.items():
        ids, lengths = encode_tokens(tokens[part], config.vocab, config.max_len)
        out[part] = TensorData({"tokens": torch.from_numpy(ids), "lengths": torch.from_numpy(lengths)},
                               _labels(df), list(df["id"]))
    return out


def add_transformer_tokens(data: dict[str, TensorData], parts: dict[str, pd.DataFrame], config) -> None:
    """Tokenise each split's normalised texts for a fine-tuned encoder (padded to max_length)."""
    from transformers import AutoTokenizer

    from mmsent.encoders import local_model_path

    tokenizer = AutoTokenizer.from_pretrained(local_model_path(config.encoder), local_files_only=True)
    for part, df in parts.items():
        enc = tokenizer(list(df["text"]), padding="max_length", truncation=True, max_length=config.max_length,
                        return_tensors="pt")
        data[part].inputs["input_ids"] = enc["input_ids"]
        data[part].inputs["attention_mask"] = enc["attention_mask"]
        data[part].inputs["text_mask"] = torch.ones(len(df))


def load_pixels(root: Path, images: list[str], size: int) -> torch.Tensor:
    """uint8 (n, 3, size, size) centre-square crops of ``images`` (paths under ``root``)."""
    from torchvision.transforms import functional as F

    pixels = torch.zeros((len(images), 3, size, size), dtype=torch.uint8)
    for row, rel in enumerate(images):
        pixels[row] = F.pil_to_tensor(square_crop(open_image(root / rel), size))
    return pixels


def pixel_data(params: Params, parts: dict[str, pd.DataFrame], size: int) -> dict[str, TensorData]:
    """Every split's pixels, decoded in contiguous shares on every core (the same tensors as one by one)."""
    images = [rel for df in parts.values() for rel in df["image"]]
    bounds = share_bounds(len(images))
    pixels = torch.cat(run_jobs(load_pixels, [(params.data.root, images[a:b], size) for a, b in bounds], len(bounds)))
    out, start = {}, 0
    for part, df in parts.items():
        out[part] = TensorData({"pixels": pixels[start:start + len(df)].clone()}, _labels(df), list(df["id"]))
        start += len(df)
    return out


# --------------------------------------------------------------------------- one run


def build_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
                 options: dict[str, Any] | None = None, protocol_parts: dict[str, pd.DataFrame] | None = None):
    """The family's config (``spec.options`` updated by ``options``) and its train/dev/test data.

    ``protocol_parts``: the protocol's own train/dev/test (default: ``load_parts``), whose texts
    pre-training on MVSA-Multiple must not see."""
    config = make_config(spec.family, {**spec.options, **(options or {})})
    if spec.family in FEATURE_FAMILIES:
        data, dims = feature_data(params, spec, dataset, parts)
        if spec.family == "mlp_head":
            (config.input, config.input_dim), = dims.items()
        else:
            config.text_dim, config.image_dim = dims.pop("text"), dims.pop("image")
            for key in SEQUENCE_INPUTS:  # cross-modal attention's per-token / per-region inputs
                if key in dims and hasattr(config, f"{key}_dim"):
                    setattr(config, f"{key}_dim", dims.pop(key))
            if dims and not hasattr(config, "extra_dims"):
                raise ValueError(f"models.{spec.name}: {spec.family} takes text and image only, not {sorted(dims)}")
            if dims:
                config.extra_dims = dims  # e.g. lexicon scores, text inside the image
        if spec.pretrain:
            from mmsent.pretrain import pretraining_data

            # every text of the protocol, not ``parts``: tuning passes an empty test part, and
            # cross-validation holds out train pairs too, so no Single text may be pre-trained on
            held = protocol_parts or load_parts(params, dataset)
            data["pretrain"] = pretraining_data(params, spec.inputs["text"],
                                                {"dev": pool(held), "test": held["test"]})
    elif spec.family == "finetune_fusion":
        # the tweet goes through the encoder being trained; the rest (image, lexicon, ocr) is cached
        cached_spec = dataclasses.replace(spec, inputs={m: e for m, e in spec.inputs.items() if m != "text"})
        data, dims = feature_data(params, cached_spec, dataset, parts)
        config.image_dim = dims.pop("image")
        if dims:
            config.extra_dims = dims
        add_transformer_tokens(data, parts, config)
    elif spec.family == "bilstm":
        data = token_data(parts, config)
    elif spec.family == "densenet121":
        data = pixel_data(params, parts, config.image_size)
    else:
        raise KeyError(f"no input builder for family {spec.family!r}")
    if spec.augment:
        if spec.family not in FEATURE_FAMILIES or spec.distill:
            raise ValueError(f"models.{spec.name}: augment works for heads on cached features without distill")
        data["augment"], data["augment_ok"] = augment_data(params, spec, dataset, data["train"])
    if spec.distill:
        from mmsent.distill import soft_targets

        data["train"].inputs[SOFT_LABEL], seconds = soft_targets(params, spec, config, data, dataset)
        data["train"].facts["teacher_cpu_seconds"] = seconds  # once per model, not per seed
    return config, data


def train_once(params: Params, spec: ModelSpec, config, data: dict[str, TensorData], seed: int,
               train_overrides: dict[str, Any] | None = None, on_epoch=None, resume: Path | None = None,
               dataset: str | None = None):
    """Build (seeded), initialise and fit one model; returns ``(model, history)``.

    ``resume``: a per-epoch resume file (see :func:`mmsent.train.fit`) so a killed run continues."""
    seed_everything(seed)
    model = build_model(spec.family, copy.deepcopy(config))
    if hasattr(model, "init_embeddings"):
        model.init_embeddings()
    if hasattr(model, "load_imagenet"):
        model.load_imagenet()
    if hasattr(model, "load_pretrained"):
        model.load_pretrained()
    if spec.pretrain:
        from mmsent.pretrain import PretrainConfig, pretrain_text

        pretrain_text(model, data["pretrain"], PretrainConfig(**spec.pretrain), seed)
    cfg = train_config(params, spec, dataset)
    if train_overrides:
        cfg = dataclasses.replace(cfg, **train_overrides)
    history = fit(model, data["train"], data["dev"], cfg, seed=seed, on_epoch=on_epoch, resume=resume)
    return model, history


def ocr_meta(params: Params, spec: ModelSpec) -> dict[str, Any]:
    """A model that reads text inside images keeps the OCR settings its cached inputs were made
    with (not those of the profile in force now), so the Pipeline reads new images the same way."""
    from mmsent.ocr import used_settings

    return {"ocr_config": used_settings(params)} if "ocr" in spec.inputs else {}


def checkpoint_meta(params: Params, spec: ModelSpec, dataset: str) -> dict[str, Any]:
    """What a checkpoint needs beside its weights for the Pipeline to compute its inputs the way
    its training features were computed."""
    return {"encoders": spec.inputs, "model_name": spec.name, "dataset": dataset,
            "text_config": dataclasses.asdict(params.features.text_config(params.text, spec.text_variant)),
            "image_size": params.features.image_size, "feature_backend": params.features.backend,
            **ocr_meta(params, spec)}


def run_seed(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
             config, data: dict[str, TensorData] | None, seed: int,
             overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One seed: train, read test once, write its predictions and checkpoint (in any process).
    ``overrides`` (train settings): e.g. the cross-validated ``stop_after`` of a final model."""
    start = time.perf_counter()
    if spec.family in BASELINES:
        clf_kwargs = dict(spec.options, **({"seed": seed} if spec.family == "tfidf_lr" else {}))
        clf = BASELINES[spec.family](**clf_kwargs).fit(list(parts["train"]["text"]),
                                                       parts["train"]["label_id"].astype(int))
        probs, extras, history, model = clf.predict_proba(list(parts["test"]["text"])), {}, [], None
    else:
        run_dir = params.path(MODELS_DIR) / spec.name / dataset
        model, history = train_once(params, spec, config, data, seed, train_overrides=overrides,
                                    resume=run_dir / f".seed{seed}.resume.pt", dataset=dataset)
        probs, extras = predict_proba(model, data["test"], device=next(model.parameters()).device)
        model.cpu()
    seconds = time.perf_counter() - start
    gold = parts["test"]["label_id"].astype(int).to_numpy()
    metrics = compute_metrics(gold, probs.argmax(1))
    save_frame(predictions_frame(parts["test"]["id"], gold, probs, extras),
               params.path(PREDICTIONS_DIR) / spec.name / dataset / f"seed{seed}.csv")
    facts = dict(data["train"].facts) if data else {}
    if model is not None:
        save_checkpoint(params.path(MODELS_DIR) / spec.name / dataset / f"seed{seed}.pt", model,
                        spec.family, **checkpoint_meta(params, spec, dataset), seed=seed, history=history,
                        test_metrics=metrics)
        if spec.family == "densenet121":
            facts["imagenet_pretrained"] = bool(model.config.pretrained)
        if spec.family == "bilstm":
            facts["glove_coverage"] = float(model.config.glove_coverage)
    return {"metrics": {"seed": seed, **metrics}, "history": [{"seed": seed, **h} for h in history],
            "seconds": seconds, "facts": facts, "predicted": probs.argmax(1)}


def train_workers(params: Params, jobs: int, device: str = "auto") -> int:
    """How many training jobs (seeds, tuning studies) run at once: ``train.workers`` on ``device``."""
    return resolve_workers((params.extra.get("train") or {}).get("workers", "auto"), jobs, str(pick_device(device)))


def expected_seconds(params: Params, name: str, dataset: str) -> float:
    """A seed's training time in the last run (its metrics file), for scheduling only; unknown
    models count as the longest, so nothing slow is left for the end."""
    path = params.path(METRICS_DIR) / f"{name}_{dataset}.json"
    try:
        return float(read_json(path)["train_seconds_per_seed"])
    except (OSError, KeyError, TypeError, ValueError):
        return float("inf")


def job_workers(params: Params, specs: list[ModelSpec], jobs: int) -> int:
    """How many seed jobs of ``specs`` run at once: one per core on CPU, one when any trains on a GPU.
    Baselines alone are too quick to be worth a process."""
    neural = [s for s in specs if s.family not in BASELINES]
    if not neural:
        return 1
    return min(train_workers(params, jobs, train_config(params, s).device) for s in neural)


def uses_cv(spec: ModelSpec, dataset: str) -> bool:
    """Whether the model is chosen and stopped by cross-validation (cheap heads on MVSA-Single)."""
    return dataset == "single" and spec.family in FEATURE_FAMILIES and not spec.distill


def cv_inputs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
              options: dict[str, Any] | None = None):
    """The config and data of a cross-validated model: ``train`` is train + dev (the pool the folds
    cut), ``dev`` is empty (each fold holds out its own), ``test`` is test."""
    cv_parts = {"train": pool(parts), "dev": parts["dev"].iloc[:0], "test": parts["test"]}
    return build_inputs(params, spec, dataset, cv_parts, options, protocol_parts=parts)


def run_fold(params: Params, spec: ModelSpec, dataset: str, config, data: dict[str, TensorData],
             held: np.ndarray, seed: int, overrides: dict[str, Any] | None = None,
             save: bool = False) -> dict[str, Any]:
    """One fold model (fold number ``seed``): trains on the pool less ``held``, early-stops on
    ``held``; its best epoch's held-out scores (%) and probabilities and, when ``data`` has a test
    part, its test probabilities. ``save``: write it as ``fold<j>.pt`` beside the final models."""
    fold = seed
    start = time.perf_counter()
    fold_data = {**data, "train": with_augment(data, ~held), "dev": data["train"].subset(held)}
    model, history = train_once(params, spec, config, fold_data, seed, train_overrides=overrides, dataset=dataset)
    best = max(history, key=lambda h: h["dev_weighted_f1"])  # the first of equal scores
    test = data.get("test")
    probs = predict_proba(model, test)[0] if test is not None and len(test) else None
    if save:  # the fold models are what a bagged ensemble ships (mmsent.ensemble)
        save_checkpoint(params.path(MODELS_DIR) / spec.name / dataset / f"fold{fold}.pt", model, spec.family,
                        **checkpoint_meta(params, spec, dataset), fold=fold, history=history)
    return {"weighted_f1": 100 * best["dev_weighted_f1"], "accuracy": 100 * best["dev_acc"],
            "epoch": int(best["epoch"]), "history": history, "test_probs": probs,
            "held_probs": predict_proba(model, fold_data["dev"])[0], "fold": fold,
            "parameters": int(sum(p.numel() for p in model.parameters())), "seconds": time.perf_counter() - start}


def cv_summary(params: Params, folds: list[dict[str, Any]]) -> dict[str, Any]:
    """What cross-validation says of a model: per-fold held-out scores, their mean and corrected
    standard error (mmsent.protocol), and the epoch count its final models train for."""
    cfg = protocol_config(params)
    out: dict[str, Any] = {"protocol": f"repeated stratified {cfg.folds}-fold CV over train + dev, "
                                       f"{cfg.repeats} repeat(s), seed {cfg.seed}",
                           "folds": cfg.folds, "repeats": len(folds) // cfg.folds,
                           "epochs": cv_epochs([f["epoch"] for f in folds])}
    for key in ("weighted_f1", "accuracy"):
        values = np.array([f[key] for f in folds])
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)),
                    "se": corrected_se(values, cfg.folds)}
    out["per_fold"] = {key: [float(f[key]) for f in folds] for key in ("weighted_f1", "accuracy", "epoch")}
    return out


def summarize(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
              runs: list[dict[str, Any]], folds: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Write (and return) one model's metrics over its seeds (and folds), and its training curves."""
    per_seed = [r["metrics"] for r in runs]
    histories = [h for r in runs for h in r["history"]]
    seconds = [r["seconds"] for r in runs]
    gold = parts["test"]["label_id"].astype(int).to_numpy()
    pred = np.stack([r["predicted"] for r in runs])
    trained = (f"trained on train + dev ({len(parts['train']) + len(parts['dev'])} pairs) for the "
               "cross-validated epoch count" if folds else "early-stopped on dev")
    summary = {
        "model": spec.name, "family": spec.family, "dataset": dataset, "modalities": spec.modalities,
        "encoders": spec.inputs,
        "measured_on": (f"MVSA-{dataset.title()} {params.data.split} test split"
                        f"{' (de-duplicated)' if params.data.dedup else ''}, n={len(parts['test'])}, "
                        f"{spec.modalities}{' (text only: no images exist)' if dataset == 'multiple' else ''}; "
                        f"{trained}"),
        "selection": "cross-validation" if folds else "dev split",
        **aggregate(per_seed), "test_interval": bootstrap_interval(gold, pred),
        "train_seconds_per_seed": float(np.mean(seconds)),
        "per_seed": per_seed, **runs[-1]["facts"],
    }
    if folds:
        summary["cv"] = cv_summary(params, folds)
        summary["cv_seconds_per_fold"] = float(np.mean([f["seconds"] for f in folds]))
        ensemble = np.mean([f["test_probs"] for f in folds], axis=0).argmax(1)  # the fold models averaged
        save_fold_probs(params, spec, dataset, parts, folds)
        summary["fold_ensemble"] = {k: v for k, v in compute_metrics(gold, ensemble).items() if k in
                                    ("accuracy", "weighted_f1", "macro_f1")}
        histories = [{"fold": j, "seed": j, **h} for j, f in enumerate(folds) for h in f["history"]]
    write_json(params.path(METRICS_DIR) / f"{spec.name}_{dataset}.json", summary)
    write_scores(params.path(SCORES_DIR), f"{spec.name}_{dataset}", summary)
    if histories:
        save_frame(pd.DataFrame(histories), params.path(METRICS_DIR) / "history" / f"{spec.name}_{dataset}.csv")
    return summary


def save_fold_probs(params: Params, spec: ModelSpec, dataset: str, parts: dict[str, pd.DataFrame],
                    folds: list[dict[str, Any]]) -> Path:
    """``folds.npz``: out-of-fold probabilities (repeats, pool pairs, labels; each pair is held out
    once per repeat) and each fold model's test probabilities (fold models, test pairs, labels)."""
    cfg = protocol_config(params)
    ids = np.asarray(pool(parts)["id"].astype(str), dtype=str)  # not object arrays: loadable without pickle
    masks = held_out(params, list(ids), dataset)
    oof = np.full((len(masks) // cfg.folds, len(ids), folds[0]["held_probs"].shape[1]), np.nan, dtype=np.float32)
    for f in folds:
        oof[f["fold"] // cfg.folds, masks[f["fold"]]] = f["held_probs"]
    path = params.path(PREDICTIONS_DIR) / spec.name / dataset / "folds.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, ids=ids, test_ids=np.asarray(parts["test"]["id"].astype(str), dtype=str), oof=oof,
                                test=np.stack([f["test_probs"] for f in folds]).astype(np.float32))
    return path


def run_models(params: Params, specs: list[ModelSpec]) -> dict[str, dict[str, dict]]:
    """All datasets × seeds of several models; writes checkpoints, predictions and metrics.

    Two pools of jobs (one process and thread each; see :mod:`mmsent.parallel`), longest first,
    so no core idles while another model's jobs wait: first every fold model of the
    cross-validated models with every seed of the others, then the cross-validated models' final
    seeds, which need the folds' epoch count. Each job seeds itself, so the numbers do not depend
    on the order or the worker count."""
    tasks = []  # (spec, dataset, parts, config, data): one per model and dataset
    for spec in specs:
        for dataset in spec.datasets:
            parts = load_parts(params, dataset)
            if spec.family in BASELINES:
                config, data = None, None
            elif uses_cv(spec, dataset):
                config, data = cv_inputs(params, spec, dataset, parts)
            else:
                config, data = build_inputs(params, spec, dataset, parts)
                data = {**data, "train": with_augment(data)}
            tasks.append((spec, dataset, parts, config, data))
    cost = [expected_seconds(params, spec.name, dataset) for spec, dataset, *_ in tasks]
    workers = job_workers(params, specs, len(tasks) * max(len(seeds(params)), protocol_config(params).n_fits))
    first, folds_of = [], {}
    for t, (spec, dataset, parts, config, data) in enumerate(tasks):
        if uses_cv(spec, dataset):
            masks = held_out(params, data["train"].ids, dataset)
            first += [(t, ("fold", j), (params, spec, dataset, config, data, mask, j, None, True))
                      for j, mask in enumerate(masks)]
        else:
            first += [(t, ("seed", seed), (params, spec, dataset, parts, config, data, seed)) for seed in seeds(params)]
    first.sort(key=lambda job: -cost[job[0]])  # stable: each task's jobs stay in order
    done = run_jobs(_first_job, [(kind, args) for _, (kind, _), args in first], workers)
    runs: dict[int, list[dict]] = {}
    for (t, (kind, _), _), out in zip(first, done):
        (folds_of if kind == "fold" else runs).setdefault(t, []).append(out)
    final = []
    for t in sorted(folds_of, key=lambda t: -cost[t]):
        spec, dataset, parts, config, data = tasks[t]
        stop = {"stop_after": cv_epochs([f["epoch"] for f in folds_of[t]])}
        final_data = {**data, "train": with_augment(data), "dev": None}
        final += [(t, (params, spec, dataset, parts, config, final_data, seed, stop))
                  for seed in protocol_config(params).final_seeds]
    for (t, _), out in zip(final, run_jobs(run_seed, [args for _, args in final], workers)):
        runs.setdefault(t, []).append(out)
    results: dict[str, dict[str, dict]] = {}
    for t, (spec, dataset, parts, _, _) in enumerate(tasks):
        results.setdefault(spec.name, {})[dataset] = summarize(params, spec, dataset, parts, runs[t], folds_of.get(t))
    return results


def _first_job(kind: str, args: tuple) -> dict[str, Any]:
    return run_fold(*args) if kind == "fold" else run_seed(*args)


def run_model(params: Params, spec: ModelSpec) -> dict[str, dict]:
    """All datasets × seeds of one model (see :func:`run_models`)."""
    return run_models(params, [spec])[spec.name]


def run_group(params: Params, group: str) -> dict[str, dict]:
    """Every model of one stage group (text, image or fusion)."""
    specs = [s for s in model_specs(params).values() if s.group == group]
    if not specs:
        raise ValueError(f"no models with group {group!r} in params.yaml")
    return run_models(params, specs)
