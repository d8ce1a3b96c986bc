"""JupyterLab and the project's kernel: `make lab` opens the notebooks on a kernel that imports mmsent."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from test_experiments import MODELS, project  # noqa: F401

REPO = Path(__file__).resolve().parent.parent


def test_jupyterlab_seaborn_and_widgets_are_installed():
    out = subprocess.run([sys.executable, "-m", "jupyterlab", "--version"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip().startswith("4."), out.stderr
    import ipywidgets  # noqa: F401  (progress bars in executed notebooks)
    import seaborn  # noqa: F401


def test_the_project_kernel_imports_mmsent_and_runs_a_notebook(tmp_path):
    papermill = pytest.importorskip("papermill")
    specs = json.loads(subprocess.run([sys.executable, "-m", "jupyter", "kernelspec", "list", "--json"],
                                      capture_output=True, text=True, check=True).stdout)["kernelspecs"]
    assert "python3" in specs  # `make setup` installs it into the venv (--sys-prefix)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import mmsent, sys\nfrom mmsent.config import load_params\nprint(mmsent.__file__, sys.prefix)")])
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(REPO))
    text = nbformat.read(out, as_version=4).cells[0].outputs[0]["text"]
    assert str(REPO / "src" / "mmsent") in text  # the project's own package, not a copy


def test_a_notebook_that_fails_leaves_the_last_executed_copy_and_logs_no_kernel_warning(tmp_path, capfd):
    from mmsent.workflow.notebooks import execute

    good = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('first run')")])
    src, out = tmp_path / "nb.ipynb", tmp_path / "out" / "nb.ipynb"
    nbformat.write(good, src)
    execute(src, out)
    assert "first run" in nbformat.read(out, as_version=4).cells[0].outputs[0]["text"]
    assert "without encryption" not in capfd.readouterr().err  # the kernel talks over IPC, not TCP
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise RuntimeError('boom')")]), src)
    with pytest.raises(Exception, match="boom"):
        execute(src, out)
    assert "first run" in nbformat.read(out, as_version=4).cells[0].outputs[0]["text"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["nb.ipynb"]  # no half-written temp file left


def test_progress_bars_show_on_a_terminal_only(capsys):
    from mmsent.progress import bar, on_terminal

    assert list(bar(range(3), True)) == [0, 1, 2]
    assert bar(range(3), True).disable  # pytest's stderr is not a terminal: no bar in the log
    assert bar(range(3), False).disable and not on_terminal(True) and not on_terminal(False)


def test_a_stage_notebook_run_with_its_defaults_shows_and_writes_nothing(project, tmp_path):  # noqa: F811
    """Run All in Lab on notebook 04 (default parameters) reads the stage's outputs and leaves every
    file of the project as it was: only the DVC stage, with run_stage=true, retrains."""
    import hashlib

    from mmsent.training.runs import run_group
    from mmsent.workflow.notebooks import execute

    project.models = {k: v for k, v in MODELS.items() if k == "attention_fusion"}
    (project.path("params.yaml")).write_text(yaml.safe_dump({**yaml.safe_load(project.path("params.yaml").read_text()),
                                                            "models": project.models}))
    run_group(project, "fusion")
    root = project.path(".")

    def snapshot():
        return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()}

    before = snapshot()
    out = execute(REPO / "notebooks" / "04_fusion.ipynb", tmp_path / "out" / "04.ipynb",
                  {"params_path": str(project.path("params.yaml"))})
    assert snapshot() == before  # nothing trained, no figure or metrics file rewritten
    cells = nbformat.read(out, as_version=4).cells
    shown = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("attention_fusion" in o.get("text", "") for o in shown)
    assert any("image/png" in o.get("data", {}) for o in shown)
