"""mmsent: multimodal (image + text) sentiment analysis of tweets on MVSA."""

__version__ = "0.1.0"

from mmsent.labels import ID2LABEL, LABEL2ID, LABELS  # noqa: E402

__all__ = ["ID2LABEL", "LABEL2ID", "LABELS", "__version__"]
