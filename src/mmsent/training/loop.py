"""The one training loop, and checkpoints that reload on their own.

Adam (+ weight decay), an LR scheduler, cross-entropy with optional class weights and
label smoothing, gradient clipping, early stopping on dev weighted F1, the best epoch's
weights restored at the end. Seeded: a CPU run repeats bit for bit.

With ``resume=<file>``, every finished epoch leaves a resume file (weights, optimiser,
scheduler and every random-number state, written atomically); a run killed mid-epoch
restarts from the last finished epoch and ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from sklearn.metrics import f1_score, precision_recall_fscore_support
import torch
from torch import nn

from mmsent.data.labels import ID2LABEL
from mmsent.device import pick_device, seed_everything
from mmsent.io import atomic_path
from mmsent.models.registry import FamilyModel
from mmsent.progress import bar
from mmsent.training.losses import supervised_contrastive, view_contrastive
from mmsent.version import __version__
from mmsent.sections import TrainConfig  # noqa: F401  (re-exported: the loop's settings)





SOFT_LABEL = "soft_label"  # a train input: per-pair target probabilities (self-distillation)
VIEW = "view:"  # train inputs ``view:<input>``: that input of the pair's augmented view; VIEW_OK: which pairs have one
VIEW_OK = "view_ok"


@dataclass
class TensorData:
    """Inputs (a dict of equal-length tensors), labels and ids of one split."""

    inputs: dict[str, torch.Tensor]
    labels: torch.Tensor
    ids: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)  # what building it cost (copied into the model's metrics)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def subset(self, rows: np.ndarray) -> TensorData:
        """The rows where the boolean mask ``rows`` is true, in order (``facts`` are not carried)."""
        index = torch.from_numpy(np.flatnonzero(rows))
        return TensorData({k: v[index] for k, v in self.inputs.items()}, self.labels[index],
                          [self.ids[i] for i in index.tolist()] if self.ids else [])

    @staticmethod
    def concat(parts: list[TensorData]) -> TensorData:
        """The rows of ``parts`` one after the other (the same inputs in each; ``facts`` of the first)."""
        keys = set(parts[0].inputs)
        if any(set(p.inputs) != keys for p in parts):
            raise ValueError("TensorData parts to join have different inputs")
        return TensorData({k: torch.cat([p.inputs[k] for p in parts]) for k in parts[0].inputs},
                          torch.cat([p.labels for p in parts]), [i for p in parts for i in p.ids], dict(parts[0].facts))

    def batches(self, batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None):
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        for start in range(0, len(self), batch_size):
            rows = order[start:start + batch_size]
            yield {k: v[rows] for k, v in self.inputs.items()}, self.labels[rows]


def with_augment(data: dict[str, TensorData], rows: np.ndarray | None = None) -> TensorData:
    """The training rows (``rows`` of ``data["train"]``, default all) and their augmented copies:
    appended as further pairs, or (``data["augment_as"] == "view"``) carried beside each pair as
    ``view:<input>`` inputs with a ``view_ok`` mask, for the view-contrastive loss."""
    rows = np.ones(len(data["train"]), bool) if rows is None else rows
    train = data["train"].subset(rows) if not rows.all() else data["train"]
    if "augment" not in data:
        return train
    augment = data["augment"].subset(rows)
    if data.get("augment_as", "pairs") == "pairs":
        return TensorData.concat([train, augment.subset(data["augment_ok"][rows])])
    views = {VIEW + k: augment.inputs[k] for k in data["augment_keys"]}
    views[VIEW_OK] = torch.from_numpy(data["augment_ok"][rows])
    return TensorData({**train.inputs, **views}, train.labels, train.ids, dict(train.facts))


def split_views(inputs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict | None, torch.Tensor | None]:
    """``inputs`` less their ``view:`` entries; the batch's augmented view (of the pairs that have
    one, every other input as it is) and which pairs those are, or None twice when none has one."""
    ok = inputs.pop(VIEW_OK, None)
    views = {k.removeprefix(VIEW): inputs.pop(k) for k in [k for k in inputs if k.startswith(VIEW)]}
    if ok is None or not ok.any():
        return inputs, None, None
    return inputs, {k: (views[k] if k in views else v)[ok] for k, v in inputs.items()}, ok


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


@torch.inference_mode()
def predict_proba(model: nn.Module, data: TensorData, batch_size: int = 256,
                  device: str | torch.device = "cpu") -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Class probabilities (N, labels) and any extra outputs (e.g. modality ``weights``)."""
    model.eval()
    device = torch.device(device)
    probs, extras = [], {}
    for inputs, _ in data.batches(batch_size):
        out = model(_to(inputs, device))
        probs.append(torch.softmax(out["logits"].float(), -1).cpu().numpy())
        for key, value in out.items():
            if key not in ("logits", "aux_loss"):
                extras.setdefault(key, []).append(value.float().cpu().numpy())
    return np.concatenate(probs), {k: np.concatenate(v) for k, v in extras.items()}


