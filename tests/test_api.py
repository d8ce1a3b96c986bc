"""The REST API through FastAPI's TestClient, including every bad request."""

import base64
import io
import time

import numpy as np
import pytest
from PIL import Image

from mmsent.serving.pipeline import Pipeline, default_model_path

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    Image.fromarray(np.full((50, 60, 3), 180, np.uint8)).save(folder / "ok.jpg")
    return folder


@pytest.fixture(scope="module")
def client(image_dir):
    from fastapi.testclient import TestClient

    from mmsent.serving.api import create_app

    app = create_app(pipeline=Pipeline.load(device="cpu"), image_dir=image_dir, max_upload_bytes=200_000)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((40, 40, 3), 90, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_health_labels_and_docs(client):
    assert client.get("/health").json()["status"] == "ok"
    assert client.get("/labels").json()["labels"] == ["positive", "neutral", "negative"]
    assert "/predict" in client.get("/openapi.json").json()["paths"]


def test_predict_text_image_and_both(client):
    r = client.post("/predict", data={"text": "what a lovely day"}, files={"image": ("a.jpg", jpeg(), "image/jpeg")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["modalities"] == ["text", "image"] and body["label"] in body["probabilities"]
    assert client.post("/predict", data={"text": "hi"}).json()["modalities"] == ["text"]
    assert client.post("/predict", files={"image": ("a.jpg", jpeg())}).json()["modalities"] == ["image"]
    r = client.post("/predict", data={"text": "nice", "explain": "true"})
    assert "tokens" in r.json()["explanation"]


def test_server_side_path_only_inside_the_image_dir(client):
    assert client.post("/predict", data={"image_path": "ok.jpg"}).status_code == 200
    r = client.post("/predict", data={"image_path": "../../etc/passwd"})
    assert r.status_code == 403 and "inside" in r.json()["detail"]


@pytest.mark.parametrize("kwargs,status,match", [
    ({}, 400, "nothing to score"),
    ({"data": {"text": "   "}}, 400, "nothing to score"),
    ({"data": {"text": "x" * 3000}}, 422, "text"),
    ({"files": {"image": ("a.jpg", b"<svg></svg>", "image/jpeg")}}, 415, "not a recognised image"),
    ({"files": {"image": ("a.jpg", jpeg()[:200], "image/jpeg")}}, 400, "bad image: cannot read image header"),
    ({"files": {"image": ("a.jpg", b"", "image/jpeg")}}, 415, "empty"),
    ({"files": {"image": ("big.jpg", b"\xff" * 300_000, "image/jpeg")}}, 413, "limit"),
    ({"data": {"explain": "maybe", "text": "x"}}, 422, "explain"),
    ({"data": {"image_path": "missing.jpg"}}, 400, "not found"),
])
def test_bad_requests_get_a_clear_4xx(client, kwargs, status, match):
    r = client.post("/predict", **kwargs)
    assert r.status_code == status, r.text
    assert match in r.json()["detail"]
    assert client.get("/health").status_code == 200  # still up


def test_batch_mixes_results_and_errors(client):
    good = base64.b64encode(jpeg()).decode()
    r = client.post("/predict/batch", json={"pairs": [{"text": "great"}, {"image_base64": good},
                                                      {"image_base64": "%%%"}, {"text": ""}]})
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert "label" in results[0] and "label" in results[1]
    assert "error" in results[2] and "error" in results[3]
    assert client.post("/predict/batch", json={"pairs": []}).status_code == 422
    assert client.post("/predict/batch", json={"pairs": "nope"}).status_code == 422
    assert client.post("/predict/batch", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_unknown_job_and_bad_training_requests(client):
    assert client.get("/jobs/nope").status_code == 404
    assert client.post("/train", json={"model": "no_such_model"}).status_code == 404
    assert client.post("/train", json={"model": 3}).status_code == 422


def test_training_beyond_loopback_needs_a_token(monkeypatch):
    """A public server refuses POST /train without a configured token; with one, the wrong or a
    missing bearer is a 401 and the right one gets through (to the usual 404 for an unknown model)."""
    from fastapi.testclient import TestClient

    from mmsent.serving.api import TRAIN_TOKEN_ENV, create_app, is_loopback

    monkeypatch.delenv(TRAIN_TOKEN_ENV, raising=False)
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1") and is_loopback("127.0.0.9")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")
    pipe = Pipeline.load(device="cpu")
    with TestClient(create_app(pipeline=pipe, loopback_only=False), raise_server_exceptions=False) as public:
        r = public.post("/train", json={"model": "no_such_model"})
        assert r.status_code == 403 and "--train-token" in r.json()["detail"]
        assert public.get("/health").status_code == 200  # still serving
    with TestClient(create_app(pipeline=pipe, loopback_only=False, train_token="s3cret"),
                    raise_server_exceptions=False) as guarded:
        assert guarded.post("/train", json={"model": "x"}).status_code == 401
        assert guarded.post("/train", json={"model": "x"}, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert guarded.post("/train", json={"model": "x"}, headers={"Authorization": "Bearer s3cret"}).status_code == 404


def test_concurrent_requests_give_the_same_answers_as_sequential_ones(client):
    """16 clients at once: the shared model state is never corrupted. Requests that wait together
    share a forward pass (mmsent.serving.coalesce), which moves probabilities by float noise only."""
    from concurrent.futures import ThreadPoolExecutor

    def ask(k: int) -> dict:
        r = client.post("/predict", data={"text": f"request {k}: {'so good' if k % 2 else 'awful'} day"},
                        files={"image": ("a.jpg", jpeg(), "image/jpeg")})
        assert r.status_code == 200, r.text
        return r.json()["probabilities"]

    sequential = [ask(k) for k in range(32)]
    with ThreadPoolExecutor(16) as pool:
        concurrent = list(pool.map(ask, range(32)))
    for got, alone in zip(concurrent, sequential):
        assert max(got, key=got.get) == max(alone, key=alone.get)
        assert got == pytest.approx(alone, abs=1e-5)


def test_a_training_job_does_not_stall_prediction(client, monkeypatch):
    """While a (CPU-busy) training job runs in the background, predictions are still answered."""
    import threading

    import torch

    import mmsent.training.runs

    release = threading.Event()

    def busy_training(*args, **kwargs):
        x = torch.randn(256, 256)
        while not release.is_set():
            x = torch.tanh(x @ x)  # real CPU work, like an epoch
        raise RuntimeError("stopped by the test")

    monkeypatch.setattr(mmsent.training.runs, "run_model", busy_training)
    job = client.post("/train", json={"model": "attention_fusion"}).json()["job_id"]
    while client.get(f"/jobs/{job}").json()["status"] == "queued":
        time.sleep(0.05)
    answers = []

    def predict_while_training() -> None:
        for k in range(5):
            assert client.get(f"/jobs/{job}").json()["status"] == "running"
            answers.append(client.post("/predict", data={"text": f"still here {k}"}).status_code)

    worker = threading.Thread(target=predict_while_training)
    worker.start()
    worker.join(timeout=120)  # a liveness bound, not a speed claim: a stalled server never answers
    release.set()
    assert answers == [200] * 5
    for _ in range(100):
        status = client.get(f"/jobs/{job}").json()
        if status["status"] != "running":
            break
        time.sleep(0.1)
    assert status["status"] == "failed" and "stopped by the test" in status["error"]
    assert client.post("/predict", data={"text": "the old model still serves"}).status_code == 200


def test_the_server_caps_malloc_arenas_where_the_c_library_is_glibc():
    import platform

    from mmsent.serving.malloc import bound_malloc_arenas

    assert bound_malloc_arenas() is (platform.libc_ver()[0] == "glibc")


def test_train_on_a_labelled_file_saves_and_serves_a_checkpoint_named_in_the_job(tmp_path):
    """POST /train/pairs: a labelled file in, a background `mmsent fit`, a job whose finished status
    names the saved checkpoint, which the server then serves; a bad file fails the job alone."""
    import pandas as pd
    from fastapi.testclient import TestClient

    from mmsent.serving.api import create_app

    from test_own_data import labelled

    src = labelled(tmp_path, images=False)
    app = create_app(pipeline=Pipeline.load(device="cpu"), checkpoint_dir=tmp_path / "ckpt")
    c = TestClient(app)

    def finished(job_id):
        for _ in range(600):
            body = c.get(f"/jobs/{job_id}").json()
            if body["status"] in ("succeeded", "failed"):
                return body
            time.sleep(0.1)
        raise AssertionError("training job did not finish")

    r = c.post("/train/pairs", files={"file": ("mine.csv", src.read_bytes(), "text/csv")}, data={"folds": "3"})
    assert r.status_code == 202, r.text
    done = finished(r.json()["job_id"])
    assert done["status"] == "succeeded", done
    assert done["checkpoint"].endswith(".pt") and (tmp_path / "ckpt").is_dir()
    assert set(pd.Series(c.post("/predict", data={"text": "love it"}).json()["probabilities"]).index) == \
        {"positive", "neutral", "negative"}
    bad = pd.read_csv(src).assign(label="positive")
    r = c.post("/train/pairs", files={"file": ("bad.csv", bad.to_csv(index=False).encode(), "text/csv")})
    assert finished(r.json()["job_id"])["status"] == "failed"
    r = c.post("/train/pairs", files={"file": ("x.txt", b"hello", "text/plain")})
    assert r.status_code == 400
    r = c.post("/train/pairs", files={"file": ("p.csv", b"text,image,label\nhi,../../etc/passwd,positive\n")})
    assert r.status_code == 403
