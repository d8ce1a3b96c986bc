"""Text inside the image (memes, screenshots, captions): RapidOCR once per image, cached.

RapidOCR (``rapidocr-onnxruntime``) ships its detection, angle and recognition models inside
the wheel, so nothing is downloaded. The ``ocr`` stage reads every clean MVSA-Single image once
and writes ``data/ocr/single.parquet`` (``id``, ``ocr_text``, ``boxes``) and
``data/ocr/summary.json`` (how often text was found, the settings; its time per image goes to
``metrics/timings/ocr.json``, so that an identical re-run leaves ``data/ocr`` unchanged). The
``features`` stage encodes the found text (``features.ocr_encoders``) as a further model input,
masked where no text was found; :class:`mmsent.serving.pipeline.Pipeline` runs the same reader at
prediction time for a model trained with it.

Speed: the detector scales each image so that its side limit is met. ``det_limit_type: max``
never upscales MVSA's 256-px images (fast, finds the larger text); ``min`` with a larger
``det_limit_side_len`` upscales them and finds more, several times slower (the ``full`` profile).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd

from mmsent.config import Params
from mmsent.data.images import ImageInput, ImageLoadError, open_image
from mmsent.data.prepare import clean_pairs
from mmsent.io import atomic_path, read_json, read_summary, write_summary
from mmsent.parallel import run_jobs, share_bounds
from mmsent.paths import OCR_DIR, TIMINGS_DIR
from mmsent.progress import bar
from mmsent.sections import OcrConfig  # noqa: F401  (re-exported)





class OcrReader:
    """``read(image) -> str``: the words RapidOCR finds, in its reading order ('' for none)."""

    def __init__(self, config: OcrConfig | None = None) -> None:
        self.config = config or OcrConfig()
        self._engine = None
        self._lock = threading.Lock()  # one onnxruntime session pair, used by one caller at a time

    def engine(self):
        if self._engine is None:
            from rapidocr_onnxruntime import RapidOCR

            # one onnxruntime thread: faster than its default on small images (0.047 vs 0.060 s
            # an image, 2 cores), and the stage runs one reader per core
            self._engine = RapidOCR(det_limit_side_len=self.config.det_limit_side_len,
                                    det_limit_type=self.config.det_limit_type, print_verbose=False,
                                    intra_op_num_threads=1, inter_op_num_threads=1)
        return self._engine

    def read_boxes(self, image: ImageInput) -> list[tuple[str, float]]:
        img = open_image(image)  # the project's safe opener: typed errors for bad files, RGB
        with self._lock:
            result, _ = self.engine()(img)
        return [(str(text), float(score)) for _box, text, score in (result or [])
                if float(score) >= self.config.min_score and str(text).strip()]

    def join(self, boxes: list[tuple[str, float]]) -> str:
        return " ".join(text for text, _ in boxes)[: self.config.max_chars].strip()

    def read(self, image: ImageInput) -> str:
        return self.join(self.read_boxes(image))


def ocr_path(params: Params, dataset: str = "single"):
    return params.path(OCR_DIR) / f"{dataset}.parquet"


def load_ocr(params: Params, dataset: str = "single") -> pd.DataFrame:
    path = ocr_path(params, dataset)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; run `dvc repro ocr` first")
    return pd.read_parquet(path)


def used_settings(params: Params) -> dict[str, Any]:
    """The settings the cached OCR text was read with (``summary.json``); the params' if none is cached."""
    summary = params.path(OCR_DIR) / "summary.json"
    if summary.is_file():
        return dict(read_json(summary)["settings"])
    return dataclasses.asdict(params.ocr)


def check_found(table: pd.DataFrame, min_images: int = 50) -> None:
    """A set of tweet images this large always holds some text (memes, screenshots); none at all
    means a broken reader, not a fact of the data, so it is never cached silently."""
    if len(table) >= min_images and not (table["ocr_text"].str.len() > 0).any():
        raise RuntimeError(f"OCR found no text in any of {len(table)} images; check rapidocr-onnxruntime")


def read_chunk(config: OcrConfig, root: Path, ids: list[str], images: list[str],
               progress: bool = False) -> list[dict[str, Any]]:
    """OCR rows for one share of the images (unreadable images: no text, ``unreadable`` set)."""
    reader, rows = OcrReader(config), []
    for pid, rel in bar(zip(ids, images), progress, total=len(ids), desc="ocr"):
        try:
            boxes, unreadable = reader.read_boxes(root / rel), False
        except ImageLoadError:
            boxes, unreadable = [], True
        rows.append({"id": str(pid), "ocr_text": reader.join(boxes), "boxes": len(boxes), "unreadable": unreadable})
    return rows


def run(params: Params, dataset: str = "single", progress: bool = True, workers: int | str = "auto") -> dict[str, Any]:
    """The stage: OCR every clean pair's image of ``dataset`` once, one reader per core."""
    config = params.ocr
    df = clean_pairs(params, dataset)
    shares = [df.iloc[a:b] for a, b in share_bounds(len(df), workers)]
    n = len(shares)
    start = time.perf_counter()
    chunks = run_jobs(read_chunk, [(config, params.data.root, list(s["id"].astype(str)), list(s["image"]), progress and i == 0)
                                   for i, s in enumerate(shares)], n)
    rows = [r for chunk in chunks for r in chunk]
    unreadable = sum(r.pop("unreadable") for r in rows)
    seconds = time.perf_counter() - start
    table = pd.DataFrame(rows, columns=["id", "ocr_text", "boxes"])
    with atomic_path(ocr_path(params, dataset)) as tmp:
        table.to_parquet(tmp, index=False)
    check_found(table)
    has_text = table["ocr_text"].str.len() > 0
    summary = {"dataset": dataset, "images": len(table), "with_text": int(has_text.sum()),
               "fraction_with_text": float(has_text.mean()) if len(table) else 0.0,
               "mean_chars_when_found": float(table.loc[has_text, "ocr_text"].str.len().mean()) if has_text.any() else 0.0,
               "unreadable_images": unreadable, "seconds": seconds,
               "seconds_per_image": seconds / max(len(table), 1), "workers": n, "settings": dataclasses.asdict(config)}
    write_summary(params.path(OCR_DIR) / "summary.json", summary, params.path(TIMINGS_DIR) / "ocr.json")
    return summary


def read_ocr_summary(params: Params) -> dict:
    """What the ocr stage wrote (how often text was found, the settings, time per image); {} if none."""
    path = params.path(OCR_DIR) / "summary.json"
    return read_summary(path, params.path(TIMINGS_DIR) / "ocr.json") if path.is_file() else {}
