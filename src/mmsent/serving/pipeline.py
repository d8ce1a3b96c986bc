"""Inference: ``Pipeline.load()`` → ``predict(text=..., image=...)``.

Hugging Face style: :meth:`Pipeline.preprocess` (validate, normalise the tweet, open the
image) → :meth:`Pipeline.forward` (frozen encoders + the trained head) →
:meth:`Pipeline.postprocess` (label names via ``id2label``, probabilities, modality
weights). A missing modality is masked inside the model, which saw missing modalities in
training (modality dropout), never replaced by zeros it has not seen.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from mmsent.config import TextConfig
from mmsent.data.images import ImageInput, ImageLoadError, open_image
from mmsent.data.text import normalize_tweet
from mmsent.device import pick_device
from mmsent.features.base import item_shape
from mmsent.features.encoders import get_encoder
from mmsent.models.fusion import MODALITIES, SOURCES
from mmsent.models.registry import input_width
from mmsent.serving.coalesce import Coalescer
from mmsent.serving.prepared import InputError, MAX_TEXT_CHARS, Prepared
from mmsent.training.loop import load_checkpoint

MAX_BATCH_ENV = "MMSENT_MAX_BATCH"  # pairs of concurrent calls one forward pass may merge


def default_model_path() -> Path:
    """The model shipped inside the package (trained on MVSA-Single by the ``ship`` stage)."""
    return Path(str(resources.files("mmsent") / "assets" / "default_model.pt"))


class Pipeline:
    def __init__(self, model: torch.nn.Module, payload: dict[str, Any], device: str = "auto",
                 backend: str | dict | None = None) -> None:
        self.device = pick_device(device)
        self.model = model.to(self.device).eval()
        self.payload = payload
        self.id2label = {int(k): v for k, v in payload["id2label"].items()}
        self.encoder_names: dict[str, str] = dict(payload.get("encoders") or {})
        from mmsent.models.registry import FAMILIES

        if not FAMILIES[payload["family"]].servable or not self.encoder_names:
            served = sorted(name for name, f in FAMILIES.items() if f.servable)
            raise ValueError(f"a {payload['family']} checkpoint cannot be served: the Pipeline computes the inputs "
                             f"of families on cached encoder features ({', '.join(served)})")
        self.text_config = TextConfig(**payload.get("text_config", {}))
        self.temperature = float(payload.get("temperature", 1.0))  # 1: the model's own probabilities
        self.image_size = int(payload.get("image_size", 224))
        # the runtime its training features came from, unless asked otherwise (the two agree to ~1e-5)
        self.backend = backend or payload.get("feature_backend", "torch")
        self.ocr_reader = None
        if "ocr" in self.encoder_names:  # read images the way the training data was read
            from mmsent.data.ocr import OcrConfig, OcrReader

            self.ocr_reader = OcrReader(OcrConfig(**payload.get("ocr_config", {})))
        self._encoders: dict[str, Any] = {}
        self._lock = threading.Lock()
        # one forward pass at a time: Hugging Face fast tokenizers are not safe to share between
        # threads, and torch already uses every core for one pass. Decoding stays parallel, and
        # the pairs of concurrent callers (a server's requests) that wait meanwhile share the next pass.
        # (MMSENT_MAX_BATCH=1: one pass per call, as benchmarks/bench_load.py compares)
        self._merged = Coalescer(self._forward, max_batch=int(os.environ.get(MAX_BATCH_ENV, "32")))

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, path: str | Path | None = None, device: str = "auto",
             backend: str | dict | None = None) -> "Pipeline":
        """The shipped default model, or any checkpoint written by the training stages.
        ``backend``: torch or onnx for the frozen encoders (default: the one its features came from)."""
        path = Path(path) if path else default_model_path()
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # no "Loading weights" bars in CLI output or server logs
        model, payload = load_checkpoint(path, device="cpu")
        pipe = cls(model, payload, device=device, backend=backend)
        pipe.path = path
        pipe.sha256 = hashlib.sha256(path.read_bytes()).hexdigest()  # which weights a server is running
        return pipe

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.encoder_names)

    def reads(self, source: str) -> bool:
        """Whether any model input is computed from ``source`` (text, image or ocr)."""
        return any(SOURCES.get(m, m) == source for m in self.modalities)

    @property
    def needs_image(self) -> bool:
        """Whether the model reads the image, as pixels or as the text inside it."""
        return self.reads("image") or self.reads("ocr")

    def encoder(self, modality: str):
        name = self.encoder_names[modality]
        with self._lock:  # concurrent first requests build the encoder once
            if name not in self._encoders:  # one MiniLM serves the tweet and the text in its image
                # (the EfficientNet package's banner is kept off stdout where it is loaded: efficientnet_lite)
                self._encoders[name] = get_encoder(name, device=str(self.device), image_size=self.image_size,
                                                   backend=self.backend)
            return self._encoders[name]

    # ------------------------------------------------------------------ steps

    def preprocess(self, text: Any = None, image: ImageInput | None = None) -> Prepared:
        if text is not None and not isinstance(text, str):
            raise InputError(f"text must be a string, not {type(text).__name__}")
        if text is not None and len(text) > MAX_TEXT_CHARS:
            raise InputError(f"text is {len(text)} characters; the limit is {MAX_TEXT_CHARS}")
        normalised = normalize_tweet(text, self.text_config) if text and text.strip() else None
        if normalised is not None and not self.reads("text"):
            normalised = None  # an image-only model ignores text
        pil = open_image(image) if image is not None and self.needs_image else None
        if normalised is None and pil is None:
            usable = " or ".join(m for m, needed in (("text", self.reads("text")), ("image", self.needs_image)) if needed)
            raise InputError(f"nothing to score: give a non-empty {usable}")
        ocr = (self.ocr_reader.read(pil) or None) if self.ocr_reader is not None and pil is not None else None
        return Prepared(normalised, pil if self.reads("image") else None, text, ocr)

    def forward(self, items: Sequence[Prepared]) -> dict[str, np.ndarray]:
        return self._merged(items)

    @torch.inference_mode()
    def _forward(self, items: Sequence[Prepared]) -> dict[str, np.ndarray]:
        out = self.model(self.features(items))
        # a shipped checkpoint carries the temperature fitted on out-of-fold predictions (calibration.py)
        result = {"probs": torch.softmax(out["logits"].float() / self.temperature, -1).cpu().numpy()}
        if "weights" in out:
            result["weights"] = out["weights"].float().cpu().numpy()
        return result

    @torch.inference_mode()
    def features(self, items: Sequence[Prepared]) -> dict[str, torch.Tensor]:
        """The model's input batch for prepared pairs: each encoder's vectors and a presence mask
        per input (an absent side is zeros, masked). Also what `mmsent fit` trains a new head on."""
        n = len(items)
        batch: dict[str, torch.Tensor] = {}
        for modality in self.modalities:
            source = SOURCES.get(modality, modality)
            present = [i for i, it in enumerate(items) if getattr(it, source) is not None]
            # token / region encoders give (positions, dim) per item; an absent one is one zero row
            shape = item_shape(self.encoder(modality)) if present else (self._dim(modality),)
            X = torch.zeros((n, *shape))
            if present:
                X[present] = torch.from_numpy(self.encoder(modality).encode([getattr(items[i], source) for i in present]))
            mask = torch.zeros(n)
            mask[present] = 1.0
            batch[modality], batch[f"{modality}_mask"] = X.to(self.device), mask.to(self.device)
        return batch

    def _dim(self, modality: str) -> int:
        return input_width(self.payload["config"], modality)

    def postprocess(self, outputs: dict[str, np.ndarray], items: Sequence[Prepared]) -> list[dict[str, Any]]:
        results = []
        for i, item in enumerate(items):
            probs = outputs["probs"][i]
            # what the user gave that was used; derived inputs (lexicon scores, text in the image) show in the weights
            used = [m for m in MODALITIES if getattr(item, m) is not None]
            res = {"label": self.id2label[int(probs.argmax())], "score": float(probs.max()),
                   "probabilities": {self.id2label[k]: float(p) for k, p in enumerate(probs)},
                   "modalities": used}
            if "weights" in outputs and len(self.modalities) >= 2:
                order = getattr(self.model, "modalities", MODALITIES)  # the model's order of its weights
                res["modality_weights"] = {m: float(w) for m, w in zip(order, outputs["weights"][i])}
            if item.ocr is not None:
                res["text_in_image"] = item.ocr
            results.append(res)
        return results

    # ------------------------------------------------------------------ public API

    def predict(self, text: str | None = None, image: ImageInput | None = None,
                explain: bool = False) -> dict[str, Any]:
        """Score one pair; either side may be missing. Raises InputError / ImageLoadError on bad input."""
        item = self.preprocess(text, image)
        result = self.postprocess(self.forward([item]), [item])[0]
        if explain:
            from mmsent.serving.explain import explain as run_explain

            result["explanation"] = run_explain(self, item, result["label"])
        return result

    def predict_batch(self, pairs: Iterable[dict[str, Any]], batch_size: int = 32) -> list[dict[str, Any]]:
        """Score many ``{"text": ..., "image": ...}`` pairs in batches. A bad pair gives
        ``{"error": ..., "error_type": ...}`` in its place; the others are still scored.
        The next batch's images are decoded in a worker thread while this batch's forward runs."""
        pairs = list(pairs)
        results: list[dict[str, Any] | None] = [None] * len(pairs)

        def prepare(start: int) -> list[tuple[int, Prepared]]:
            good = []
            for i in range(start, min(start + batch_size, len(pairs))):
                pair = pairs[i]
                try:
                    if not isinstance(pair, dict):
                        raise InputError(f"each pair must be a mapping with text and/or image, not {type(pair).__name__}")
                    good.append((i, self.preprocess(pair.get("text"), pair.get("image"))))
                except (InputError, ImageLoadError, TypeError) as exc:
                    results[i] = {"error": str(exc), "error_type": type(exc).__name__}
            return good

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmsent-decode") as pool:
            upcoming = pool.submit(prepare, 0)
            for start in range(0, len(pairs), batch_size):
                chunk = upcoming.result()
                if start + batch_size < len(pairs):
                    upcoming = pool.submit(prepare, start + batch_size)
                if chunk:
                    items = [it for _, it in chunk]
                    for (i, _), res in zip(chunk, self.postprocess(self.forward(items), items)):
                        results[i] = res
        return results  # type: ignore[return-value]

    def __call__(self, text: str | None = None, image: ImageInput | None = None, **kw) -> dict[str, Any]:
        return self.predict(text=text, image=image, **kw)

    def info(self) -> dict[str, Any]:
        return {"model": self.payload.get("model_name", self.payload["family"]), "family": self.payload["family"],
                "encoders": self.encoder_names, "labels": list(self.id2label.values()),
                "trained_on": self.payload.get("dataset"), "seed": self.payload.get("seed"),
                "device": str(self.device), "path": str(getattr(self, "path", "")),
                "sha256": getattr(self, "sha256", None)}
