"""`mmsent fit`: the shipped configuration's head trained on your own labelled pairs.

The frozen encoders of a served model (the shipped one by default) compute the features of every
pair exactly as the Pipeline does when it scores; a fresh head of the same family and settings is
then trained on them with the project's protocol: stratified k-fold cross-validation, each fold
model early-stopped on an inner split of its own training part and scored on the fold it holds
out (the CV weighted F1 and its corrected SE), then one model on every pair for the folds' median
best epoch. The result is a checkpoint that ``Pipeline.load``, ``predict``, ``predict-batch``,
``serve --model`` and ``ui --model`` take, with a small model card beside it (``<out>.md``).

A file that cannot be trained on (missing columns, unknown labels, unreadable images, too few
pairs of a class) is refused with the rows at fault, and nothing is written.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

from mmsent.data.images import ImageLoadError
from mmsent.data.labels import LABELS
from mmsent.evaluation.metrics import compute_metrics
from mmsent.io import write_text
from mmsent.models import build_model
from mmsent.serving.batch import read_pairs
from mmsent.serving.prepared import InputError
from mmsent.training import metrics_file
from mmsent.training.fitting import fit_fold
from mmsent.training.loop import TensorData, TrainConfig, fit, predict_proba, save_checkpoint
from mmsent.training.protocol import corrected_se, cv_epochs, test_train_ratio


class TrainingDataError(ValueError):
    """A labelled file that cannot be trained on; the message lists the rows at fault."""


@dataclass
class FitConfig:
    folds: int = 5
    inner_fraction: float = 0.2  # of each fold model's training part: it picks the epoch
    seed: int = 0
    batch_size: int = 64


def rows_text(rows: list[int], limit: int = 10) -> str:
    shown = ", ".join(map(str, rows[:limit]))
    return shown + (f" and {len(rows) - limit} more" if len(rows) > limit else "")


def label_set(labels: list[str]) -> list[str]:
    """The labels the file uses: in the project's order when they are among its three classes
    (positive / neutral / negative, or some of them), else the file's own, sorted."""
    found = set(labels)
    return [lab for lab in LABELS if lab in found] if found <= set(LABELS) else sorted(found)


def load_examples(pipe, path: Path, label_col: str = "label", text_col: str = "text", image_col: str = "image",
                  image_root: Path | None = None, folds: int = 5, batch_size: int = 64):
    """The file's pairs as the model's inputs (TensorData), its label names, and its label set; or a
    :class:`TrainingDataError` naming every bad row (line numbers: the header is line 1)."""
    df, pairs = read_pairs(path, image_root, text_col, image_col, label_col)
    labels = [str(v).strip() for v in df[label_col]]
    labels = [v.lower() if v.lower() in LABELS else v for v in labels]
    problems, prepared = [], []
    missing = [i + 2 for i, v in enumerate(labels) if not v]
    if missing:
        problems.append(f"no label in row(s) {rows_text(missing)}")
    for i, pair in enumerate(pairs):
        try:
            prepared.append(pipe.preprocess(pair["text"], pair["image"]))
        except (InputError, ImageLoadError) as exc:
            problems.append(f"row {i + 2}: {exc}")
    if problems:
        raise TrainingDataError(f"{path}: {len(problems)} problem(s), nothing trained: " + "; ".join(problems[:20]))
    names = label_set(labels)
    counts = {name: labels.count(name) for name in names}
    if len(names) < 2:
        raise TrainingDataError(f"{path}: one label only ({names}); a classifier needs at least two")
    few = {name: n for name, n in counts.items() if n < folds}
    if few:
        raise TrainingDataError(f"{path}: too few pairs of {few} for {folds}-fold cross-validation "
                                f"(at least {folds} each); label counts: {counts}")
    batches = [pipe.features(prepared[a:a + batch_size]) for a in range(0, len(prepared), batch_size)]
    inputs = {k: torch.cat([b[k].cpu() for b in batches]) for k in batches[0]}
    y = torch.tensor([names.index(v) for v in labels], dtype=torch.long)
    return TensorData(inputs, y, [str(i + 2) for i in range(len(labels))]), names, counts


def head_config(payload: dict[str, Any], n_labels: int) -> tuple[str, dict[str, Any]]:
    """The family and settings of the served model's head, for ``n_labels`` classes and without
    levers that need more than a label (the separate text and image labels of MVSA)."""
    family, config = payload["family"], copy.deepcopy(payload["config"])
    if family == "ensemble":
        raise TrainingDataError("the served model is an ensemble: fit on a single configuration's checkpoint "
                                "(--model models/<model>/single/seed0.pt)")
    config["num_labels"] = n_labels
    if "aux_weight" in config:
        config["aux_weight"] = 0.0
    return family, config


