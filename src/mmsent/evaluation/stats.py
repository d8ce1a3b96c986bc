"""Significance of the declared comparisons (``params.yaml`` → ``report.questions``).

Each question names two models, the direction it expects and why it matters; it is answered on
each dataset and protocol where both models were run. One test per comparison, accounting for
both sources of variance a reader cares about (Dror et al., 2018; Bouthillier et al., 2021):

* a **two-level paired bootstrap**: every resample draws the test pairs with replacement (the
  same draw for both models: paired) and, independently for each model, its seeds with
  replacement; the statistic is the difference of the seed-averaged scores (A − B). A model
  whose seeds all predict alike (a deterministic baseline) is one run, said so, with no seed level;
* the verdict is on **weighted F1**, two-sided; the p-value is the bootstrap's (twice the smaller
  tail at 0), **Bonferroni-adjusted** over the declared family (every comparison in the table),
  and the interval is the percentile interval at the same adjusted level, so "the interval
  excludes 0" and "adjusted p < alpha" are one statement (both computed from the same tail counts).

On **Cheema's folds** each pair is predicted by the one model of its fold, so its pairs are not
independent draws: those rows are tested at the fold level instead, a Nadeau-Bengio corrected
t-test on the 10 per-fold paired differences (the fold models' true n_test / n_train), which
carries the fold-to-fold variance of training (one seed per fold) as well as of the pairs.

Each row also shows its **minimum detectable effect**: the difference the test would find with
80 % power at the family's adjusted level, (z_{1-α/2m} + z_{0.8}) · SE (t quantiles on the fold
level), and a non-significant answer says what its adjusted interval rules out (two one-sided
tests at α/2m each: equivalence within the interval's far bound).

Holm's step-down decisions have no matching simultaneous intervals; over a family this small
Bonferroni costs little and keeps verdict and interval in step. Accuracy differences are shown
with their interval at the same level, as a second look, and decide nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from mmsent.config import Params
from mmsent.data.labels import LABEL2ID
from mmsent.evaluation.paired import Runs, bootstrap_test, distinct, fold_differences, fold_level_test, two_level_bootstrap
from mmsent.io import read_json
from mmsent.paths import PREDICTIONS_DIR, RunPaths, best_path

# when the declarations the reports rest on were written (git history): after the scores they govern existed
DECLARED = {
    "questions": "questions written in commit 93c1e08 on 2026-12-05, after every compared model's test scores existed",
    "ablation_start": "start written in commit 9da43db on 2026-12-05, after the ablation had scored every row",
}

PROTOCOL_NAMES = {"clmlf": "CLMLF split", "agreement": "agreement split", "cheema": "Cheema folds"}


def load_predictions(params: Params, model: str, dataset: str) -> dict[int, pd.DataFrame]:
    folder = RunPaths(params).predictions(model, dataset)
    out = {int(p.stem.removeprefix("seed")): pd.read_csv(p, dtype={"id": str}) for p in sorted(folder.glob("seed*.csv"))}
    if not out:
        raise FileNotFoundError(f"no predictions in {folder}")
    return out


def load_runs(params: Params, model: str, dataset: str, protocol: str = "clmlf") -> Runs | None:
    """A model's runs on ``protocol`` (clmlf: its seeds' saved predictions; agreement / cheema: the
    ``protocols`` stage's), or None where it was not run there."""
    if protocol == "clmlf":
        try:
            preds = load_predictions(params, model, dataset)
        except FileNotFoundError:
            return None
        frames = [preds[s] for s in sorted(preds)]
        ids = frames[0]["id"].astype(str).tolist()
        if any(f["id"].astype(str).tolist() != ids for f in frames):
            raise ValueError(f"{model}: seeds' predictions are not on the same test pairs in the same order")
        return distinct(ids, frames[0]["gold"].map(LABEL2ID).to_numpy(),
                        np.stack([f["predicted"].map(LABEL2ID).to_numpy() for f in frames]))
    path = params.path(PREDICTIONS_DIR) / "protocols" / f"{model}_{protocol}.npz"
    if dataset != "single" or not path.is_file():
        return None
    with np.load(path) as z:
        return distinct([str(i) for i in z["ids"]], z["gold"], z["predicted"])


@dataclass
class Question:
    key: str
    a: str  # expected to be the better model
    b: str
    ask: str  # the question, as a reader would ask it
    why: str  # one sentence: why it matters
    datasets: list[str] = field(default_factory=lambda: ["single"])
    protocols: list[str] = field(default_factory=lambda: ["clmlf", "agreement", "cheema"])


