"""Figures a thesis chapter shows, read from the saved metrics and predictions and drawn with
seaborn in one style. :func:`save_figure` writes each twice: PNG for the reports (moderate
resolution, so executed notebooks stay small) and PDF for LaTeX, beside ``reports/tables/*.tex``.

Every figure is drawn at the report's text width (:data:`WIDTH`) with a constrained layout and its
legends outside the axes, so the PNG is shown at 1:1 and no legend covers data or an axis."""

from __future__ import annotations

import itertools
import math
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from mmsent.config import Params  # noqa: E402
from mmsent.data.labels import LABELS  # noqa: E402
from mmsent.io import atomic_path, read_json  # noqa: E402
from mmsent.paths import FIGURES_DIR, HISTORY_DIR, RunPaths  # noqa: E402

WIDTH = 6.3  # inches: an A4 thesis text width, so a figure prints at 1:1 and its text stays readable
DPI = 110  # the PNG's resolution: WIDTH * DPI pixels is the width the report shows it at
PALETTE = dict(zip(LABELS, sns.color_palette("colorblind", len(LABELS))))
# spread over seeds (or fold models) is their standard deviation: a bootstrap over 5-10 seeds is
# unstable, and "95 % interval" is kept for the bootstrap over test pairs reported elsewhere
ERRORBAR = "sd"
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MAX_COLUMNS = 5  # confusion panels per row: more and a 3x3 matrix's numbers no longer fit
sns.set_theme(context="paper", style="whitegrid", font_scale=1.1)


def save_figure(fig, params: Params, name: str) -> Path:
    """``reports/figures/<name>.png`` and ``.pdf`` (no timestamps inside: reruns give the same bytes)."""
    out = params.path(FIGURES_DIR) / f"{name}.png"
    for suffix, meta in ((".png", {"Software": None}), (".pdf", {"CreationDate": None, "Producer": None})):
        with atomic_path(out.with_suffix(suffix)) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=DPI, bbox_inches="tight", metadata=meta)
    plt.close(fig)
    return out


