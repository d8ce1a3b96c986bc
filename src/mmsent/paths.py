"""Where each pipeline stage writes, relative to the folder of ``params.yaml`` (``Params.path``).

A trained model's artifacts sit in its stage group's folders (``models/<group>/<model>``,
``data/predictions/<group>/<model>``, ``metrics/<group>``, ``metrics/scores/<group>``,
``metrics/history/<group>``): one output folder per group, which is what lets dvc.yaml declare
every training stage by one ``foreach`` over ``params.yaml``'s ``groups``. :class:`RunPaths` is the
only place that spells that layout out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MODELS_DIR = Path("models")
METRICS_DIR = Path("metrics")
PREDICTIONS_DIR = Path("data/predictions")
BEST_DIR = Path("params")  # the ablation's chain (params/ablation_chain.yaml)
TUNED_DIR = Path("params/tuned")  # the tune stage's best_<model>.yaml
TIMINGS_DIR = Path("metrics/timings")  # a cache stage's wall-clock, kept out of the cache it describes
SCORES_DIR = Path("metrics/scores")  # numbers only, for `dvc metrics show`; the full record sits beside
HISTORY_DIR = Path("metrics/history")  # per-epoch curves, for `dvc plots show`
FEATURES_DIR = Path("data/features")
FIGURES_DIR = Path("reports/figures")
PREPARED_DIR = Path("data/prepared")
TABLES_DIR = Path("reports/tables")
FOLDS_DIR = Path("data/folds")
ASSETS = Path("src/mmsent/assets")
OCR_DIR = "data/ocr"
UNGROUPED = "ungrouped"  # a name neither models nor the ablation lists: no stage writes there, so it has no files
ABLATION_GROUP = "ablation"  # the lever rows: trained by the ablation stage from params/ablation_chain.yaml


def best_path(params, model: str) -> Path:
    """The tune stage's choice for ``model``: params/tuned/best_<model>.yaml."""
    return params.path(TUNED_DIR) / f"best_{model}.yaml"


def group_of(raw_models: dict[str, Any], ablation_rows: list[dict[str, Any]], model: str) -> str:
    """The stage group that trains ``model``: its ``group`` in params.yaml, or the ablation's for a lever row."""
    if model in raw_models:
        return str(raw_models[model]["group"])
    if any(row.get("model") == model for row in ablation_rows):
        return ABLATION_GROUP
    return UNGROUPED


class RunPaths:
    """Every trained model's files, for one project (``params``). ``model`` is a model's name or its
    spec (anything with ``name`` and ``group``: a spec the params do not list, e.g. a test's)."""

    def __init__(self, params) -> None:
        self.params = params

    def group(self, model) -> str:
        if hasattr(model, "group"):
            return str(model.group)
        return group_of(self.params.models, self.params.ablation.rows, model)

    def _under(self, base: Path, model) -> Path:
        return self.params.path(base) / self.group(model)

    def models(self, model, dataset: str) -> Path:
        return self._under(MODELS_DIR, model) / _name(model) / dataset

    def checkpoint(self, model: str, dataset: str, seed: int | str) -> Path:
        """``seed`` an int (a final model) or a name such as ``fold3``."""
        name = f"seed{seed}" if isinstance(seed, int) else str(seed)
        return self.models(model, dataset) / f"{name}.pt"

    def predictions(self, model, dataset: str) -> Path:
        return self._under(PREDICTIONS_DIR, model) / _name(model) / dataset

    def record(self, model, dataset: str) -> Path:
        """The full record of a model's runs on a dataset (metrics over seeds, CV, per-seed rows)."""
        return self._under(METRICS_DIR, model) / f"{_name(model)}_{dataset}.json"

    def score(self, model, dataset: str) -> Path:
        """Its numbers only, for ``dvc metrics show`` / ``dvc exp show``."""
        return self._under(SCORES_DIR, model) / f"{_name(model)}_{dataset}.json"

    def history(self, model, dataset: str) -> Path:
        return self._under(HISTORY_DIR, model) / f"{_name(model)}_{dataset}.csv"

    def training_metrics(self, model, dataset: str) -> Path:
        """The per-epoch, per-class file the source system wrote (``training_metrics.txt``)."""
        return self.models(model, dataset) / "training_metrics.txt"



def _name(model) -> str:
    return str(getattr(model, "name", model))
