"""Seeds, studies and OCR shares on every core: the same numbers as one at a time."""

import json

import numpy as np
import pytest
import torch

from mmsent.paths import RunPaths
from mmsent import parallel
from mmsent.training.fitting import expected_seconds
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model, run_models
from mmsent.io import read_json

from test_experiments import project  # noqa: F401  (the tiny project with cached fake features)


def pool_threads() -> tuple[int, list[int]]:
    """torch's threads and every BLAS / OpenMP pool's, as a job sees them."""
    from threadpoolctl import threadpool_info

    np.ones((64, 64)) @ np.ones((64, 64))  # make sure NumPy's BLAS is loaded
    return torch.get_num_threads(), [p["num_threads"] for p in threadpool_info()]


@pytest.mark.parametrize("workers", [1, 2])
def test_every_job_runs_on_one_thread_of_every_pool(workers):
    """Two jobs side by side must not each start a BLAS thread per core: oversubscribed, the
    spinning threads of one slow the other."""
    for torch_threads, pools in parallel.run_jobs(pool_threads, [(), ()], workers):
        assert torch_threads == 1 and pools and set(pools) == {1}


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
    preds_seq = (RunPaths(project).predictions("attention_fusion", "single") / "seed1.csv").read_text()
    monkeypatch.setenv("MMSENT_WORKERS", "2")  # two spawned processes, one seed each
    parallel_run = run_model(project, spec)["single"]
    assert parallel_run["per_seed"] == sequential["per_seed"]
    assert (RunPaths(project).predictions("attention_fusion", "single") / "seed1.csv").read_text() == preds_seq
    saved = read_json(RunPaths(project).record("attention_fusion", "single"))
    assert [s["seed"] for s in saved["per_seed"]] == [0, 1]
    assert np.isclose(saved["accuracy"]["mean"], np.mean([s["accuracy"] for s in sequential["per_seed"]]))
    json.dumps(saved)  # still plain JSON


def test_one_pool_for_several_models_matches_each_model_alone(project, monkeypatch):  # noqa: F811
    specs = model_specs(project)
    names = ["attention_fusion", "majority", "text_head"]
    monkeypatch.setenv("MMSENT_WORKERS", "1")
    alone = {name: run_model(project, specs[name]) for name in names}
    preds = (RunPaths(project).predictions("text_head", "single") / "seed0.csv").read_text()
    monkeypatch.setenv("MMSENT_WORKERS", "2")
    pooled = run_models(project, [specs[n] for n in names])
    assert set(pooled) == set(names)
    for name in names:
        for dataset, summary in alone[name].items():
            assert pooled[name][dataset]["per_seed"] == summary["per_seed"], (name, dataset)
            saved = read_json(RunPaths(project).record(name, dataset))
            assert [s["seed"] for s in saved["per_seed"]] == [0, 1]
    assert (RunPaths(project).predictions("text_head", "single") / "seed0.csv").read_text() == preds


def test_jobs_are_scheduled_longest_first_from_the_last_run(project):  # noqa: F811
    assert expected_seconds(project, "never_trained", "single") == float("inf")
    run_model(project, model_specs(project)["majority"])
    assert 0 <= expected_seconds(project, "majority", "single") < float("inf")


def test_a_failing_job_raises_in_the_caller():
    with pytest.raises(ZeroDivisionError):
        parallel.run_jobs(divmod, [(1, 1), (1, 0)], workers=2)


def test_pixels_decoded_in_shares_equal_one_by_one(project, monkeypatch):  # noqa: F811
    from mmsent.data.mvsa import load_parts
    from mmsent.training.inputs import load_pixels, pixel_data

    parts = load_parts(project, "single")
    monkeypatch.setenv("MMSENT_WORKERS", "2")
    data = pixel_data(project, parts, 16)
    for part, df in parts.items():
        expected = load_pixels(project.data.root, list(df["image"]), 16)
        assert torch.equal(data[part].inputs["pixels"], expected)
        assert data[part].ids == list(df["id"])


def test_share_bounds_cover_every_item_once(monkeypatch):
    monkeypatch.setenv("MMSENT_WORKERS", "3")
    bounds = parallel.share_bounds(10)
    assert bounds[0][0] == 0 and bounds[-1][1] == 10 and len(bounds) == 3
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
    assert parallel.share_bounds(0) == [(0, 0)]