def train_config(payload: dict[str, Any], **changes: Any) -> TrainConfig:
    """The shipped head's training settings (stored by the ship stage), on the CPU, with a fixed-epoch
    schedule a final model can follow."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    raw = {k: v for k, v in (payload.get("train_config") or {}).items() if k in known}
    raw.update(device="cpu", progress=False, stop_after=None, soft_weight=0.0, view_contrastive_weight=0.0)
    if raw.get("scheduler", "plateau") == "plateau":  # plateau needs a dev split the final model has not
        raw["scheduler"] = "cosine"
    return dataclasses.replace(TrainConfig(**raw), **changes)


def fit_own(pipe, path: Path, out: Path, label_col: str = "label", text_col: str = "text", image_col: str = "image",
            image_root: Path | None = None, cfg: FitConfig | None = None) -> dict[str, Any]:
    """Train, cross-validate and write ``out`` (+ ``out.md``); returns the card's numbers."""
    cfg = cfg or FitConfig()
    out = Path(out)
    if out.suffix != ".pt":
        raise TrainingDataError(f"--out must end in .pt, not {out.name!r}")
    data, names, counts = load_examples(pipe, path, label_col, text_col, image_col, image_root, cfg.folds,
                                        cfg.batch_size)
    family, config = head_config(pipe.payload, len(names))
    labels = data.labels.numpy()
    folds, epochs, histories = [], [], []
    splitter = StratifiedKFold(n_splits=cfg.folds, shuffle=True, random_state=cfg.seed)
    for j, (_, held_index) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        held = np.zeros(len(labels), bool)
        held[held_index] = True

        def train(rows: np.ndarray, stop: np.ndarray, j: int = j):
            torch.manual_seed(cfg.seed + j)
            model = build_model(family, config)
            return model, fit(model, data.subset(rows), data.subset(stop), train_config(pipe.payload),
                              seed=cfg.seed + j, label_names=names)

        model, history, best = fit_fold(labels, ~held, cfg.inner_fraction, cfg.seed + j, train)
        histories.append((f"fold{j}", history))
        epochs.append(int(best["epoch"]))
        probs, _ = predict_proba(model, data.subset(held))
        folds.append(compute_metrics(labels[held], probs.argmax(1)))
    scores = np.array([f["weighted_f1"] for f in folds])
    n_epochs = cv_epochs(epochs)
    torch.manual_seed(cfg.seed)
    model = build_model(family, config)
    history = fit(model, data, None, train_config(pipe.payload, stop_after=n_epochs), seed=cfg.seed)
    card = {"pairs": len(labels), "label_counts": counts, "labels": names, "folds": cfg.folds,
            "cv_weighted_f1": float(scores.mean()), "cv_se": corrected_se(
                scores, test_train_ratio(cfg.folds, cfg.inner_fraction)),
            "cv_accuracy": float(np.mean([f["accuracy"] for f in folds])), "epochs": n_epochs,
            "trained_from": str(getattr(pipe, "path", "")), "family": family, "source": str(path)}
    meta = {k: v for k, v in pipe.payload.items() if k in ("encoders", "text_config", "image_size", "feature_backend",
                                                            "ocr_config")}
    save_checkpoint(out, model, family, **meta, model_name=out.stem, dataset=f"own data ({Path(path).name})",
                    id2label=dict(enumerate(names)), history=history, own_data=card)
    write_text(out.with_suffix(".md"), model_card(card))
    metrics = metrics_file.write(metrics_file.path_for(out), [*histories, ("final", history)])
    return {**card, "out": str(out), "card": str(out.with_suffix(".md")), "training_metrics": str(metrics)}


def model_card(card: dict[str, Any]) -> str:
    counts = ", ".join(f"{k} {v}" for k, v in card["label_counts"].items())
    return f"""# Model card: {Path(card['source']).name}

Written by `mmsent fit`; do not edit by hand.

- **Model**: a `{card['family']}` head on the frozen encoders of `{card['trained_from'] or 'the shipped model'}`,
  trained on every pair of `{card['source']}` for {card['epochs']} epoch(s).
- **Data**: {card['pairs']} labelled pairs ({counts}); labels: {', '.join(card['labels'])}.
- **Cross-validated** ({card['folds']} stratified folds; each fold model stopped on an inner split of its own
  training part): weighted F1 {card['cv_weighted_f1']:.2f} ± {card['cv_se']:.2f} % (corrected SE), accuracy
  {card['cv_accuracy']:.2f} %. An estimate for pairs like these; no test split was held out beyond the folds.
- **Scores** are the head's own probabilities (not calibrated).
"""
