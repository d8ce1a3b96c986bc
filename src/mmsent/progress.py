"""Progress bars that redraw in place on a terminal and stay out of logs (CI, ``dvc repro > log``):
every stage prints its summary lines either way."""

from __future__ import annotations

import sys
from typing import Any, Iterable

from tqdm.auto import tqdm


def bar(iterable: Iterable | None = None, enabled: bool = True, **kwargs: Any) -> tqdm:
    """``tqdm(iterable)``, shown only when ``enabled`` and stderr is a terminal (tqdm's ``disable=None``)."""
    return tqdm(iterable, disable=None if enabled else True, **kwargs)


def on_terminal(enabled: bool) -> bool:
    """For libraries with a yes/no switch (sentence-transformers' ``show_progress_bar``)."""
    return bool(enabled) and sys.stderr.isatty()


def quiet_model_loading() -> None:
    """transformers draws a "Loading weights" bar for every model it loads: off unless on a terminal."""
    if not on_terminal(True):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
