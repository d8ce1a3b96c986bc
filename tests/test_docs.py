"""One source for every number: the documents a reader opens hold the generated tables, state the
seed counts params.yaml sets, and print no `nan`."""

import re
from pathlib import Path

import pytest

from mmsent.config import load_params
from mmsent.io import read_block
from mmsent.training.protocol import protocol_config
from mmsent.training.specs import seeds

REPO = Path(__file__).resolve().parents[1]
READ = ["README.md", "reports/REPORT.md", "reports/results.md", "reports/ablation.md", "reports/data.md",
        "src/mmsent/assets/MODEL_CARD.md", "docs/protocol.md", "docs/levers.md"]


@pytest.mark.parametrize("doc, block, table", [("README.md", "results", "reports/tables/readme_results.md"),
                                               ("README.md", "expect", "reports/tables/readme_expect.md"),
                                               ("docs/protocol.md", "cv-estimators", "reports/tables/cv_estimators.md")])
def test_documents_hold_the_generated_tables(doc, block, table):
    generated = (REPO / table).read_text(encoding="utf-8")
    assert read_block(REPO / doc, block) == generated, f"{doc} is out of step with {table}: run `mmsent results`"


def test_documents_state_the_seed_counts_params_sets():
    params = load_params(REPO / "params.yaml")
    allowed = {len(protocol_config(params).final_seeds), len(seeds(params))}
    for doc in READ:
        text = (REPO / doc).read_text(encoding="utf-8")
        for count in re.findall(r"\b(\d+) (?:final )?seeds\b", text):
            assert int(count) in allowed, (doc, count)


def test_no_report_prints_nan():
    for doc in READ + [str(p.relative_to(REPO)) for p in (REPO / "reports").glob("*.md")]:
        assert not re.search(r"\bnan\b", (REPO / doc).read_text(encoding="utf-8")), doc
