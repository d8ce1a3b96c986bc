"""Figures and the ``reports/data.md`` summary of the prepared data (notebook 01)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from mmsent.config import Params  # noqa: E402
from mmsent.data.images import open_image  # noqa: E402
from mmsent.data.labels import LABELS  # noqa: E402
from mmsent.data.mvsa import PARTS  # noqa: E402
from mmsent.data.ocr import read_ocr_summary  # noqa: E402
from mmsent.evaluation.metrics import markdown_table  # noqa: E402
from mmsent.evaluation.plots import PALETTE, WIDTH, save_figure  # noqa: E402
from mmsent.features.cache import read_features_summary  # noqa: E402
from mmsent.io import read_json, write_text  # noqa: E402
from mmsent.paths import PREPARED_DIR, TABLES_DIR  # noqa: E402

def load_tables(params: Params) -> dict[str, pd.DataFrame]:
    return {ds: pd.read_parquet(params.path(PREPARED_DIR) / f"{ds}.parquet") for ds in ("single", "multiple")}


def class_balance_figure(tables: dict[str, pd.DataFrame]):
    """Class share per split and dataset; one legend for both panels, outside them."""
    fig, axes = plt.subplots(1, len(tables), figsize=(WIDTH, 2.9), layout="constrained", sharey=True)
    for ax, (ds, df) in zip(axes, tables.items()):
        clean = df[df["split"].isin(PARTS)]
        share = pd.crosstab(clean["split"], clean["label"], normalize="index").mul(100)
        share = share.reindex(index=list(PARTS), columns=list(LABELS)).fillna(0)
        long = share.reset_index().melt(id_vars="split", var_name="class", value_name="share")
        sns.barplot(long, x="split", y="share", hue="class", hue_order=list(LABELS), palette=PALETTE,
                    legend=ax is axes[0], ax=ax)
        ax.set(title=f"MVSA-{ds.title()}", ylabel="% of pairs in the split", xlabel="")
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].get_legend().remove()
    fig.legend(handles, labels, loc="outside right upper", frameon=False, title="class")
    return fig


def text_length_figure(tables: dict[str, pd.DataFrame]):
    lengths = pd.concat([pd.DataFrame({"dataset": f"MVSA-{ds.title()}",
                                       "words": df.loc[df["split"].isin(PARTS), "text"].str.split().str.len()})
                         for ds, df in tables.items()], ignore_index=True)
    fig, ax = plt.subplots(figsize=(WIDTH, 2.6), layout="constrained")
    sns.histplot(lengths, x="words", hue="dataset", stat="density", common_norm=False, bins=40, element="step",
                 ax=ax)
    ax.set(xlabel="words in normalised tweet", ylabel="density", title="Tweet lengths")
    sns.move_legend(ax, "upper left", bbox_to_anchor=(1, 1), title=None, frameon=False)
    return fig


def image_size_figure(single: pd.DataFrame):
    fig, ax = plt.subplots(figsize=(WIDTH * 0.6, 3.2), layout="constrained")
    ok = single[single["image_status"] == "ok"]
    sns.scatterplot(ok, x="image_width", y="image_height", s=6, alpha=0.3, linewidth=0, ax=ax)
    ax.set(xlabel="width (px)", ylabel="height (px)",
           title="MVSA-Single image sizes\n(staged copy, longest side ≤ 256)")
    return fig


def agreement_table(df: pd.DataFrame) -> pd.DataFrame:
    return pd.crosstab(df["text_label"], df["image_label"]).reindex(index=list(LABELS), columns=list(LABELS))


def agreement_figure(tables: dict[str, pd.DataFrame]):
    """Text label against image label, counts of raw pairs (no colour bar: the counts are written in)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(WIDTH, 3.0), layout="constrained")
    for ax, (ds, df) in zip(axes, tables.items()):
        sns.heatmap(agreement_table(df).fillna(0).astype(int), annot=True, fmt="d", cmap="Blues", cbar=False,
                    square=True, linewidths=0.5, linecolor="white", ax=ax)
        ax.tick_params(axis="y", labelrotation=0)
        ax.set(xlabel="image label", ylabel="text label" if ax is axes[0] else "", title=f"MVSA-{ds.title()}")
    return fig


def example_grid(single: pd.DataFrame, root: Path, per_label: int = 3, seed: int = 0):
    clean = single[single["split"].isin(PARTS)]
    rows = [clean[clean["label"] == lab] for lab in LABELS]
    rows = [r.sample(min(per_label, len(r)), random_state=seed) for r in rows]
    side = WIDTH / per_label
    fig, axes = plt.subplots(len(LABELS), per_label, figsize=(WIDTH, (side + 0.95) * len(LABELS)),
                             squeeze=False, layout="constrained")
    for ax in axes.flat:
        ax.axis("off")
    for r, sample in enumerate(rows):
        for c, (_, row) in enumerate(sample.iterrows()):
            ax = axes[r][c]
            ax.axis("on")
            ax.imshow(open_image(root / row["image"]))
            ax.set_title(f"{row['label']}\n(text {row['text_label']}, image {row['image_label']})", fontsize=8)
            ax.set_xlabel("\n".join(textwrap.wrap(row["text_raw"], 34)[:4]), fontsize=7.5)
            ax.set_xticks([])
            ax.set_yticks([])
    return fig


