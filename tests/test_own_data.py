"""`mmsent fit` on a small labelled file the test makes: a checkpoint every front end takes, a card
with its cross-validated score, and bad files refused with their rows, nothing written."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from typer.testing import CliRunner

from mmsent.cli import app
from mmsent.serving.pipeline import default_model_path

pytestmark = pytest.mark.skipif(not default_model_path().is_file(), reason="no shipped model")
runner = CliRunner()

WORDS = {"positive": ["love", "great", "happy", "wonderful", "best"],
         "negative": ["hate", "awful", "sad", "terrible", "worst"],
         "neutral": ["the", "meeting", "is", "at", "noon"]}


def labelled(tmp_path, n_per_class=8, images=True):
    rng = np.random.default_rng(0)
    rows = []
    for label, words in WORDS.items():
        shade = {"positive": (250, 200, 40), "negative": (20, 20, 60), "neutral": (128, 128, 128)}[label]
        for k in range(n_per_class):
            name = f"{label}{k}.jpg"
            if images:
                Image.fromarray(np.clip(np.array(shade) + rng.integers(-20, 20, (32, 32, 3)), 0, 255)
                                .astype(np.uint8)).save(tmp_path / name)
            rows.append({"text": " ".join(rng.choice(words, 4)), "image": name if images else "", "label": label})
    pd.DataFrame(rows).to_csv(tmp_path / "mine.csv", index=False)
    return tmp_path / "mine.csv"


def test_fit_writes_a_checkpoint_every_front_end_takes(tmp_path):
    src = labelled(tmp_path)
    out = tmp_path / "my_model.pt"
    r = runner.invoke(app, ["fit", str(src), "--out", str(out), "--folds", "3"])
    assert r.exit_code == 0, r.output
    assert "CV weighted F1" in r.output and out.is_file()
    card = out.with_suffix(".md").read_text()
    assert "24 labelled pairs" in card and "positive 8" in card and "± " in card
    import pandas as pd

    epochs = pd.read_csv(tmp_path / "my_model.training_metrics.txt", sep="\t")  # the source system's file
    assert set(epochs["run"]) == {"fold0", "fold1", "fold2", "final"}
    assert {f"dev_{k}_{w}" for k in ("precision", "recall", "f1") for w in WORDS} <= set(epochs.columns)
    assert epochs[epochs.run != "final"]["dev_loss"].notna().all() and epochs["train_loss"].notna().all()

    from mmsent.serving.pipeline import Pipeline

    pipe = Pipeline.load(out, device="cpu")
    answer = pipe.predict(text="love love great happy", image=tmp_path / "positive0.jpg")
    assert set(answer["probabilities"]) == set(WORDS)
    r = runner.invoke(app, ["predict", "--model", str(out), "--text", "hate awful sad", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["label"] in WORDS
    scored = tmp_path / "scored.csv"
    r = runner.invoke(app, ["predict-batch", str(src), "--out", str(scored), "--model", str(out), "--label-col", "label"])
    assert r.exit_code == 0, r.output
    assert "label: accuracy" in r.stdout  # its own training pairs: a sanity check, not a score
    from mmsent.serving.api import create_app

    assert create_app(model_path=out)  # `mmsent serve --model` builds on the same loader
    from mmsent.serving.ui import build_ui

    assert build_ui(pipe) is not None  # `mmsent ui --model`


def test_a_file_declares_its_own_label_set(tmp_path):
    src = labelled(tmp_path, images=False)
    df = pd.read_csv(src).replace({"label": {"positive": "joy", "negative": "anger", "neutral": "other"}})
    df.to_csv(src, index=False)
    out = tmp_path / "emotions.pt"
    r = runner.invoke(app, ["fit", str(src), "--out", str(out), "--folds", "3"])
    assert r.exit_code == 0, r.output
    from mmsent.serving.pipeline import Pipeline

    assert set(Pipeline.load(out, device="cpu").predict(text="love it")["probabilities"]) == {"anger", "joy", "other"}


@pytest.mark.parametrize("change, message", [
    (lambda df: df.drop(columns=["label"]), "no label column 'label'"),
    (lambda df: df.assign(label=["positive"] * len(df)), "one label only"),
    (lambda df: df.iloc[:-6], "too few pairs of {'neutral': 2}"),
    (lambda df: df.assign(image=["missing.jpg"] + list(df["image"][1:])), "row 2:"),
    (lambda df: df.assign(label=[""] + list(df["label"][1:])), "no label in row(s) 2"),
])
def test_bad_files_are_refused_with_their_rows_and_nothing_is_written(tmp_path, change, message):
    src = labelled(tmp_path)
    change(pd.read_csv(src, keep_default_na=False)).to_csv(src, index=False)
    out = tmp_path / "never.pt"
    r = runner.invoke(app, ["fit", str(src), "--out", str(out), "--folds", "3"])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not out.exists() and not out.with_suffix(".md").exists()
