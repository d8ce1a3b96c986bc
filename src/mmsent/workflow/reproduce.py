"""Reproducibility checks: the pipeline twice from clean, and another machine simulated.

``mmsent check-reproducible --out runs/repro`` runs every stage (``mmsent run-all``) into
``runs/repro/a`` and ``runs/repro/b``, each from an empty folder, then compares every file
under ``metrics/`` of the two runs (JSON values, CSV cells), leaving out fields that measure
time rather than results. On CPU the two runs must be identical; the comparison is exact
unless a tolerance is given (GPU kernels are not bit-deterministic).

``mmsent check-reproducible --perturb 1e-5`` simulates another machine of the same kind: the
feature caches perturbed by relative noise, every later stage re-run, each row's move compared
with the rerun interval the report states for it, and every choice (tuned values, keep/drop,
what ships) compared with the committed one (``reports/reproducibility.md``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from mmsent.io import TIMED, write_text

# wall-clock fields: they differ between any two runs and say nothing about the results
TIMING_KEYS = TIMED | {"train_seconds_per_seed", "cv_seconds_per_fold", "epoch_seconds", "encode_seconds"}


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
    from mmsent.workflow.runner import run_all

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


# --------------------------------------------------------------------------- another machine, simulated

# what a perturbed run reads from the project as it is: everything before the trained models
UPSTREAM = ("data/prepared", "data/ocr", "data/features", "data/folds")


def perturbed_run(out_dir: Path, scale: float = 1e-5, seed: int = 1, echo: Callable[[str], None] = print,
                  steps: list[str] | None = None, project: Path | None = None) -> Path:
    """Every stage after the features again, into ``out_dir`` (which must be new), on the
    project's own prepared data, folds and feature caches multiplied by (1 + ``scale`` · noise):
    what another machine's float kernels do to the features. The BiLSTM, DenseNet-121 and the
    baselines read no cached features, so they are not re-run."""
    from mmsent.evaluation import ablation
    from mmsent.training import protocols
    from mmsent.training import tune
    from mmsent.config import find_params_file, load_params
    from mmsent.training.specs import uses_cv
    from mmsent.training.specs import model_specs
    from mmsent.training.runs import run_models
    from mmsent.workflow.runner import write_params

    project = Path(project or find_params_file().parent).resolve()
    out_dir = Path(out_dir).resolve()
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} exists: a perturbed run starts from clean")
    path = write_params(out_dir, None, [f"perturb.scale={scale:.12f}", f"perturb.seed={seed}"],  # YAML reads 1e-05 as text
                        source=project / "params.yaml")
    for rel in UPSTREAM:
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / rel).symlink_to(project / rel, target_is_directory=(project / rel).is_dir())
    params = load_params(path)

    def heads():
        specs = [s for s in model_specs(params).values()
                 if s.group in ("text", "image", "fusion") and uses_cv(s, "single")]
        run_models(params, specs)

    plan = [("tune", lambda: tune.run(params)), ("heads", heads), ("ablation", lambda: ablation.run(params)),
            ("protocols", lambda: protocols.run(params))]
    for name, step in plan:
        if steps is None or name in steps:
            echo(f"[perturbed] {name}")
            step()
    return out_dir


def rerun_interval(std: float, seeds: int) -> float:
    """Half-width of the 95 % interval of the difference between two runs' seed means, from the
    seed spread: how far a row's mean may move when everything below it is re-drawn."""
    return 1.96 * math.sqrt(2 / max(seeds, 1)) * std


def _metric_files(root: Path) -> dict[str, Path]:
    base = root / "metrics"
    return {p.relative_to(base).as_posix(): p for p in base.rglob("*.json")}


