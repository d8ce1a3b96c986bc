"""Statistics, results and the report built on a tiny trained project (fixture results)."""

from mmsent import sections
import pandas as pd

from mmsent.evaluation import report
from mmsent.evaluation import results
from mmsent.evaluation import stats
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model

from test_experiments import MODELS, project  # noqa: F401


def test_report_builds_from_stage_outputs(project):  # noqa: F811
    MODELS_EXTRA = {"image_head": {"family": "mlp_head", "group": "image", "inputs": {"image": "fake_image"},
                                   "options": {"hidden": [8]}}}
    project.models = {**MODELS, **MODELS_EXTRA}
    for name in ("majority", "text_head", "image_head", "attention_fusion"):
        run_model(project, model_specs(project)[name])
    project.report = sections.ReportConfig(**{"questions": [
        {"key": "fusion", "a": "attention_fusion", "b": "text_head", "ask": "Does fusion help?", "why": "premise"},
        {"key": "image", "a": "image_head", "b": "majority", "ask": "Do images say anything?", "why": "baseline"},
        {"key": "never", "a": "attention_fusion", "b": "absent", "ask": "Unrun?", "why": "not run"}]})
    written = stats.run(project, reps=200)
    table = pd.read_csv(written["csv"])
    assert list(table["question"]) == ["fusion", "image"]  # the declared family only; an unrun model: no row
    assert (table["family"] == 2).all() and table["runs_b"].tolist() == [2, 1]  # majority: one deterministic run
    excludes = (table["wf1_low"] > 0) | (table["wf1_high"] < 0)
    assert (excludes == table["significant"]).all()  # the generated table: interval and verdict agree
    results.build(project)
    md = report.build(project).read_text()
    assert md.index("## 1. Questions and answers") < md.index("## 2. Data")
    assert "### Q1. Does fusion help?" in md and "### Q3. Unrun?" in md and "Not answered" in md
    for sentence in table["sentence"]:  # each answer is the generated sentence, word for word
        assert sentence in md
    for heading in ("## 3. Results", "## 4. The shipped configuration", "## 7. Error analysis",
                    "## 8. What limits these numbers"):
        assert heading in md
    assert "nan" not in md.split()
    assert project.path("reports/figures/report/disagreements.png").is_file()
    assert project.path("reports/figures/report/comparisons.png").is_file()
