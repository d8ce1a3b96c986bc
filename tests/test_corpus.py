"""The checked-in hostile inputs (tests/corpus, made by tools/make_corpus.py) through every door:
the data loader, the Python API, the CLI batch mode and the REST API."""

import json
from pathlib import Path

import pytest

from mmsent.data.images import CorruptImageError, ImageLoadError, ImageTooLargeError, NotAnImageError, open_image
from mmsent.serving.prepared import InputError
from mmsent.serving.pipeline import Pipeline, default_model_path
from mmsent.data.text import decode_bytes, normalize_tweet

CORPUS = Path(__file__).parent / "corpus"
BAD_IMAGES = {
    "truncated.jpg": CorruptImageError, "lying_header.png": ImageLoadError,
    "bomb_20000x20000.png": ImageTooLargeError, "zero_bytes.jpg": NotAnImageError,
    "svg_as_image.jpg": NotAnImageError, "html_as_image.png": NotAnImageError,
}
needs_model = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


@pytest.mark.parametrize("name,error", BAD_IMAGES.items())
def test_loader_gives_each_bad_image_its_clear_error(name, error):
    with pytest.raises(error):
        open_image(CORPUS / name)


def test_texts_decode_and_normalise():
    assert decode_bytes((CORPUS / "mixed_encodings.txt").read_bytes()).encoding == "cp1252"
    assert normalize_tweet(decode_bytes((CORPUS / "control_chars.txt").read_bytes()).text) == "ok [31mred"
    assert normalize_tweet((CORPUS / "emoji_only.txt").read_text()) == \
        "face with tears of joy face with tears of joy fire hundred points"


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.load(device="cpu")


@needs_model
def test_python_api(pipe):
    for name, error in BAD_IMAGES.items():
        with pytest.raises(error):
            pipe.predict(text="fine text", image=CORPUS / name)
    with pytest.raises(InputError, match="limit"):
        pipe.predict(text=(CORPUS / "huge_text.txt").read_text())
    assert pipe.predict(text=(CORPUS / "emoji_only.txt").read_text(), image=CORPUS / "good.jpg")["label"]


@needs_model
def test_cli_batch_lists_every_bad_row_and_scores_the_rest(tmp_path):
    from typer.testing import CliRunner

    from mmsent.cli import app

    rows = ["text,image"] + [f"x,{CORPUS / n}" for n in BAD_IMAGES] + [f"ok,{CORPUS / 'good.jpg'}", "🔥🔥,"]
    src = tmp_path / "in.csv"
    src.write_text("\n".join(rows) + "\n")
    r = CliRunner().invoke(app, ["predict-batch", str(src), "--out", str(tmp_path / "out.csv")])
    summary = json.loads(r.stdout.splitlines()[0])
    assert (summary["rows"], summary["bad"], summary["scored"]) == (8, 6, 2)


@needs_model
def test_rest_api(pipe):
    from fastapi.testclient import TestClient

    from mmsent.serving.api import create_app

    client = TestClient(create_app(pipeline=pipe), raise_server_exceptions=False)
    for name in BAD_IMAGES:
        r = client.post("/predict", files={"image": (name, (CORPUS / name).read_bytes())})
        assert 400 <= r.status_code < 500 and r.json()["detail"], name
    assert client.post("/predict", data={"text": (CORPUS / "huge_text.txt").read_text()}).status_code == 422
    assert client.get("/health").status_code == 200
