"""The exploration notebook's logic (``notebooks/00_explore.ipynb``): browse the MVSA-Single pairs,
score the test split with the shipped model, and look at its errors with their explanations.

Needs only the data, the ``prepare`` stage's table (run here when missing: it is cheap) and the
model inside the package; the ``ocr`` stage's text is added when its output exists. Figures are
drawn in the report's style (:mod:`mmsent.evaluation.plots`) and shown as images, so an executed
copy (papermill, no widget interaction) holds the same pictures a reader sees.
"""

from __future__ import annotations

import io
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mmsent.config import Params
from mmsent.data.images import ImageLoadError, open_image
from mmsent.data.labels import LABEL2ID, LABELS
from mmsent.data.mvsa import load_prepared
from mmsent.evaluation import plots
from mmsent.evaluation.calibration import ece_of
from mmsent.evaluation.metrics import compute_metrics
from mmsent.paths import OCR_DIR, PREPARED_DIR

import matplotlib.pyplot as plt  # after plots, which selects the Agg backend

if TYPE_CHECKING:
    from mmsent.serving.pipeline import Pipeline


# ---------------------------------------------------------------- the browsable table

def ensure_prepared(params: Params) -> Path:
    """``data/prepared/single.parquet``, made by the ``prepare`` stage's function if missing (a fresh
    clone); the later, costly stages are never run from here."""
    path = params.path(PREPARED_DIR) / "single.parquet"
    if not path.is_file():
        from mmsent.data import prepare

        prepare.run(params, progress=False)
    return path


def add_ocr(table: pd.DataFrame, params: Params) -> pd.DataFrame:
    """``ocr_text`` and ``has_ocr`` from the ``ocr`` stage when it has run; the table as it is otherwise."""
    path = params.path(OCR_DIR) / "single.parquet"
    if not path.is_file():
        return table
    found = pd.read_parquet(path, columns=["id", "ocr_text"]).astype({"id": str})
    out = table.merge(found, on="id", how="left")
    out["ocr_text"] = out["ocr_text"].fillna("")  # pairs the stage did not read (dropped by the cleaning rule)
    out["has_ocr"] = out["ocr_text"].str.len() > 0
    return out


def load_table(params: Params) -> pd.DataFrame:
    """Every MVSA-Single pair (``dropped`` ones too) with the columns the filters use: ``agree``
    (text label = image label), ``duplicate`` (a dev/test pair whose image or text is in train),
    ``words`` (tweet length), ``image_path`` (absolute) and, if OCR ran, ``has_ocr``."""
    table = load_prepared(ensure_prepared(params)).astype({"id": str})
    table["agree"] = table["text_label"] == table["image_label"]
    table["duplicate"] = table["leak"].astype(bool)
    table["words"] = table["text_raw"].str.split().str.len().fillna(0).astype(int)
    table["image_path"] = [str(params.data.root / rel) for rel in table["image"]]
    return add_ocr(table, params)


def filter_pairs(table: pd.DataFrame, label: str | None = None, split: str | None = None,
                 agree: bool | None = None, duplicate: bool | None = None,
                 words: tuple[int, int] | None = None, has_ocr: bool | None = None) -> pd.DataFrame:
    """The rows that pass every filter given; None means "any"."""
    keep = pd.Series(True, index=table.index)
    for column, value in (("label", label), ("split", split), ("agree", agree), ("duplicate", duplicate),
                          ("has_ocr", has_ocr)):
        if value is not None:
            if column not in table:
                raise ValueError(f"cannot filter on {column!r}: the table has no such column (has the ocr stage run?)")
            keep &= table[column] == value
    if words is not None:
        keep &= table["words"].between(*words)
    return table[keep]


# ---------------------------------------------------------------- drawing

@lru_cache(maxsize=1)
def _glyphs() -> frozenset[int]:
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(font_manager.findfont(font_manager.FontProperties(family=["sans-serif"]))).get_charmap())


def printable(text: str, width: int, lines: int) -> str:
    """Tweet text as the figure font can draw it (emoji as their names, other missing glyphs as
    ``?``), wrapped to ``width`` characters and cut to ``lines`` lines."""
    import emoji

    text = emoji.demojize(text or "")
    text = "".join(ch if ord(ch) in _glyphs() or ch.isspace() else "?" for ch in text).replace("$", r"\$")
    if lines == 1:  # OCR text often runs words together: cut, do not wrap
        return text if len(text) <= width else text[:width - 1] + "…"
    return "\n".join(textwrap.wrap(text, width, max_lines=lines, placeholder=" …")) or "(no text)"


