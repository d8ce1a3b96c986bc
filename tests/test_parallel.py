"""Seeds, studies and OCR shares on every core: the same numbers as one at a time."""

import json

import numpy as np
import pytest
import torch

from mmsent import parallel
from mmsent.experiments import model_specs, run_model
from mmsent.io import read_json

from test_experiments import project  # noqa: F401  (the tiny project with cached fake features)


def test_resolve_workers(monkeypatch):
    monkeypatch.delenv("MMSENT_WORKERS", raising=False)
    monkeypatch.setattr(parallel, "cpu_count", lambda: 4)
    assert parallel.resolve_workers("auto", jobs=5) == 4
    assert parallel.resolve_workers("auto", jobs=2) == 2
    assert parallel.resolve_workers("auto", jobs=5, device="cuda:0") == 1  # the GPU is the shared part
    assert parallel.resolve_workers(3, jobs=2) == 2
    assert parallel.resolve_workers("auto", jobs=1) == 1
    with pytest.raises(ValueError, match="workers"):
        parallel.resolve_workers(0, jobs=3)
    monkeypatch.setenv("MMSENT_WORKERS", "2")  # the operator's override beats params
    assert parallel.resolve_workers(4, jobs=5) == 2


def test_jobs_run_single_threaded_and_restore_threads():
    before = torch.get_num_threads()
    assert parallel.run_jobs(torch.get_num_threads, [(), ()], workers=1) == [1, 1]
    assert torch.get_num_threads() == before


def test_parallel_seeds_match_sequential_seeds(project, monkeypatch):  # noqa: F811
    spec = model_specs(project)["attention_fusion"]
    monkeypatch.setenv("MMSENT_WORKERS", "1")
    sequential = run_model(project, spec)["single"]
    preds_seq = project.path("data/predictions/attention_fusion/single/seed1.csv").read_text()
    monkeypatch.setenv("MMSENT_WORKERS", "2")  # two spawned processes, one seed each
    parallel_run = run_model(project, spec)["single"]
    assert parallel_run["per_seed"] == sequential["per_seed"]
    assert project.path("data/predictions/attention_fusion/single/seed1.csv").read_text() == preds_seq
    saved = read_json(project.path("metrics/attention_fusion_single.json"))
    assert [s["seed"] for s in saved["per_seed"]] == [0, 1]
    assert np.isclose(saved["accuracy"]["mean"], np.mean([s["accuracy"] for s in sequential["per_seed"]]))
    json.dumps(saved)  # still plain JSON


def test_a_failing_job_raises_in_the_caller():
    with pytest.raises(ZeroDivisionError):
        parallel.run_jobs(divmod, [(1, 1), (1, 0)], workers=2)
