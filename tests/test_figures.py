"""The seaborn figures of the reports: drawn from a tiny trained project, each written as PNG and
PDF at the report's text width, byte-identical when drawn again (no timestamps); and, on
hand-made metrics, predictions and studies, that each shows what it says it shows (counts, the
epochs every run reached, the std over seeds, one group per input, the chosen trial) with its
legends outside the axes."""

from mmsent.paths import RunPaths
from mmsent import sections
import struct

import numpy as np
import optuna
import pandas as pd
import pytest

from mmsent.data import report as data_report
from mmsent.data.labels import LABELS
from mmsent.evaluation import plots
from mmsent.evaluation.ablation import decide
from mmsent.io import read_json, write_json
from mmsent.training import tune
from mmsent.training.runs import run_model
from mmsent.training.specs import model_specs

from test_experiments import project  # noqa: F401

MAX_PNG_WIDTH = (plots.WIDTH + 0.2) * plots.DPI + 2  # the text width plus savefig's 0.1 in pad each side


@pytest.fixture
def trained(project):  # noqa: F811
    for name in ("text_head", "attention_fusion"):
        run_model(project, model_specs(project)[name])
    project.ablation = sections.AblationConfig(**{
        "rows": [{"lever": "t", "model": "text_head"}, {"lever": "a", "model": "attention_fusion"}]})
    return project


