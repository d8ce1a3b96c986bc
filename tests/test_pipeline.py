"""The prediction pipeline on the shipped default model (real offline encoders)."""

import io
import re

import numpy as np
import pytest
from PIL import Image

from mmsent.data.images import ImageLoadError, NotAnImageError
from mmsent.serving.prepared import InputError
from mmsent.serving.pipeline import Pipeline, default_model_path


pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


@pytest.fixture(scope="session")
def pipe():
    return Pipeline.load(device="cpu")


@pytest.fixture(scope="session")
def sunny_jpeg():
    buf = io.BytesIO()
    arr = np.zeros((120, 160, 3), np.uint8)
    arr[..., 0], arr[..., 1] = 250, 200  # warm orange
    Image.fromarray(arr).save(buf, "JPEG")
    return buf.getvalue()


def test_prediction_has_labels_probabilities_and_weights(pipe, sunny_jpeg):
    res = pipe.predict(text="what a day :)", image=sunny_jpeg)
    assert res["label"] in ("positive", "neutral", "negative")
    assert set(res["probabilities"]) == {"positive", "neutral", "negative"}
    assert sum(res["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert res["modalities"] == ["text", "image"]
    assert sum(res["modality_weights"].values()) == pytest.approx(1, abs=1e-5)


def test_known_examples_give_stable_sensible_outputs(pipe):
    happy = pipe.predict(text="I love this so much, best day ever! 😍")
    sad = pipe.predict(text="Devastated. Rest in peace, you will be missed so much 💔")
    assert happy["label"] == "positive" and sad["label"] == "negative"
    assert pipe.predict(text="I love this so much, best day ever! 😍") == happy  # deterministic


def test_every_image_input_type_gives_the_same_answer(pipe, sunny_jpeg, tmp_path):
    path = tmp_path / "x.jpg"
    path.write_bytes(sunny_jpeg)
    pil = Image.open(io.BytesIO(sunny_jpeg)).convert("RGB")
    answers = [pipe.predict(image=src)["probabilities"] for src in (path, str(path), sunny_jpeg, pil, np.asarray(pil))]
    for other in answers[1:]:
        assert other == pytest.approx(answers[0], abs=1e-5)


def test_missing_modalities(pipe, sunny_jpeg):
    text_only = pipe.predict(text="so happy today")
    assert text_only["modalities"] == ["text"] and text_only["modality_weights"]["image"] == 0
    image_only = pipe.predict(image=sunny_jpeg, text="   ")
    assert image_only["modalities"] == ["image"] and image_only["modality_weights"]["text"] == 0


@pytest.mark.parametrize("kwargs,error,match", [
    ({}, InputError, "nothing to score"),
    ({"text": ""}, InputError, "nothing to score"),
    ({"text": 42}, InputError, "must be a string"),
    ({"text": "x" * 5000}, InputError, "limit is 2000"),
    ({"image": b"<html>no</html>"}, NotAnImageError, "not a recognised image"),
    ({"image": "/no/such/file.jpg"}, ImageLoadError, "not found"),
])
def test_bad_input_is_a_clear_error(pipe, kwargs, error, match):
    with pytest.raises(error, match=match):
        pipe.predict(**kwargs)


def test_batch_scores_good_pairs_and_reports_bad_ones(pipe, sunny_jpeg):
    out = pipe.predict_batch([{"text": "great"}, {"image": b"junk"}, {"text": "awful", "image": sunny_jpeg},
                              "not a dict", {}], batch_size=2)
    assert [("error" in r) for r in out] == [False, True, False, True, True]
    single = pipe.predict(text="awful", image=sunny_jpeg)
    assert out[2]["probabilities"] == pytest.approx(single["probabilities"], abs=1e-5)


def test_explanations_for_words_and_regions(pipe, sunny_jpeg):
    res = pipe.predict(text="love love this great day", image=sunny_jpeg, explain=True)
    exp = res["explanation"]
    assert [t["token"] for t in exp["tokens"]] == ["love", "love", "this", "great", "day"]
    assert np.asarray(exp["image_heatmap"]).shape == (4, 4)
    assert any(abs(t["attribution"]) > 0 for t in exp["tokens"])


def test_model_card_ships_beside_the_model_and_matches_it(pipe):
    card = default_model_path().with_name("MODEL_CARD.md").read_text()
    assert f"`{pipe.payload['model_name']}`" in card and f"seed {pipe.payload['seed']}" in card
    assert re.search(r"mean ± std over \d+ seeds", card) and "Levers chosen by cross-validation, never on test" in card
    assert default_model_path().stat().st_size < 10 * 1024 * 1024  # small enough to ship in the package


def test_rescoring_the_shipped_checkpoint_alone_reproduces_its_test_metrics(real_root):
    """An independent re-score: the checkpoint, the raw MVSA test pairs, nothing from the pipeline's caches."""
    from mmsent.data.mvsa import read_single
    from mmsent.evaluation.metrics import compute_metrics
    from mmsent.data.labels import LABEL2ID
    from mmsent.data.mvsa import clmlf_split

    pipe = Pipeline.load(device="cpu")
    split = clmlf_split(real_root, "single")
    test = [p for p in read_single(real_root) if p.label is not None and split.get(p.id) == "test"]
    out = pipe.predict_batch([{"text": p.text_raw, "image": real_root / p.image} for p in test], batch_size=64)
    metrics = compute_metrics([p.label_id for p in test], [LABEL2ID[r["label"]] for r in out])
    assert metrics["n"] == 450
    assert metrics["accuracy"] == pytest.approx(pipe.payload["test_metrics"]["accuracy"], abs=0.5)
