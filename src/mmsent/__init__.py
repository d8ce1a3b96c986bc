"""mmsent: multimodal (image + text) sentiment analysis of tweets on MVSA."""

from mmsent.data.labels import ID2LABEL, LABEL2ID, LABELS
from mmsent.version import __version__

__all__ = ["ID2LABEL", "LABEL2ID", "LABELS", "Pipeline", "__version__"]


def __getattr__(name: str):
    # `from mmsent import Pipeline` without importing torch for every `import mmsent`
    if name == "Pipeline":
        from mmsent.serving.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'mmsent' has no attribute {name!r}")
