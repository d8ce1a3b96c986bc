"""``data/source.json``: which MVSA the project reads, fingerprinted inside the project.

The data live outside the repository, at a root that params.yaml or ``$MMSENT_DATA_ROOT`` names
(relative, absolute, or another machine's). dvc.yaml cannot follow an environment variable, and a
relative root does not exist inside ``dvc exp run``'s temporary copy; so the ``source`` stage
(always run, a second) writes the hash of the staged ``SHA256SUMS``, which covers every file, and
the stages that read the data depend on that file. Same data anywhere: same bytes, nothing re-runs.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmsent.config import Params
from mmsent.io import write_json

SOURCE_FILE = Path("data/source.json")


def fingerprint(params: Params) -> dict[str, object]:
    sums = params.data.root / "SHA256SUMS"
    if not sums.is_file():
        raise FileNotFoundError(f"{sums} is missing: is {params.data.root} the staged MVSA? (set data.root in "
                                "params.yaml or MMSENT_DATA_ROOT)")
    body = sums.read_bytes()
    return {"sha256sums": hashlib.sha256(body).hexdigest(), "files": len(body.splitlines())}


def run(params: Params) -> Path:
    return write_json(params.path(SOURCE_FILE), fingerprint(params))
