"""REST API over the prediction pipeline (FastAPI). Start it with ``mmsent serve``.

Every bad request gets a 4xx with a message; nothing a client sends can stop the server.
The served model is swapped only when a training job finishes successfully.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import tempfile
from pathlib import Path
from typing import Any, Literal, Optional, Union

from fastapi import FastAPI, File, Form, Header, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mmsent.data.images import DEFAULT_MAX_BYTES, ImageLoadError, ImageTooLargeError
from mmsent.data.labels import LABELS
from mmsent.serving.jobs import Jobs
from mmsent.serving.pipeline import Pipeline
from mmsent.serving.prepared import MAX_TEXT_CHARS, InputError
from mmsent.version import __version__

MAX_BATCH = 64


class PairIn(BaseModel):
    text: Optional[str] = Field(None, max_length=MAX_TEXT_CHARS, description="tweet text")
    image_base64: Optional[str] = Field(None, description="image file bytes, base64-encoded")
    image_path: Optional[str] = Field(None, description="path inside the server's image directory")


class BatchIn(BaseModel):
    pairs: list[PairIn] = Field(..., min_length=1, max_length=MAX_BATCH)


class Prediction(BaseModel):
    label: str = Field(..., description="positive, neutral or negative")
    score: float = Field(..., description="probability of the label")
    probabilities: dict[str, float]
    modalities: list[str] = Field(..., description="the inputs the prediction used")
    modality_weights: Optional[dict[str, float]] = Field(None, description="attention weight per model input "
                                                         "(text, image, and inputs derived from them: lexicon, ocr)")
    text_in_image: Optional[str] = Field(None, description="text found inside the image (models that read it)")
    explanation: Optional[dict[str, Any]] = Field(None, description="word / image-region attributions")


class PairError(BaseModel):
    error: str
    error_type: str


class BatchOut(BaseModel):
    results: list[Union[Prediction, PairError]]


class ErrorOut(BaseModel):
    detail: str


class HealthOut(BaseModel):
    status: Literal["ok"]
    version: str
    model: dict[str, Any]


class LabelsOut(BaseModel):
    labels: list[str]
    id2label: dict[int, str]


class JobOut(BaseModel):
    id: str
    model: str
    status: Literal["queued", "running", "succeeded", "failed"]
    metrics: Optional[dict[str, Any]] = None
    served_seed: Optional[int] = None
    checkpoint: Optional[str] = None  # where the trained model was saved (it is served from there)
    training_metrics: Optional[str] = None  # its per-epoch, per-class training_metrics.txt
    error: Optional[str] = None


class JobAccepted(BaseModel):
    job_id: str
    status: Literal["queued"]


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route may give (all ``{"detail": ...}``)."""
    # 400: a body that cannot be parsed at all; 422: wrong types; 500: never expected
    return {code: {"model": ErrorOut} for code in (400, *codes, 422, 500)}


class TrainIn(BaseModel):
    model: Optional[str] = Field(None, description="a model name from params.yaml (default: the shipped "
                                                   "configuration, as the ablation kept it)")
    overrides: dict[str, Any] = Field(default_factory=dict, description="params.yaml overrides, nested")


