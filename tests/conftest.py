"""Shared fixtures: a tiny MVSA-shaped folder made on the fly, and the real MVSA if present."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

import yaml
from PIL import Image

from mmsent.config import load_params

REPO = Path(__file__).resolve().parent.parent

# Seeds, studies and OCR shares run inline in tests (monkeypatches reach no spawned worker, and
# tiny jobs would pay seconds to start one); tests/test_parallel.py sets it back where it matters.
os.environ.setdefault("MMSENT_WORKERS", "1")


def _write_image(path: Path, seed: int, size=(40, 30)) -> None:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, "JPEG")


# id: (text bytes, text label, image label, clmlf part or None)
TINY_SINGLE = {
    "1": (b"What a lovely day #HappyDays :)", "positive", "positive", "train"),
    "2": (b"RT @bob: so saaaad today", "negative", "neutral", "train"),
    "3": ("\u6211\u7231\u4f60 \u2026".encode("gbk"), "neutral", "positive", "train"),  # GBK bytes
    "4": (b"Caf\xe9 \x80 closed", "negative", "negative", "dev"),  # only cp1252 decodes
    "5": (b"good vs bad", "positive", "negative", None),  # conflict: dropped
    "6": (b"neutral news http://t.co/x", "neutral", "neutral", "test"),
    "7": (b"What a lovely day #HappyDays :)", "positive", "positive", "test"),  # text dup of 1
}


def make_tiny_mvsa(root: Path) -> Path:
    """A miniature MVSA folder with the real layout and the quirks that matter."""
    single = root / "single"
    (single / "texts").mkdir(parents=True)
    (single / "images").mkdir()
    rows = ["ID\ttext,image"]
    for pid, (raw, tl, il, _) in TINY_SINGLE.items():
        (single / "texts" / f"{pid}.txt").write_bytes(raw + b" \n")
        _write_image(single / "images" / f"{pid}.jpg", seed=int(pid))
        rows.append(f"{pid}\t{tl},{il}")
    # id 6 reuses the bytes of image 2 (a byte-identical duplicate across train/test)
    (single / "images" / "6.jpg").write_bytes((single / "images" / "2.jpg").read_bytes())
    (single / "labelResultAll.txt").write_bytes("\r\n".join(rows).encode() + b"\r\n")
    (root / "SHA256SUMS").write_text("tiny\n")

    clmlf_ids = {"positive": 0, "neutral": 1, "negative": 2}
    merged = {"1": "positive", "2": "negative", "3": "positive", "4": "negative",
              "6": "neutral", "7": "positive"}
    for part in ("train", "dev", "test"):
        d = root / "splits/clmlf/single"
        d.mkdir(parents=True, exist_ok=True)
        items = [{"id": pid, "text": raw.decode("utf-8", "ignore"), "emotion_label": clmlf_ids[merged[pid]]}
                 for pid, (raw, *_, p) in TINY_SINGLE.items() if p == part]
        (d / f"{part}.json").write_text(json.dumps(items))

    # MVSA-Multiple: 3 annotators; row 12 has no image majority, 13 is a conflict, 14 has no text
    multiple = root / "multiple"
    multiple.mkdir()
    mrows = ["ID\ttext,image\ttext,image\ttext,image",
             "10\tpositive,positive\tneutral,neutral\tpositive,positive",
             "11\tnegative,neutral\tnegative,negative\tneutral,neutral",
             "12\tpositive,positive\tpositive,neutral\tneutral,negative",
             "13\tpositive,negative\tpositive,negative\tneutral,neutral",
             "14\tneutral,neutral\tneutral,neutral\tneutral,neutral"]
    (multiple / "labelResultAll.txt").write_bytes("\r\n".join(mrows).encode() + b"\r\n")
    md = root / "splits/clmlf/multiple"
    md.mkdir(parents=True)
    (md / "train.json").write_text(json.dumps([{"id": "10", "text": "yay", "emotion_label": 0}]))
    (md / "dev.json").write_text(json.dumps([{"id": "11", "text": "ugh", "emotion_label": 2}]))
    (md / "test.json").write_text(json.dumps([{"id": "13", "text": "mixed", "emotion_label": 1}]))

    # CLMLF's back-translations: one per id, test tweets included (the features stage must skip those)
    ad = root / "augment/clmlf_back_translation"
    ad.mkdir(parents=True)
    (ad / "single.json").write_text(json.dumps([{"id": pid, "text_translation": f"back translated tweet {pid} :)"}
                                                for pid in TINY_SINGLE]))

    # Cheema: row indices into valid_pairlist (0 neutral, 1 positive, 2 negative)
    cd = root / "splits/cheema/single/splits"
    cd.mkdir(parents=True)
    (root / "splits/cheema/single/valid_pairlist.txt").write_text(
        "1,1,1,1\n2,2,2,0\n3,1,0,1\n4,2,2,2\n6,0,0,0\n7,1,1,1\n")
    for k in range(1, 11):
        (cd / f"train_{k}.txt").write_text("0\n1\n2\n")
        (cd / f"val_{k}.txt").write_text("3\n")
        (cd / f"test_{k}.txt").write_text("4\n5\n")
    return root


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    return make_tiny_mvsa(tmp_path / "mvsa")


def write_params(project: Path, data_root: Path, **sections) -> Path:
    """A params.yaml in ``project`` pointing at ``data_root`` (other sections merged in)."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    raw["data"]["root"] = str(data_root)
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    project.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / "profiles", project / "profiles", dirs_exist_ok=True)  # the profiles beside it
    path = project / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def tiny_params(tmp_path: Path, tiny_root: Path):
    return load_params(write_params(tmp_path / "project", tiny_root))


@pytest.fixture(scope="session")
def real_root() -> Path:
    root = load_params(REPO / "params.yaml").data.root
    if not (root / "single" / "labelResultAll.txt").is_file():
        pytest.skip(f"real MVSA not found at {root}")
    return root
