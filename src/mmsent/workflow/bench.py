"""Helpers for the scripts in ``benchmarks/``: machine facts and one section per benchmark
in ``reports/benchmarks.md`` (each script rewrites only its own section)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from mmsent.io import write_text

HEADER = ("# Benchmarks\n\nWritten by the scripts in `benchmarks/`; each section says when, on what "
          "machine and with which command it was measured.\n")


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{os.cpu_count()} cores ({cpu}), {gpu}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def git_commit() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        # code or configuration edited since that commit: the numbers are not that commit's
        changed = subprocess.run(["git", "status", "--porcelain", "--", "src", "benchmarks", "params.yaml"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        return f"{commit} with uncommitted changes" if changed else commit
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def update_section(path: str | Path, name: str, body: str, command: str) -> Path:
    """Replace (or append) the section ``name`` of the benchmarks file."""
    path = Path(path)
    text = path.read_text(encoding="utf-8") if path.is_file() else HEADER
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- {name}:start -->\n## {name}\n\nMeasured {stamp} at commit {git_commit()} on "
               f"{machine()}.\nCommand: `{command}`\n\n{body.strip()}\n<!-- {name}:end -->\n")
    pattern = re.compile(rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    return write_text(path, text)
