"""Reference classifiers every reader expects, with a scikit-learn style fit / predict_proba; each
files itself in :data:`BASELINES` where it is defined, as a model family does in its registry."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from mmsent.data.labels import LABEL2ID, LABELS
from mmsent.registry import Registry

BASELINES = Registry("baseline")  # name in params.yaml (a model's family) → class


@BASELINES.register("majority")
class MajorityClass:
    """Always the most frequent training label."""

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "MajorityClass":
        self.probs_ = np.bincount(np.asarray(labels), minlength=len(LABELS)) / len(labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(LABELS)))
        out[:, int(self.probs_.argmax())] = 1.0
        return out


@BASELINES.register("vader")
class VaderRule:
    """VADER compound score: >= 0.05 positive, <= -0.05 negative, else neutral (its authors' cut-offs)."""

    def __init__(self, threshold: float = 0.05) -> None:
        self.threshold = threshold

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "VaderRule":
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self.analyzer_ = SentimentIntensityAnalyzer()
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(LABELS)))
        for row, text in enumerate(texts):
            score = self.analyzer_.polarity_scores(text)["compound"]
            label = "positive" if score >= self.threshold else "negative" if score <= -self.threshold else "neutral"
            out[row, LABEL2ID[label]] = 1.0
        return out


@BASELINES.register("tfidf_lr")
class TfidfLogReg:
    """Word 1-2-gram TF-IDF + logistic regression."""

    def __init__(self, C: float = 4.0, seed: int = 0, min_df: int = 2) -> None:
        self.pipeline = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=min_df, sublinear_tf=True, lowercase=True),
            LogisticRegression(C=C, max_iter=2000, random_state=seed))

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> "TfidfLogReg":
        self.pipeline.fit(list(texts), np.asarray(labels))
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        probs = np.zeros((len(texts), len(LABELS)))
        probs[:, self.pipeline.classes_] = self.pipeline.predict_proba(list(texts))
        return probs

