"""The exploration notebook's logic (mmsent.evaluation.explore) on the tiny MVSA, a stand-in model
with known answers, the shipped model, and a slice of the real data."""

import numpy as np
import pandas as pd
import pytest

from mmsent.config import load_params
from mmsent.data import prepare
from mmsent.evaluation import explore
from mmsent.serving.pipeline import Pipeline, default_model_path

from conftest import write_params

shipped = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")


@pytest.fixture
def params(tmp_path, tiny_root):
    return load_params(write_params(tmp_path / "project", tiny_root))


@pytest.fixture
def table(params):
    return explore.load_table(params)


@pytest.fixture(scope="module")
def pipe():
    return Pipeline.load(device="cpu")


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["id"])


def controls(widget) -> dict:
    return {w._kwarg: w for w in widget.kwargs_widgets}


def image_count(fig) -> int:
    return sum(len(ax.images) for ax in fig.axes)


class StandIn:
    """A model with fixed answers per image file name: {stem: probabilities}, or an error."""

    id2label = {0: "positive", 1: "neutral", 2: "negative"}

    def __init__(self, answers: dict[str, list[float] | None]) -> None:
        self.answers = answers

    def predict_batch(self, pairs, batch_size=32):
        out = []
        for pair in pairs:
            probs = self.answers[pair["image"].rsplit("/", 1)[-1].removesuffix(".jpg")]
            if probs is None:
                out.append({"error": "corrupt", "error_type": "CorruptImageError"})
                continue
            named = dict(zip(self.id2label.values(), probs))
            label = max(named, key=named.get)
            out.append({"label": label, "score": named[label], "probabilities": named,
                        "modalities": ["text", "image"], "modality_weights": {"text": 0.3, "image": 0.7}})
        return out


def test_the_table_is_prepared_when_missing_and_carries_the_filter_columns(params, table):
    assert (params.path("data/prepared") / "single.parquet").is_file()  # made by the prepare stage's function
    assert len(table) == 7 and "has_ocr" not in table  # the ocr stage has not run
    row = table.set_index("id")
    assert not row.loc["2", "agree"] and row.loc["6", "agree"]  # negative text, neutral image
    assert row.loc["6", "duplicate"] and row.loc["7", "duplicate"] and not row.loc["1", "duplicate"]
    assert row.loc["1", "words"] == 6  # "What a lovely day #HappyDays :)"
    assert row.loc["4", "image_path"] == str(params.data.root / "single/images/4.jpg")


def test_filters_select_the_right_rows(table):
    f = explore.filter_pairs
    assert ids(f(table)) == {"1", "2", "3", "4", "5", "6", "7"}
    assert ids(f(table, label="positive")) == {"1", "3", "7"}  # the pair label; 5 has none (dropped)
    assert ids(f(table, split="test")) == {"6", "7"}
    assert ids(f(table, agree=False)) == {"2", "3", "5"}
    assert ids(f(table, duplicate=True)) == {"6", "7"}
    assert ids(f(table, words=(0, 3))) == {"3", "4", "5", "6"}
    assert ids(f(table, label="positive", split="test", agree=True, words=(6, 6))) == {"7"}
    assert f(table, label="neutral", split="train").empty
    with pytest.raises(ValueError, match="has_ocr"):
        f(table, has_ocr=True)


def test_ocr_text_is_added_and_filtered_once_the_ocr_stage_has_run(params):
    out = params.path("data/ocr")
    out.mkdir(parents=True)
    pd.DataFrame({"id": ["1", "2", "6"], "ocr_text": ["SALE 50%", "", "hello"], "boxes": [1, 0, 1]}).to_parquet(
        out / "single.parquet")
    table = explore.load_table(params)
    assert ids(explore.filter_pairs(table, has_ocr=True)) == {"1", "6"}
    assert ids(explore.filter_pairs(table, has_ocr=False)) == {"2", "3", "4", "5", "7"}  # 5: dropped, never read
    assert "has_ocr" in controls(explore.browser(table))


def test_browse_draws_each_chosen_pair_with_its_image(table):
    fig = explore.browse(table, n=3, seed=1, split="train")
    assert image_count(fig) == 3
    assert fig.get_suptitle() == "3 of 3 pairs (split=train)"
    data, kind = explore.figure_bytes(fig)  # photos go out as JPEG
    assert kind == "jpeg" and data[:2] == b"\xff\xd8"
    empty = explore.browse(table, label="neutral", split="train")
    assert image_count(empty) == 0 and any("no pair matches" in t.get_text() for t in empty.texts)
    explore.plt.close(empty)


def test_the_browser_has_a_control_per_filter_and_draws_nothing_until_asked(table):
    widget = explore.browser(table)
    assert set(controls(widget)) == {"label", "split", "agree", "duplicate", "words", "seed"}
    assert controls(widget)["split"].options == (("any", None), ("dev", "dev"), ("dropped", "dropped"),
                                                 ("test", "test"), ("train", "train"))
    assert controls(widget)["words"].max == 6
    assert widget.manual and widget.out.outputs == ()  # an executed notebook holds no widget output