def row_moves(ref: Path, other: Path) -> pd.DataFrame:
    """Per metrics file present in both runs: each headline mean, how far it moved, and the row's
    stated rerun interval (from the reference run's seed spread)."""
    mine, theirs = _metric_files(ref), _metric_files(other)
    rows = []
    for name in sorted(set(mine) & set(theirs)):
        a, b = json.loads(mine[name].read_text("utf-8")), json.loads(theirs[name].read_text("utf-8"))
        if "accuracy" not in a or "accuracy" not in b:
            continue
        row = {"row": name.removesuffix(".json")}
        worst = 0.0
        for key, label in (("accuracy", "acc"), ("weighted_f1", "wF1")):
            move = b[key]["mean"] - a[key]["mean"]
            interval = rerun_interval(max(a[key]["std"], b[key]["std"]), int(a["seeds"]))
            row[f"{label} ref"], row[f"{label} moved"], row[f"{label} interval ±"] = a[key]["mean"], move, interval
            worst = max(worst, abs(move) - interval)
        row["within"] = worst <= 1e-9
        rows.append(row)
    return pd.DataFrame(rows)


def choices(params) -> dict[str, Any]:
    """Every choice the pipeline made in one run: tuned values, keep/drop of each lever and ensemble, what ships."""
    import yaml

    from mmsent.evaluation.ablation import decide, kept_model
    from mmsent.evaluation.ensemble import decide as ensemble_decide, may_ship

    tuned = {}
    for path in sorted(params.path("params").glob("best_*.yaml")):
        best = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        tuned[path.stem.removeprefix("best_")] = {"trial": best.get("trial"), "options": best.get("options"),
                                                  "train": best.get("train")}
    decided = decide(params)
    shipped = kept_model(params, decided=decided)
    scored = ensemble_decide(params, shipped)
    # declared not to ship (ensemble.ship: false), an ensemble's verdict chooses nothing: kept apart
    ships = may_ship(params)
    return {"tuned": tuned, "kept": {r["model"]: r["kept"] for r in decided},
            "ensembles": {c["name"]: c["kept"] for c in scored} if ships else {},
            "ensemble_verdicts": {} if ships else {c["name"]: c["verdict"] for c in scored}, "shipped": shipped}


def ensemble_readings(mine: dict[str, Any], theirs: dict[str, Any]) -> list[str]:
    """From two runs' :func:`choices`: where ``ensemble.ship`` is false, how the keep rule read each
    ensemble in both runs, shown apart from the choices (none of them can ship)."""
    def said(v):
        return f"{'passes' if v.better else 'fails'} ({v.difference:+.2f} ± {v.se:.2f})"

    a, b = mine.get("ensemble_verdicts") or {}, theirs.get("ensemble_verdicts") or {}
    if not a:
        return []
    return ["Not choices here (`ensemble.ship` is false: no ensemble ships), shown for the record: how the keep "
            "rule reads each ensemble against the single configuration (Δ CV wF1 ± corrected SE), in this run and "
            "in the perturbed one.", "",
            *[f"- {name}: {said(a[name])} here, {said(b[name]) if name in b else 'absent'} perturbed" for name in a],
            ""]


