"""The ``mmsent`` command line: stage runners now, prediction front ends as they land."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mmsent.config import load_params

app = typer.Typer(help="Multimodal tweet sentiment on MVSA.", no_args_is_help=True,
                  add_completion=False)

ParamsOpt = typer.Option(None, "--params", help="params.yaml to use (default: nearest one)")
ProfileOpt = typer.Option(None, "--profile", help="profile from params.yaml (default, full, gpu)")


@app.command()
def prepare(params: Optional[Path] = ParamsOpt, limit: int = typer.Option(0, help="only the first N pairs (0 = all)"),
            profile: Optional[str] = ProfileOpt) -> None:
    """Read, clean, split and audit MVSA into data/prepared."""
    from mmsent import prepare as stage

    summary = stage.run(load_params(params, profile=profile), limit=limit or None)
    typer.echo(json.dumps({k: v.get("clean_pairs") for k, v in summary.items() if isinstance(v, dict) and "clean_pairs" in v}))


@app.command()
def features(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Compute and cache frozen backbone features into data/features."""
    from mmsent import features as stage

    typer.echo(json.dumps(stage.run(load_params(params, profile=profile)), indent=2))


@app.command()
def train(group: Optional[str] = typer.Option(None, help="text, image or fusion: every model of that stage"),
          model: Optional[str] = typer.Option(None, help="one model name from params.yaml"),
          params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Train and evaluate models over the configured seeds (what the training stages run)."""
    from mmsent import experiments

    p = load_params(params, profile=profile)
    if bool(group) == bool(model):
        raise typer.BadParameter("give exactly one of --group or --model")
    if model:
        specs = experiments.model_specs(p)
        if model not in specs:
            raise typer.BadParameter(f"unknown model {model!r}; params.yaml has {sorted(specs)}")
        results = {model: experiments.run_model(p, specs[model])}
    else:
        results = experiments.run_group(p, group)
    for name, by_dataset in results.items():
        for dataset, m in by_dataset.items():
            typer.echo(f"{name:18s} {dataset:9s} acc {m['accuracy']['mean']:.2f} ± {m['accuracy']['std']:.2f}  "
                       f"wF1 {m['weighted_f1']['mean']:.2f} ± {m['weighted_f1']['std']:.2f}")


@app.command()
def results(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Write reports/results.md and reports/tables/results.tex from metrics/*.json."""
    from mmsent import results as stage

    for path in stage.build(load_params(params, profile=profile)).values():
        typer.echo(str(path))


@app.command()
def notebook(path: Path = typer.Argument(..., help="a notebook under notebooks/"),
             out_dir: Path = typer.Option(Path("reports/notebooks"), help="where the executed copy goes"),
             parameter: list[str] = typer.Option([], "-p", help="NAME=VALUE (YAML value), repeatable")) -> None:
    """Execute a driver notebook with papermill (what the DVC stages run)."""
    import papermill
    import yaml

    values = {}
    for item in parameter:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"-p expects NAME=VALUE, got {item!r}")
        values[name] = yaml.safe_load(value)
    out_dir.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(path), str(out_dir / path.name), parameters=values,
                               progress_bar=False, kernel_name="python3")
    typer.echo(str(out_dir / path.name))


@app.command()
def info() -> None:
    """Versions and the device that would be used."""
    import torch

    from mmsent import __version__
    from mmsent.device import pick_device

    typer.echo(json.dumps({"mmsent": __version__, "torch": torch.__version__,
                           "device": str(pick_device())}, indent=2))


if __name__ == "__main__":
    app()
