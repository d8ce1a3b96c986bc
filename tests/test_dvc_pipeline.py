"""The pipeline as a DVC user drives it, on the tiny fixture data: a new family added as one module
plus one params.yaml row trains through `dvc repro`, then `dvc exp run -S train.epochs=2` reruns it
and `dvc exp show` lists both runs' metrics. The project is a copy (git + DVC) in a temporary folder:
its own dvc.yaml, notebooks and src/ (first on PYTHONPATH, so the stages import the copy that has
the new module)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, write_params

BIN = Path(sys.executable).parent
pytestmark = pytest.mark.skipif(not (BIN / "dvc").is_file(), reason="dvc is not installed beside this python")

ROW = {"family": "gated_fusion", "group": "fusion", "inputs": {"text": "vader", "image": "efficientnet_lite0"},
       "options": {"d_model": 8}}


def _settings() -> dict:
    """Cheap encoders only (VADER, EfficientNet-Lite0 on torch), two folds, one seed, a few epochs;
    the new family tuned by two trials; no ablation, questions or ensembles (they name models this
    project does not have)."""
    return dict(
        features={"text_encoders": ["vader"], "image_encoders": ["efficientnet_lite0"], "ocr_encoders": [],
                  "variant_encoders": [], "augmentations": {}, "backend": "torch", "device": "cpu"},
        train={"seeds": [0], "workers": 1, "epochs": 3, "batch_size": 4, "device": "cpu"},
        protocol={"folds": 2, "repeats": 1, "seed": 0, "final_seeds": [0]},
        tuning={"models": ["gated"], "n_trials": 2, "trials": {},
                "spaces": {"gated": {"d_model": {"type": "categorical", "choices": [4, 8]}}}},
        protocols={"models": []}, ablation={"rows": [], "family_ensembles": {}},
        report={"questions": [], "error_analysis": {}}, ensemble={"candidates": []})


def _run(cmd: list[str], cwd: Path, env: dict) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture
def dvc_project(tmp_path, tiny_root):
    project = tmp_path / "project"
    params = write_params(project, tiny_root, **_settings())
    raw = yaml.safe_load(params.read_text())
    raw["models"] = {"gated": ROW}  # the one params.yaml row
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    for name in ("dvc.yaml", "notebooks"):
        (shutil.copytree if (REPO / name).is_dir() else shutil.copy)(REPO / name, project / name)
    shutil.copytree(REPO / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    # the one module: the family docs/extending.md walks through, dropped into the package
    shutil.copy(REPO / "tests" / "plugin_family.py", project / "src" / "mmsent" / "models" / "gated.py")
    env = dict(os.environ, PYTHONPATH=str(project / "src"), PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@t")
    env.pop("MMSENT_DATA_ROOT", None)
    env.pop("MMSENT_PROFILE", None)
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], ["dvc", "config", "core.analytics", "false"],
                ["git", "add", "-A"], ["git", "commit", "-qm", "tiny project"]):
        _run(cmd, project, env)
    return project, env


def test_a_new_family_trains_through_dvc_repro_and_dvc_exp_run_varies_it(dvc_project):
    project, env = dvc_project
    _run(["dvc", "repro", "train@fusion"], project, env)
    scores = json.loads((project / "metrics/scores/fusion/gated_single.json").read_text())
    assert 0 <= scores["acc"] <= 100 and "cv_wf1" in scores  # cross-validated, then final seeds on test
    assert (project / "metrics/history/fusion/gated_single.csv").is_file()  # what `dvc plots show` draws
    assert (project / "models/fusion/gated/single/seed0.pt").is_file()
    assert (project / "params/tuned/best_gated.yaml").is_file()  # tuned like the built-in families

    _run(["git", "add", "-A"], project, env)
    _run(["git", "commit", "-qm", "baseline run"], project, env)
    _run(["dvc", "exp", "run", "-S", "train.epochs=2", "train@fusion", "--name", "two-epochs"], project, env)
    shown = json.loads(_run(["dvc", "exp", "show", "--json"], project, env))
    text = json.dumps(shown)
    assert "two-epochs" in text
    assert "metrics/scores/fusion" in text  # the experiment's metrics, listed beside the baseline's
    shown_csv = _run(["dvc", "exp", "show", "--csv", "--only-changed"], project, env)
    assert "train.epochs" in shown_csv.splitlines()[0] and "two-epochs" in shown_csv
