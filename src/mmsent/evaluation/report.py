"""``reports/REPORT.md``: the thesis-style report, built around the questions declared in
``params.yaml`` (``report.questions``) and assembled from what the stages produced.

Nothing in it is typed by hand: each answer is the sentence the statistics stage generated from
its test (``reports/tables/significance.csv``), counts come from ``data/prepared/summary.json``,
scores from ``metrics/*.json``, the shipped configuration from ``params/ablation_chain.yaml``,
figures from ``reports/figures``. The figures of the declared comparisons, the shipped model and
the error analysis are drawn here.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from mmsent.config import Params  # noqa: E402
from mmsent.data.images import open_image  # noqa: E402
from mmsent.data.mvsa import load_prepared  # noqa: E402
from mmsent.evaluation import plots  # noqa: E402
from mmsent.evaluation.ensemble import may_ship  # noqa: E402
from mmsent.evaluation.metrics import fmt, markdown_table  # noqa: E402
from mmsent.evaluation.results import ANCHORS, CV_MEANING, collect  # noqa: E402
from mmsent.evaluation.stats import DECLARED, PROTOCOL_NAMES, load_predictions, method_text, questions  # noqa: E402
from mmsent.io import read_json, write_text  # noqa: E402
from mmsent.paths import PREPARED_DIR, RunPaths, best_path  # noqa: E402
from mmsent.training.protocol import protocol_config  # noqa: E402
from mmsent.training.specs import describe_kept, model_specs, read_chain, seeds  # noqa: E402

TERMS = [
    ("CLMLF split", "MVSA-Single's 4,511 cleaned pairs cut 8:1:1 into train / dev / test (3,611 / 450 / 450) as "
                    "CLMLF (Li et al., 2022) published it; the main protocol here."),
    ("agreement split", "the 2,592 MVSA-Single pairs whose text and image labels agree, cut 1,555 / 518 / 519 as "
                        "QMF and PDF published it: an easier protocol."),
    ("Cheema folds", "Cheema et al.'s 10 train / val / test folds of all 4,511 pairs; one model per fold."),
    ("wF1", "weighted F1: per-class F1 averaged with the classes' test shares as weights (%)."),
    ("CV wF1", CV_MEANING),
    ("corrected SE", "the Nadeau-Bengio standard error of a mean over overlapping k-fold folds (the naive one is "
                     "several times too small)."),
    ("lever", "one change to a model (an input, a loss, a training trick) that the ablation measures."),
    ("kept", "a lever whose configuration beats the one kept before it by more than the corrected SE of their "
             "paired fold differences; what ships carries only kept levers."),
    ("bag", "an ensemble that averages the probabilities of a configuration's cross-validation fold models."),
    ("seed", "one training run of a configuration; numbers are mean ± std over seeds."),
]


def disagreement_examples(params: Params, text_model: str = "text_head", image_model: str = "image_head",
                          fusion_model: str = "attention_fusion", n: int = 6) -> pd.DataFrame:
    """Test pairs (seed 0) where the text-only and image-only models disagree, with the fusion's call."""
    preds = {m: load_predictions(params, m, "single")[0].set_index("id") for m in (text_model, image_model, fusion_model)}
    t, i, f = preds[text_model], preds[image_model], preds[fusion_model]
    ids = t.index[t["predicted"] != i.loc[t.index, "predicted"]]
    table = load_prepared(params.path(PREPARED_DIR) / "single.parquet", "test").set_index("id")
    out = pd.DataFrame({"gold": t.loc[ids, "gold"], "text_model": t.loc[ids, "predicted"],
                        "image_model": i.loc[ids, "predicted"], "fusion": f.loc[ids, "predicted"],
                        "text": table.loc[ids, "text_raw"], "image": table.loc[ids, "image"]})
    out["fusion_right"] = out["fusion"] == out["gold"]
    # a balanced view: fusion right and fusion wrong
    return pd.concat([out[out.fusion_right].head(n // 2), out[~out.fusion_right].head(n - n // 2)])


def disagreement_figure(params: Params, examples: pd.DataFrame, fusion_model: str):
    per_row = 3
    rows = -(-len(examples) // per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(plots.WIDTH, 4.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (_, row) in zip(axes.flat, examples.iterrows()):
        ax.axis("on")
        ax.imshow(open_image(params.data.root / row["image"]))
        ax.set_xticks([])
        ax.set_yticks([])
        # right / wrong in words as well as colour, so it reads in grey print and for colour-blind readers
        verdict = "RIGHT" if row.fusion_right else "WRONG"
        ax.set_title(f"gold: {row.gold}\ntext: {row.text_model} · image: {row.image_model}\n"
                     f"fusion: {row.fusion} ({verdict})", fontsize=7.5,
                     color="#1b7837" if row.fusion_right else "#b2182b")
        ax.set_xlabel("\n".join(textwrap.wrap(row.text, 36, max_lines=3, placeholder=" …")), fontsize=6.5)
    fig.suptitle(f"Text and image heads disagree (seed 0); fusion = {fusion_model}", fontsize=9)
    fig.tight_layout()
    return fig


def _img(name: str, params: Params, alt: str | None = None) -> str:
    path = params.path("reports/figures") / f"{name}.png"
    return f"![{alt or name}](figures/{name}.png)" if path.is_file() else ""


def question_lines(params: Params, sig: pd.DataFrame) -> list[str]:
    """§1: each declared question, why it matters, and the generated answers (one per protocol run)."""
    out = []
    for k, q in enumerate(questions(params), 1):
        rows = sig[sig["question"] == q.key]
        against = f" (`{q.a}` against `{q.b}`.)" if q.a != q.b else ""
        out += [f"### Q{k}. {q.ask}", "", f"*Why it matters:* {q.why}{against}", ""]
        if q.a == q.b:  # `shipped` resolved to the model it is compared with: no lever was kept
            out += [f"- Nothing to test: the shipped configuration is `{q.a}` itself (no lever passed the keep rule)."]
        else:
            out += [f"- **{row.dataset.title()}, {PROTOCOL_NAMES[row.protocol]}:** {row.sentence}"
                    for row in rows.itertuples()] or ["- Not answered: the two models were not both run."]
        out.append("")
    return out


def comparisons_figure(sig: pd.DataFrame):
    """Each declared comparison's wF1 difference with its Bonferroni-adjusted interval: the
    verdicts at a glance (significant ones filled, the others open), and ± the minimum detectable
    effect of each (what that row could have found)."""
    level = float(sig["level"].iloc[0])
    labels = [f"{r.model_a} − {r.model_b}\n{r.dataset}, {PROTOCOL_NAMES[r.protocol]}"
              + (" (per-fold t)" if r.protocol == "cheema" else "") + (" · primary" if r.primary else "")
              for r in sig.itertuples()]
    fig, ax = plt.subplots(figsize=(plots.WIDTH, 0.9 + 0.42 * len(sig)))
    y = range(len(sig))[::-1]
    for yi, r in zip(y, sig.itertuples()):
        ax.plot([r.wf1_low, r.wf1_high], [yi, yi], color="0.3", lw=1.2)
        ax.plot([-r.mde, r.mde], [yi, yi], "|", color="#b2182b", ms=9, mew=1.2)
        ax.plot(r.wf1_diff, yi, "o", color="0.1", markerfacecolor="0.1" if r.significant else "white", ms=6)
    ax.plot([], [], "|", color="#b2182b", ms=9, mew=1.2, label="± minimum detectable effect (80 % power)")
    ax.plot([], [], "o", color="0.1", markerfacecolor="white", label="not significant")
    ax.plot([], [], "o", color="0.1", label="significant")
    ax.axvline(0, color="grey", lw=0.8, ls=":")
    ax.set_yticks(list(y), labels, fontsize=7)
    ax.set_xlabel(f"difference in weighted F1, A − B (points) ± {level:.2f} % Bonferroni-adjusted interval\n"
                  "(two-level bootstrap over test pairs and seeds; Cheema folds: corrected t on the per-fold "
                  "differences)", fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.32 if len(sig) < 6 else -0.2), frameon=False, fontsize=7,
              ncol=3)
    fig.tight_layout()
    return fig


def shipped_lines(params: Params, df: pd.DataFrame) -> list[str]:
    """§4: what ships, which levers it carries, its gap to the published anchors, its figures."""
    chain = read_chain(params)
    shipped = chain.get("kept")
    if not shipped:
        return ["The ablation has not run yet: nothing ships.", ""]
    m = read_json(RunPaths(params).record(shipped, "single"))
    gaps = [f"{a['model']} ({a['source']}; {a['note']}): {m['accuracy']['mean'] - a['accuracy']:+.2f} accuracy, "
            f"{m['weighted_f1']['mean'] - a['weighted_f1']:+.2f} weighted F1 points"
            for a in ANCHORS if a["dataset"] == "single" and a["accuracy"] is not None]
    lines = [f"**`{shipped}`**: forward selection from " + describe_kept(chain)
             + f". Rejected levers are not in it ([ablation.md](ablation.md)). On the CLMLF test split: accuracy "
             f"{m['accuracy']['mean']:.2f} ± {m['accuracy']['std']:.2f}, wF1 {m['weighted_f1']['mean']:.2f} ± "
             f"{m['weighted_f1']['std']:.2f} over {m['seeds']} seeds.", "",
             "Published anchors are single runs of other systems — BERT / RoBERTa and ResNet / CLIP encoders "
             "fine-tuned on GPUs — on the protocol named; against them the shipped configuration stands at:", "",
             *[f"- {g}" for g in gaps], "",
             markdown_table(pd.DataFrame(ANCHORS)), "",
             _img("report/shipped_confusion", params, f"{shipped}: test confusion matrix"), "",
             attention_figure(params, shipped), ""]
    return lines


def thesis_lines(params: Params) -> list[str]:
    """§9: which of the thesis's results this repository reproduces, generated from the metrics."""
    def metric(model: str, dataset: str) -> dict | None:
        path = RunPaths(params).record(model, dataset)
        return read_json(path) if path.is_file() else None

    thesis = {a["model"]: a for a in ANCHORS if a["source"] == "Thesis"}
    lstm, majority = metric("lstm", "multiple"), metric("majority", "multiple")
    if not (lstm and majority and "LSTM" in thesis):
        return ["The MVSA-Multiple text models have not run yet.", ""]
    t_lstm, t_fusion = thesis["LSTM"], thesis["Attention fusion"]
    mean = lambda m, k: m[k]["mean"]  # noqa: E731
    below = t_lstm["accuracy"] < mean(majority, "accuracy")
    near = ("macro" if abs(t_lstm["macro_f1"] - mean(lstm, "macro_f1")) < abs(t_lstm["macro_f1"]
                                                                            - mean(lstm, "weighted_f1")) else "weighted")
    return [
        "The thesis this repository follows (CITATION.cff) reports on MVSA-Multiple with its images: LSTM "
        f"{t_lstm['accuracy']} % accuracy / {t_lstm['macro_f1']} F1, DenseNet-121 {thesis['DenseNet-121']['accuracy']} / "
        f"{thesis['DenseNet-121']['macro_f1']}, attention fusion {t_fusion['accuracy']} / {t_fusion['macro_f1']}. "
        "It does not say which F1; "
        f"our BiLSTM on the same dataset's text scores {fmt(lstm['accuracy'])} accuracy, {fmt(lstm['macro_f1'])} macro "
        f"F1 and {fmt(lstm['weighted_f1'])} weighted F1 (CLMLF split, {lstm['seeds']} seeds), so its {t_lstm['macro_f1']} "
        f"is nearest a {near} F1 and results.md lists the thesis's F1s as macro F1.",
        "",
        f"- **Reproduced:** the LSTM's F1 ({t_lstm['macro_f1']} against our macro F1 {fmt(lstm['macro_f1'])}).",
        f"- **Not reproduced:** the LSTM's accuracy: {t_lstm['accuracy']} % is "
        + (f"below this split's majority baseline ({fmt(majority['accuracy'])} %: every pair called positive), "
           "so it is not a level a trained text model should fall to here; the thesis's split or cleaning may differ."
           if below else f"not within our interval ({fmt(lstm['accuracy'])})."),
        "- **Not testable:** DenseNet-121 and attention fusion on MVSA-Multiple, and the thesis's "
        f"{t_fusion['accuracy'] - t_lstm['accuracy']:+.1f} point accuracy gain of fusion over the LSTM: MVSA-Multiple's "
        "images are not public, so every MVSA-Multiple row here is text-only. On MVSA-Single, where images exist, "
        "whether fusion beats the text alone is §1's Q1; DenseNet-121 runs here only as a 32 px, one-epoch stand-in "
        "(results.md), which tests nothing about the thesis's model.", ""]


# the fusion stage draws one model's attention weights (notebooks/04_fusion.ipynb); drawn once, shown here
ATTENTION_FIGURE = ("attention_fusion", "fusion/attention_weights")


def attention_figure(params: Params, shipped: str) -> str:
    model, name = ATTENTION_FIGURE
    if shipped != model:
        return f"(The fusion stage draws `{model}`'s attention weights, not `{shipped}`'s: reports/notebooks/04_fusion.ipynb.)"
    return _img(name, params, f"{shipped}: attention weight on each input")


def draw_figures(params: Params, sig: pd.DataFrame, examples: pd.DataFrame, fusion: str) -> None:
    if not sig.empty:
        plots.save_figure(comparisons_figure(sig), params, "report/comparisons")
    if not examples.empty:
        plots.save_figure(disagreement_figure(params, examples, fusion), params, "report/disagreements")
    shipped = read_chain(params).get("kept")
    if shipped:
        plots.save_figure(plots.model_confusion(params, shipped), params, "report/shipped_confusion")


def tuning_lines(params: Params) -> list[str]:
    import yaml

    tuned = [m for m in params.tuning.models if best_path(params, m).is_file()]
    if not tuned:
        return ["No tuning results.", ""]
    bests = {m: yaml.safe_load(best_path(params, m).read_text(encoding="utf-8")) for m in tuned}
    specs = model_specs(params)
    inherit = {m for m, spec in specs.items() if spec.group == "ablation" or spec.tuned_from}
    everything = [r["model"] for _, r in collect(params).iterrows()]
    untuned = sorted({m for m in everything if m not in tuned and m not in inherit} - {"majority", "vader"})
    return ["Tuned with Optuna (seeded Sobol sampler, no pruner), each trial scored by CV wF1 on the first "
            "repeat's folds; the simplest trial within one corrected SE of the best is written: "
            + ", ".join(f"`{m}` ({bests[m]['trials']} trials, [values](../params/tuned/best_{m}.yaml))" for m in tuned)
            + ". The lever rows of the ablation inherit the tuned values of the configuration they build on. "
            "Not tuned (hand-set settings): " + ", ".join(f"`{m}`" for m in untuned) + ".", "",
            *[_img(f"tuning/{m}_history", params) for m in tuned], ""]


def build(params: Params) -> Path:
    summary = read_json(params.path(PREPARED_DIR) / "summary.json")
    s, m = summary["single"], summary["multiple"]
    df = collect(params)
    sig = pd.read_csv(params.path("reports/tables/significance.csv"))
    chosen = {"text": "text_head", "image": "image_head", "fusion": "attention_fusion",
              **params.report.error_analysis}
    examples = disagreement_examples(params, chosen["text"], chosen["image"], chosen["fusion"])
    draw_figures(params, sig, examples, chosen["fusion"])
    res_cols = ["model", "modalities", "CV wF1 (± SE)", "accuracy", "weighted F1", "95 % CI wF1", "macro F1", "seeds"]
    final, other = len(protocol_config(params).final_seeds), len(seeds(params))
    family = int(sig["family"].iloc[0]) if len(sig) else 0

    lines = [
        "# mmsent report: multimodal tweet sentiment on MVSA", "",
        "Regenerated by `dvc repro` (stage `report`, notebook `07_report`); every number, table and figure "
        "below comes from a pipeline stage. Test scores are percentages, mean ± std over seeds: "
        f"{final} final seeds for the cross-validated models, {other} for the others (the `seeds` column). Every "
        f"choice (tuning, epochs, levers{', ensembles' if may_ship(params) else ''}) was made by cross-validation "
        "over train + dev, never on test (except where a row says `– (dev)`: chosen on the dev split); the "
        f"ablation's start, the thesis's attention fusion, and the questions of §1 were declared post hoc, after test "
        f"scores of these models existed ({DECLARED['ablation_start']}; {DECLARED['questions']}), so §1's answers are "
        "tests of declared comparisons, not confirmatory tests on unread data."
        + ("" if may_ship(params) else " Ensembles are scored and reported in ablation.md, never chosen: "
                                "`ensemble.ship` is false, so one configuration ships (declared after "
                                "the perturbation check found the keep rule following rerun noise on them; "
                                "docs/levers.md)."), "",
        "Terms: " + " ".join(f"**{term}**: {meaning}" for term, meaning in TERMS), "",
        "## 1. Questions and answers", "",
        f"Declared in `params.yaml` (`report.questions`) post hoc ({DECLARED['questions']}; the DenseNet-121 "
        "question dropped since, its model being a 32 px stand-in: results.md keeps its row), and answered on every "
        f"protocol where both models were run: {family} comparisons, one family. {method_text(sig, 10000) if len(sig) else ''}",
        "",
        *question_lines(params, sig),
        _img("report/comparisons", params, "declared comparisons"), "",
        "Table: [tables/significance.md](tables/significance.md).", "",
        "## 2. Data", "",
        f"MVSA-Single: {s['raw_pairs']} raw pairs → {s['clean_pairs']} after the standard cleaning rule "
        f"({s['clean_by_label']['positive']} positive / {s['clean_by_label']['negative']} negative / "
        f"{s['clean_by_label']['neutral']} neutral), CLMLF split {s['splits']['train']['n']}/{s['splits']['dev']['n']}/"
        f"{s['splits']['test']['n']}. MVSA-Multiple: {m['clean_pairs']} clean pairs, **text only** (its images are "
        f"not public). Leakage: {s['leaked_eval_pairs']['test']} MVSA-Single test pairs share an image or text with "
        "train. Details: [data.md](data.md).", "",
        _img("data_class_balance", params), "",
        "## 3. Results", "",
        "### MVSA-Single (CLMLF split, text + image)", "",
        markdown_table(df[df.dataset == "single"][res_cols]), "",
        "### MVSA-Multiple (text only)", "",
        markdown_table(df[df.dataset == "multiple"][res_cols]), "",
        "What each row was measured on, per-class F1 and the other protocols: [results.md](results.md). "
        + " ".join(f"`{m}` is a stand-in: {spec.caveat}." for m, spec in model_specs(params).items()
                   if spec.caveat and (df.model == m).any()), "",
        "## 4. The shipped configuration", "",
        *shipped_lines(params, df),
        "## 5. Learning curves and confusion matrices", "",
        *[_img(f"{group}/learning_curves", params) for group in params.groups], "",
        *[_img(f"{group}/confusion_{dataset}", params) for group in params.groups
          for dataset in ("single", "multiple")], "",
        "## 6. Tuning", "",
        *tuning_lines(params),
        "## 7. Error analysis: text and image disagree", "",
        f"Test pairs where `{chosen['text']}` and `{chosen['image']}` disagree (seed 0), with `{chosen['fusion']}`'s "
        "call (`report.error_analysis` in params.yaml picks the three): the "
        "first three in test order where fusion is right, then the first three where it is wrong (so not a sample of "
        "its accuracy); each title says RIGHT or WRONG.", "",
        _img("report/disagreements", params), "",
        markdown_table(examples.drop(columns=["image"]).reset_index()), "",
        "## 8. What limits these numbers", "",
        "- Frozen, small, offline encoders (MiniLM-L6 384-d, EfficientNet-Lite0 1280-d) and CPU-only training; the "
        "published systems fine-tune BERT/ResNet/CLIP on GPUs.",
        f"- Little data: {s['splits']['train']['n'] + s['splits']['dev']['n']} pairs to train the final models on (train + "
        f"dev), only {s['splits']['train']['neutral'] + s['splits']['dev']['neutral']} of them neutral; neutral F1 stays "
        "low for every model.",
        "- Label noise: the pair label is derived from separate text and image labels that agree on "
        f"{s['text_image_label_agreement']:.0%} of raw pairs; one annotator per pair.",
        f"- Duplicates: {s['leaked_eval_pairs']['test']} test pairs repeat a training image or text; the shipped "
        "configuration's score without them is in [ablation.md](ablation.md) (`data.dedup: true` evaluates every model "
        "without them).",
        "- DenseNet-121 cannot start from ImageNet weights offline and runs from scratch at 32 px for 1 epoch "
        "on CPU, a stand-in rather than the thesis's model; the `gpu` profile runs the thesis's setting.",
        "- The CV figures sit above the test means; [tables/cv_estimators.md](tables/cv_estimators.md) splits the gap "
        "into the pairs (the same fold models read on test) and the refit (fold against final models), with a "
        "generated summary; tuning on the same folds adds an optimism it does not measure (no nested CV).",
        "- The agreement split and the Cheema folds reuse the tuned values chosen on CLMLF train + dev, which overlaps "
        "their test pairs; on the Cheema folds one model (one seed) per fold, so its answers are tested on the 10 "
        "per-fold differences, where the folds' spread carries the training variance.", "",
        "## 9. Replicating the thesis", "",
        *thesis_lines(params),
    ]
    return write_text(params.path("reports/REPORT.md"), "\n".join(lines))