def is_loopback(host: str) -> bool:
    """Whether a bind address is reachable from this machine only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: assume it is reachable from elsewhere


TRAIN_TOKEN_ENV = "MMSENT_TRAIN_TOKEN"
MAX_TRAIN_FILE_BYTES = 20_000_000


def create_app(model_path: str | Path | None = None, params_path: str | Path | None = None,
               image_dir: str | Path | None = None, max_upload_bytes: int = DEFAULT_MAX_BYTES,
               pipeline: Pipeline | None = None, train_token: str | None = None,
               loopback_only: bool = True, checkpoint_dir: str | Path | None = None) -> FastAPI:
    """``train_token`` (or ``$MMSENT_TRAIN_TOKEN``): ``POST /train`` then needs
    ``Authorization: Bearer <token>``. A server bound beyond loopback (``loopback_only=False``)
    refuses ``POST /train`` altogether unless a token is configured: training runs arbitrary
    parameter overrides on the server's CPU and replaces the model it serves."""
    app = FastAPI(title="mmsent", version=__version__,
                  description="Multimodal (text + image) tweet sentiment: positive / neutral / negative.")
    jobs = Jobs()
    state = {"pipe": pipeline or Pipeline.load(model_path), "jobs": jobs}
    image_root = Path(image_dir).resolve() if image_dir else None
    token = train_token or os.environ.get(TRAIN_TOKEN_ENV) or None
    checkpoints = Path(checkpoint_dir or "mmsent-checkpoints")  # where /train/pairs saves what it trains

    def allowed_to_train(authorization: str | None) -> None:
        if token is None:
            if not loopback_only:
                raise HTTPException(403, "POST /train is disabled on a server bound beyond loopback without a "
                                         f"token: start it with --train-token or {TRAIN_TOKEN_ENV}")
            return
        given = (authorization or "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "POST /train needs the header 'Authorization: Bearer <train token>'")

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return JSONResponse(status_code=422, content={"detail": f"invalid request: {msgs}"})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):  # the server stays up whatever happens
        return JSONResponse(status_code=500, content={"detail": f"internal error: {type(exc).__name__}"})

    def resolve_path(path: str) -> Path:
        if image_root is None:
            raise HTTPException(403, "reading images from server paths is disabled (start with an image directory)")
        try:
            full = (image_root / path).resolve()
        except (ValueError, OSError) as exc:  # e.g. an embedded NUL byte (found by the fuzz test)
            raise HTTPException(400, f"bad image_path: {exc}")
        if not full.is_relative_to(image_root):
            raise HTTPException(403, "image_path must stay inside the server's image directory")
        return full

    def score(text: Optional[str], image: Any, explain: bool = False) -> dict[str, Any]:
        try:
            return state["pipe"].predict(text=text, image=image, explain=explain)
        except ImageTooLargeError as exc:
            raise HTTPException(413, str(exc))
        except ImageLoadError as exc:
            raise HTTPException(415 if exc.reason == "not_an_image" else 400, f"bad image: {exc}")
        except InputError as exc:
            raise HTTPException(400, str(exc))

    @app.get("/health", response_model=HealthOut, responses=errors())
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": state["pipe"].info()}

    @app.get("/labels", response_model=LabelsOut, responses=errors())
    def labels() -> dict[str, Any]:
        return {"labels": list(LABELS), "id2label": state["pipe"].id2label}

    @app.post("/predict", response_model=Prediction, response_model_exclude_none=True,
              responses=errors(400, 403, 413, 415))
    async def predict(text: Optional[str] = Form(None, max_length=MAX_TEXT_CHARS),
                      image: Optional[UploadFile] = File(None),
                      image_path: Optional[str] = Form(None),
                      explain: bool = Form(False)) -> dict[str, Any]:
        """Multipart form: ``text`` and/or an ``image`` file (or ``image_path`` on the server)."""
        data: Any = None
        if image is not None:
            data = await image.read(max_upload_bytes + 1)
            if len(data) > max_upload_bytes:
                raise HTTPException(413, f"image upload is over the {max_upload_bytes}-byte limit")
        elif image_path:
            data = resolve_path(image_path)
        # in a worker thread: the event loop keeps answering (/health, other requests) meanwhile
        return await run_in_threadpool(score, text, data, explain)

    @app.post("/predict/batch", response_model=BatchOut, response_model_exclude_none=True, responses=errors())
    def predict_batch(body: BatchIn) -> dict[str, Any]:
        """JSON: up to 64 pairs; each answer is a prediction or an error for that pair alone."""
        pairs = []
        for pair in body.pairs:
            image: Any = None
            try:
                if pair.image_base64 is not None:
                    image = base64.b64decode(pair.image_base64, validate=True)
                    if len(image) > max_upload_bytes:
                        raise InputError(f"image is over the {max_upload_bytes}-byte limit")
                elif pair.image_path:
                    image = resolve_path(pair.image_path)
            except (binascii.Error, ValueError) as exc:
                pairs.append(exc)
                continue
            except HTTPException as exc:
                pairs.append(InputError(exc.detail))
                continue
            pairs.append({"text": pair.text, "image": image})
        valid = [p for p in pairs if isinstance(p, dict)]
        scored = iter(state["pipe"].predict_batch(valid))
        results = [next(scored) if isinstance(p, dict) else {"error": f"bad image_base64: {p}",
                                                              "error_type": type(p).__name__} for p in pairs]
        return {"results": results}

    def start_training(model: Optional[str], overrides: dict[str, Any]) -> str:
        """A job training ``model`` (default: the shipped configuration) as the pipeline does; shared
        by ``POST /train`` and the source system's ``POST /train_model``."""
        from mmsent.config import load_params
        from mmsent.training.specs import model_specs, read_chain

        found: dict[str, Any] = {}

        def check() -> None:
            try:
                found["params"] = params = load_params(params_path, overrides=overrides)
                found["specs"] = specs = model_specs(params)
            except (ValueError, FileNotFoundError, TypeError) as exc:
                raise HTTPException(400, f"bad training request: {exc}")
            found["name"] = name = model or read_chain(params).get("kept") or "attention_fusion"
            if name not in specs:
                raise HTTPException(404, f"unknown model {name!r}; known: {sorted(specs)}")

        def work(job_id: str) -> tuple[Pipeline, dict[str, Any]]:
            from mmsent.paths import RunPaths
            from mmsent.serving.ship import shipped_seed
            from mmsent.training.runs import run_model

            params, spec = found["params"], found["specs"][found["name"]]
            result = run_model(params, spec)["single"]
            seed = shipped_seed(params)  # the first seed: no seed is picked by a score
            path = RunPaths(params).checkpoint(spec, "single", seed)
            return Pipeline.load(path), {
                "metrics": {k: result[k] for k in ("accuracy", "weighted_f1", "macro_f1")}, "served_seed": seed,
                "checkpoint": str(path), "training_metrics": str(RunPaths(params).training_metrics(spec, "single"))}

        label = model or "the shipped configuration"
        return jobs.submit(label, work, lambda pipe: state.update(pipe=pipe), check)

    @app.post("/train", status_code=202, response_model=JobAccepted, responses=errors(400, 401, 403, 404, 409))
    def train(body: TrainIn, authorization: str | None = Header(None)) -> dict[str, Any]:
        """Start a background training job for one model; the served model switches on success."""
        allowed_to_train(authorization)
        return {"job_id": start_training(body.model, body.overrides), "status": "queued"}

    @app.post("/train/pairs", status_code=202, response_model=JobAccepted, responses=errors(401, 403, 409, 413))
    async def train_pairs(file: UploadFile = File(..., description="labelled pairs: .csv, .jsonl or .parquet"),
                          label_col: str = Form("label"), text_col: str = Form("text"), image_col: str = Form("image"),
                          folds: int = Form(5, ge=2, le=20),
                          authorization: str | None = Header(None)) -> dict[str, Any]:
        """Train the served model's head on your labelled pairs (`mmsent fit`) in the background; image
        paths are read inside the server's image directory. The job's status names the saved
        checkpoint, which is then served."""
        allowed_to_train(authorization)
        from mmsent.serving.batch import FORMATS, read_table

        suffix = Path(file.filename or "").suffix.lower()
        if suffix not in FORMATS:
            raise HTTPException(400, f"the file must be one of {', '.join(FORMATS)}, not {file.filename!r}")
        body = await file.read(MAX_TRAIN_FILE_BYTES + 1)
        if len(body) > MAX_TRAIN_FILE_BYTES:
            raise HTTPException(413, f"training file is over the {MAX_TRAIN_FILE_BYTES}-byte limit")
        upload = Path(tempfile.mkdtemp(prefix="mmsent-train-")) / f"pairs{suffix}"
        upload.write_bytes(body)
        try:
            table = read_table(upload)
        except ValueError as exc:
            raise HTTPException(400, str(exc))
        for value in (table[image_col] if image_col in table.columns else []):
            if value:
                resolve_path(value)  # 403 outside the image directory, as for /predict

        def work(job_id: str) -> tuple[Pipeline, dict[str, Any]]:
            from mmsent.training.own_data import FitConfig, fit_own

            out = checkpoints / f"own-{job_id}.pt"
            summary = fit_own(state["pipe"], upload, out, label_col, text_col, image_col, image_root,
                              FitConfig(folds=folds))
            return Pipeline.load(out), {"checkpoint": str(out), "training_metrics": summary["training_metrics"],
                                        "metrics": {k: summary[k] for k in ("cv_weighted_f1", "cv_se", "cv_accuracy",
                                                                            "pairs")}}

        job_id = jobs.submit(f"own data ({file.filename})", work, lambda pipe: state.update(pipe=pipe))
        return {"job_id": job_id, "status": "queued"}

    from mmsent.serving import compat

    compat.add_routes(app, start_training, allowed_to_train, resolve_path, score, errors, JobAccepted, Prediction)

    @app.get("/jobs/{job_id}", response_model=JobOut, response_model_exclude_none=True, responses=errors(404))
    def job(job_id: str) -> dict[str, Any]:
        found = state["jobs"].jobs.get(job_id)
        if found is None:
            raise HTTPException(404, f"unknown job {job_id!r}")
        return {k: v for k, v in found.items() if k != "trace"}

    return app