def png_bytes(fig) -> bytes:
    """The figure as the report shows it (PNG at DPI), for a notebook to display without writing a file."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def figure(width: float = WIDTH, height: float = 3.0, **kw):
    """A constrained-layout figure: it keeps titles, tick labels and ``outside`` legends apart."""
    return plt.subplots(figsize=(width, height), layout="constrained", **kw)


def wrap_name(name: str, width: int) -> str:
    """A model name broken after its underscores (never inside a word), so a panel title stays
    within its panel."""
    lines = [""]
    for part in re.findall(r"[^_]+_?|_", name):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def metrics_of(params: Params, model: str, dataset: str) -> dict:
    return read_json(RunPaths(params).record(model, dataset))


def run_label(model: str, dataset: str) -> str:
    return f"{model} · MVSA-{dataset.title()}"


def history_of(params: Params, model: str, dataset: str) -> pd.DataFrame | None:
    """A model's per-epoch curves cut at the last epoch every one of its runs reached, or None.

    A run is a seed, or a fold model (column ``fold``). Early stopping ends runs at different
    epochs; past the shortest one the mean would be that of the few runs that trained longest."""
    path = RunPaths(params).history(model, dataset)
    if not path.is_file():
        return None
    hist = pd.read_csv(path)
    units = [c for c in ("fold", "seed") if c in hist]
    last = hist.groupby(units)["epoch"].max()
    kind = "fold models" if "fold" in hist else "seeds"
    label = f"{run_label(model, dataset)} ({len(last)} {kind})"
    return hist[hist["epoch"] <= last.min()].assign(run=label, unit=hist[units].astype(str).agg("/".join, axis=1))


def learning_curves(params: Params, runs: list[tuple[str, str]]):
    """Weighted F1 on the early-stopping split and both losses per epoch: the mean over a model's
    runs (band: ± std), up to the last epoch all its runs reached. The split is dev, or for fold
    models the split they stop on (``dev_*`` columns); any other column (``held_*``) is not read."""
    frames = [h for m, d in runs if (h := history_of(params, m, d)) is not None]
    if not frames:
        raise FileNotFoundError(f"no training curves for {runs} under {params.path(HISTORY_DIR)}")
    hist = pd.concat(frames, ignore_index=True).assign(dev_wf1=lambda d: 100 * d["dev_weighted_f1"])
    losses = hist.melt(id_vars=["run", "epoch", "unit"], value_vars=["train_loss", "dev_loss"], var_name="loss")
    order = list(dict.fromkeys(hist["run"]))
    colours = dict(zip(order, sns.color_palette("colorblind", len(order))))
    # a shape per run as well as a colour: the palette's orange and vermillion are close
    markers = dict(zip(order, itertools.cycle(RUN_MARKERS)))
    fig, (left, right) = figure(height=2.6 + 0.22 * len(order), ncols=2)
    # markers: a model that trains one epoch (DenseNet-121 on CPU) is a point, not an invisible line
    sns.lineplot(hist, x="epoch", y="dev_wf1", hue="run", hue_order=order, palette=colours, style="run",
                 style_order=order, markers=markers, dashes=False, errorbar=ERRORBAR, legend=False, ax=left,
                 markersize=5)
    single = [r for r in order if hist.loc[hist["run"] == r, "epoch"].nunique() == 1]
    for run in single:  # a band has no width at one epoch: its ± std as an error bar
        scores = hist.loc[hist["run"] == run, "dev_wf1"]
        left.errorbar(hist.loc[hist["run"] == run, "epoch"].iloc[0], scores.mean(), yerr=scores.std(),
                      color=colours[run], capsize=3, lw=1)
    # the early-stopping split's loss hollow; a one-epoch model's two losses side by side, not on top
    for run, part in losses.groupby("run", sort=False):
        for loss, ls, face, shift in (("train_loss", "-", colours[run], -0.1), ("dev_loss", "--", "white", 0.1)):
            mean = part[part["loss"] == loss].groupby("epoch")["value"].mean()
            right.plot(mean.index + (shift if run in single else 0), mean.to_numpy(), ls=ls, color=colours[run],
                       marker=markers[run], markersize=5, markerfacecolor=face)
    left.set(ylabel="weighted F1 (%)", title="early-stopping split")
    right.set(xlabel="epoch", ylabel="loss", title="train and early-stopping split")
    for ax in (left, right):
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles = [Line2D([], [], color=colours[r], lw=2, marker=markers[r], markersize=5) for r in order]
    handles += [Line2D([], [], color="0.3", ls=ls, marker="o", markersize=5, markerfacecolor=face)
                for ls, face in (("-", "0.3"), ("--", "white"))]
    labels = order + ["train loss", "early-stopping split loss"]
    fig.legend(handles, labels, loc="outside lower center", ncol=1 if len(order) > 2 else 2, frameon=False,
               title="mean over runs, band (or bar) ± std; epochs every run reached", title_fontsize="small")
    return fig


def confusion_counts(params: Params, model: str, dataset: str) -> tuple[np.ndarray, int]:
    """The test confusion matrix as the mean count per seed (rows gold, columns predicted, in
    ``LABELS`` order: it sums to the test size), and the number of seeds."""
    per_seed = metrics_of(params, model, dataset)["per_seed"]
    return np.mean([s["confusion_matrix"] for s in per_seed], axis=0), len(per_seed)


def count_text(n: float) -> str:
    """A mean count in at most four characters: whole above 100, else to one decimal where it has one."""
    return f"{n:.0f}" if n >= 100 or float(n).is_integer() else f"{n:.1f}"


def draw_confusion(ax, counts: np.ndarray, fontsize: float, first_column: bool = True, bottom: bool = True) -> None:
    """Colour: share of the gold row (recall); text: the count (gid ``count``) over its row share."""
    share = counts / counts.sum(1, keepdims=True).clip(min=1e-12)
    sns.heatmap(pd.DataFrame(share, index=LABELS, columns=LABELS), vmin=0, vmax=1, cmap="Blues", cbar=False,
                square=True, linewidths=0.5, linecolor="white", ax=ax)
    for (i, j), n in np.ndenumerate(counts):
        colour = "white" if share[i, j] > 0.6 else "black"
        ax.text(j + 0.5, i + 0.4, count_text(n), ha="center", va="center", fontsize=fontsize, color=colour, gid="count")
        row_share = f"{100 * share[i, j]:.0f}%" if counts[i].sum() else "–"  # no gold pair of this class
        ax.text(j + 0.5, i + 0.76, row_share, ha="center", va="center", fontsize=fontsize - 1, color=colour,
                gid="share")
    ax.tick_params(axis="both", length=0, labelsize=fontsize, pad=2)
    ax.set_yticks(np.arange(3) + 0.5, LABELS if first_column else [], rotation=0)
    ax.set_xticks(np.arange(3) + 0.5, LABELS if bottom else [], rotation=35, ha="right", rotation_mode="anchor")
    ax.set(xlabel="", ylabel="")


def confusion_figures(params: Params, runs: list[tuple[str, str]]) -> dict[str, plt.Figure]:
    """One figure per dataset: a test confusion matrix per model, at most five a row, each cell the
    mean count per seed over its share of the gold class."""
    by_dataset: dict[str, list[str]] = {}
    for model, dataset in runs:
        by_dataset.setdefault(dataset, []).append(model)
    out = {}
    for dataset, models in by_dataset.items():
        nrows = math.ceil(len(models) / MAX_COLUMNS)
        ncols = math.ceil(len(models) / nrows)  # rows filled evenly: 6 panels are 3 + 3, not 5 + 1
        side = min((WIDTH - 0.75) / ncols, 1.8)  # inches per matrix; 0.75 in for the class names on the left
        chars = int(side * 12)  # title characters a panel holds at this size
        titles = [wrap_name(m, chars) for m in models]
        title_lines = max(t.count("\n") + 1 for t in titles)
        fig, axes = plt.subplots(nrows, ncols, squeeze=False, layout="constrained", figsize=(
            side * ncols + 0.75, nrows * (side + 0.08 + 0.17 * title_lines) + 0.95))
        fig.get_layout_engine().set(w_pad=0.01, h_pad=0.02, wspace=0.02, hspace=0.02)
        fontsize = 8 if ncols >= 4 else 9
        for k, ax in enumerate(axes.flat):
            if k >= len(models):
                ax.set_axis_off()
                continue
            counts, _ = confusion_counts(params, models[k], dataset)
            draw_confusion(ax, counts, fontsize, first_column=k % ncols == 0, bottom=k + ncols >= len(models))
            ax.set_title(titles[k], fontsize=fontsize + 0.5)
        fig.supxlabel("predicted", fontsize="medium")
        fig.supylabel("gold", fontsize="medium")
        fig.suptitle(f"MVSA-{dataset.title()} test: mean count per seed (share of gold row)", fontsize="medium")
        out[dataset] = fig
    return out


def model_confusion(params: Params, model: str, dataset: str = "single"):
    """One model's test confusion matrix (the shipped configuration's, say): mean count per seed
    over the share of its gold class."""
    counts, seeds = confusion_counts(params, model, dataset)
    fig, ax = figure(width=WIDTH * 0.55, height=3.2)
    draw_confusion(ax, counts, fontsize=10)
    ax.set(xlabel="predicted", ylabel="gold")
    ax.set_title(f"{wrap_name(model, 30)}\nMVSA-{dataset.title()} test, mean count per seed ({seeds} seeds)",
                 fontsize="medium")
    return fig


def per_class_long(params: Params, runs: list[tuple[str, str]]) -> pd.DataFrame:
    """One row per run, seed and class: its test F1 (%)."""
    return pd.DataFrame([{"run": run_label(m, d), "model": m, "dataset": d, "class": label, "seed": s["seed"],
                          "f1": s["per_class"][label]["f1"]}
                         for m, d in runs for s in metrics_of(params, m, d)["per_seed"] for label in LABELS])


def per_class_f1(params: Params, runs: list[tuple[str, str]]):
    """Per-class test F1: the mean over seeds with the standard deviation over seeds."""
    data = per_class_long(params, runs)
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, ax = figure(height=1.1 + 0.5 * len(runs))
    # one dataset: it goes in the title, and the bars keep the width long model names would take
    sns.barplot(data, y="model" if len(datasets) == 1 else "run", x="f1", hue="class", hue_order=list(LABELS),
                palette=PALETTE, errorbar=ERRORBAR, capsize=0.15, err_kws={"linewidth": 1}, ax=ax)
    ax.set(xlabel="test F1 (%)\nbar: mean over seeds, whisker: ± std over seeds", ylabel="", xlim=(0, 100))
    if len(datasets) == 1:
        ax.set_title(f"MVSA-{datasets[0].title()} test", fontsize="medium")
    if len(datasets) == 1:
        sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), title=None, frameon=False)
    else:
        sns.move_legend(ax, "lower left", bbox_to_anchor=(0, 1), ncol=len(LABELS), title=None, frameon=False)
    return fig


def attention_by_class(params: Params, model: str, dataset: str = "single"):
    """Distribution of each input's attention weight (text, image, lexicon, ...: the prediction
    columns ``weights_<input>``), per gold class (test pairs, all seeds)."""
    folder = RunPaths(params).predictions(model, dataset)
    preds = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("seed*.csv"))], ignore_index=True)
    columns = [c for c in preds if c.startswith("weights_")]
    if not columns:
        raise ValueError(f"{model} returns no modality weights (no weights_<input> column in {folder})")
    inputs = [c.removeprefix("weights_") for c in columns]
    long = preds.melt(id_vars=["gold"], value_vars=columns, var_name="input", value_name="weight")
    long["input"] = long["input"].str.removeprefix("weights_")
    fig, ax = figure(width=min(WIDTH, 3.0 + 1.2 * len(inputs)), height=3.2)
    sns.violinplot(long, x="input", y="weight", order=inputs, hue="gold", hue_order=list(LABELS), palette=PALETTE,
                   inner="quart", cut=0, density_norm="width", linewidth=0.8, ax=ax)
    ax.axhline(1 / len(inputs), color="0.3", lw=0.8, ls=":", label=f"equal weights (1/{len(inputs)})")
    ax.set(xlabel="input", ylabel="attention weight", ylim=(0, 1),
           title=f"{wrap_name(model, 40)}\nper gold class, test pairs of all seeds")
    handles, labels = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside right upper", frameon=False, title="gold class")
    return fig


def cv_by_fold(rows: list[dict]):
    """What the keep rule reads, per ablation row: the paired difference of its held-out weighted F1
    from the configuration it was compared with, fold by fold (grey), their mean and the corrected SE
    the rule compares it with (a row is kept when its mean lies right of its SE mark)."""
    compared = [r for r in rows if r.get("verdict") is not None and r.get("compared_with")]
    fig, ax = figure(height=1.2 + 0.36 * max(len(compared), 1))
    colours = sns.color_palette("colorblind")
    for y, r in enumerate(compared):
        diffs = np.asarray(r["metrics"]["cv"]["per_fold"]["weighted_f1"]) - np.asarray(r["compared_with"]["scores"])
        ax.scatter(diffs, np.full(len(diffs), y), s=9, color="0.6", zorder=2)
        v = r["verdict"]
        ax.errorbar([v.difference], [y], xerr=[v.se], fmt="D", color=colours[3], capsize=3, zorder=3)
        ax.plot([v.se], [y], "|", color=colours[0], ms=12, mew=1.6, zorder=4)
    ax.errorbar([], [], xerr=[], fmt="D", color=colours[3], capsize=3, label="mean paired Δ ± corrected SE")
    ax.plot([], [], "|", color=colours[0], ms=12, mew=1.6, label="keep threshold (Δ > SE)")
    ax.scatter([], [], s=9, color="0.6", label="one fold")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    tags = [" (kept)" if r["kept"] else " (reference)" if r.get("reference") else "" for r in compared]
    ax.set_yticks(range(len(compared)), [f"{r['model']}{t}\nvs {r['compared_with']['model']}"
                                         for r, t in zip(compared, tags)], fontsize=7)
    ax.invert_yaxis()
    ax.set(xlabel="held-out weighted F1 difference (points)\nrow − the configuration it was compared with", ylabel="")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), frameon=False, borderaxespad=0.2, ncol=3, fontsize=7)
    return fig
