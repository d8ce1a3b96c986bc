"""JupyterLab and the project's kernel: `make lab` opens the notebooks on a kernel that imports mmsent."""

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

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
