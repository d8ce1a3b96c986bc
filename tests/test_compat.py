"""The source system's three documented calls, run as its README writes them: `POST /train_model`
(no body) and `POST /test_model` against `mmsent serve --compat` (a real server, ports 8080 and
4200), and `test_model(text=..., model_path=..., image_path=...)` in Python."""

import socket
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from mmsent.data.labels import LABELS
from mmsent.paths import RunPaths
from mmsent.serving.compat import REST_PORT, UI_PORT
from mmsent.serving.pipeline import default_model_path
from mmsent.training import metrics_file

from test_extending import _real_encoder_caches
from test_experiments import project  # noqa: F401
from test_faults import ENV, wait_health

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_metrics_file_has_one_row_per_epoch_and_blank_cells_without_a_dev_split(tmp_path):
    dev = {"train_loss": 1.0, "dev_loss": 0.9, "dev_acc": 0.5, "dev_weighted_f1": 0.4,
           **{f"dev_{k}_{lab}": 0.5 for k in ("precision", "recall", "f1") for lab in LABELS}}
    path = metrics_file.write(tmp_path / "m.txt", [("fold0", [{"epoch": 1, **dev}, {"epoch": 2, **dev}]),
                                                   ("final", [{"epoch": 1, "train_loss": 0.8}])])
    table = metrics_file.read(path)
    assert list(table["run"]) == ["fold0", "fold0", "final"] and "dev_recall_neutral" in table
    assert table.loc[2, "train_loss"] == 0.8 and np.isnan(table.loc[2, "dev_f1_positive"])
    assert metrics_file.path_for(tmp_path / "mine.pt").name == "mine.training_metrics.txt"


def test_python_call_returns_label_and_scores(tmp_path):
    from mmsent import test_model
    from mmsent.serving import compat

    image = tmp_path / "grey.jpg"
    Image.fromarray(np.full((40, 40, 3), 120, np.uint8)).save(image)
    out = test_model(text="what a lovely day :)", model_path=default_model_path(), image_path=image)
    assert out["label"] in LABELS and set(out["scores"]) == set(LABELS)
    assert abs(sum(out["scores"].values()) - 1) < 1e-5 and out["modalities"] == ["text", "image"]
    cached = dict(compat._PIPELINES)
    assert test_model(text="awful", model_path=str(default_model_path()))["label"] in LABELS
    assert compat._PIPELINES == cached  # the same model path is loaded once


@pytest.mark.skipif(not (port_free(REST_PORT) and port_free(UI_PORT)), reason="port 8080 or 4200 is taken")
def test_the_source_systems_rest_calls_against_serve_compat(project, tmp_path):  # noqa: F811
    import httpx

    _real_encoder_caches(project)
    raw = yaml.safe_load(project.path("params.yaml").read_text())
    raw["models"] = {"attention_fusion": {"family": "attention_fusion", "group": "fusion",
                                          "inputs": {"text": "vader", "image": "efficientnet_lite0"},
                                          "options": {"d_model": 8, "hidden": [8]}}}
    project.path("params.yaml").write_text(yaml.safe_dump(raw))
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.full((50, 60, 3), 180, np.uint8)).save(images / "ok.jpg")
    Image.fromarray(np.full((50, 60, 3), 10, np.uint8)).save(tmp_path / "secret.jpg")
    (images / "link.jpg").symlink_to(tmp_path / "secret.jpg")  # inside the folder, pointing out of it

    server = subprocess.Popen([sys.executable, "-m", "mmsent", "serve", "--compat", "--params",
                               str(project.path("params.yaml"))], cwd=images, env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_health(REST_PORT, server)
        url = f"http://127.0.0.1:{REST_PORT}"
        r = httpx.post(f"{url}/test_model", json={"text": "so happy today", "image_path": "ok.jpg"}, timeout=60)
        assert r.status_code == 200, r.text
        assert r.json()["label"] in LABELS and r.json()["modalities"] == ["text", "image"]
        for bad in ("../secret.jpg", str(tmp_path / "secret.jpg"), "link.jpg", "../../../../etc/passwd"):
            r = httpx.post(f"{url}/test_model", json={"text": "x", "image_path": bad}, timeout=30)
            assert r.status_code == 403 and "image directory" in r.json()["detail"], (bad, r.text)
        assert httpx.post(f"{url}/test_model", json={"text": 3.5}, timeout=30).status_code == 422
        assert httpx.get(f"http://127.0.0.1:{UI_PORT}/", timeout=30).status_code == 200  # the web UI, same command

        r = httpx.post(f"{url}/train_model", timeout=30)  # no body, as the source system calls it
        assert r.status_code == 202, r.text
        for _ in range(600):
            job = httpx.get(f"{url}/jobs/{r.json()['job_id']}", timeout=30).json()
            if job["status"] in ("succeeded", "failed"):
                break
            time.sleep(0.5)
        assert job["status"] == "succeeded", job
        assert job["model"] == "the shipped configuration"
        table = pd.read_csv(job["training_metrics"], sep="\t")
        assert job["training_metrics"] == str(RunPaths(project).training_metrics("attention_fusion", "single"))
        assert {f"dev_{k}_{lab}" for k in ("precision", "recall", "f1") for lab in LABELS} <= set(table.columns)
        assert {"train_loss", "dev_loss"} <= set(table.columns) and table["run"].str.startswith("fold").any()
        assert httpx.get(f"{url}/health", timeout=30).json()["model"]["path"] == job["checkpoint"]  # now served
    finally:
        server.kill()
        server.wait(timeout=30)