def data_markdown(params: Params) -> str:
    summary = read_json(params.path(PREPARED_DIR) / "summary.json")
    leakage = pd.read_csv(params.path(TABLES_DIR) / "leakage_summary.csv")
    feats, ocr = read_features_summary(params), read_ocr_summary(params)
    s, m = summary["single"], summary["multiple"]
    split_rows = pd.DataFrame([
        {"dataset": f"MVSA-{ds.title()}", "part": part, **summary[ds]["splits"][part]}
        for ds in ("single", "multiple") for part in PARTS])
    dec = s["decoding"]
    limit = summary["config"]["limit"]
    lines = [
        "# MVSA data report",
        "",
        "Generated by the `prepare` and `data_report` stages (`dvc repro`); do not edit by hand.",
        f"Data root: `{params.data.root.name}` from `params.yaml` (`data.root`). Split scheme: "
        f"`{summary['config']['split']}`"
        + (f" fold {summary['config']['fold']}" if summary["config"]["split"] == "cheema" else "")
        + "." + (f" **Only the first {limit} pairs were read (a test slice).**" if limit else ""),
        "",
        "## MVSA-Single (text + image)",
        f"- **{s['raw_pairs']} raw pairs**; the cleaning rule (equal labels kept, neutral + polar → polar, "
        f"positive vs negative dropped) keeps **{s['clean_pairs']}** = "
        f"{s['clean_by_label']['positive']} positive / {s['clean_by_label']['negative']} negative / "
        f"{s['clean_by_label']['neutral']} neutral, and drops {s['dropped_conflicts']} conflicting pairs.",
        f"- Split (train/dev/test): {s['splits']['train']['n']}/{s['splits']['dev']['n']}/{s['splits']['test']['n']}.",
        f"- Text decoding: {dec.get('utf-8', 0)} UTF-8, {dec.get('gbk', 0)} GBK, {dec.get('cp1252', 0)} cp1252 "
        f"(last resort); undecodable: 0 (decoding is strict and would stop the stage). Empty texts: {s['empty_texts']}.",
        "- Images: " + ", ".join(f"{v} {k}" for k, v in s.get("image_status", {}).items())
        + " (any image that fails to open is counted here by reason and encoded as missing).",
        f"- Text label equals image label for {s['text_image_label_agreement']:.1%} of raw pairs.",
        "",
        "## MVSA-Multiple (text only)",
        "No public copy of the MVSA-Multiple images exists, so **MVSA-Multiple is used text-only** "
        "throughout this repository; every number on it is a text-only number.",
        f"- {m['label_rows']} label rows with 3 annotators; {m['raw_pairs']} have a majority (>= 2 of 3) "
        f"for both text and image label; the cleaning rule keeps **{m['clean_pairs']}** "
        f"({m['clean_by_label']['positive']} positive / {m['clean_by_label']['negative']} negative / "
        f"{m['clean_by_label']['neutral']} neutral) and drops {m['dropped_conflicts']}.",
        f"- {m['unassigned_clean_pairs']} clean pairs have no text in any public source and are in no split; "
        f"split (train/dev/test): {m['splits']['train']['n']}/{m['splits']['dev']['n']}/{m['splits']['test']['n']}.",
        "",
        "## Splits and label ids",
        "Label names come from one mapping, `mmsent.data.labels.ID2LABEL` = {0: positive, 1: neutral, 2: negative}, "
        "the order of the CLMLF split files. The Cheema et al. files (`valid_pairlist.txt`) use "
        "0 = neutral, 1 = positive, 2 = negative and are translated to names on reading; their split files "
        "hold 0-based row indices into `valid_pairlist.txt`, not MVSA IDs.",
        "",
        split_rows.to_markdown(index=False),
        "",
        "## Leakage audit",
        f"Duplicates among clean pairs: byte-identical images (sha256), near-identical images "
        f"(pHash Hamming distance <= {params.data.phash_max_distance}) and identical normalised texts "
        "(case-folded). *Eval pairs with train duplicate* counts dev/test pairs that share a group with a "
        "train pair; setting `data.dedup: true` drops them from dev/test (the de-duplicated split). "
        f"MVSA-Single: {s['leaked_eval_pairs']['dev']} dev and {s['leaked_eval_pairs']['test']} test pairs leak; "
        f"MVSA-Multiple: {m['leaked_eval_pairs']['dev']} dev and {m['leaked_eval_pairs']['test']} test pairs. "
        "The full list is `reports/tables/leakage_pairs.csv`.",
        "",
        leakage.to_markdown(index=False),
        "",
    ]
    if feats:
        frame = pd.DataFrame([{"encoder/dataset": k, **v} for k, v in feats.items()])
        # columns_of: the cache whose columns an encoder's features are cut from ("–": computed itself)
        lines += ["## Cached features", "", markdown_table(frame), ""]
    if "seconds_per_image" in ocr:
        lines += [f"Text inside the images (`ocr` stage): {ocr['seconds_per_image']:.3f} s an image wall-clock on this "
                  f"CPU, {ocr['images']} images ({ocr.get('workers', 1)} reader(s), one thread each).", ""]
    lines += [
        "## Figures",
        "![class balance](figures/data/class_balance.png)",
        "![text lengths](figures/data/text_lengths.png)",
        "![image sizes](figures/data/image_sizes.png)",
        "![label agreement](figures/data/label_agreement.png)",
        "![examples](figures/data/examples.png)",
        "",
    ]
    return "\n".join(lines)


def build(params: Params) -> dict[str, Path]:
    """Every figure and ``reports/data.md``; returns what was written."""
    tables = load_tables(params)
    figures = {
        "data/class_balance": class_balance_figure(tables),
        "data/text_lengths": text_length_figure(tables),
        "data/image_sizes": image_size_figure(tables["single"]),
        "data/label_agreement": agreement_figure(tables),
        "data/examples": example_grid(tables["single"], params.data.root),
    }
    written = {name: save_figure(fig, params, name) for name, fig in figures.items()}
    written["data.md"] = write_text(params.path("reports/data.md"), data_markdown(params))
    return written
