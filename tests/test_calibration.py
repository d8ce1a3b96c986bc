"""Temperature scaling: fitted on out-of-fold predictions, it fixes over-confidence without changing
a single label, and every front end applies the checkpoint's temperature."""

import numpy as np
import pytest

from mmsent.evaluation.calibration import expected_calibration_error, fit_temperature, reliability, scaled


def _overconfident(n=3000, seed=0):
    """Labels drawn from true probabilities; the model reports them sharpened (log-probs × 3)."""
    rng = np.random.default_rng(seed)
    true = rng.dirichlet([1.5, 1.0, 1.0], n)
    labels = np.array([rng.choice(3, p=p) for p in true])
    return scaled(true, 1 / 3), labels, true


def test_temperature_undoes_overconfidence_and_keeps_every_label():
    probs, labels, _ = _overconfident()
    t = fit_temperature(probs, labels)
    assert t == pytest.approx(3.0, rel=0.15)
    after = scaled(probs, t)
    assert (after.argmax(1) == probs.argmax(1)).all()
    assert np.allclose(after.sum(1), 1)
    assert expected_calibration_error(after, labels) < 0.5 * expected_calibration_error(probs, labels)


def test_calibrated_predictions_keep_a_temperature_near_one():
    _, labels, true = _overconfident(seed=1)
    assert fit_temperature(true, labels) == pytest.approx(1.0, abs=0.15)


def test_reliability_bins_count_every_pair_and_ece_is_zero_when_confidence_is_accuracy():
    probs = np.array([[0.8, 0.1, 0.1]] * 10)
    labels = np.array([0] * 8 + [1] * 2)  # 80 % right at 80 % confidence
    table = reliability(probs, labels)
    assert sum(b["n"] for b in table) == 10
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="as many labels"):
        fit_temperature(probs, labels[:3])


def test_the_pipeline_applies_the_checkpoint_temperature():
    from mmsent.serving.pipeline import Pipeline, default_model_path

    if not default_model_path().is_file():
        pytest.skip("no shipped model")
    pipe = Pipeline.load(device="cpu")
    shipped = pipe.predict(text="what a lovely sunny day")
    pipe.temperature = 1.0
    raw = pipe.predict(text="what a lovely sunny day")
    pipe.temperature = 5.0
    flat = pipe.predict(text="what a lovely sunny day")
    assert flat["label"] == raw["label"] and flat["score"] < raw["score"]  # same label, less sure
    assert abs(sum(flat["probabilities"].values()) - 1) < 1e-5
    t = float(pipe.payload.get("temperature", 1.0))
    assert shipped["score"] == pytest.approx(scaled(np.array([list(raw["probabilities"].values())]), t).max(),
                                             abs=1e-4)


def test_brier_and_nll_score_a_sure_right_model_zero_and_a_uniform_one_as_known():
    from mmsent.evaluation.calibration import brier, scores

    labels = np.array([0, 1, 2, 1])
    sure = np.eye(3)[labels]
    assert brier(sure, labels) == pytest.approx(0.0) and scores(sure, labels)["nll"] == pytest.approx(0.0, abs=1e-9)
    uniform = np.full((4, 3), 1 / 3)
    assert brier(uniform, labels) == pytest.approx(2 / 3)  # (2/3)^2 + 2 (1/3)^2
    assert scores(uniform, labels)["nll"] == pytest.approx(np.log(3))
