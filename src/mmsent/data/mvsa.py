"""MVSA records, readers, the cleaning rule and the standard splits.

MVSA-Single: 4,869 (text, image) pairs, one annotator, separate text and image labels.
MVSA-Multiple: 19,600 texts with three annotators each; **no images exist** in any public
copy, so it is text-only here. Both are read from ``params.data.root`` and never copied.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from mmsent.config import Params, TextConfig
from mmsent.data.labels import CHEEMA_ID2LABEL, CLMLF_ID2LABEL, LABEL2ID, LABELS, merge_labels
from mmsent.data.text import decode_bytes, normalize_tweet
from mmsent.paths import PREPARED_DIR

DATASETS = ("single", "multiple")
PARTS = ("train", "dev", "test")


class DataRootError(FileNotFoundError):
    """The MVSA folder is missing or incomplete."""


@dataclass(frozen=True)
class Pair:
    """One MVSA item. ``label`` is the merged label, None when the cleaning rule drops it."""

    id: str
    dataset: str
    text_raw: str
    text: str
    encoding: str
    image: str | None  # path relative to the data root; None for MVSA-Multiple
    text_label: str
    image_label: str
    label: str | None

    @property
    def label_id(self) -> int | None:
        return None if self.label is None else LABEL2ID[self.label]


def check_root(root: Path, dataset: str = "single") -> Path:
    root = Path(root)
    needed = root / dataset / "labelResultAll.txt"
    if not needed.is_file():
        raise DataRootError(
            f"MVSA not found: {needed} does not exist. Point params.yaml data.root or the "
            f"MMSENT_DATA_ROOT environment variable at the MVSA folder."
        )
    return root


def _label_rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        rows = [line.rstrip("\r\n").split("\t") for line in fh]
    return [r for r in rows[1:] if r and r[0].strip()]


def _votes(cell: str) -> tuple[str, str]:
    text_label, image_label = (s.strip() for s in cell.split(","))
    return text_label, image_label


def read_single(root: Path, text_cfg: TextConfig | None = None) -> list[Pair]:
    """All 4,869 MVSA-Single pairs (conflicting ones with ``label=None``)."""
    root = check_root(root, "single")
    pairs = []
    for row in _label_rows(root / "single" / "labelResultAll.txt"):
        pair_id = row[0].strip()
        text_label, image_label = _votes(row[1])
        decoded = decode_bytes((root / "single" / "texts" / f"{pair_id}.txt").read_bytes())
        raw = decoded.text.strip()
        pairs.append(Pair(
            id=pair_id, dataset="single", text_raw=raw, text=normalize_tweet(raw, text_cfg),
            encoding=decoded.encoding, image=f"single/images/{pair_id}.jpg",
            text_label=text_label, image_label=image_label,
            label=merge_labels(text_label, image_label),
        ))
    return pairs


def count_label_rows(root: Path, dataset: str) -> int:
    """Rows in the dataset's original label file (before any vote or cleaning)."""
    return len(_label_rows(Path(root) / dataset / "labelResultAll.txt"))


def majority(votes: list[str]) -> str | None:
    """The label chosen by at least 2 of the annotators, else None."""
    label, count = Counter(votes).most_common(1)[0]
    return label if count >= 2 else None


def read_multiple(root: Path, text_cfg: TextConfig | None = None) -> list[Pair]:
    """MVSA-Multiple, text only: per-modality majority of 3 annotators, then the cleaning rule.

    Rows without a text or an image majority are left out. Texts come from the CLMLF json
    files, which keep URLs and non-ASCII characters (``all.csv`` strips both); the few
    labelled pairs absent from every public text source get an empty text and
    ``encoding="missing"`` (they are in no split).
    """
    root = check_root(root, "multiple")
    texts: dict[str, str] = {}
    for part in PARTS:
        for item in json.loads((root / "splits/clmlf/multiple" / f"{part}.json").read_text("utf-8")):
            texts[str(item["id"])] = item["text"]
    pairs = []
    for row in _label_rows(root / "multiple" / "labelResultAll.txt"):
        pair_id = row[0].strip()
        votes = [_votes(cell) for cell in row[1:4]]
        text_label = majority([v[0] for v in votes])
        image_label = majority([v[1] for v in votes])
        if text_label is None or image_label is None:
            continue
        raw = texts.get(pair_id, "").strip()
        pairs.append(Pair(
            id=pair_id, dataset="multiple", text_raw=raw, text=normalize_tweet(raw, text_cfg),
            encoding="utf-8" if pair_id in texts else "missing", image=None, text_label=text_label, image_label=image_label,
            label=merge_labels(text_label, image_label),
        ))
    return pairs


def read_dataset(root: Path, dataset: str, text_cfg: TextConfig | None = None) -> list[Pair]:
    if dataset == "single":
        return read_single(root, text_cfg)
    if dataset == "multiple":
        return read_multiple(root, text_cfg)
    raise ValueError(f"unknown dataset {dataset!r}; expected one of {DATASETS}")


