"""Reproducibility check: run the pipeline twice from clean and compare every metric file.

``mmsent check-reproducible --out runs/repro`` runs every stage (``mmsent run-all``) into
``runs/repro/a`` and ``runs/repro/b``, each from an empty folder, then compares every file
under ``metrics/`` of the two runs (JSON values, CSV cells), leaving out fields that measure
time rather than results. On CPU the two runs must be identical; the comparison is exact
unless a tolerance is given (GPU kernels are not bit-deterministic).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mmsent.io import write_text

# wall-clock fields: they differ between any two runs and say nothing about the results
TIMING_KEYS = frozenset({"train_seconds_per_seed", "seconds", "epoch_seconds", "encode_seconds"})


@dataclass(frozen=True)
class Difference:
    file: str
    where: str
    a: Any
    b: Any

    def __str__(self) -> str:
        return f"{self.file} {self.where}: {self.a!r} != {self.b!r}"


def _same(a: Any, b: Any, tol: float) -> bool:
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) or not isinstance(b, (int, float)):
        return a == b
    if math.isnan(a) and math.isnan(b):
        return True
    return a == b if tol == 0 else math.isclose(a, b, rel_tol=0, abs_tol=tol)


def _walk(a: Any, b: Any, where: str, out: list[tuple[str, Any, Any]], tol: float) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key in TIMING_KEYS:
                continue
            if key not in a or key not in b:
                out.append((f"{where}.{key}", a.get(key, "<absent>"), b.get(key, "<absent>")))
            else:
                _walk(a[key], b[key], f"{where}.{key}", out, tol)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append((f"{where} length", len(a), len(b)))
        for i, (x, y) in enumerate(zip(a, b)):
            _walk(x, y, f"{where}[{i}]", out, tol)
    elif not _same(a, b, tol):
        out.append((where, a, b))


def compare_file(path_a: Path, path_b: Path, name: str, tol: float = 0.0) -> list[Difference]:
    """Differences between two metric files (JSON or CSV), timing fields left out."""
    found: list[tuple[str, Any, Any]] = []
    if path_a.suffix == ".json":
        _walk(json.loads(path_a.read_text(encoding="utf-8")), json.loads(path_b.read_text(encoding="utf-8")),
              "", found, tol)
    elif path_a.suffix == ".csv":
        fa, fb = pd.read_csv(path_a), pd.read_csv(path_b)
        fa = fa.drop(columns=[c for c in fa.columns if c in TIMING_KEYS])
        fb = fb.drop(columns=[c for c in fb.columns if c in TIMING_KEYS])
        _walk(fa.to_dict("list"), fb.to_dict("list"), "", found, tol)
    elif path_a.read_bytes() != path_b.read_bytes():
        found.append(("bytes", "differ", "differ"))
    return [Difference(name, where or "value", a, b) for where, a, b in found]


def compare_runs(run_a: Path, run_b: Path, subdir: str = "metrics", tol: float = 0.0) -> list[Difference]:
    """Compare every file under ``<run>/<subdir>`` of two runs; a file in only one run is a difference."""
    dir_a, dir_b = Path(run_a) / subdir, Path(run_b) / subdir
    files_a = {p.relative_to(dir_a).as_posix() for p in dir_a.rglob("*") if p.is_file()}
    files_b = {p.relative_to(dir_b).as_posix() for p in dir_b.rglob("*") if p.is_file()}
    if not files_a and not files_b:
        raise FileNotFoundError(f"no metric files under {dir_a} or {dir_b}: nothing to compare")
    diffs = [Difference(f"{subdir}/{name}", "file", "present" if name in files_a else "absent",
                        "present" if name in files_b else "absent")
             for name in sorted(files_a ^ files_b)]
    for name in sorted(files_a & files_b):
        diffs += compare_file(dir_a / name, dir_b / name, f"{subdir}/{name}", tol)
    return diffs


def check(out_dir: Path, profile: str | None = None, overrides: list[str] | None = None,
          only: list[str] | None = None, tol: float = 0.0, echo: Callable[[str], None] = print,
          run: Callable[..., Path] | None = None) -> dict[str, Any]:
    """Run the pipeline into ``out_dir/a`` and ``out_dir/b`` (each must be new) and compare them.

    Writes ``out_dir/reproducibility.md`` and returns a summary with the differences."""
    from mmsent.runner import run_all

    run = run or run_all
    out_dir = Path(out_dir)
    for name in ("a", "b"):
        if (out_dir / name).exists():
            raise FileExistsError(f"{out_dir / name} exists: a reproducibility check starts from clean")
    runs = [run(out_dir / name, profile, overrides, only, echo=echo) for name in ("a", "b")]
    diffs = compare_runs(runs[0], runs[1], tol=tol)
    compared = sorted(p.relative_to(runs[0]).as_posix() for p in (Path(runs[0]) / "metrics").rglob("*") if p.is_file())
    lines = ["# Reproducibility check", "",
             f"Two runs from clean (`{runs[0]}`, `{runs[1]}`), profile `{profile or 'default'}`, overrides "
             f"{overrides or []}; {len(compared)} metric files compared "
             f"{'exactly' if tol == 0 else f'to within {tol}'}, timing fields left out.", "",
             f"**{'identical' if not diffs else f'{len(diffs)} difference(s)'}**", ""]
    lines += [f"- {d}" for d in diffs[:200]]
    write_text(out_dir / "reproducibility.md", "\n".join(lines) + "\n")
    return {"identical": not diffs, "files": len(compared), "differences": [str(d) for d in diffs],
            "report": str(out_dir / "reproducibility.md")}
