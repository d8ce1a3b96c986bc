"""Atomic file writes and checksummed array caches.

Everything the pipeline writes goes through :func:`atomic_path`: the data is written to a
temporary file beside the target and renamed over it, so a crash never leaves a half
written file where a good one was.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# read once, at import: os.umask can only be read by setting it, and setting it while another
# thread (a server's training job) creates a file would give that file the wrong mode
UMASK = _read_umask()


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path; on success it replaces ``target`` atomically."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix or target.suffix,
                               dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600; a report file should read like any other
            os.chmod(tmp_path, 0o666 & ~UMASK)
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def replace_dir(built: str | Path, target: str | Path) -> Path:
    """Move the finished folder ``built`` to ``target`` by renames only: the old folder is moved
    aside first and removed last, so a crash leaves either the old or the new folder in place."""
    built, target = Path(built), Path(target)
    if not built.is_dir():
        raise FileNotFoundError(f"no built folder at {built}; {target} is left as it was")
    target.parent.mkdir(parents=True, exist_ok=True)
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        os.replace(target, old)
    try:
        os.replace(built, target)
    except BaseException:
        if old.exists() and not target.exists():
            os.replace(old, target)  # put the last good folder back
        raise
    shutil.rmtree(old, ignore_errors=True)
    return target


def write_text(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def marker_block(text: str, name: str) -> tuple[int, int]:
    """Where the generated block ``name`` sits in ``text``: between ``<!-- name:start -->`` and
    ``<!-- name:end -->`` (the span of what lies between them)."""
    start, end = f"<!-- {name}:start -->\n", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1:
        raise ValueError(f"expected one '<!-- {name}:start/end -->' pair of markers")
    return text.index(start) + len(start), text.index(end)


def replace_block(target: str | Path, name: str, body: str) -> Path:
    """Rewrite the generated block ``name`` of a hand-written document (README, docs) with ``body``."""
    text = Path(target).read_text(encoding="utf-8")
    a, b = marker_block(text, name)
    return write_text(target, text[:a] + body.rstrip("\n") + "\n" + text[b:])


def read_block(target: str | Path, name: str) -> str:
    text = Path(target).read_text(encoding="utf-8")
    a, b = marker_block(text, name)
    return text[a:b]


def write_json(target: str | Path, obj: Any) -> Path:
    return write_text(target, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


class CacheCorruptError(ValueError):
    """A cache file whose content does not match its stored checksum."""


# wall-clock fields of a stage's summary: they differ on every run, whatever the data
TIMED = frozenset({"seconds", "seconds_per_image"})


def _split_timed(obj: dict) -> tuple[dict, dict]:
    kept, timed = {}, {}
    for key, value in obj.items():
        if key in TIMED:
            timed[key] = value
        elif isinstance(value, dict):
            kept[key], inner = _split_timed(value)
            if inner:
                timed[key] = inner
        else:
            kept[key] = value
    return kept, timed


def _merge(into: dict, extra: dict) -> dict:
    out = dict(into)
    for key, value in extra.items():
        out[key] = _merge(out.get(key) or {}, value) if isinstance(value, dict) else value
    return out


def write_summary(target: str | Path, summary: dict, timings: str | Path) -> Path:
    """Write a cache stage's summary without its wall-clock fields, which go to ``timings``: a re-run
    that writes the same data leaves the summary, part of a folder later stages depend on, unchanged."""
    kept, timed = _split_timed(summary)
    write_json(timings, timed)
    return write_json(target, kept)


def read_summary(path: str | Path, timings: str | Path) -> dict:
    """A summary written by :func:`write_summary` with its timings merged back (none if not kept)."""
    summary = read_json(path)
    return _merge(summary, read_json(timings)) if Path(timings).is_file() else summary


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for key in sorted(arrays):
        arr = np.ascontiguousarray(arrays[key])
        h.update(key.encode())
        h.update(str(arr.dtype).encode() + str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


def save_arrays(target: str | Path, meta: dict[str, Any] | None = None, **arrays: np.ndarray) -> Path:
    """Save arrays to ``.npz`` with a sha256 of their content and ``meta`` stored inside."""
    # object arrays (e.g. ids from pandas) would need pickle to load: store them as str
    arrays = {k: (np.asarray(v, dtype=str) if np.asarray(v).dtype == object else np.asarray(v))
              for k, v in arrays.items()}
    meta = dict(meta or {}, sha256=_digest(arrays))
    with atomic_path(target, suffix=".npz") as tmp:
        np.savez(tmp, __meta__=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return Path(target)


def load_arrays(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Load what :func:`save_arrays` wrote; raises :class:`CacheCorruptError` on a mismatch."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files if k != "__meta__"}
            meta = json.loads(str(npz["__meta__"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise CacheCorruptError(f"{path} is not a readable cache file ({exc}); rerun `dvc repro`") from exc
    if _digest(arrays) != meta.get("sha256"):
        raise CacheCorruptError(f"{path} does not match its checksum; rerun `dvc repro` to rebuild it")
    return arrays, meta
