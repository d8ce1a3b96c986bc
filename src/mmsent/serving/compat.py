"""The source system's documented calls, as it named them.

REST (``mmsent serve --compat``: port 8080, the web UI on 4200 in the same command):
``POST /train_model`` with no body trains the shipped configuration (``POST /train``'s job, token
rule and persistence); ``POST /test_model`` takes ``{"text": ..., "image_path": ...}``, the image
read only inside the server's image directory. Python: :func:`test_model`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from fastapi import FastAPI, Header
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from mmsent.serving.prepared import MAX_TEXT_CHARS

REST_PORT, UI_PORT = 8080, 4200  # the source system's


class TestModelIn(BaseModel):
    text: Optional[str] = Field(None, max_length=MAX_TEXT_CHARS, description="tweet text")
    image_path: Optional[str] = Field(None, description="path inside the server's image directory")


TestModelIn.__test__ = False  # a request body, not a pytest test class


def add_routes(app: FastAPI, start_training: Callable[[Optional[str], dict], str],
               allowed_to_train: Callable[[Optional[str]], None], resolve_path: Callable[[str], Path],
               score: Callable[..., dict[str, Any]], responses: Callable[..., dict],
               accepted: type[BaseModel], prediction: type[BaseModel]) -> None:
    """On ``app`` (mmsent.serving.api.create_app), with its own handlers and response schemas."""
    @app.post("/train_model", status_code=202, response_model=accepted, responses=responses(401, 403, 409))
    def train_model(authorization: Optional[str] = Header(None)) -> dict[str, Any]:
        """The source system's call: train the shipped configuration (``POST /train`` with no model)."""
        allowed_to_train(authorization)
        return {"job_id": start_training(None, {}), "status": "queued"}

    @app.post("/test_model", response_model=prediction, response_model_exclude_none=True,
              responses=responses(400, 403, 413, 415))
    async def test_model_route(body: TestModelIn) -> dict[str, Any]:
        """The source system's call: JSON ``text`` and/or ``image_path`` (inside the image directory)."""
        image = resolve_path(body.image_path) if body.image_path else None
        return await run_in_threadpool(score, body.text, image)


def start_ui(pipe, host: str, port: int = UI_PORT):
    """The web UI on its own threads, beside the REST API the caller then runs (one command)."""
    from mmsent.serving.ui import build_ui

    return build_ui(pipe).launch(server_name=host, server_port=port, prevent_thread_lock=True)


_PIPELINES: dict[str, Any] = {}  # model path -> its loaded Pipeline: a second call does not reload


def test_model(text: str | None = None, model_path: str | Path | None = None,
               image_path: str | Path | None = None) -> dict[str, Any]:
    """The source system's Python call: ``{"label": ..., "scores": {label: probability}}`` plus the
    rest of :meth:`mmsent.Pipeline.predict`'s answer. ``model_path`` None: the shipped model."""
    from mmsent.serving.pipeline import Pipeline

    key = str(Path(model_path).resolve()) if model_path else ""
    if key not in _PIPELINES:
        _PIPELINES[key] = Pipeline.load(model_path)
    out = _PIPELINES[key].predict(text=text, image=image_path)
    return {"label": out["label"], "scores": out["probabilities"], **out}


test_model.__test__ = False  # a library call, not a pytest test