def changed_choices(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = [f"tuning of {m}: trial {a['tuned'][m]['trial']} -> {b['tuned'].get(m, {}).get('trial')}"
           for m in a["tuned"] if a["tuned"][m] != b["tuned"].get(m)]
    out += [f"ablation row {m}: kept {a['kept'][m]} -> {b['kept'].get(m)}" for m in a["kept"] if a["kept"][m] != b["kept"].get(m)]
    out += [f"ensemble {name}: kept {kept} -> {b.get('ensembles', {}).get(name)}"
            for name, kept in a.get("ensembles", {}).items() if kept != b.get("ensembles", {}).get(name)]
    if a["shipped"] != b["shipped"]:
        out.append(f"shipped model: {a['shipped']} -> {b['shipped']}")
    return out


def check_perturbed(out_dir: Path, scale: float = 1e-5, seed: int = 1, report: Path | None = None,
                    echo: Callable[[str], None] = print, steps: list[str] | None = None,
                    project: Path | None = None) -> dict[str, Any]:
    """Run :func:`perturbed_run` and compare it with the project's own outputs (:func:`compare_perturbed`)."""
    from mmsent.config import find_params_file

    project = Path(project or find_params_file().parent).resolve()
    other = perturbed_run(out_dir, scale, seed, echo=echo, steps=steps, project=project)
    return compare_perturbed(project, other, report)


def settings_differ(mine: Path, theirs: Path) -> list[str]:
    """Where two params files differ, leaving out the perturbation and the data root's spelling."""
    import yaml

    loaded = []
    for path in (mine, theirs):
        params = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        params.pop("perturb", None)
        root = Path((params.get("data") or {}).get("root", "."))
        if "data" in params:
            params["data"]["root"] = str((Path(path).parent / root).resolve())
        loaded.append(params)
    found: list[tuple[str, Any, Any]] = []
    _walk(*loaded, "", found, 0.0)
    return [f"{where.lstrip('.')}: {a!r} vs {b!r}" for where, a, b in found]


def compare_perturbed(project: Path, other: Path, report: Path | None = None) -> dict[str, Any]:
    """Compare a perturbed run with the project's outputs: each row's move against its stated rerun
    interval, and whether any choice changed. Writes ``report`` (default: the project's
    ``reports/reproducibility.md``). Run alone (``--compare-only``) when only how the outputs are
    read changed: a report section, what counts as a choice."""
    from mmsent.config import load_params

    project, other = Path(project).resolve(), Path(other).resolve()
    theirs = load_params(other / "params.yaml")
    if not theirs.perturb.scale:
        raise ValueError(f"{other} is not a perturbed run (its params.yaml has no perturb.scale)")
    scale, seed = float(theirs.perturb.scale), int(theirs.perturb.seed)
    differ = settings_differ(project / "params.yaml", other / "params.yaml")
    if differ:
        raise ValueError(f"{other} ran with other settings than {project} ({'; '.join(differ[:5])}): rerun the "
                         "perturbed run, or copy a setting that changes no trained output into its params.yaml")
    mine, yours = choices(load_params(project / "params.yaml")), choices(theirs)
    moves = row_moves(project, other)
    flips = changed_choices(mine, yours)
    outside = int((~moves["within"]).sum()) if len(moves) else 0
    largest = float(moves[["acc moved", "wF1 moved"]].abs().max().max()) if len(moves) else 0.0
    lines = ["# Reproducibility: another machine, simulated", "",
             "Written by `mmsent check-reproducible --perturb` (not a DVC stage: it re-runs every stage after the "
             f"features, ~15 min on 2 cores). Every cached feature was multiplied by (1 + {scale:g} · N(0, 1)) (noise "
             f"seed {seed}): what another CPU's float kernels do to the features. Then tuning, every head and fusion "
             "model, the ablation and the other protocols ran again from clean, and each row is compared with the "
             "committed one. The BiLSTM, DenseNet-121 and the baselines read no cached feature and are not re-run. "
             "A row's stated rerun interval is the 95 % half-width of the difference of two seed means, "
             "1.96 · √(2/seeds) · its seed std (the larger of the two runs').", "",
             f"**Choices: {'none changed' if not flips else f'{len(flips)} changed'}** (tuned values, every keep/drop "
             "decision of the ablation, every ensemble decision where `ensemble.ship` lets one ship, the shipped "
             "configuration).", "",
             *[f"- {f}" for f in flips], *([""] if flips else []),
             *ensemble_readings(mine, yours),
             f"**Rows: {len(moves) - outside} of {len(moves)} within their stated interval; largest move "
             f"{largest:.2f} points.**", "",
             moves.to_markdown(index=False, floatfmt=".2f") if len(moves) else "(no rows)", ""]
    written = write_text(report or project / "reports" / "reproducibility.md", "\n".join(lines))
    return {"choices_changed": flips, "rows": len(moves), "outside": outside, "largest_move": largest,
            "report": str(written)}