def clmlf_split(root: Path, dataset: str) -> dict[str, str]:
    """id → part for the CLMLF 8:1:1 split (its label ids: 0 positive, 1 neutral, 2 negative)."""
    out: dict[str, str] = {}
    for part in PARTS:
        path = Path(root) / "splits/clmlf" / dataset / f"{part}.json"
        for item in json.loads(path.read_text(encoding="utf-8")):
            out[str(item["id"])] = part
    return out


def clmlf_labels(root: Path, dataset: str) -> dict[str, str]:
    """id → label name as stored in the CLMLF files (used to verify the cleaning rule)."""
    out = {}
    for part in PARTS:
        path = Path(root) / "splits/clmlf" / dataset / f"{part}.json"
        for item in json.loads(path.read_text(encoding="utf-8")):
            out[str(item["id"])] = CLMLF_ID2LABEL[int(item["emotion_label"])]
    return out


def cheema_split(root: Path, dataset: str, fold: int) -> dict[str, str]:
    """id → part for Cheema et al. fold ``fold`` (1..10).

    Their split files hold 0-based row indices into ``valid_pairlist.txt`` (whose label
    ids are 0 neutral, 1 positive, 2 negative), not MVSA IDs; we translate to IDs.
    """
    base = Path(root) / "splits/cheema" / dataset
    with (base / "valid_pairlist.txt").open(encoding="utf-8") as fh:
        ids = [row[0].strip() for row in csv.reader(fh) if row]
    out: dict[str, str] = {}
    for part, fname in (("train", "train"), ("dev", "val"), ("test", "test")):
        for line in (base / "splits" / f"{fname}_{fold}.txt").read_text().split():
            out[ids[int(line)]] = part
    return out


def cheema_labels(root: Path, dataset: str) -> dict[str, str]:
    base = Path(root) / "splits/cheema" / dataset
    with (base / "valid_pairlist.txt").open(encoding="utf-8") as fh:
        return {row[0].strip(): CHEEMA_ID2LABEL[int(row[1])] for row in csv.reader(fh) if row}


def agreement_rows(root: Path) -> list[tuple[str, dict]]:
    """(part, record) for every line of the label-agreement split files (QMF / PDF: the 2,592
    MVSA-Single pairs whose text and image labels agree, 1,555 / 518 / 519)."""
    out = []
    for part in PARTS:
        for line in (Path(root) / "splits/agreement/single" / f"{part}.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                out.append((part, json.loads(line)))
    return out


def agreement_split(root: Path, dataset: str = "single") -> dict[str, str]:
    """id → part for the label-agreement protocol. Only MVSA-Single has it."""
    if dataset != "single":
        raise ValueError("the label-agreement split exists for MVSA-Single only")
    return {str(item["id"]): part for part, item in agreement_rows(root)}


def agreement_labels(root: Path) -> dict[str, str]:
    """id → label name as stored in the agreement files (used to verify the cleaning rule)."""
    return {str(item["id"]): str(item["label"]) for _, item in agreement_rows(root)}


def split_assignment(root: Path, dataset: str, scheme: str = "clmlf", fold: int = 1) -> dict[str, str]:
    if scheme == "clmlf":
        return clmlf_split(root, dataset)
    if scheme == "cheema":
        return cheema_split(root, dataset, fold)
    if scheme == "agreement":
        return agreement_split(root, dataset)
    raise ValueError(f"unknown split scheme {scheme!r}")


def pairs_to_frame(pairs: list[Pair], split: dict[str, str]) -> pd.DataFrame:
    """Table of pairs with ``label_id`` and ``split`` (``dropped`` by the cleaning rule,
    ``unassigned`` if clean but absent from the split files)."""
    df = pd.DataFrame([asdict(p) for p in pairs])
    df["label_id"] = df["label"].map(LABEL2ID).astype("Int64")
    df["split"] = [
        "dropped" if pd.isna(lab) else split.get(pid, "unassigned")
        for pid, lab in zip(df["id"], df["label"])
    ]
    return df


def class_counts(df: pd.DataFrame, column: str = "label") -> dict[str, int]:
    counts = df[column].value_counts()
    return {name: int(counts.get(name, 0)) for name in LABELS}


def load_prepared(path: Path, part: str | None = None, dedup: bool = False) -> pd.DataFrame:
    """Read a prepared table; ``part`` selects train/dev/test; ``dedup`` drops leaked pairs."""
    df = pd.read_parquet(path)
    if part is not None:
        if part not in PARTS:
            raise ValueError(f"part must be one of {PARTS}, got {part!r}")
        df = df[df["split"] == part]
        if dedup and "leak" in df.columns:
            df = df[~df["leak"]]
    return df.reset_index(drop=True)


def load_parts(params: Params, dataset: str) -> dict[str, pd.DataFrame]:
    """Train/dev/test tables; ``data.dedup`` drops leaked pairs from dev and test."""
    path = params.path(PREPARED_DIR) / f"{dataset}.parquet"
    parts = {part: load_prepared(path, part, dedup=params.data.dedup) for part in PARTS}
    empty = [part for part, df in parts.items() if df.empty]
    if empty:
        raise ValueError(f"MVSA-{dataset.title()} has no {'/'.join(empty)} pairs"
                         f"{' after de-duplication' if params.data.dedup else ''}; check data.split / data.fold")
    return parts
