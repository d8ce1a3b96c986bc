"""Re-run the whole pipeline without DVC, with other parameters, into a separate folder.

``mmsent run-all --out runs/gpu --profile gpu -s train.seeds=[0,1,2]`` writes a params.yaml
into ``runs/gpu`` (the data root made absolute, overrides merged in) and executes every
stage there in pipeline order — the CLI stages directly, the numbered notebooks through
papermill — so data, models, reports and the executed notebooks all land under that folder
and the project's own outputs are untouched. The packaged default model is never replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import yaml

from mmsent.config import deep_merge, find_params_file, load_params, profile_settings

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"  # the repository root's notebooks/


def parse_override(item: str) -> dict[str, Any]:
    """``a.b=VALUE`` (VALUE parsed as YAML) → ``{"a": {"b": VALUE}}``."""
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ValueError(f"override must look like section.key=value, got {item!r}")
    out: dict[str, Any] = yaml.safe_load(value) if value else None
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def write_params(out_dir: Path, profile: str | None, overrides: list[str], source: Path | None = None) -> Path:
    source = source or find_params_file()
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    if profile:  # the profile's settings travel with the copy, wherever its file lives
        raw["profile"] = profile
        raw.setdefault("profiles", {})[profile] = profile_settings(raw, source.parent, profile)
    root = Path(raw["data"]["root"])
    raw["data"]["root"] = str(root if root.is_absolute() else (source.parent / root).resolve())
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return out_dir / "params.yaml"


def execute_notebook(name: str, params_path: Path, out_dir: Path) -> Path:
    from mmsent.workflow.notebooks import execute

    return execute(NOTEBOOKS / f"{name}.ipynb", out_dir / "notebooks" / f"{name}.ipynb",
                   {"params_path": str(params_path), "run_stage": True})


SKIPPED = {"ship": "the packaged default model is never replaced", "explore": "it reads the packaged model"}


def plan(params_path: Path, out_dir: Path) -> list[tuple[str, Callable[[], Any]]]:
    """dvc.yaml's stages in its order (each foreach item once), less those in SKIPPED; a notebook
    stage is named by its notebook (``01_data``), a command stage by its command (``prepare``)."""
    from mmsent.workflow.stages import QUIET, stages

    def step(stage):
        if stage.notebook:
            return stage.notebook, lambda: execute_notebook(stage.notebook, params_path, out_dir)
        extra = {"progress": False} if stage.command in QUIET else {}
        return stage.command, lambda: stage.function()(load_params(params_path), **extra)

    raw = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    return [step(s) for s in stages(raw) if s.name not in SKIPPED]


def run_all(out_dir: Path, profile: str | None = None, overrides: list[str] | None = None,
            only: list[str] | None = None, echo: Callable[[str], None] = print) -> Path:
    out_dir = Path(out_dir).resolve()
    params_path = write_params(out_dir, profile, overrides or [])
    for name, step in plan(params_path, out_dir):
        if only and name not in only:
            continue
        echo(f"[run-all] {name}")
        step()
    return out_dir