SHIPPED = "shipped"  # a question's model name for the configuration the ablation kept


def questions(params: Params) -> list[Question]:
    """``report.questions`` with ``shipped`` resolved to the configuration the ablation kept."""
    from mmsent.training.specs import read_chain

    shipped = read_chain(params).get("kept")
    out = []
    for raw in params.report.questions:
        q = Question(**raw)
        if SHIPPED in (q.a, q.b):
            if not shipped:
                continue  # no ablation yet: nothing ships
            q.a, q.b = (shipped if m == SHIPPED else m for m in (q.a, q.b))
        out.append(q)
    return out


def caveat(params: Params, model: str) -> str:
    from mmsent.training.specs import model_specs

    spec = model_specs(params).get(model)
    return f" ({spec.caveat})" if spec is not None and spec.caveat else ""


def cheema_folds(params: Params, ids: list[str]) -> tuple[list[np.ndarray], float]:
    """One mask over ``ids`` (a pooled Cheema prediction) per fold: the pairs that fold's model was
    tested on; and the fold models' mean n_test / n_train (Nadeau-Bengio's ratio, true sizes)."""
    from mmsent.data.splits import cheema_fold_numbers, protocol_parts

    masks, ratios, index = [], [], np.array(ids)
    for fold in cheema_fold_numbers(params):
        parts = protocol_parts(params, "cheema", fold)
        masks.append(np.isin(index, parts["test"]["id"].astype(str).to_numpy()))
        ratios.append(len(parts["test"]) / len(parts["train"]))
    if (np.sum(masks, axis=0) != 1).any():
        raise ValueError("the Cheema folds' test parts do not cover the pooled predictions exactly once")
    return masks, float(np.mean(ratios))


def selection_of(params: Params, model: str, dataset: str) -> tuple[str, int]:
    """How a model's settings were chosen (cross-validation or the dev split) and its tuning trials (0: hand-set)."""
    path = RunPaths(params).record(model, dataset)
    selection = read_json(path).get("selection", "dev split") if path.is_file() else "dev split"
    best = best_path(params, model)
    trials = int((yaml.safe_load(best.read_text("utf-8")) or {}).get("trials", 0)) if best.is_file() else 0
    return selection, trials


def confounds(params: Params, a: str, b: str, dataset: str) -> str:
    """What differs between two compared models besides the question: selection protocol, tuning budget."""
    (sel_a, tr_a), (sel_b, tr_b) = selection_of(params, a, dataset), selection_of(params, b, dataset)
    out = []
    if sel_a != sel_b:
        out.append(f"`{a}` was selected by {sel_a}, `{b}` by {sel_b}")
    if tr_a != tr_b:
        out.append(f"`{a}` was tuned with {tr_a or 'no'} trials, `{b}` with {tr_b or 'no'}")
    return "; ".join(out)


def primary_protocol(params: Params) -> str:
    return str(params.report.primary_protocol)


def family_table(params: Params, alpha: float | None = None, reps: int = 10000) -> pd.DataFrame:
    """Every declared comparison that can be made (both models run on that dataset and protocol),
    tested and corrected over that family: Cheema rows at the fold level, the others by the
    two-level bootstrap; at ``report.alpha`` unless ``alpha`` is given."""
    alpha = params.report.alpha if alpha is None else alpha
    cache: dict[tuple[str, str, str], Runs | None] = {}

    def runs(model: str, dataset: str, protocol: str) -> Runs | None:
        if (model, dataset, protocol) not in cache:
            cache[model, dataset, protocol] = load_runs(params, model, dataset, protocol)
        return cache[model, dataset, protocol]

    rows, declared, folds = [], questions(params), None
    for q in declared:
        for dataset in q.datasets:
            for protocol in q.protocols:
                a, b = runs(q.a, dataset, protocol), runs(q.b, dataset, protocol)
                if a is None or b is None or q.a == q.b:
                    continue
                row = {"question": q.key, "dataset": dataset, "protocol": protocol, "model_a": q.a,
                       "model_b": q.b, "n": len(a.gold), "runs_a": len(a.predicted), "runs_b": len(b.predicted),
                       "deterministic_a": a.deterministic, "deterministic_b": b.deterministic,
                       "primary": protocol == primary_protocol(params),
                       "confounds": confounds(params, q.a, q.b, dataset)}
                if protocol == "cheema":
                    if a.ids != b.ids:
                        raise ValueError("the two models' Cheema predictions are not on the same pairs in the same order")
                    folds = folds or cheema_folds(params, a.ids)
                    row.update(test="fold-level corrected t", folds=len(folds[0]), ratio=folds[1],
                               _folds=fold_differences(a, b, folds[0]))
                else:
                    row.update(test="two-level bootstrap", _point_samples=two_level_bootstrap(a, b, reps))
                rows.append(row)
    if not rows:
        return pd.DataFrame()
    family = len(rows)
    for row in rows:
        if "_folds" in row:
            diffs = row.pop("_folds")
            acc, wf1 = (fold_level_test(diffs[k], row["ratio"], family, alpha) for k in (0, 1))
        else:
            point, samples = row.pop("_point_samples")
            acc, wf1 = (bootstrap_test(point[k], samples[k], family, alpha) for k in (0, 1))
        row.update(wf1_diff=wf1.difference, wf1_low=wf1.low, wf1_high=wf1.high, p=wf1.p, p_adjusted=wf1.p_adjusted,
                   significant=wf1.significant, se=wf1.se, mde=wf1.mde,
                   acc_diff=acc.difference, acc_low=acc.low, acc_high=acc.high)
    table = pd.DataFrame(rows)
    table["family"], table["alpha"], table["level"] = family, alpha, 100 * (1 - alpha / family)
    table["reps"] = reps
    by_key = {q.key: q for q in declared}
    table["sentence"] = [sentence(params, by_key[r.question], r) for r in table.itertuples()]
    return table


