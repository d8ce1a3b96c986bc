"""Batch scoring on Ray (a local two-worker instance) gives the same answers as in-process scoring."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mmsent.serving.batch import score_file
from mmsent.serving.pipeline import Pipeline, default_model_path

pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


def test_ray_workers_score_like_one_process_and_keep_bad_rows(tmp_path):
    for k in range(3):
        Image.fromarray(np.full((40, 50, 3), 60 * k, np.uint8)).save(tmp_path / f"{k}.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"<html>not an image</html>")
    rows = [{"text": f"tweet number {k} {'love it' if k % 2 else 'hate it'}", "image": f"{k % 3}.jpg"} for k in range(9)]
    rows += [{"text": "", "image": "bad.jpg"}, {"text": "", "image": ""}, {"text": "only text", "image": "missing.jpg"}]
    pd.DataFrame(rows).to_csv(tmp_path / "pairs.csv", index=False)

    here = score_file(Pipeline.load(device="cpu"), tmp_path / "pairs.csv", tmp_path / "here.csv", batch_size=4,
                     progress=False)
    # the README's command: mmsent predict-batch pairs.csv --out scored.csv --workers 2
    from typer.testing import CliRunner

    from mmsent.cli import app

    r = CliRunner().invoke(app, ["predict-batch", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "ray.csv"),
                                 "--workers", "2", "--batch-size", "4"])
    assert r.exit_code == 0, r.output
    spread = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("{")))
    assert spread["rows"] == here["rows"] == 12
    assert spread["bad_rows"] == here["bad_rows"] and [b["row"] for b in spread["bad_rows"]] == [11, 12, 13]
    a, b = pd.read_csv(tmp_path / "here.csv"), pd.read_csv(tmp_path / "ray.csv")
    assert list(a["pred_label"]) == list(b["pred_label"]) and list(a["text"]) == list(b["text"])  # same order
    probs = [c for c in a.columns if c.startswith("p_")]
    assert np.allclose(a[probs].to_numpy(float), b[probs].to_numpy(float), atol=1e-5, equal_nan=True)
