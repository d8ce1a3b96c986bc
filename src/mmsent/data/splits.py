"""The other MVSA-Single protocols' cuts (label agreement, Cheema's folds) of the clean pairs: data
only, so the statistics and the protocols stage read the same cut without importing each other."""

from __future__ import annotations

import pandas as pd

from mmsent.config import Params
from mmsent.data.mvsa import PARTS, agreement_labels, load_prepared, split_assignment
from mmsent.paths import PREPARED_DIR


def protocol_parts(params: Params, scheme: str, fold: int = 1) -> dict[str, pd.DataFrame]:
    """MVSA-Single's clean pairs cut into train/dev/test by ``scheme`` (agreement or cheema)."""
    table = load_prepared(params.path(PREPARED_DIR) / "single.parquet")
    clean = table[table["label_id"].notna()]
    assign = split_assignment(params.data.root, "single", scheme, fold)
    missing = sorted(set(assign) - set(clean["id"].astype(str)))
    if missing:
        raise ValueError(f"{scheme} split names {len(missing)} pair(s) the cleaning rule dropped, e.g. {missing[:3]}")
    if scheme == "agreement":
        stored = agreement_labels(params.data.root)
        ours = dict(zip(clean["id"].astype(str), clean["label"]))
        wrong = [i for i in stored if ours[i] != stored[i]]
        if wrong:
            raise ValueError(f"{len(wrong)} agreement-split label(s) differ from the cleaning rule's, e.g. {wrong[:3]}")
    part = clean["id"].astype(str).map(assign)
    return {name: clean[(part == name).to_numpy()].reset_index(drop=True) for name in PARTS}


def cheema_fold_numbers(params: Params) -> list[int]:
    """``protocols.cheema_folds``: which of Cheema's 10 folds are run (all by default)."""
    return [int(f) for f in params.protocols.cheema_folds]
