"""Figures a thesis chapter shows, read from the saved metrics and predictions and drawn with
seaborn in one style. :func:`save_figure` writes each twice: PNG for the reports (moderate
resolution, so executed notebooks stay small) and PDF for LaTeX, beside ``reports/tables/*.tex``."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mmsent.config import Params  # noqa: E402
from mmsent.data.labels import LABELS  # noqa: E402
from mmsent.io import atomic_path, read_json  # noqa: E402
from mmsent.paths import FIGURES_DIR, METRICS_DIR, PREDICTIONS_DIR  # noqa: E402

WIDTH = 6.3  # inches: an A4 thesis text width, so a figure prints at 1:1 and its text stays readable
PALETTE = dict(zip(LABELS, sns.color_palette("colorblind", len(LABELS))))
ERRORBAR = ("ci", 95)  # seaborn's bootstrap interval over seeds (or folds), seeded below
sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig, params: Params, name: str) -> Path:
    """``reports/figures/<name>.png`` and ``.pdf`` (no timestamps inside: reruns give the same bytes)."""
    out = params.path(FIGURES_DIR) / f"{name}.png"
    for suffix, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        with atomic_path(out.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=110, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return out


def metrics_of(params: Params, model: str, dataset: str) -> dict:
    return read_json(params.path(METRICS_DIR) / f"{model}_{dataset}.json")


def run_label(model: str, dataset: str) -> str:
    return f"{model} · MVSA-{dataset.title()}"


def learning_curves(params: Params, runs: list[tuple[str, str]]):
    """Held-out weighted F1 and losses per epoch: the mean over seeds (or fold models) with its 95 % interval."""
    frames = []
    for model, dataset in runs:
        path = params.path(METRICS_DIR) / "history" / f"{model}_{dataset}.csv"
        if path.is_file():
            frames.append(pd.read_csv(path).assign(run=run_label(model, dataset)))
    if not frames:
        raise FileNotFoundError(f"no training curves for {runs} under {params.path(METRICS_DIR) / 'history'}")
    hist = pd.concat(frames, ignore_index=True).assign(dev_wf1=lambda d: 100 * d["dev_weighted_f1"])
    losses = hist.melt(id_vars=["run", "epoch"], value_vars=["train_loss", "dev_loss"], var_name="loss")
    fig, (left, right) = plt.subplots(1, 2, figsize=(WIDTH, 2.8))
    sns.lineplot(hist, x="epoch", y="dev_wf1", hue="run", errorbar=ERRORBAR, seed=0, ax=left)
    sns.lineplot(losses, x="epoch", y="value", hue="run", style="loss", errorbar=None, ax=right, legend=False)
    left.set(ylabel="held-out weighted F1 (%)", title="held-out fold (CV) or dev")
    right.set(ylabel="loss", title="train (solid), held-out (dashed)")
    sns.move_legend(left, "upper center", bbox_to_anchor=(1.1, -0.25), ncol=2, title=None, frameon=False)
    fig.tight_layout()
    return fig


def confusion_matrices(params: Params, runs: list[tuple[str, str]]):
    """Test confusion matrices summed over seeds, row-normalised (recall per gold class)."""
    fig, axes = plt.subplots(1, len(runs), figsize=(min(WIDTH, 2.1 * len(runs) + 0.5), 2.4), squeeze=False,
                             sharey=True)
    for i, (ax, (model, dataset)) in enumerate(zip(axes[0], runs)):
        cm = np.sum([s["confusion_matrix"] for s in metrics_of(params, model, dataset)["per_seed"]], axis=0)
        share = pd.DataFrame(cm / cm.sum(1, keepdims=True).clip(min=1), index=LABELS, columns=LABELS)
        # the cell values are written in: no colour bar to squeeze the last panel
        sns.heatmap(share, annot=True, fmt=".2f", vmin=0, vmax=1, cmap="Blues", cbar=False, square=True, ax=ax,
                    annot_kws={"fontsize": 8})
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.tick_params(axis="y", labelrotation=0, labelsize=8)
        ax.set(xlabel="predicted", ylabel="gold" if i == 0 else "", title=f"{model}\nMVSA-{dataset.title()}")
    fig.tight_layout()
    return fig


def per_class_long(params: Params, runs: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per run, seed and class: its test F1 (%)."""
    return pd.DataFrame([{"run": run_label(m, d), "class": label, "seed": s["seed"], "f1": s["per_class"][label]["f1"]}
                         for m, d in runs for s in metrics_of(params, m, d)["per_seed"] for label in LABELS])


def per_class_f1(params: Params, runs: list[tuple[str, str]]):
    """Per-class test F1: the mean over seeds with its 95 % bootstrap interval over seeds."""
    fig, ax = plt.subplots(figsize=(WIDTH, 0.6 + 0.45 * len(runs) * len(LABELS) / 2))
    sns.barplot(per_class_long(params, runs), y="run", x="f1", hue="class", palette=PALETTE,
                errorbar=ERRORBAR, seed=0, capsize=0.15, err_kws={"linewidth": 1}, ax=ax)
    ax.set(xlabel="test F1 (%), mean over seeds ± 95 % interval", ylabel="", xlim=(0, 100))
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), title=None, frameon=False)
    return fig


def attention_by_class(params: Params, model: str, dataset: str = "single"):
    """Distribution of the attention weight on the text, per gold class (test pairs, all seeds)."""
    folder = params.path(PREDICTIONS_DIR) / model / dataset
    preds = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("seed*.csv"))], ignore_index=True)
    if "weights_text" not in preds:
        raise ValueError(f"{model} returns no modality weights: only attention fusion has them")
    fig, ax = plt.subplots(figsize=(WIDTH * 0.7, 2.8))
    sns.violinplot(preds, x="gold", y="weights_text", hue="gold", order=list(LABELS), palette=PALETTE,
                   inner="quart", cut=0, legend=False, ax=ax)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(xlabel="gold class", ylabel="attention weight on text", title=f"{model}: modality weights (test)")
    return fig


def cv_by_fold(rows: list[dict]):
    """Cross-validated held-out weighted F1 of each ablation row, fold by fold (one line per fold,
    so the paired differences the keep/drop rule reads are visible), and the mean ± corrected SE."""
    data = pd.DataFrame([{"row": r["model"], "fold": j, "wf1": v} for r in rows
                         for j, v in enumerate(r["metrics"]["cv"]["per_fold"]["weighted_f1"])])
    order = list(dict.fromkeys(data["row"]))
    fig, ax = plt.subplots(figsize=(WIDTH, 0.8 + 0.4 * len(order)))
    sns.lineplot(data, x="wf1", y="row", units="fold", estimator=None, sort=False, color="0.75", lw=0.7, ax=ax)
    sns.stripplot(data, x="wf1", y="row", order=order, color="0.45", size=3, jitter=False, ax=ax)
    means = [r["metrics"]["cv"]["weighted_f1"] for r in rows]
    ax.errorbar([m["mean"] for m in means], range(len(order)), xerr=[m["se"] for m in means], fmt="D",
                color=sns.color_palette("colorblind")[3], capsize=3, label="mean ± corrected SE")
    kept = [i for i, r in enumerate(rows) if r["kept"]]
    ax.set_yticks(range(len(order)), [f"{n}{' (kept)' if i in kept else ''}" for i, n in enumerate(order)])
    ax.set(xlabel="held-out weighted F1 (%), each fold model", ylabel="")
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    return fig
