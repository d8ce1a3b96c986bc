"""Leakage audit: the same image or tweet text on both sides of a split.

Three kinds of duplicate are looked for: byte-identical image files (sha256),
near-identical images (perceptual hash within a Hamming distance), and identical
normalised texts (case-folded). A dev/test pair *leaks* when any of its duplicates
is in train; the de-duplicated evaluation drops those pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import imagehash
import numpy as np
import pandas as pd

from mmsent.data.images import ImageLoadError, open_image

KINDS = ("image_bytes", "image_phash", "text")


@dataclass(frozen=True)
class ImageFingerprint:
    status: str  # "ok" or an ImageLoadError reason
    sha256: str
    phash: str  # 16 hex digits, "" when unreadable
    width: int
    height: int
    error: str = ""


def fingerprint_image(path: Path, max_pixels: int) -> ImageFingerprint:
    """sha256 of the bytes, pHash and size of one image file; never raises on a bad image."""
    path = Path(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    try:
        img = open_image(path, max_pixels=max_pixels)
    except ImageLoadError as exc:
        return ImageFingerprint(exc.reason, sha, "", 0, 0, str(exc))
    return ImageFingerprint("ok", sha, str(imagehash.phash(img)), img.width, img.height)


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)

    def groups(self) -> list[list[int]]:
        by_root: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            by_root.setdefault(self.find(i), []).append(i)
        return [g for g in by_root.values() if len(g) > 1]


def exact_groups(keys: list[str]) -> list[list[int]]:
    """Index groups (size > 1) of equal, non-empty keys."""
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        if key:
            by_key.setdefault(key, []).append(i)
    return [g for g in by_key.values() if len(g) > 1]


def phash_groups(hashes: list[str], max_distance: int, chunk: int = 512) -> list[list[int]]:
    """Connected groups of images whose 64-bit pHashes differ in <= ``max_distance`` bits."""
    valid = [i for i, h in enumerate(hashes) if h]
    values = np.array([int(hashes[i], 16) for i in valid], dtype=np.uint64)
    uf = _UnionFind(len(hashes))
    for start in range(0, len(values), chunk):
        block = values[start:start + chunk, None] ^ values[None, :]
        dist = np.bitwise_count(block)
        for a, b in zip(*np.nonzero(dist <= max_distance)):
            i, j = valid[start + a], valid[b]
            if i < j:
                uf.union(i, j)
    return uf.groups()


def text_key(text: str) -> str:
    return " ".join(text.casefold().split())


def audit(df: pd.DataFrame, max_distance: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Audit the clean pairs of ``df`` (columns id, split, text, and for images sha256/phash).

    Returns ``(summary, members)``: per kind the number of duplicate groups, groups that
    span train and dev/test, and dev/test pairs with a duplicate in train; and one row per
    pair in a duplicate group (kind, group, id, split).
    """
    df = df[df["split"].isin(["train", "dev", "test"])].reset_index(drop=True)
    finders = {"text": lambda: exact_groups([text_key(t) for t in df["text"]])}
    if "sha256" in df.columns:
        finders["image_bytes"] = lambda: exact_groups(list(df["sha256"]))
        finders["image_phash"] = lambda: phash_groups(list(df["phash"]), max_distance)
    summary_rows, member_rows = [], []
    for kind in KINDS:
        if kind not in finders:
            continue
        groups = finders[kind]()
        spanning, leaked = 0, set()
        for g, members in enumerate(groups):
            splits = set(df.loc[members, "split"])
            if "train" in splits and splits - {"train"}:
                spanning += 1
                leaked.update(df.loc[m, "id"] for m in members if df.loc[m, "split"] != "train")
            member_rows += [{"kind": kind, "group": g, "id": df.loc[m, "id"],
                             "split": df.loc[m, "split"]} for m in members]
        summary_rows.append({
            "kind": kind, "groups": len(groups), "pairs_in_groups": sum(map(len, groups)),
            "groups_across_train_and_eval": spanning, "eval_pairs_with_train_duplicate": len(leaked),
        })
    members = pd.DataFrame(member_rows, columns=["kind", "group", "id", "split"])
    return pd.DataFrame(summary_rows), members


def leaked_ids(df: pd.DataFrame, members: pd.DataFrame) -> set[str]:
    """Dev/test ids that share any duplicate group with a train pair."""
    out: set[str] = set()
    for (_, _), grp in members.groupby(["kind", "group"]):
        if "train" in set(grp["split"]):
            out.update(grp.loc[grp["split"] != "train", "id"])
    return out
