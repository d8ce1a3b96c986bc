"""Running the driver notebooks with papermill, as the DVC stages and ``run-all`` do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode

from mmsent.io import atomic_path


class IPCKernelManager(AsyncKernelManager):
    """The kernel talks over local sockets, not TCP: nothing listens on a port, and ipykernel has
    no reason for its "running over TCP without encryption" warning in every stage's log."""

    transport = Unicode("ipc")


def execute(source: str | Path, target: str | Path, parameters: dict[str, Any] | None = None) -> Path:
    """Execute ``source`` into ``target``, written only once the whole notebook has run (a failed
    cell leaves the previous executed copy in place)."""
    import papermill

    target = Path(target)
    with atomic_path(target, suffix=".ipynb") as tmp:
        papermill.execute_notebook(str(source), str(tmp), parameters=parameters or {}, progress_bar=False,
                                   kernel_name="python3", kernel_manager_class=IPCKernelManager)
    return target
