"""dvc.yaml and params.yaml agree: every group of models is one stage with its own output folders,
each stage depends on the subpackages its code imports, and stages that read every model's
results depend on every group's folders (else `dvc repro` skips a rerun)."""

import ast
import json
from pathlib import Path

import pytest
import yaml

from mmsent.config import load_params
from mmsent.paths import ABLATION_GROUP
from mmsent.workflow.stages import COMMANDS, stages

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"


@pytest.fixture(scope="module")
def dag():
    return {s.name: s for s in stages(yaml.safe_load((REPO / "params.yaml").read_text()))}


def test_dvc_yaml_is_short_and_trains_each_group_by_foreach():
    raw = yaml.safe_load((REPO / "dvc.yaml").read_text())
    assert len((REPO / "dvc.yaml").read_text().splitlines()) <= 250
    assert raw["stages"]["train"]["foreach"] == "${groups}"


def test_each_group_stage_owns_its_folders(dag):
    params = load_params(REPO / "params.yaml")
    groups = {spec["group"] for spec in params.models.values()}
    assert groups <= set(params.groups) | {ABLATION_GROUP}
    for group in groups:
        stage = dag[f"train@{group}" if group != ABLATION_GROUP else ABLATION_GROUP]
        for folder in (f"models/{group}", f"data/predictions/{group}", f"metrics/{group}"):
            assert folder in stage.outs, (stage.name, folder)
        assert f"metrics/scores/{group}" in stage.metrics and f"metrics/history/{group}" in stage.plots


def test_stages_that_read_every_model_depend_on_every_group(dag):
    groups = [*load_params(REPO / "params.yaml").groups, ABLATION_GROUP]
    for name in ("results", "statistics"):
        for group in groups:
            assert f"data/predictions/{group}" in dag[name].deps, (name, group)
    assert all(f"metrics/{g}" in dag["results"].deps for g in groups)


def _modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmsent"):
            out |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("mmsent")}
    return out


def _file(module: str) -> Path | None:
    base = SRC / module.replace(".", "/")
    return next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)


def closure(modules: set[str]) -> set[Path]:
    seen, todo = set(), list(modules)
    while todo:
        path = _file(todo.pop())
        if path is not None and path not in seen:
            seen.add(path)
            todo.extend(_modules(path))
    return seen


def entry_modules(stage) -> set[str]:
    if stage.notebook:
        cells = json.loads((REPO / "notebooks" / f"{stage.notebook}.ipynb").read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        tree = ast.parse(code)
        return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module} | \
            {f"{n.module}.{a.name}" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
             for a in n.names}
    return {COMMANDS[stage.command].split(":")[0]}


def test_every_stage_depends_on_each_subpackage_its_code_imports(dag):
    """The package's top-level modules (config, sections, paths, io...) are read by every stage and
    are not listed; every subpackage a stage's code reaches is, whole."""
    for stage in dag.values():
        needed = {p.parent.relative_to(REPO).as_posix() for p in closure(entry_modules(stage))
                  if p.parent != SRC / "mmsent"}
        listed = {d for d in stage.deps if d.startswith("src/")}
        missing = {n for n in needed if not any(n == d or d.startswith(n + "/") for d in listed)}
        assert not missing, (stage.name, sorted(missing))
