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
    assert list(df["pred_label"].fillna("") != "") == [True, False, False, False, True]


def test_predict_batch_rejects_a_csv_without_columns(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("a,b\n1,2\n")
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "needs a 'text' and/or an 'image' column" in r.output
    assert not (tmp_path / "o.csv").exists()


@needs_model
@pytest.mark.parametrize("fmt_in, fmt_out", [(".csv", ".jsonl"), (".jsonl", ".parquet"), (".parquet", ".csv")])
def test_predict_batch_reads_and_writes_csv_jsonl_parquet_without_duplicating_a_column(tmp_path, photo, fmt_in,
                                                                                        fmt_out):
    """Named columns, a gold `label` column kept as it is beside `pred_label`, and a summary against it."""
    import pandas as pd

    from mmsent.serving.batch import OUTPUT_COLUMNS, read_table, write_table

    rows = pd.DataFrame({"tweet_id": ["a", "b", "c", "d"], "tweet": ["so happy today", "awful, just awful", "", "ok"],
                         "picture": ["some.jpg", "", "some.jpg", "missing.jpg"],
                         "label": ["positive", "negative", "Positive", "neutral"]})
    src, out = tmp_path / f"in{fmt_in}", tmp_path / f"out{fmt_out}"
    write_table(rows, src)
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(out), "--text-col", "tweet", "--image-col",
                            "picture", "--id-col", "tweet_id", "--label-col", "label"])
    assert r.exit_code == 0, r.output
    scored = read_table(out)
    assert list(scored.columns) == [*rows.columns, *OUTPUT_COLUMNS]  # no column twice, the inputs untouched
    assert list(scored["label"]) == list(rows["label"])
    assert list(scored["pred_label"] != "") == [True, True, True, False]  # d's image is missing: an error row
    summary = json.loads(r.stdout.splitlines()[0])
    assert summary["bad_rows"][0]["row"] == "d"
    assert "label: accuracy" in r.stdout and "gold \\ predicted" in r.stdout  # 3 rows with a known label
    for line in r.stdout.splitlines():
        if line.startswith("label: accuracy"):
            assert "over 3 rows" in line


def test_predict_batch_refuses_clashing_columns_and_unknown_formats(tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("text,pred_label\nhello,x\n")
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(tmp_path / "o.csv")])
    assert r.exit_code == 2 and "already has the output column(s) ['pred_label']" in r.output
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(tmp_path / "o.xlsx")])
    assert r.exit_code == 2 and "unknown table format .xlsx" in r.output
    assert not list(tmp_path.glob("o.*"))


def test_a_wrong_model_path_is_a_one_line_error(tmp_path):
    r = runner.invoke(app, ["predict", "--text", "hi", "--model", str(tmp_path / "nope.pt")])
    assert r.exit_code == 2 and r.output.strip().startswith("error: checkpoint not found")
    assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1


def test_error_classes_are_importable_from_the_package():
    from mmsent import ImageLoadError, InputError, Pipeline  # noqa: F401
    from mmsent.data.images import ImageLoadError as Defined

    assert ImageLoadError is Defined and issubclass(InputError, Exception)


def test_info_and_help():
    r = runner.invoke(app, ["info"])
    assert r.exit_code == 0 and '"torch"' in r.output
    r = runner.invoke(app, ["--help"])
    for command in ("predict", "predict-batch", "train", "serve", "ui", "info", "prepare", "features"):
        assert command in r.output


def test_train_needs_exactly_one_target():
    r = runner.invoke(app, ["train"])
    assert r.exit_code != 0