def runs_text(row) -> str:
    if row.protocol == "cheema":  # one model per fold, each scoring its own test part
        return f"one model per fold, {int(row.folds)} folds (tested on the per-fold differences)"

    def one(n: int, deterministic: bool) -> str:
        return "1 (deterministic)" if deterministic else str(n)

    return f"{one(row.runs_a, row.deterministic_a)} / {one(row.runs_b, row.deterministic_b)}"


# what a reader must know about a protocol other than the one every choice was made on
PROTOCOL_CAVEATS = {
    "agreement": "tuned values chosen on CLMLF train + dev, which overlaps this split's test pairs",
    "cheema": "tuned values chosen on CLMLF train + dev, which overlaps these test pairs",
}


def sentence(params: Params, q: Question, row) -> str:
    """The answer, generated from the test: what the question asked, the verdict, the effect with its
    adjusted interval and p, what a non-significant answer rules out, the power of the comparison,
    what differs besides the question, on what it was measured."""
    a, b = f"`{row.model_a}`{caveat(params, row.model_a)}", f"`{row.model_b}`{caveat(params, row.model_b)}"
    if not row.significant:
        verdict = f"{a} does not significantly beat {b}"
    elif row.wf1_diff > 0:
        verdict = f"{a} significantly beats {b}"
    else:
        verdict = f"{b} significantly beats {a}, against the expected direction"
    where = f"MVSA-{row.dataset.title()}, {PROTOCOL_NAMES[row.protocol]}, {row.n} test pairs"
    if row.protocol in PROTOCOL_CAVEATS:
        where += f"; {PROTOCOL_CAVEATS[row.protocol]}"
    out = (f"{verdict}: {row.wf1_diff:+.2f} weighted F1 points [{row.wf1_low:+.2f}, {row.wf1_high:+.2f}], "
           f"adjusted p {adjusted_p_text(row)} ({where}; {runs_phrase(row)}; {row.test}; accuracy "
           f"{row.acc_diff:+.2f}).")
    power = f"with 80 % power at the family's level it detects a difference of {row.mde:.1f} points or more"
    if row.significant:
        out += f" This comparison is powered: {power}."
    else:
        out += (f" It rules out `{row.model_a}` being better by more than {max(row.wf1_high, 0):.1f} points or worse by "
                f"more than {max(-row.wf1_low, 0):.1f} (equivalence at the adjusted level); {power}, so a smaller real "
                "difference would go unseen here.")
    if isinstance(row.confounds, str) and row.confounds:
        out += f" Not only the question differs: {row.confounds}."
    return out


def runs_phrase(row) -> str:
    text = runs_text(row)
    return text if row.protocol == "cheema" else f"runs {text}"


def adjusted_p_text(row) -> str:
    text = fmt_p(row.p_adjusted, row.family * 2 / row.reps if row.test == "two-level bootstrap" else 0)
    return text if text.startswith("<") else f"= {text}"


