"""The mmsent command line through typer's runner."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmsent.cli import app
from mmsent.serving.pipeline import default_model_path

runner = CliRunner()
needs_model = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "some.jpg"
    Image.fromarray(np.full((64, 64, 3), (240, 180, 40), np.uint8)).save(path)
    return path


@needs_model
def test_predict_readable_and_json(photo):
    r = runner.invoke(app, ["predict", "--text", "what a day :)", "--image", str(photo)])
    assert r.exit_code == 0, r.output
    assert r.stdout.split()[0] in ("positive", "neutral", "negative") and "text + image" in r.output
    r = runner.invoke(app, ["predict", "--text", "what a day :)", "--json"])
    body = json.loads(r.stdout)
    assert set(body["probabilities"]) == {"positive", "neutral", "negative"}


@needs_model
def test_predict_explain_prints_words_and_regions(photo):
    r = runner.invoke(app, ["predict", "--text", "love it", "--image", str(photo), "--explain"])
    assert r.exit_code == 0 and "words: love(" in r.output and "image regions" in r.output


@needs_model
def test_predict_bad_input_exits_2_with_a_message(tmp_path):
    (tmp_path / "fake.jpg").write_text("<html></html>")
    r = runner.invoke(app, ["predict", "--image", str(tmp_path / "fake.jpg")])
    assert r.exit_code == 2 and "not a recognised image" in r.output
    r = runner.invoke(app, ["predict"])
    assert r.exit_code == 2 and "nothing to score" in r.output


@needs_model
def test_predict_batch_continues_past_bad_rows(tmp_path, photo):
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    src = tmp_path / "in.csv"
    src.write_text("text,image\nhappy day,some.jpg\n,broken.jpg\n,\nsad news,missing.jpg\nok then,\n")
    out = tmp_path / "out.csv"
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(out)])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[0])
    assert (summary["rows"], summary["scored"], summary["bad"]) == (5, 2, 3)
    assert [b["row"] for b in summary["bad_rows"]] == [3, 4, 5]
    import pandas as pd

    df = pd.read_csv(out, keep_default_na=False)
    assert list(df["label"] != "") == [True, False, False, False, True]


def test_predict_batch_rejects_a_csv_without_columns(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code != 0 and "needs a 'text' and/or an 'image' column" in str(r.exception)


def test_info_and_help():
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and '"torch"' in r.output
    r = runner.invoke(app, ["--help"])
    for command in ("predict", "predict-batch", "train", "serve", "ui", "info", "prepare", "features"):
        assert command in r.output


def test_train_needs_exactly_one_target():
    r = runner.invoke(app, ["train"])
    assert r.exit_code != 0
