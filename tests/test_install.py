"""The README's install line on another supported Python: the wheel with ``[serve]`` in a fresh
virtual environment of Python 3.12 (else 3.13), scoring a pair offline through the CLI and the
REST API. It installs torch and its libraries (minutes, gigabytes), so it runs in CI (``CI=true``)
or with ``MMSENT_CHECK_INSTALL=1`` and is skipped otherwise; a download that fails for the
network's sake is a skip, anything else a failure."""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NETWORK = ("ConnectionError", "Max retries exceeded", "Read timed out", "Temporary failure in name resolution")

pytestmark = pytest.mark.skipif(not (os.environ.get("CI") or os.environ.get("MMSENT_CHECK_INSTALL")),
                                reason="installs torch into a fresh venv: CI only (or MMSENT_CHECK_INSTALL=1)")


def other_python() -> str | None:
    """A Python 3.12 or 3.13 interpreter: on PATH, else under pyenv."""
    for version in ("3.12", "3.13"):
        found = shutil.which(f"python{version}")
        if found and subprocess.run([found, "--version"], capture_output=True).returncode == 0:
            return found
        root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
        hits = sorted(glob.glob(f"{root}/versions/{version}*/bin/python{version}"))
        if hits:
            return hits[-1]
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_wheel_installs_on_another_python_and_scores_offline(tmp_path):
    python = other_python()
    if python is None:
        pytest.skip("no Python 3.12 or 3.13 on this machine")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(REPO), "-w", str(tmp_path / "dist")],
                   check=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("mmsent-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([python, "-m", "venv", str(venv)], check=True, timeout=300)
    done = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"{wheel}[serve]"], capture_output=True, text=True,
                          timeout=2400)
    if done.returncode and any(word in done.stdout + done.stderr for word in NETWORK):
        pytest.skip(f"the package registry could not be reached: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}  # nothing may download
    cli = subprocess.run([str(venv / "bin" / "mmsent"), "predict", "--text", "what a lovely day :)", "--json"],
                         capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert json.loads(cli.stdout)["label"] in ("positive", "neutral", "negative")

    import httpx

    port = free_port()
    server = subprocess.Popen([str(venv / "bin" / "mmsent"), "serve", "--port", str(port)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(240):  # the model loads before the server answers
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stderr.read()[-2000:]
            time.sleep(1)
        answer = httpx.post(f"http://127.0.0.1:{port}/predict", data={"text": "so sad today"}, timeout=60)
        assert answer.status_code == 200 and answer.json()["label"] in ("positive", "neutral", "negative")
    finally:
        server.terminate()
        server.wait(timeout=30)
