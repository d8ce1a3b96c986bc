"""The path docs/extending.md documents is the tested path: a family defined outside the package
(tests/plugin_family.py), registered where it is defined, taken through cross-validation, final
seeds, the results table, the statistics and Pipeline.load, with one params.yaml entry."""

from mmsent.paths import RunPaths
from mmsent import sections
import numpy as np

from mmsent.config import load_params
from mmsent.evaluation import results, stats
from mmsent.features.cache import feature_path
from mmsent.io import save_arrays
from mmsent.models import FAMILIES
from mmsent.training.runs import run_model
from mmsent.training.specs import model_specs, uses_cv

import plugin_family  # noqa: F401  (registers gated_fusion, as a plugin module would)
from test_experiments import project  # noqa: F401


def _real_encoder_caches(project):  # noqa: F811
    """Random features under the names of two encoders the Pipeline can run offline (VADER's 4 scores,
    EfficientNet-Lite0's 1280-d vector), so the trained head can be served for real."""
    table = np.load(feature_path(project, "fake_text", "single"))
    rng = np.random.default_rng(0)
    for name, dim in (("vader", 4), ("efficientnet_lite0", 1280)):
        save_arrays(feature_path(project, name, "single"), meta={"encoder": name}, ids=table["ids"],
                    X=rng.normal(size=(len(table["ids"]), dim)).astype(np.float32), ok=np.ones(len(table["ids"]), bool))


def test_a_family_defined_elsewhere_goes_through_the_whole_protocol(project, tmp_path):  # noqa: F811
    assert FAMILIES["gated_fusion"].cross_validated and FAMILIES["gated_fusion"].servable
    _real_encoder_caches(project)
    # the one params.yaml entry
    project.models["gated"] = {"family": "gated_fusion", "group": "fusion",
                                        "inputs": {"text": "vader", "image": "efficientnet_lite0"},
                                        "options": {"d_model": 8}}
    spec = model_specs(project)["gated"]
    assert uses_cv(spec, "single") and spec.modalities == "text + image"
    out = run_model(project, spec)["single"]
    assert len(out["cv"]["per_fold"]["weighted_f1"]) == 2 and out["seeds"] == 2  # folds, then final seeds
    assert RunPaths(project).checkpoint("gated", "single", 0).is_file()

    table = results.collect(project)
    assert "gated" in set(table["model"])

    run_model(project, model_specs(project)["attention_fusion"])
    project.report = sections.ReportConfig(**{"questions": [{"key": "gated", "a": "gated", "b": "attention_fusion",
                                              "ask": "Does gating beat attention?", "why": "a worked example"}]})
    tested = stats.family_table(project, reps=200)
    assert list(tested["question"]) == ["gated"] and tested["sentence"].iloc[0].startswith("`gated`")

    from mmsent.serving.pipeline import Pipeline

    pipe = Pipeline.load(RunPaths(project).checkpoint("gated", "single", 0), device="cpu")
    answer = pipe.predict(text="what a lovely day")
    assert answer["label"] in ("positive", "neutral", "negative")
    assert abs(sum(answer["probabilities"].values()) - 1) < 1e-5
    assert load_params(project.path("params.yaml"))  # the project itself is untouched by the plugin
