"""mmsent: multimodal (image + text) sentiment analysis of tweets on MVSA."""

__version__ = "0.1.0"

from mmsent.labels import ID2LABEL, LABEL2ID, LABELS  # noqa: E402

__all__ = ["ID2LABEL", "LABEL2ID", "LABELS", "Pipeline", "__version__"]


def __getattr__(name: str):
    # `from mmsent import Pipeline` without importing torch for every `import mmsent`
    if name == "Pipeline":
        from mmsent.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'mmsent' has no attribute {name!r}")