def png_width(path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_each_figure_is_written_as_png_and_pdf_and_redraws_identically(trained):
    runs = [("text_head", "single"), ("attention_fusion", "single")]
    figures = {"curves": lambda: plots.learning_curves(trained, runs),
               "confusion_single": lambda: plots.confusion_figures(trained, runs)["single"],
               "model_confusion": lambda: plots.model_confusion(trained, "attention_fusion"),
               "per_class": lambda: plots.per_class_f1(trained, runs),
               "attention": lambda: plots.attention_by_class(trained, "attention_fusion"),
               "cv": lambda: plots.cv_by_fold(decide(trained))}
    for name, draw in figures.items():
        png = plots.save_figure(draw(), trained, name)
        first = png.read_bytes(), png.with_suffix(".pdf").read_bytes()
        assert first[0][:4] == b"\x89PNG" and first[1][:5] == b"%PDF-"
        assert png_width(png) <= MAX_PNG_WIDTH, name  # shown at 1:1 in the report, not shrunk
        plots.save_figure(draw(), trained, name)
        assert (png.read_bytes(), png.with_suffix(".pdf").read_bytes()) == first, name


# ---- hand-made artefacts: the files the training stages write, with known contents ----------

def write_metrics(params, model, dataset, matrices, f1=None):
    per_seed = [{"seed": s, "confusion_matrix": np.asarray(m).tolist(),
                 "per_class": {lab: {"f1": (f1[s][i] if f1 else 50.0)} for i, lab in enumerate(LABELS)}}
                for s, m in enumerate(matrices)]
    write_json(RunPaths(params).record(model, dataset), {"model": model, "per_seed": per_seed,
                                                                  "seeds": len(per_seed)})


def random_matrices(rng, seeds, n):
    """``seeds`` confusion matrices of ``n`` test pairs each."""
    return [rng.multinomial(n, np.full(9, 1 / 9)).reshape(3, 3) for _ in range(seeds)]


def write_history(params, model, dataset, last_epochs, fold=True, held=False):
    rows = []
    for unit, last in enumerate(last_epochs):
        for epoch in range(1, last + 1):
            row = {"seed": unit, "epoch": epoch, "train_loss": 1 / epoch, "dev_loss": 0.5 + 0.01 * unit,
                   "dev_acc": 0.5, "dev_weighted_f1": 0.5 + 0.01 * unit + 0.001 * epoch}
            if fold:
                row["fold"] = unit
            if held:
                row["held_weighted_f1"] = 0.99  # diagnosis only: never drawn
            rows.append(row)
    path = RunPaths(params).history(model, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False)


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def assert_legends_outside(fig):
    """Every legend clear of every axes' plotting area, axis (ticks, tick labels, label) and title."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends
    for legend in legends:
        box = legend.get_window_extent(renderer)
        for ax in fig.axes:
            if not ax.axison:
                continue
            for part in (ax.bbox, ax.xaxis.get_tightbbox(renderer), ax.yaxis.get_tightbbox(renderer),
                         ax.title.get_window_extent(renderer) if ax.get_title() else None):
                assert part is None or not overlaps(box, part), (legend.get_texts()[0].get_text(), ax.get_title())


def count_texts(ax) -> list[float]:
    return [float(t.get_text()) for t in ax.texts if t.get_gid() == "count"]


def test_confusion_figures_one_per_dataset_at_most_five_a_row_with_counts(tiny_params):
    rng = np.random.default_rng(0)
    matrices = {}
    for k in range(10):
        matrices[f"model_{k}"] = random_matrices(rng, seeds=3, n=40)
        write_metrics(tiny_params, f"model_{k}", "single", matrices[f"model_{k}"])
    write_metrics(tiny_params, "model_0", "multiple", random_matrices(rng, seeds=2, n=25))
    runs = [(m, "single") for m in matrices] + [("model_0", "multiple")]
    figures = plots.confusion_figures(tiny_params, runs)
    assert list(figures) == ["single", "multiple"]

    fig = figures["single"]
    fig.canvas.draw()
    shown = [ax for ax in fig.axes if ax.axison]
    assert len(shown) == 10
    rows = pd.Series([round(ax.get_position().y0, 3) for ax in shown]).value_counts()
    assert len(rows) == 2 and rows.max() <= plots.MAX_COLUMNS
    renderer = fig.canvas.get_renderer()
    titles = [ax.title.get_window_extent(renderer) for ax in shown]
    assert not any(overlaps(a, b) for i, a in enumerate(titles) for b in titles[i + 1:])
    for ax, (model, seeds) in zip(shown, matrices.items()):
        counts = count_texts(ax)
        assert len(counts) == 9 and ax.get_title().replace("\n", "") == model
        mean = np.mean(seeds, axis=0)
        assert counts == [float(plots.count_text(v)) for v in mean.flat]  # the mean count per seed
        assert sum(counts) == pytest.approx(40, abs=9 * 0.05)  # sums to the test size (one decimal each)
        assert all(overlaps(t.get_window_extent(renderer), ax.bbox) for t in ax.texts)

    six = plots.confusion_figures(tiny_params, runs[:6])["single"]  # rows filled evenly: 3 + 3
    six.canvas.draw()
    assert pd.Series([round(ax.get_position().y0, 3) for ax in six.axes if ax.axison]).value_counts().tolist() == [3, 3]
    assert sum(count_texts(figures["multiple"].axes[0])) == pytest.approx(25, abs=0.5)


def test_model_confusion_shows_one_models_mean_counts(tiny_params):
    write_metrics(tiny_params, "shipped", "single", [np.diag([30, 10, 20]), [[28, 2, 0], [3, 5, 2], [1, 1, 18]]])
    fig = plots.model_confusion(tiny_params, "shipped")
    assert count_texts(fig.axes[0]) == [29, 1, 0, 1.5, 7.5, 1, 0.5, 0.5, 19]
    assert "shipped" in fig.axes[0].get_title() and "2 seeds" in fig.axes[0].get_title()


@pytest.mark.parametrize("fold,held", [(True, True), (True, False), (False, False)])
def test_learning_curves_stop_at_the_last_epoch_every_run_reached(tiny_params, fold, held):
    write_history(tiny_params, "head", "single", last_epochs=[6, 9, 4, 6], fold=fold, held=held)
    write_history(tiny_params, "other", "single", last_epochs=[3, 3], fold=False)
    fig = plots.learning_curves(tiny_params, [("head", "single"), ("other", "single"), ("absent", "single")])
    left, right = fig.axes
    ends = {}
    for ax in (left, right):
        for line in ax.lines:
            if len(line.get_xdata()):
                ends.setdefault(ax, []).append(max(line.get_xdata()))
        for band in ax.collections:  # the ± std bands
            assert max(v[0] for p in band.get_paths() for v in p.vertices) <= 4
    assert max(ends[left]) == 4 and max(ends[right]) == 4 and 3 in ends[left]
    # the left panel is the early-stopping split's score (dev_*), never held_weighted_f1
    head = next(line for line in left.lines if max(line.get_xdata(), default=0) == 4)
    expected = [100 * np.mean([0.5 + 0.01 * u + 0.001 * e for u in range(4)]) for e in range(1, 5)]
    assert np.allclose(head.get_ydata(), expected)
    assert left.get_title() == "early-stopping split"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert f"head · MVSA-Single (4 {'fold models' if fold else 'seeds'})" in labels
    assert_legends_outside(fig)


def test_learning_curves_without_any_history_say_so(tiny_params):
    with pytest.raises(FileNotFoundError, match="no training curves"):
        plots.learning_curves(tiny_params, [("absent", "single")])


def test_per_class_bars_are_the_mean_and_std_over_seeds(tiny_params):
    f1 = [[80.0, 20.0, 60.0], [70.0, 30.0, 64.0], [75.0, 40.0, 62.0]]
    write_metrics(tiny_params, "m", "single", [np.eye(3)] * 3, f1=f1)
    write_metrics(tiny_params, "m", "multiple", [np.eye(3)] * 3, f1=f1)
    for runs in ([("m", "single")], [("m", "single"), ("m", "multiple")]):
        fig = plots.per_class_f1(tiny_params, runs)
        ax = fig.axes[0]
        assert "std over seeds" in ax.get_xlabel() and "95" not in ax.get_xlabel()
        whiskers = {tuple(np.round(np.nanpercentile(line.get_xdata(), [0, 100]), 6)) for line in ax.lines}
        for values in np.array(f1).T:
            mean, sd = values.mean(), values.std(ddof=1)
            assert tuple(np.round([mean - sd, mean + sd], 6)) in whiskers
        assert_legends_outside(fig)


def test_per_class_figure_data_are_the_seeds_saved_scores(trained):
    data = plots.per_class_long(trained, [("attention_fusion", "single")])
    m = read_json(RunPaths(trained).record("attention_fusion", "single"))
    assert len(data) == 3 * m["seeds"]
    for label, group in data.groupby("class"):
        assert group["f1"].mean() == pytest.approx(m["per_class_f1"][label]["mean"])


def write_predictions(params, model, inputs, seeds=2, n=12):
    rng = np.random.default_rng(0)
    folder = RunPaths(params).predictions(model, "single")
    folder.mkdir(parents=True, exist_ok=True)
    for seed in range(seeds):
        frame = pd.DataFrame({"id": range(n), "gold": [LABELS[i % 3] for i in range(n)],
                              "predicted": LABELS[0]})
        weights = rng.dirichlet(np.ones(len(inputs)), n)
        for i, name in enumerate(inputs):
            frame[f"weights_{name}"] = weights[:, i]
        frame.to_csv(folder / f"seed{seed}.csv", index=False)


def test_attention_figure_has_one_group_per_input(tiny_params):
    inputs = ["text", "image", "lexicon"]
    write_predictions(tiny_params, "three_inputs", inputs)
    fig = plots.attention_by_class(tiny_params, "three_inputs")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == inputs
    assert "three_inputs" in ax.get_title()
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend[:3] == list(LABELS) and "1/3" in legend[3]  # hue = gold class; the equal-weight line
    assert_legends_outside(fig)


def test_attention_figure_needs_modality_weights(tiny_params):
    write_predictions(tiny_params, "no_weights", [])
    with pytest.raises(ValueError, match="no modality weights"):
        plots.attention_by_class(tiny_params, "no_weights")


def test_cv_figure_plots_each_rows_paired_difference_and_the_se_the_rule_reads():
    from mmsent.training.protocol import Verdict

    start = list(70.0 + np.arange(4))
    rows = [{"model": "a", "kept": True, "verdict": None, "metrics": {"cv": {"per_fold": {"weighted_f1": start}}}},
            {"model": "b", "kept": False, "verdict": Verdict(False, 0.5, 0.8), "compared_with": {"model": "a",
             "scores": start}, "metrics": {"cv": {"per_fold": {"weighted_f1": [x + d for x, d in
                                                                                  zip(start, [1, 0, 1, 0])]}}}}]
    fig = plots.cv_by_fold(rows)
    ax = fig.axes[0]
    folds = [c.get_offsets() for c in ax.collections if len(c.get_offsets()) == 4]
    assert len(folds) == 1 and sorted(folds[0][:, 0]) == [0, 0, 1, 1]  # the per-fold differences, not the scores
    assert [t.get_text() for t in ax.get_yticklabels()] == ["b\nvs a"]  # the start is compared with nothing
    assert_legends_outside(fig)


def test_tuning_figure_marks_the_chosen_trial_and_writes_only_the_history(tiny_params):
    st = optuna.create_study(direction="maximize")
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-2)}
    best = [70.0, 72.0, 71.0, 73.0, 69.0]
    for k, (value, shift, size) in enumerate([(71.0, 0, 5000), (70.5, -0.5, 800), (69.0, -2, 100)]):
        attrs = {"fold_scores": [x + shift for x in best], "parameters": size}
        st.add_trial(optuna.trial.create_trial(params={"lr": 1e-3 + k * 1e-4}, distributions=dist, value=value,
                                               user_attrs=attrs))
    chosen, _ = tune.choose_trial(st, ratio=0.3125)
    fig = tune.history_figure(st, ratio=0.3125, title="m, MVSA-Single")
    ax = fig.axes[0]
    assert ax.get_title() == "m, MVSA-Single: 3 completed trials"
    assert ax.get_ylabel() == "CV weighted F1 (%)" and ax.get_xlabel() == "trial"
    assert [tuple(c.get_offsets()[0]) for c in ax.collections if len(c.get_offsets()) == 1] == [(chosen.number, 70.5)]
    assert any(f"trial {chosen.number}" in t.get_text() for t in fig.legends[0].get_texts())
    assert_legends_outside(fig)

    written = tune.figures(tiny_params, "m", st)
    assert set(written) == {"history"}
    assert sorted(p.name for p in tiny_params.path("reports/figures/tuning").iterdir()) == [
        "m_history.pdf", "m_history.png"]


@pytest.fixture
def tables():
    rng = np.random.default_rng(0)

    def table(n):
        return pd.DataFrame({"split": rng.choice(["train", "dev", "test"], n), "label": rng.choice(LABELS, n),
                             "text": [" ".join(["w"] * k) for k in rng.integers(1, 30, n)],
                             "text_label": rng.choice(LABELS, n), "image_label": rng.choice(LABELS, n)})
    return {"single": table(200), "multiple": table(300)}


def test_data_figures_keep_legends_outside_and_fit_the_text_width(tiny_params, tables):
    for draw in (data_report.class_balance_figure, data_report.text_length_figure):
        fig = draw(tables)
        assert_legends_outside(fig)
        assert png_width(plots.save_figure(fig, tiny_params, draw.__name__)) <= MAX_PNG_WIDTH
    balance = data_report.class_balance_figure(tables)
    assert [t.get_text() for t in balance.legends[0].get_texts()] == list(LABELS)
    agreement = data_report.agreement_figure(tables)
    for ax, df in zip(agreement.axes, tables.values()):
        assert sum(int(t.get_text()) for t in ax.texts) == len(df)  # the counts are written in
    assert png_width(plots.save_figure(agreement, tiny_params, "agreement")) <= MAX_PNG_WIDTH

