"""The seaborn figures of the reports, drawn from a tiny trained project: each written as PNG and
PDF, byte-identical when drawn again (no timestamps), and the statistics they show are the saved ones."""

import numpy as np
import pytest

from mmsent.evaluation import plots
from mmsent.evaluation.ablation import decide
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.io import read_json

from test_experiments import project  # noqa: F401


@pytest.fixture
def trained(project):  # noqa: F811
    for name in ("text_head", "attention_fusion"):
        run_model(project, model_specs(project)[name])
    project.extra["ablation"] = {"rows": [{"lever": "t", "model": "text_head"}, {"lever": "a", "model": "attention_fusion"}]}
    return project


def test_each_figure_is_written_as_png_and_pdf_and_redraws_identically(trained):
    runs = [("text_head", "single"), ("attention_fusion", "single")]
    figures = {"curves": lambda: plots.learning_curves(trained, runs),
               "confusion": lambda: plots.confusion_matrices(trained, runs),
               "per_class": lambda: plots.per_class_f1(trained, runs),
               "attention": lambda: plots.attention_by_class(trained, "attention_fusion"),
               "cv": lambda: plots.cv_by_fold(decide(trained))}
    for name, draw in figures.items():
        png = plots.save_figure(draw(), trained, name)
        first = png.read_bytes(), png.with_suffix(".pdf").read_bytes()
        assert first[0][:4] == b"\x89PNG" and first[1][:5] == b"%PDF-"
        plots.save_figure(draw(), trained, name)
        assert (png.read_bytes(), png.with_suffix(".pdf").read_bytes()) == first, name


def test_per_class_figure_data_are_the_seeds_saved_scores(trained):
    data = plots.per_class_long(trained, [("attention_fusion", "single")])
    m = read_json(trained.path("metrics/attention_fusion_single.json"))
    assert len(data) == 3 * m["seeds"]
    for label, group in data.groupby("class"):
        assert group["f1"].mean() == pytest.approx(m["per_class_f1"][label]["mean"])


def test_attention_figure_needs_modality_weights(trained):
    with pytest.raises(ValueError, match="no modality weights"):
        plots.attention_by_class(trained, "text_head")


def test_cv_figure_has_one_point_per_fold_model(trained):
    rows = decide(trained)
    fig = plots.cv_by_fold(rows)
    points = np.concatenate([c.get_offsets() for c in fig.axes[0].collections if len(c.get_offsets())])
    assert len(points) >= sum(len(r["metrics"]["cv"]["per_fold"]["weighted_f1"]) for r in rows)
