"""The papermill batch runner: overrides, a separate output folder, notebooks executed."""

import json

import pytest
import yaml

from mmsent.workflow.runner import parse_override, run_all

from conftest import write_params


def test_parse_override():
    assert parse_override("train.seeds=[0, 1]") == {"train": {"seeds": [0, 1]}}
    assert parse_override("data.dedup=true") == {"data": {"dedup": True}}
    with pytest.raises(ValueError, match="section.key=value"):
        parse_override("nonsense")


def test_run_all_writes_only_into_its_folder(tmp_path, tiny_root, monkeypatch):
    project = tmp_path / "project"
    write_params(project, tiny_root)
    monkeypatch.chdir(project)
    out = run_all(tmp_path / "runs" / "a", overrides=["data.dedup=true", "train.seeds=[0]"],
                  only=["prepare", "01_data"], echo=lambda s: None)
    params = yaml.safe_load((out / "params.yaml").read_text())
    assert params["data"]["dedup"] is True and params["train"]["seeds"] == [0]
    assert json.loads((out / "data/prepared/summary.json").read_text())["single"]["raw_pairs"] == 7
    nb = json.loads((out / "notebooks/01_data.ipynb").read_text())
    assert nb["metadata"]["papermill"]["parameters"]["params_path"] == str(out / "params.yaml")
    assert (out / "reports/data.md").is_file()
    assert not (project / "data").exists()  # the project's own outputs are untouched
