"""Faults: processes killed with SIGKILL mid-epoch / mid-trial, a crashed server, corrupted caches.

Every kill is real (a child process SIGKILLs itself, see ``fault_workers.py``); what
survives is checked from the files it left behind.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

from mmsent.paths import RunPaths
from mmsent.training import fitting
from mmsent.training import tune
from mmsent.training.specs import model_specs
from mmsent.training.runs import run_model
from mmsent.io import CacheCorruptError, load_arrays

from fault_workers import tiny_run
from test_experiments import project  # noqa: F401  (fixture: tiny project with fake features)

HERE = Path(__file__).resolve().parent
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
       "MMSENT_DEVICE": "cpu"}


def run_worker(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "fault_workers.py"), *args], env=ENV,
                          capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- training


def test_training_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    resume = tmp_path / "run.resume.pt"
    killed = run_worker("train", str(resume), "15")  # 6 batches an epoch: dies inside epoch 3
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    state = torch.load(resume, weights_only=False)
    assert state["epoch"] == 2 and len(state["history"]) == 2  # the last finished epoch survived

    resumed, resumed_history = tiny_run(resume=resume)
    straight, straight_history = tiny_run()
    assert [h["dev_weighted_f1"] for h in resumed_history] == [h["dev_weighted_f1"] for h in straight_history]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert not resume.exists()  # removed once training ended


def test_a_resume_file_of_another_run_is_ignored(tmp_path):
    resume = tmp_path / "run.resume.pt"
    run_worker("train", str(resume), "15")
    state = torch.load(resume, weights_only=False)
    state["fingerprint"] = "another run"
    torch.save(state, resume)
    _, history = tiny_run(resume=resume)
    assert len(history) == 5 and history[0]["epoch"] == 1  # started afresh
    resume.write_bytes(b"garbage")
    _, history = tiny_run(resume=resume)
    assert len(history) == 5


def test_a_crash_during_training_leaves_the_last_good_checkpoint(project, monkeypatch):  # noqa: F811
    spec = model_specs(project)["text_head"]
    run_model(project, spec)
    ckpt = RunPaths(project).checkpoint("text_head", "single", 0)
    before = ckpt.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(fitting, "predict_proba", crash)  # dies after training, before saving
    with pytest.raises(RuntimeError, match="power cut"):
        run_model(project, model_specs(project)["text_head"])
    assert ckpt.read_bytes() == before


# --------------------------------------------------------------------------- tuning


@pytest.fixture
def tuning_project(project):  # noqa: F811
    """The tiny project with a search space, fast heartbeats, written back to its params.yaml."""
    import yaml

    path = project.base_dir / "params.yaml"
    raw = yaml.safe_load(path.read_text())
    raw["tuning"] = {
        "apply": False, "models": ["attention_fusion"], "dataset": "single", "n_trials": 3, "seed": 0,
        "storage": "sqlite:///data/optuna.db",
        "heartbeat_seconds": 1, "grace_seconds": 2,
        "spaces": {"attention_fusion": {"lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
                                        "d_model": {"type": "categorical", "choices": [4, 8]}}},
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def test_tuning_worker_killed_mid_trial_resumes_the_study(tuning_project):
    from mmsent.config import load_params

    killed = run_worker("tune", str(tuning_project), "attention_fusion", "1")  # dies inside trial #1
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    params = load_params(tuning_project)
    before = tune.study(params, "attention_fusion").trials
    assert [t.state.name for t in before] == ["COMPLETE", "RUNNING"]

    time.sleep(3)  # past the grace period: the dead worker's heartbeat is stale
    st = tune.tune_model(params, "attention_fusion")
    states = [t.state for t in st.trials]
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    assert len(st.get_trials(states=tune.FINISHED)) == 3
    failed = next(t for t in st.trials if t.state == optuna.trial.TrialState.FAIL)
    retried = [t for t in st.trials if t.system_attrs.get("failed_trial") == failed.number]
    assert retried and retried[0].params == failed.params  # the killed trial was tried again
    assert st.trials[0].params == before[0].params  # the finished trial survived


def test_several_workers_share_one_study(tuning_project):
    """Three local processes on one SQLite study (the same command works with postgresql://)."""
    from mmsent.config import load_params

    cmd = [sys.executable, "-m", "mmsent", "tune", "--model", "attention_fusion", "--params",
           str(tuning_project), "--n-trials", "6", "--no-write-best"]
    procs = [subprocess.Popen(cmd + ["--worker", str(k)], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    # the last lines of a failed worker's stderr hold the exception (the rich traceback box is long)
    assert all(p.returncode == 0 for p in procs), [o[1].strip().splitlines()[-12:] for o in outs]
    st = tune.study(load_params(tuning_project), "attention_fusion")
    finished = st.get_trials(states=tune.FINISHED)
    assert 6 <= len(finished) <= 8  # each worker stops once the study has 6 (in-flight ones may add)
    lrs = [t.params["lr"] for t in finished]
    assert len(set(lrs)) == len(lrs)  # per-worker sampler seeds: no trial proposed twice
    assert all(json.loads(o[0].strip().splitlines()[-1])["finished_trials"] >= 6 for o in outs)


def test_storage_creation_retries_a_lost_race(tuning_project, monkeypatch):
    import sqlalchemy.exc

    from mmsent.config import load_params

    real, calls = optuna.storages.RDBStorage, []

    def racy(*args, **kwargs):
        calls.append(1)
        if len(calls) < 3:  # what a worker that loses the race to create the tables sees
            raise sqlalchemy.exc.OperationalError("CREATE TABLE studies", {}, Exception("table studies already exists"))
        return real(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racy)
    assert isinstance(tune.storage(load_params(tuning_project)), real) and len(calls) == 3


def test_workers_opening_a_new_database_at_once_all_succeed(tuning_project):
    """Six processes create the storage of one fresh SQLite file at the same moment."""
    script = textwrap.dedent(f"""
        import time, sys
        from mmsent.training import tune
        from mmsent.config import load_params
        params = load_params({str(tuning_project)!r})
        time.sleep(max(0.0, float(sys.argv[1]) - time.time()))  # all start together
        tune.study(params, "attention_fusion")
        print("ok")
    """)
    start = str(time.time() + 8)
    procs = [subprocess.Popen([sys.executable, "-c", script, start], env=ENV, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(6)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 6, [o[1].strip().splitlines()[-5:] for o in outs]


def test_storage_must_be_an_rdb_url(tuning_project):
    from mmsent.config import load_params

    params = load_params(tuning_project, overrides={"tuning": {"storage": "redis://nowhere"}})
    with pytest.raises(ValueError, match="RDB URL"):
        tune.storage(params)


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_health(port: int, proc: subprocess.Popen, timeout: float = 120) -> dict:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read()[-2000:]}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    raise AssertionError("server did not come up")


@pytest.mark.skipif(not (HERE.parent / "src/mmsent/assets/default_model.pt").is_file(), reason="no shipped model")
def test_a_killed_server_restarts_with_the_same_model():
    port = free_port()
    cmd = [sys.executable, "-m", "mmsent", "serve", "--port", str(port)]
    first = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        before = wait_health(port, first)["model"]
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        first.kill()
    second = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        after = wait_health(port, second)["model"]
    finally:
        second.kill()
        second.wait(timeout=30)
    assert after["sha256"] == before["sha256"] and len(after["sha256"]) == 64
    assert after["path"] == before["path"]


# --------------------------------------------------------------------------- caches


def dvc(cwd: Path, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=cwd, env=ENV, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_a_corrupted_cache_is_detected_and_rebuilt_by_dvc_repro(tmp_path):
    (tmp_path / "make_cache.py").write_text(textwrap.dedent("""
        import numpy as np
        from mmsent.io import save_arrays
        save_arrays("cache/x.npz", meta={"encoder": "toy"}, X=np.arange(12.0).reshape(3, 4), ids=np.array(["a", "b", "c"]))
    """))
    (tmp_path / "dvc.yaml").write_text(textwrap.dedent(f"""
        stages:
          cache:
            cmd: {sys.executable} make_cache.py
            deps: [make_cache.py]
            outs: [cache]
    """))
    dvc(tmp_path, "init", "--no-scm")
    dvc(tmp_path, "repro")
    cache = tmp_path / "cache/x.npz"
    good, _ = load_arrays(cache)

    raw = bytearray(cache.read_bytes())  # flip bytes inside the stored array: still a valid zip
    start = raw.find(np.arange(12.0).tobytes())
    raw[start + 8:start + 16] = np.float64(99.0).tobytes()
    cache.write_bytes(bytes(raw))
    with pytest.raises(CacheCorruptError, match="dvc repro"):
        load_arrays(cache)  # never silently used
    assert "modified" in dvc(tmp_path, "status")
    dvc(tmp_path, "repro")
    rebuilt, _ = load_arrays(cache)
    assert np.array_equal(rebuilt["X"], good["X"])
