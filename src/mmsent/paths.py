"""Where each pipeline stage writes, relative to the folder of ``params.yaml`` (``Params.path``)."""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")
PREDICTIONS_DIR = Path("data/predictions")
BEST_DIR = Path("params")
TIMINGS_DIR = Path("metrics/timings")  # a cache stage's wall-clock, kept out of the cache it describes
SCORES_DIR = Path("metrics/scores")  # numbers only, for `dvc metrics show`; the full record sits beside
FEATURES_DIR = Path("data/features")
FIGURES_DIR = Path("reports/figures")
PREPARED_DIR = Path("data/prepared")
TABLES_DIR = Path("reports/tables")
FOLDS_DIR = Path("data/folds")
ASSETS = Path("src/mmsent/assets")
OCR_DIR = "data/ocr"
