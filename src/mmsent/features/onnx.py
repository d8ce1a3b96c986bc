"""ONNX Runtime for the frozen encoders: exported once from the package weights, cached, checked.

On 2 CPU cores ONNX Runtime runs EfficientNet-Lite0 several times faster than torch eager, and
MiniLM at 1.5x on an AMD EPYC but 0.85-0.9x on the Intel Xeons here (``reports/benchmarks.md``),
with features equal to ~1e-5. An encoder built
with ``backend="onnx"`` (``features.backend`` for the features stage; a checkpoint remembers the
backend its features came from, so the ``Pipeline`` uses the same one) exports its torch forward
on first use (``torch.onnx.export``, opset 17, a dynamic batch axis) into a cache keyed by the
hash of the weights and of what is exported, checks the file against its recorded sha256 on every
load (a corrupt or partial file is exported again), and writes it atomically. The torch path
stays for GPUs and for anything that fine-tunes.

Cache folder: ``$MMSENT_ONNX_CACHE``, else ``~/.cache/mmsent/onnx``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from mmsent.io import atomic_path

EXPORT_VERSION = 1  # bump when what is exported changes: old cache files are then never read


def cache_dir() -> Path:
    return Path(os.environ.get("MMSENT_ONNX_CACHE") or Path.home() / ".cache" / "mmsent" / "onnx")


def weights_digest(module: nn.Module, *extra: object) -> str:
    """sha256 of every tensor of ``module`` (names, shapes, bytes) and of ``extra`` (what is exported)."""
    h = hashlib.sha256(json.dumps([EXPORT_VERSION, torch.__version__, *map(str, extra)]).encode())
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _file_sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def exported(module: nn.Module, example: tuple[torch.Tensor, ...], name: str, input_names: Sequence[str],
             dynamic: dict[str, dict[int, str]], *key: object) -> Path:
    """The cached ONNX file of ``module`` (exported now if absent, unchecked or corrupt)."""
    digest = weights_digest(module, name, *key, [tuple(t.shape) for t in example])
    path = cache_dir() / f"{name}-{digest[:20]}.onnx"
    if _checked(path):
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.eval()
    with atomic_path(path, suffix=".onnx") as tmp, warnings.catch_warnings(), torch.inference_mode(False), \
            torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python-side constants
        torch.onnx.export(module, example, str(tmp), dynamo=False, opset_version=17,
                          input_names=list(input_names), output_names=["features"], dynamic_axes=dynamic)
    _record(path, weights=digest, name=name)
    return path


def _checked(path: Path) -> bool:
    sidecar = path.with_suffix(".json")
    try:
        return path.is_file() and json.loads(sidecar.read_text(encoding="utf-8")).get("sha256") == _file_sha(path)
    except (OSError, ValueError):
        return False  # an unreadable record: build it again


def _record(path: Path, **meta: object) -> None:
    with atomic_path(path.with_suffix(".json"), suffix=".json") as tmp:
        Path(tmp).write_text(json.dumps({"sha256": _file_sha(path), **meta}), encoding="utf-8")


def quantized(path: Path) -> Path:
    """``path``'s model with its MatMul weights dynamically quantised to int8 (ONNX Runtime's
    ``quantize_dynamic``; activations are quantised per batch), cached and checked like the export
    it comes from. It speeds up the transformer text encoders; convolutions stay float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out = path.with_name(path.stem + "-int8.onnx")
    if _checked(out):
        return out
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # its advice to pre-process the model, logged to the root logger on every call
    try:
        with atomic_path(out, suffix=".onnx") as tmp:
            # per output channel, MatMul weights only (the transformers' linear layers): per-tensor scales or
            # quantised attention inputs moved MiniLM's sentence vectors to cosine 0.84-0.96 of float's
            quantize_dynamic(str(path), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                             op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)
    _record(out, source=path.name, quantization="dynamic int8, per-channel MatMul weights")
    return out


def session(path: Path):
    """An ONNX Runtime CPU session with as many threads as torch has here (1 in a pool worker)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, torch.get_num_threads())
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    # no busy-waiting between runs: its spinning threads would take the cores torch's text encoder needs next
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class OnnxImageForward:
    """``forward(x)`` of an image encoder, run by ONNX Runtime: (B, 3, S, S) float → features."""

    def __init__(self, module: nn.Module, image_size: int, name: str, *key: object, int8: bool = False) -> None:
        example = (torch.zeros(2, 3, image_size, image_size),)
        self.path = exported(module, example, name, ["pixels"], {"pixels": {0: "batch"}, "features": {0: "batch"}},
                             image_size, *key)
        if int8:
            self.path = quantized(self.path)
        self.session = session(self.path)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = self.session.run(None, {"pixels": x.detach().cpu().float().contiguous().numpy()})[0]
        return torch.from_numpy(out)


class MeanPooledTransformer(nn.Module):
    """A sentence-transformers model's transformer, mean-pooled over real tokens, optionally
    L2-normalised: what all-MiniLM-L6-v2's three modules compute, as one exportable forward."""

    def __init__(self, transformer: nn.Module, normalize: bool) -> None:
        super().__init__()
        self.transformer, self.normalize = transformer, normalize

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled


class OnnxSentenceEncoder:
    """Sentence vectors of a sentence-transformers model (Transformer → mean Pooling [→ Normalize])
    by ONNX Runtime; texts are batched by length, so a batch pads to similar lengths."""

    def __init__(self, st_model, name: str, int8: bool = False) -> None:
        kinds = [type(m).__name__ for m in st_model]
        if kinds[:2] != ["Transformer", "Pooling"] or set(kinds[2:]) - {"Normalize"} or \
                getattr(st_model[1], "pooling_mode_mean_tokens", True) is not True:
            raise ValueError(f"{name}: only Transformer → mean Pooling [→ Normalize] models export, not {kinds}")
        self.tokenizer = st_model.tokenizer
        self.max_length = int(st_model.max_seq_length)
        module = MeanPooledTransformer(st_model[0].auto_model, "Normalize" in kinds)
        example = tuple(self._tokens(["an example tweet", "and a longer example tweet to export with"]).values())
        self.path = exported(module, example, name, ["input_ids", "attention_mask"],
                             {"input_ids": {0: "batch", 1: "tokens"}, "attention_mask": {0: "batch", 1: "tokens"},
                              "features": {0: "batch"}}, self.max_length)
        if int8:
            self.path = quantized(self.path)
        self.session = session(self.path)

    def _tokens(self, texts: list[str]) -> dict[str, torch.Tensor]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        texts = list(texts)
        order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths pad less
        parts = []
        for start in range(0, len(texts), batch_size):
            rows = order[start:start + batch_size]
            feed = {k: v.numpy().astype(np.int64) for k, v in self._tokens([texts[i] for i in rows]).items()}
            parts.append((rows, self.session.run(None, feed)[0]))
        out = np.zeros((len(texts), parts[0][1].shape[1] if parts else 0), np.float32)
        for rows, vectors in parts:
            out[rows] = vectors
        return out
