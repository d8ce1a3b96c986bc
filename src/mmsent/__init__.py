"""mmsent: multimodal (image + text) sentiment analysis of tweets on MVSA."""

from mmsent.data.labels import ID2LABEL, LABEL2ID, LABELS
from mmsent.version import __version__

__all__ = ["ID2LABEL", "ImageLoadError", "InputError", "LABEL2ID", "LABELS", "Pipeline", "__version__", "test_model"]

# `from mmsent import Pipeline, InputError, ImageLoadError` without importing torch for every `import mmsent`
_LAZY = {"Pipeline": "mmsent.serving.pipeline", "InputError": "mmsent.serving.prepared",
         "ImageLoadError": "mmsent.data.images", "test_model": "mmsent.serving.compat"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mmsent' has no attribute {name!r}")
