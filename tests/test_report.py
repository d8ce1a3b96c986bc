"""Statistics, results and the report built on a tiny trained project (fixture results)."""

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
    project.extra["models"] = {**MODELS, **MODELS_EXTRA}
    for name in ("majority", "text_head", "image_head", "attention_fusion"):
        run_model(project, model_specs(project)[name])
    written = stats.run(project, reps=50)
    table = pd.read_csv(written["csv"])
    assert len(table) == 6  # 4 models on single → 6 pairs
    assert {"mcnemar_p_holm", "acc_ci_low", "significant"} <= set(table.columns)
    results.build(project)
    md = report.build(project).read_text()
    for heading in ("## 1. Data", "## 2. Results", "## 6. Significance", "## 7. Error analysis",
                    "## 8. What limits these numbers"):
        assert heading in md
    assert "attention_fusion" in md and "theirs, not ours" in md
    assert project.path("reports/figures/report_disagreements.png").is_file()
