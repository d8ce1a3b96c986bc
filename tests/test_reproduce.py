"""The reproducibility check: the comparison itself, and two real runs from clean on tiny MVSA."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from mmsent.cli import app
from mmsent.reproduce import compare_runs

from conftest import write_params


def write_run(root, accuracy=70.0, seconds=1.5, history_loss=0.5, extra_file=False):
    (root / "metrics/history").mkdir(parents=True)
    (root / "metrics/m_single.json").write_text(json.dumps(
        {"accuracy": {"mean": accuracy, "std": 0.1}, "train_seconds_per_seed": seconds,
         "per_seed": [{"seed": 0, "accuracy": accuracy, "confusion_matrix": [[1, 2], [3, 4]]}]}))
    pd.DataFrame({"epoch": [1, 2], "train_loss": [history_loss, 0.4], "seconds": [seconds, seconds]}).to_csv(
        root / "metrics/history/m_single.csv", index=False)
    if extra_file:
        (root / "metrics/other_single.json").write_text("{}")
    return root


def test_identical_runs_differ_only_in_timing(tmp_path):
    a = write_run(tmp_path / "a", seconds=1.0)
    b = write_run(tmp_path / "b", seconds=9.0)  # wall-clock time is not a result
    assert compare_runs(a, b) == []


def test_every_kind_of_difference_is_found(tmp_path):
    a = write_run(tmp_path / "a")
    b = write_run(tmp_path / "b", accuracy=70.0000001, history_loss=0.51, extra_file=True)
    found = {(d.file, d.where) for d in compare_runs(a, b)}
    assert ("metrics/m_single.json", ".accuracy.mean") in found  # exact: a 1e-7 drift counts
    assert ("metrics/m_single.json", ".per_seed[0].accuracy") in found
    assert ("metrics/history/m_single.csv", ".train_loss[0]") in found
    assert ("metrics/other_single.json", "file") in found
    assert len(found) == 4
    near = {(d.file, d.where) for d in compare_runs(a, b, tol=1e-3)}
    assert near == {("metrics/history/m_single.csv", ".train_loss[0]"), ("metrics/other_single.json", "file")}


def test_nothing_to_compare_is_an_error(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(FileNotFoundError, match="no metric files"):
        compare_runs(tmp_path / "a", tmp_path / "b")


@pytest.mark.integration
def test_the_pipeline_twice_from_clean_gives_identical_metrics(tmp_path, tiny_root, monkeypatch):
    """prepare → ocr → features (real MiniLM / EfficientNet / VADER) → every text model, twice on CPU."""
    monkeypatch.setenv("MMSENT_DEVICE", "cpu")
    project = tmp_path / "project"
    write_params(project, tiny_root)
    monkeypatch.chdir(project)
    single_only = [f"models.{m}.datasets=[single]" for m in ("majority", "vader", "tfidf_lr", "lstm", "text_head")]
    args = ["check-reproducible", "--out", str(tmp_path / "repro"), "-s", "train.seeds=[0, 1]",
            "-s", "train.epochs=2", "-s", "models.tfidf_lr.options={min_df: 1}", *[a for o in single_only for a in ("-s", o)],
            "--only", "prepare", "--only", "ocr", "--only", "features", "--only", "02_text_baselines"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["identical"] and summary["differences"] == []
    assert summary["files"] == 7  # five text models' metrics + the LSTM's and the head's histories
    assert "**identical**" in (tmp_path / "repro/reproducibility.md").read_text()
    # a second check into the same folder is refused: it must start from clean
    again = CliRunner().invoke(app, args)
    assert again.exit_code != 0 and isinstance(again.exception, FileExistsError)
