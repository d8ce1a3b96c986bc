"""Calibrated probabilities: temperature scaling (Guo et al., 2017), fitted on cross-fitted
out-of-fold predictions, never on test.

One scalar T divides the model's log-probabilities before the softmax: it changes how confident
the model is, never which label it picks. T is fitted by minimising the negative log-likelihood of
held-out probabilities of models trained *the way the shipped model was* (cross-fitting: on each
fold's training part, for the final models' epoch count, no inner split), since the fold models of
cross-validation train on less data and stop earlier, and their temperature under-corrects the
refit. It is stored in the shipped checkpoint (``temperature``) and applied by the Pipeline, so
every front end returns the same calibrated ``score``. The model card shows, over the final seeds,
the expected calibration error with an interval, the negative log-likelihood and the Brier score on
test before and after, with a reliability diagram.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax


def scaled(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``probs`` (N, labels) with their log-probabilities divided by ``temperature``, renormalised."""
    return softmax(np.log(np.clip(probs, 1e-12, 1.0)) / temperature, axis=-1)


def nll(probs: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    logp = log_softmax(np.log(np.clip(probs, 1e-12, 1.0)) / temperature, axis=-1)
    return float(-logp[np.arange(len(labels)), labels].mean())


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] that minimises the negative log-likelihood of ``labels``."""
    probs, labels = np.asarray(probs, float), np.asarray(labels, int)
    if len(probs) == 0 or len(probs) != len(labels):
        raise ValueError("temperature scaling needs as many labels as predictions, and at least one")
    found = minimize_scalar(lambda log_t: nll(probs, labels, float(np.exp(log_t))), bounds=(np.log(0.05), np.log(20)),
                            method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


def brier(probs: np.ndarray, labels: np.ndarray) -> float:
    """Multi-class Brier score: the mean squared distance of the probabilities to the one-hot label."""
    probs = np.asarray(probs, float)
    return float(((probs - np.eye(probs.shape[1])[np.asarray(labels, int)]) ** 2).sum(1).mean())


def scores(probs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ECE (%), negative log-likelihood and Brier score of ``probs`` against ``labels``."""
    return {"ece": expected_calibration_error(probs, labels), "nll": nll(probs, labels, 1.0), "brier": brier(probs, labels)}


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins: each bin's pair count, mean confidence and accuracy."""
    return reliability_of(probs.max(1), probs.argmax(1) == labels, bins)


def reliability_of(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """:func:`reliability` from each prediction's confidence and whether it was right."""
    confidence, right = np.asarray(confidence, float), np.asarray(right, bool)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    return [{"low": float(edges[b]), "high": float(edges[b + 1]), "n": int((which == b).sum()),
             "confidence": float(confidence[which == b].mean()) if (which == b).any() else float("nan"),
             "accuracy": float(right[which == b].mean()) if (which == b).any() else float("nan")}
            for b in range(bins)]


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """ECE (%): the pair-weighted mean gap between confidence and accuracy over the bins."""
    probs = np.asarray(probs, float)
    return ece_of(probs.max(1), probs.argmax(1) == np.asarray(labels, int), bins)


def ece_of(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """:func:`expected_calibration_error` from each prediction's confidence and whether it was right."""
    table = reliability_of(confidence, right, bins)
    n = sum(b["n"] for b in table)
    return 100 * sum(b["n"] * abs(b["confidence"] - b["accuracy"]) for b in table if b["n"]) / max(n, 1)


def area(n: int) -> float:
    """A bin's marker area (points²) for its pair count."""
    return 8 + 0.5 * n


def reliability_figure(before: np.ndarray, after: np.ndarray, labels: np.ndarray, bins: int = 10):
    """Accuracy against confidence per bin, before and after scaling, with the diagonal of a
    perfectly calibrated model; marker area follows each bin's pair count."""
    from mmsent.evaluation.plots import WIDTH, figure

    fig, ax = figure(WIDTH * 0.7, 3.8)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=1, label="calibrated")
    for probs, name, marker in ((before, "before", "o"), (after, "after", "s")):
        table = [b for b in reliability(probs, labels, bins) if b["n"]]
        ece = expected_calibration_error(probs, labels, bins)
        line, = ax.plot([b["confidence"] for b in table], [b["accuracy"] for b in table], lw=1.2, marker=marker,
                        markersize=4, label=f"{name} scaling (ECE {ece:.1f} %)")  # the marker tells the legend
        ax.scatter([b["confidence"] for b in table], [b["accuracy"] for b in table], color=line.get_color(),
                   s=[area(b["n"]) for b in table], marker=marker, alpha=0.6, clip_on=False, zorder=3)
    for n in (20, 100):  # a key for the marker area
        ax.scatter([], [], s=area(n), color="0.6", alpha=0.6, label=f"{n} pairs in the bin")
    ax.set(xlabel="confidence (probability of the predicted label)", ylabel="accuracy on test",
           xlim=(0.3, 1.02), ylim=(0, 1.04))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, fontsize=8, ncol=2)
    return fig
