"""The pipeline's stages as dvc.yaml declares them, in its order, with each ``foreach`` expanded
over params.yaml's ``groups``: what ``mmsent run-all`` runs and what the DAG tests check."""

from __future__ import annotations

import importlib
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

DVC_YAML = Path(__file__).resolve().parents[3] / "dvc.yaml"  # the repository root's

# the CLI's stage commands: the function each runs (module:function, called with the params)
COMMANDS = {
    "source": "mmsent.data.source:run", "prepare": "mmsent.data.prepare:run", "ocr": "mmsent.data.ocr:run",
    "features": "mmsent.features.cache:run", "folds": "mmsent.training.protocol:run",
    "ablation": "mmsent.evaluation.ablation:run", "protocols": "mmsent.training.protocols:run",
    "nested": "mmsent.training.nested:run", "results": "mmsent.evaluation.results:build",
    "ship": "mmsent.serving.ship:run",
}
QUIET = {"prepare", "ocr", "features"}  # take progress=False


@dataclass
class Stage:
    name: str  # as `dvc repro` names it: train@text for a foreach item
    cmd: str
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    @property
    def notebook(self) -> str | None:
        """``01_data`` for ``mmsent notebook notebooks/01_data.ipynb ...``, else None."""
        found = re.search(r"mmsent notebook notebooks/(\S+)\.ipynb", self.cmd)
        return found.group(1) if found else None

    @property
    def command(self) -> str:
        return shlex.split(self.cmd)[1]

    def function(self) -> Callable[..., Any]:
        module, name = COMMANDS[self.command].split(":")
        return getattr(importlib.import_module(module), name)


def _paths(entries) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries or []]


def _fill(value: Any, env: dict[str, Any]) -> Any:
    """``${key}``, ``${item.x}`` and ``${section.key}`` of dvc.yaml, as DVC fills them in."""
    if isinstance(value, str):
        def look(m):
            out: Any = env
            for part in m.group(1).split("."):
                out = out[part]
            return str(out)
        return re.sub(r"\$\{([^}]+)\}", look, value)
    if isinstance(value, list):
        return [_fill(v, env) for v in value]
    if isinstance(value, dict):
        return {_fill(k, env): _fill(v, env) for k, v in value.items()}
    return value


def stages(raw_params: dict[str, Any], dvc_yaml: Path = DVC_YAML) -> list[Stage]:
    """Every stage in dvc.yaml's order; ``raw_params``: params.yaml as read (DVC's ``vars``)."""
    out = []
    for name, body in yaml.safe_load(dvc_yaml.read_text(encoding="utf-8"))["stages"].items():
        items = [(None, body)] if "foreach" not in body else [
            (key, body["do"]) for key in _fill_foreach(body["foreach"], raw_params)]
        for key, do in items:
            env = dict(raw_params)
            if key is not None:
                env.update(key=key, item=raw_params[body["foreach"][2:-1]][key])
            filled = _fill({k: v for k, v in do.items() if k in ("cmd", "deps", "outs", "metrics", "plots")}, env)
            out.append(Stage(name if key is None else f"{name}@{key}", filled["cmd"],
                             *(_paths(filled.get(k)) for k in ("deps", "outs", "metrics", "plots"))))
    return out


def _fill_foreach(expr: str, raw_params: dict[str, Any]) -> list[str]:
    found = re.fullmatch(r"\$\{(\w+)\}", expr)
    if not found:
        raise ValueError(f"foreach must name a params.yaml mapping (${{section}}), not {expr!r}")
    return list(raw_params[found.group(1)])