def fmt_p(p: float, floor: float = 0.0) -> str:
    """A p-value as text; a bootstrap p of 0 means below its resolution ``floor`` (2 / resamples,
    times the family for an adjusted p), never exactly 0."""
    if p >= 1:
        return "1"
    return f"< {floor:.1g}" if p < floor or p == 0 else f"{p:.2g}"



def markdown(table: pd.DataFrame, reps: int) -> str:
    """The family as a reader sees it (reports/tables/significance.md)."""
    level = table["level"].iloc[0]
    shown = pd.DataFrame({
        "question": table["question"],
        "data": [f"{d} / {PROTOCOL_NAMES[p]}{' (primary)' if pr else ''}"
                 for d, p, pr in zip(table.dataset, table.protocol, table.primary)],
        "A − B": [f"{a} − {b}" for a, b in zip(table.model_a, table.model_b)],
        "runs A / B": [runs_text(r) for r in table.itertuples()], "n": table["n"], "test": table["test"],
        "Δ wF1": table["wf1_diff"].map("{:+.2f}".format),
        f"{level:.2f} % interval": [f"[{lo:+.2f}, {hi:+.2f}]" for lo, hi in zip(table.wf1_low, table.wf1_high)],
        "SE": table["se"].map("{:.2f}".format),
        "MDE (80 % power)": table["mde"].map("{:.1f}".format),
        "p": [fmt_p(r.p, 2 / reps if r.test == "two-level bootstrap" else 0) for r in table.itertuples()],
        "adjusted p": [fmt_p(r.p_adjusted, r.family * 2 / reps if r.test == "two-level bootstrap" else 0)
                       for r in table.itertuples()],
        "significant": table["significant"].map({True: "yes", False: "no"}),
        "Δ acc [interval]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]"
                             for d, lo, hi in zip(table.acc_diff, table.acc_low, table.acc_high)]})
    return shown.to_markdown(index=False)


def method_text(table: pd.DataFrame, reps: int) -> str:
    family, alpha = int(table["family"].iloc[0]), float(table["alpha"].iloc[0])
    cheema = table[table["protocol"] == "cheema"]
    fold_text = (f" Cheema rows: each pair is predicted by the one model of its fold, so the pairs are not "
                 f"independent; they are tested on the {int(cheema['folds'].iloc[0])} per-fold paired differences by "
                 f"a Nadeau-Bengio corrected t-test (n_test / n_train = {cheema['ratio'].iloc[0]:.3f}, the folds' "
                 "true sizes; one seed per fold, so training variance enters through the folds)."
                 if len(cheema) else "")
    return (f"Two-level paired bootstrap ({reps} resamples of the test pairs and, per model, of its seeds), "
            f"two-sided on weighted F1.{fold_text} p and intervals Bonferroni-adjusted over the {family} declared "
            f"comparisons (alpha {alpha:g}: each interval at {100 * (1 - alpha / family):.2f} %), so a comparison is "
            "significant exactly when its interval excludes 0. MDE: the difference each test detects with 80 % power "
            "at that level, (q_{1−α/2m} + q_0.8) · SE; a non-significant answer rules out differences beyond its "
            "interval (two one-sided tests at α/2m each). The primary protocol (`report.primary_protocol`) is marked; "
            "all rows share one correction. A model whose seeds all predict alike counts once.")


def run(params: Params, alpha: float | None = None, reps: int = 10000) -> dict[str, Path]:
    """The stage: the declared family's table (CSV, markdown, LaTeX)."""
    from mmsent.io import write_text

    table = family_table(params, alpha, reps)
    if table.empty:
        raise FileNotFoundError("no declared comparison has predictions for both models (report.questions)")
    out_dir = params.path("reports/tables")
    written = {"csv": out_dir / "significance.csv"}
    table.to_csv(written["csv"], index=False, float_format="%.6g")
    written["md"] = write_text(out_dir / "significance.md", "# Declared comparisons\n\n"
                               + method_text(table, reps) + "\n\n" + markdown(table, reps) + "\n")
    tex = table[["question", "dataset", "protocol", "model_a", "model_b", "wf1_diff", "wf1_low", "wf1_high",
                 "mde", "p_adjusted", "significant"]]
    written["tex"] = write_text(out_dir / "significance.tex", tex.to_latex(
        index=False, float_format="%.2f", caption="Declared comparisons: weighted F1 difference (A − B), "
        "Bonferroni-adjusted interval (two-level bootstrap; Cheema folds: corrected fold-level t), minimum "
        "detectable effect at 80 % power and adjusted p.", label="tab:significance"))
    return written
