"""Figures a thesis chapter shows for trained models, read from the saved metrics and predictions."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mmsent.config import Params  # noqa: E402
from mmsent.experiments import METRICS_DIR, PREDICTIONS_DIR  # noqa: E402
from mmsent.io import read_json  # noqa: E402
from mmsent.labels import LABELS  # noqa: E402

FIGURES_DIR = Path("reports/figures")


def save_figure(fig, params: Params, name: str) -> Path:
    out = params.path(FIGURES_DIR) / f"{name}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return out


def metrics_of(params: Params, model: str, dataset: str) -> dict:
    return read_json(params.path(METRICS_DIR) / f"{model}_{dataset}.json")


def learning_curves(params: Params, runs: list[tuple[str, str]]):
    """Dev weighted F1 and train loss per epoch, every seed a thin line."""
    runs = [(m, d) for m, d in runs if (params.path(METRICS_DIR) / "history" / f"{m}_{d}.csv").is_file()]
    fig, axes = plt.subplots(len(runs), 2, figsize=(10, 2.6 * max(1, len(runs))), squeeze=False)
    for row, (model, dataset) in enumerate(runs):
        hist = pd.read_csv(params.path(METRICS_DIR) / "history" / f"{model}_{dataset}.csv")
        for seed, h in hist.groupby("seed"):
            axes[row][0].plot(h["epoch"], 100 * h["dev_weighted_f1"], lw=1, label=f"seed {seed}")
            axes[row][1].plot(h["epoch"], h["train_loss"], lw=1)
            axes[row][1].plot(h["epoch"], h["dev_loss"], lw=1, ls="--", color="grey")
        axes[row][0].set(title=f"{model} · MVSA-{dataset.title()}: dev weighted F1", xlabel="epoch", ylabel="%")
        axes[row][1].set(title="train loss (solid), dev loss (dashed)", xlabel="epoch")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def confusion_matrices(params: Params, runs: list[tuple[str, str]]):
    """Test confusion matrices summed over seeds, row-normalised (recall per gold class)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(3.4 * len(runs), 3.3), squeeze=False)
    for ax, (model, dataset) in zip(axes[0], runs):
        cm = np.sum([s["confusion_matrix"] for s in metrics_of(params, model, dataset)["per_seed"]], axis=0)
        share = cm / cm.sum(1, keepdims=True).clip(min=1)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for i in range(3):
            for j in range(3):
                ax.text(j, i, f"{share[i, j]:.2f}", ha="center", va="center", fontsize=8)
        ax.set(xticks=range(3), yticks=range(3), xticklabels=LABELS, yticklabels=LABELS,
               xlabel="predicted", ylabel="gold", title=f"{model}\nMVSA-{dataset.title()}")
    fig.tight_layout()
    return fig


def per_class_f1(params: Params, runs: list[tuple[str, str]]):
    """Per-class test F1, mean ± std over seeds."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(runs), 3.5))
    width = 0.8 / len(LABELS)
    for k, label in enumerate(LABELS):
        stats = [metrics_of(params, m, d)["per_class_f1"][label] for m, d in runs]
        ax.bar(np.arange(len(runs)) + k * width, [s["mean"] for s in stats], width,
               yerr=[s["std"] for s in stats], label=label, capsize=2)
    ax.set_xticks(np.arange(len(runs)) + width)
    ax.set_xticklabels([f"{m}\n{d}" for m, d in runs], fontsize=7)
    ax.set(ylabel="test F1 (%)", title="Per-class F1 (mean ± std over seeds)")
    ax.legend(fontsize=7)
    return fig


def attention_by_class(params: Params, model: str, dataset: str = "single"):
    """Distribution of the text weight of modality attention, per gold class (all seeds)."""
    folder = params.path(PREDICTIONS_DIR) / model / dataset
    preds = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("seed*.csv"))])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.boxplot([preds.loc[preds["gold"] == lab, "weights_text"] for lab in LABELS], tick_labels=list(LABELS))
    ax.set(ylabel="attention weight on text", title=f"{model}: modality weights by gold class (test)")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    return fig