def _draw_image(ax, path: str, heatmap: list[list[float]] | None = None, size: int = 224) -> None:
    try:
        image = open_image(path)
        if heatmap is not None:  # red: the region supports the predicted label; blue: it opposes it
            from mmsent.serving.explain import overlay

            image = overlay(image, heatmap, size)
        ax.imshow(np.asarray(image))
    except ImageLoadError as exc:  # a bad file is shown as such, never stops the browser
        ax.text(0.5, 0.5, f"unreadable image\n({exc.reason})", ha="center", va="center", fontsize=8,
                transform=ax.transAxes)
    ax.set_axis_off()


def _caption(row: Any, width: int) -> str:
    flags = [f"text {row.text_label} · image {row.image_label}"]
    if row.duplicate:
        flags.append("duplicate of a train pair")
    if getattr(row, "has_ocr", False):
        flags.append("in image: " + printable(row.ocr_text, width - 10, 1))
    return "\n".join(flags) + "\n" + printable(row.text_raw, width, 5)


def pair_grid(rows: pd.DataFrame, columns: int = 4, title: str | None = None):
    """One panel per pair: its image, the pair label and split above, labels, flags and tweet below."""
    if rows.empty:
        fig = plt.figure(figsize=(plots.WIDTH * 1.4, 1.0), layout="constrained")
        fig.text(0.5, 0.4, "no pair matches these filters", ha="center", va="center")
        fig.suptitle(title or "", fontsize="medium")
        return fig
    n = len(rows)
    columns = min(columns, n)
    nrows = -(-n // columns)
    side = plots.WIDTH * 1.4 / columns
    fig = plt.figure(figsize=(plots.WIDTH * 1.4, nrows * side * 1.75), layout="constrained")
    grid = fig.add_gridspec(2 * nrows, columns, height_ratios=[1.0, 0.75] * nrows)
    chars = int(side * 13)  # caption characters a panel's width holds at this font size
    for k, row in enumerate(rows.itertuples()):
        r, c = divmod(k, columns)
        ax = fig.add_subplot(grid[2 * r, c])
        _draw_image(ax, row.image_path)
        heading = f"#{row.id} · {row.split}" + (f" · {row.label}" if isinstance(row.label, str) else "")
        ax.set_title(heading, fontsize=8.5, color=plots.PALETTE.get(row.label, "0.3"), fontweight="bold")
        text_ax = fig.add_subplot(grid[2 * r + 1, c])
        text_ax.set_axis_off()
        text_ax.text(0, 1, _caption(row, chars), va="top", ha="left", fontsize=7, transform=text_ax.transAxes)
    if title:
        fig.suptitle(title, fontsize="medium")
    return fig


def browse(table: pd.DataFrame, n: int = 8, seed: int = 0, columns: int = 4, **filters: Any):
    """A sample of ``n`` pairs passing ``filters`` (see :func:`filter_pairs`) as a figure; ``seed``
    draws another sample. What the widget shows, and what an executed notebook shows without one."""
    chosen = filter_pairs(table, **filters)
    shown = chosen.sample(min(n, len(chosen)), random_state=seed).sort_values("id", key=lambda s: s.astype(int))
    given = ", ".join(f"{k}={v}" for k, v in filters.items() if v is not None) or "no filter"
    return pair_grid(shown, columns, title=f"{len(shown)} of {len(chosen):,} pairs ({given})")


def figure_bytes(fig) -> tuple[bytes, str]:
    """The figure as an image file and its format: JPEG where it holds photos (about a fifth of the
    PNG's size, which keeps the executed notebook small), the reports' PNG otherwise."""
    if not any(ax.images for ax in fig.axes):
        return plots.png_bytes(fig), "png"
    buffer = io.BytesIO()
    fig.savefig(buffer, format="jpeg", dpi=plots.DPI, bbox_inches="tight", pil_kwargs={"quality": 85})
    plt.close(fig)
    return buffer.getvalue(), "jpeg"


def show(fig) -> None:
    """Display a figure in a notebook (``plots`` draws on Agg: there is no inline backend)."""
    from IPython.display import Image, display

    data, kind = figure_bytes(fig)
    display(Image(data=data, format=kind))


def browser(table: pd.DataFrame, n: int = 8):
    """Dropdowns and sliders over :func:`browse` for JupyterLab (ipywidgets), drawn on a button press.

    Manual on purpose: nothing is drawn into the widget until a reader asks, so an executed copy
    (papermill) writes no widget output; nbclient's imitation of an output widget can hang a
    run that does (seen here with ipywidgets 8.1 / nbclient 0.11). It also spares a redraw for
    every step of a slider."""
    import ipywidgets as w

    def choice(description: str, options: list[tuple[str, Any]]):
        return w.Dropdown(options=[("any", None), *options], value=None, description=description)

    top = int(table["words"].max()) if len(table) else 0
    controls = {
        "label": choice("class", [(lab, lab) for lab in LABELS]),
        "split": choice("split", [(s, s) for s in sorted(table["split"].unique())]),
        "agree": choice("labels", [("text = image", True), ("text ≠ image", False)]),
        "duplicate": choice("duplicate", [("of a train pair", True), ("not", False)]),
        "words": w.IntRangeSlider(value=(0, top), min=0, max=top, description="words"),
        "seed": w.IntSlider(value=0, min=0, max=99, description="sample"),
    }
    if "has_ocr" in table:
        controls["has_ocr"] = choice("OCR text", [("present", True), ("none", False)])
    return w.interactive(lambda **values: show(browse(table, n=n, **values)),
                         {"manual": True, "manual_name": "show pairs"}, **controls)


# ---------------------------------------------------------------- the shipped model on test

def score_pairs(pipe: "Pipeline", rows: pd.DataFrame, batch_size: int = 64) -> pd.DataFrame:
    """``rows`` with the model's ``predicted`` label, ``score``, ``p_<label>`` and ``w_<modality>``
    columns. The raw tweet goes in, as a user's would: the pipeline normalises it itself."""
    pairs = [{"text": text or None, "image": path} for text, path in zip(rows["text_raw"], rows["image_path"])]
    results = pipe.predict_batch(pairs, batch_size=batch_size)
    out = rows.reset_index(drop=True).copy()
    out["predicted"] = [r.get("label") for r in results]
    out["score"] = [r.get("score", np.nan) for r in results]
    for name in LABELS:
        out[f"p_{name}"] = [r.get("probabilities", {}).get(name, np.nan) for r in results]
    for modality in sorted({m for r in results for m in r.get("modality_weights", {})}):
        out[f"w_{modality}"] = [r.get("modality_weights", {}).get(modality, np.nan) for r in results]
    out["error"] = [r.get("error", "") for r in results]
    return out


def score_split(pipe: "Pipeline", table: pd.DataFrame, part: str = "test", batch_size: int = 64) -> pd.DataFrame:
    return score_pairs(pipe, table[table["split"] == part], batch_size)


def split_metrics(scored: pd.DataFrame) -> dict[str, Any]:
    """scikit-learn metrics (percent) over the scored pairs that have a gold and a predicted label."""
    ok = scored[scored["predicted"].notna() & scored["label"].notna()]
    return compute_metrics(ok["label"].map(LABEL2ID), ok["predicted"].map(LABEL2ID))


def per_class_table(metrics: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(metrics["per_class"]).T.round(1).astype({"support": int})


def calibration(scored: pd.DataFrame, bins: int = 10) -> dict[str, float]:
    """How far the score (the probability of the predicted label) is from the accuracy: mean score,
    accuracy and expected calibration error, in percent."""
    ok = scored[scored["predicted"].notna()]
    correct = (ok["predicted"] == ok["label"]).to_numpy(float)
    score = ok["score"].to_numpy(float)
    return {"mean_score": float(100 * score.mean()), "accuracy": float(100 * correct.mean()),
            "ece": ece_of(score, correct.astype(bool), bins)}


def confusion_figure(metrics: dict[str, Any], title: str):
    fig, ax = plots.figure(width=plots.WIDTH * 0.55, height=3.2)
    plots.draw_confusion(ax, np.asarray(metrics["confusion_matrix"], float), fontsize=10)
    ax.set(xlabel="predicted", ylabel="gold")
    ax.set_title(f"{title}\naccuracy {metrics['accuracy']:.1f} · weighted F1 {metrics['weighted_f1']:.1f}",
                 fontsize="medium")
    return fig


def error_table(scored: pd.DataFrame) -> pd.DataFrame:
    """The wrong predictions only, worst first: the most confident in the wrong label at the top."""
    wrong = scored[scored["predicted"].notna() & scored["label"].notna() & (scored["predicted"] != scored["label"])]
    wrong = wrong.assign(p_wrong=wrong["score"],
                         p_gold=[getattr(r, f"p_{r.label}") for r in wrong.itertuples()])
    return wrong.sort_values(["p_wrong", "id"], ascending=[False, True], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------- one pair, explained

def resolve_image(image: str | Path | None, params: Params) -> Path | None:
    """The reader's image: a path as given, or relative to the MVSA folder (``single/images/<id>.jpg``)."""
    if image is None:
        return None
    path = Path(image).expanduser()
    return path if path.is_file() or path.is_absolute() else params.data.root / path


def explain_pair(pipe: "Pipeline", text: str | None, image: str | Path | None) -> dict[str, Any]:
    """The pipeline's answer with occlusion explanations of its predicted label (a few dozen passes)."""
    return pipe.predict(text=text or None, image=image, explain=True)


def _bars(ax, values: dict[str, float], title: str, colours: dict[str, Any] | None = None) -> None:
    names = list(values)
    ax.barh(names, [values[k] for k in names], color=[(colours or {}).get(k, "0.55") for k in names])
    for y, k in enumerate(names):
        ax.text(min(values[k], 0.78) + 0.02, y, f"{values[k]:.2f}", va="center", fontsize=8)
    ax.set(xlim=(0, 1), title=title)
    ax.invert_yaxis()
    ax.tick_params(labelsize=8)


def _words(ax, tokens: list[dict[str, Any]], most: int = 14) -> None:
    """The words whose removal moves p(predicted label) most, in tweet order."""
    top = sorted(sorted(range(len(tokens)), key=lambda i: -abs(tokens[i]["attribution"]))[:most])
    values = [tokens[i]["attribution"] for i in top]
    ax.barh([f"{i + 1}. {printable(tokens[i]['token'], 24, 1)}" for i in top], values,
            color=["tab:red" if v > 0 else "tab:blue" for v in values])
    ax.axvline(0, color="0.3", lw=0.8)
    ax.invert_yaxis()
    ax.locator_params(axis="x", nbins=4)  # attributions are small numbers: long tick labels collide
    ax.tick_params(labelsize=7.5)
    ax.set_title("word occlusion: p(pred) − p(pred | without word)", fontsize=8.5)


def explanation_figure(result: dict[str, Any], text: str | None, image: str | Path | None,
                       heading: str, image_size: int = 224):
    """Image (with its occlusion heatmap), probabilities, modality weights and word attributions."""
    expl = result.get("explanation", {})
    tokens = expl.get("tokens") or []
    fig = plt.figure(figsize=(plots.WIDTH * 1.4, 2.9), layout="constrained")
    grid = fig.add_gridspec(2, 3, width_ratios=[1.1, 1.0, 1.3], height_ratios=[1.0, 0.8])
    ax = fig.add_subplot(grid[:, 0])
    if image is not None:
        _draw_image(ax, str(image), expl.get("image_heatmap"), image_size)
        if expl.get("image_heatmap"):
            ax.set_title("region occlusion: red supports p(pred), blue opposes", fontsize=7.5)
    else:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "(no image)", ha="center", transform=ax.transAxes)
    _bars(fig.add_subplot(grid[0, 1]), result["probabilities"], "probabilities", plots.PALETTE)
    weights = result.get("modality_weights")
    side = fig.add_subplot(grid[1, 1])
    if weights:
        _bars(side, weights, "modality (attention) weights")
    else:
        side.set_axis_off()
    words_ax = fig.add_subplot(grid[:, 2])
    if tokens:
        _words(words_ax, tokens)
    else:
        words_ax.set_axis_off()
    fig.suptitle(heading + "\n" + printable(text or "(no text)", 130, 2), fontsize=8.5, ha="left", x=0.01)
    return fig


def error_heading(row: Any, rank: int) -> str:
    return (f"error {rank} · #{row.id}: gold {row.label}, predicted {row.predicted} (p {row.p_wrong:.2f}; "
            f"p(gold) {row.p_gold:.2f}) · text {row.text_label} / image {row.image_label}"
            + (" · duplicate of a train pair" if row.duplicate else ""))


def pair_heading(result: dict[str, Any], calibrated: dict[str, float] | None = None, temperature: float = 1.0) -> str:
    """The label and its score, saying what the score is worth (calibrated by temperature scaling, or
    the model's own softmax), with how far scores sat from accuracy on test when that was measured."""
    note = f"calibrated, T = {temperature:.2f}" if temperature != 1.0 else "uncalibrated softmax"
    if calibrated:
        note += (f"; on test, mean score {calibrated['mean_score']:.0f} % vs accuracy "
                 f"{calibrated['accuracy']:.0f} %, ECE {calibrated['ece']:.1f} %")
    return f"{result['label']} · score {result['score']:.2f} ({note}) · inputs: {' + '.join(result['modalities'])}"