def test_the_error_table_holds_only_wrong_predictions_most_confident_first(table):
    # train: 1 positive, 2 negative, 3 positive; dev: 4 negative
    model = StandIn({"1": [0.3, 0.1, 0.6], "2": [0.9, 0.05, 0.05], "3": [0.7, 0.2, 0.1], "4": None})
    scored = explore.score_pairs(model, table[table["split"].isin(["train", "dev"])])
    assert scored["predicted"].tolist()[:3] == ["negative", "positive", "positive"]
    assert pd.isna(scored.loc[3, "predicted"]) and scored.loc[3, "error"] == "corrupt"
    assert np.isnan(scored.loc[3, "p_positive"])
    assert np.allclose(scored[["p_positive", "p_neutral", "p_negative"]].iloc[:3].sum(axis=1), 1)
    errors = explore.error_table(scored)
    assert list(errors["id"]) == ["2", "1"]  # 0.9 sure of the wrong label before 0.6; 3 was right; 4 unscored
    assert (errors["predicted"] != errors["label"]).all()
    assert errors["p_wrong"].tolist() == [0.9, 0.6] and errors["p_gold"].tolist() == [0.05, 0.3]
    metrics = explore.split_metrics(scored)
    assert metrics["n"] == 3 and metrics["accuracy"] == pytest.approx(100 / 3)
    assert explore.per_class_table(metrics).loc["positive", "support"] == 2
    assert explore.calibration(scored)["mean_score"] == pytest.approx(100 * (0.6 + 0.9 + 0.7) / 3)
    explore.plt.close(explore.confusion_figure(metrics, "stand-in"))


def test_calibration_is_zero_for_a_model_as_sure_as_it_is_right():
    scored = pd.DataFrame({"label": ["positive"] * 4, "predicted": ["positive"] * 3 + ["negative"],
                           "score": [0.75] * 4})
    assert explore.calibration(scored) == {"mean_score": 75.0, "accuracy": 75.0, "ece": 0.0}


def test_text_is_drawn_in_glyphs_the_figure_font_has():
    assert explore.printable("so happy 😍 today", 80, 2) == "so happy :smiling_face_with_heart-eyes: today"
    assert explore.printable("price $5", 80, 1) == r"price \$5"  # no mathtext
    assert explore.printable("\u6211 love", 80, 1) == "? love"  # CJK: not in the figure font
    assert explore.printable("word " * 50, 20, 2).count("\n") == 1
    assert explore.printable("", 20, 2) == "(no text)"


def test_the_readers_image_is_found_as_given_or_in_the_mvsa_folder(params, tmp_path):
    assert explore.resolve_image(None, params) is None
    assert explore.resolve_image("single/images/6.jpg", params) == params.data.root / "single/images/6.jpg"
    own = tmp_path / "own.jpg"
    own.write_bytes(b"x")
    assert explore.resolve_image(str(own), params) == own


@shipped
def test_the_shipped_model_scores_and_explains_the_test_pairs(table, pipe):
    scored = explore.score_split(pipe, table, "test")
    assert list(scored["id"]) == ["6", "7"] and (scored["error"] == "").all()
    assert np.allclose(scored[["p_positive", "p_neutral", "p_negative"]].sum(axis=1), 1, atol=1e-5)
    weights = scored[[c for c in scored if c.startswith("w_")]]
    assert {"w_text", "w_image"} <= set(weights) and np.allclose(weights.sum(axis=1), 1, atol=1e-5)
    row = scored.iloc[1]
    result = explore.explain_pair(pipe, row["text_raw"], row["image_path"])
    assert sum(result["probabilities"].values()) == pytest.approx(1, abs=1e-5)
    assert [t["token"] for t in result["explanation"]["tokens"]][:2] == ["What", "a"]
    fig = explore.explanation_figure(result, row["text_raw"], row["image_path"],
                                     explore.pair_heading(result, {"mean_score": 72, "accuracy": 70, "ece": 3.9}))
    assert image_count(fig) == 1 and "uncalibrated softmax" in fig.get_suptitle()
    bars = [ax for ax in fig.axes if ax.patches]
    assert len(bars) == 3  # probabilities, modality weights, words
    explore.plt.close(fig)


@pytest.mark.integration
@shipped
def test_a_real_slice_browses_scores_and_explains(real_root, tmp_path, pipe):
    params = load_params(write_params(tmp_path, real_root))
    prepare.run(params, limit=30, progress=False)
    table = explore.load_table(params)
    assert len(table) == 30 and table["image_path"].map(lambda p: p.endswith(".jpg")).all()
    fig = explore.browse(table, n=8, agree=True)
    assert image_count(fig) == 8
    explore.plt.close(fig)
    scored = explore.score_pairs(pipe, explore.filter_pairs(table, split="train").head(6))
    probabilities = scored[["p_positive", "p_neutral", "p_negative"]]
    assert (scored["error"] == "").all() and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    errors = explore.error_table(scored)
    assert errors["p_wrong"].is_monotonic_decreasing
    row = scored.iloc[0]
    result = explore.explain_pair(pipe, row["text_raw"], row["image_path"])
    assert len(result["explanation"]["image_heatmap"]) == result["explanation"]["image_grid"]
    explore.plt.close(explore.explanation_figure(result, row["text_raw"], row["image_path"], "real", pipe.image_size))