def weighted_f1(labels: np.ndarray, probs: np.ndarray) -> float:
    return float(f1_score(labels, probs.argmax(1), average="weighted", zero_division=0))


def per_class(labels: np.ndarray, probs: np.ndarray, names: list[str]) -> dict[str, float]:
    """``dev_precision_<name>``, ``dev_recall_<name>``, ``dev_f1_<name>`` (0 for a class never predicted)."""
    p, r, f, _ = precision_recall_fscore_support(labels, probs.argmax(1), labels=list(range(len(names))),
                                                 zero_division=0)
    return {f"dev_{kind}_{name}": float(v[i]) for kind, v in (("precision", p), ("recall", r), ("f1", f))
            for i, name in enumerate(names)}


def _scheduler(cfg: TrainConfig, optimizer):
    if cfg.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=0.5, patience=2)
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, cfg.epochs))
    return None


def _fingerprint(model: nn.Module, train: TensorData, cfg: TrainConfig, seed: int) -> str:
    """What must match for a resume file to belong to this run."""
    shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
    body = json.dumps([dataclasses.asdict(cfg), seed, len(train), shapes,
                       float(train.labels.float().sum())], sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    return {"generator": generator.get_state(), "torch": torch.get_rng_state(),
            "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    generator.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(model: nn.Module, train: TensorData, dev: TensorData | None, cfg: TrainConfig, seed: int = 0,
        on_epoch: Callable[[dict[str, Any]], None] | None = None,
        resume: str | Path | None = None, watch: TensorData | None = None,
        label_names: list[str] | None = None) -> list[dict[str, Any]]:
    """Train ``model`` in place; returns the per-epoch history. The best dev epoch is kept, or
    with ``cfg.stop_after`` (``dev`` may then be None) the last of that many epochs.

    Each dev epoch's record carries precision, recall and F1 per class (``dev_f1_<label>``, the
    labels ``label_names``, default positive / neutral / negative): the training-metrics file.

    ``watch``: pairs scored after every epoch into the history (``held_acc``, ``held_weighted_f1``)
    and never read by any choice: how much choosing the epoch on them would have flattered them.

    ``on_epoch`` sees each epoch's record (e.g. an Optuna pruner); an exception it raises
    stops training and propagates. ``resume``: a file that holds the state after each
    finished epoch; when it exists and belongs to this run (same config, seed, data size and
    model shapes) training continues from it. It is removed once training ends.
    """
    seed_everything(seed)
    device = pick_device(cfg.device)
    model.to(device)
    generator = torch.Generator().manual_seed(seed)
    weight = None
    if cfg.class_weights:
        counts = torch.bincount(train.labels, minlength=len(ID2LABEL)).float().clamp_min(1)
        weight = (counts.sum() / (len(counts) * counts)).to(device)
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.label_smoothing)
    # models may ask for per-layer learning rates (e.g. a fine-tuned encoder below a head)
    groups = model.param_groups(cfg.lr) if isinstance(model, FamilyModel) else \
        [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = _scheduler(cfg, optimizer)
    history: list[dict[str, Any]] = []
    best_f1, best_state, stale, first = -1.0, None, 0, 1
    fingerprint = _fingerprint(model, train, cfg, seed) if resume else ""
    if resume and Path(resume).is_file():
        try:
            state = torch.load(resume, map_location=device, weights_only=False)  # our own file
        except Exception:  # unreadable: start afresh rather than fail
            state = {}
        if state.get("fingerprint") == fingerprint:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(state["scheduler"])
            _set_rng_state(state["rng"], generator)
            history, best_f1, best_state, stale = state["history"], state["best_f1"], state["best_state"], state["stale"]
            first = state["epoch"] + 1
    if cfg.soft_weight > 0 and SOFT_LABEL not in train.inputs:
        raise ValueError(f"train.soft_weight is {cfg.soft_weight} but the train split has no {SOFT_LABEL!r} input")
    if cfg.view_contrastive_weight > 0 and VIEW_OK not in train.inputs:
        raise ValueError("train.view_contrastive_weight is set but the train split carries no augmented views "
                         "(the model needs augment: <name> and augment_as: view)")
    if dev is None and cfg.stop_after is None:
        raise ValueError("fit needs a dev split for early stopping unless train.stop_after fixes the epoch count")
    last = cfg.stop_after or cfg.epochs
    for epoch in bar(range(first, last + 1), cfg.progress, desc="epochs"):
        if stale >= cfg.patience and cfg.stop_after is None:  # a resumed run that had already stopped early
            break
        start = time.perf_counter()
        model.train()
        total, seen = 0.0, 0
        for inputs, labels in train.batches(cfg.batch_size, shuffle=True, generator=generator):
            if len(labels) < 2:  # batch norm cannot train on a single sample
                continue
            optimizer.zero_grad(set_to_none=True)
            labels = labels.to(device)
            soft = inputs.pop(SOFT_LABEL, None)  # the model never reads it
            inputs, view, has_view = split_views(inputs)
            out = model(_to(inputs, device))
            loss = loss_fn(out["logits"], labels) + out.get("aux_loss", 0.0)
            if cfg.soft_weight > 0:
                loss = loss + cfg.soft_weight * -(soft.to(device) * torch.log_softmax(out["logits"], -1)).sum(-1).mean()
            if (cfg.contrastive_weight > 0 or cfg.view_contrastive_weight > 0) and "fused" not in out:
                raise ValueError(f"a contrastive weight is set but {type(model).__name__} returns no fused "
                                 "representation (attention fusion does)")
            if cfg.contrastive_weight > 0:
                loss = loss + cfg.contrastive_weight * supervised_contrastive(
                    out["fused"], labels, cfg.contrastive_temperature)
            if cfg.view_contrastive_weight > 0 and view is not None:
                loss = loss + cfg.view_contrastive_weight * view_contrastive(
                    out["fused"][has_view.to(device)], model(_to(view, device))["fused"], cfg.contrastive_temperature)
            loss.backward()
            if cfg.grad_clip:
                nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            optimizer.step()
            total += loss.item() * len(labels)
            seen += len(labels)
        record = {"epoch": epoch, "train_loss": total / max(seen, 1), "lr": optimizer.param_groups[0]["lr"]}
        dev_f1 = float("nan")
        if dev is not None and cfg.stop_after is None:
            probs, _ = predict_proba(model, dev, device=device)
            dev_labels = dev.labels.numpy()
            dev_f1 = weighted_f1(dev_labels, probs)
            record.update(dev_loss=float(nn.functional.nll_loss(torch.log(torch.from_numpy(probs).clamp_min(1e-8)),
                                                                dev.labels)),
                          dev_acc=float((probs.argmax(1) == dev_labels).mean()), dev_weighted_f1=dev_f1,
                          **per_class(dev_labels, probs, label_names or list(ID2LABEL.values())))
        if watch is not None:
            probs, _ = predict_proba(model, watch, device=device)
            record.update(held_acc=float((probs.argmax(1) == watch.labels.numpy()).mean()),
                          held_weighted_f1=weighted_f1(watch.labels.numpy(), probs))
        history.append({**record, "seconds": time.perf_counter() - start})
        if on_epoch is not None:
            on_epoch(history[-1])
        if cfg.stop_after is not None:
            pass  # no selection: the last epoch's weights are the model
        elif dev_f1 > best_f1:
            best_f1, stale = dev_f1, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(dev_f1)
        elif scheduler is not None:
            scheduler.step()
        if resume:
            with atomic_path(resume, suffix=".pt") as tmp:
                torch.save({"fingerprint": fingerprint, "epoch": epoch, "model": model.state_dict(),
                            "optimizer": optimizer.state_dict(),
                            "scheduler": scheduler.state_dict() if scheduler is not None else None,
                            "rng": _rng_state(generator), "history": history, "best_f1": best_f1,
                            "best_state": best_state, "stale": stale}, tmp)
        if stale >= cfg.patience and cfg.stop_after is None:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    if resume:
        Path(resume).unlink(missing_ok=True)
    return history


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | Path, model: nn.Module, family: str, **meta: Any) -> Path:
    """Write a self-contained checkpoint atomically (temp file, then rename).

    It holds the family, the config, the weights, ``id2label`` and whatever ``meta`` says
    (encoder names, metrics, history), so :func:`load_checkpoint` needs nothing else.
    """
    payload = {
        "format": "mmsent-checkpoint/1", "mmsent_version": __version__, "family": family,
        "config": dataclasses.asdict(model.config), "id2label": dict(ID2LABEL),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **meta,
    }
    # through a file object: torch names a path's zip records after the (random) temp file's name,
    # so the same weights would give other bytes on every save
    with atomic_path(path, suffix=".pt") as tmp, open(tmp, "wb") as handle:
        torch.save(payload, handle)
    return Path(path)


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model from a checkpoint alone; returns ``(model in eval mode, payload)``."""
    from mmsent.models import build_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # truncated zip, pickle error, ...
        raise ValueError(f"{path} is not a readable mmsent checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or payload.get("format") != "mmsent-checkpoint/1":
        raise ValueError(f"{path} is not an mmsent checkpoint")
    model = build_model(payload["family"], payload["config"])
    model.load_state_dict(payload["state_dict"])
    return model.to(device).eval(), payload
