import pandas as pd
import pytest

from mmsent.data import prepare
from mmsent.data.mvsa import DataRootError, cheema_split, clmlf_split, load_prepared, majority, read_multiple, read_single


def test_single_reader_decodes_and_cleans(tiny_root):
    pairs = {p.id: p for p in read_single(tiny_root)}
    assert len(pairs) == 7
    assert pairs["3"].encoding == "gbk" and pairs["3"].text_raw == "我爱你 …"
    assert pairs["4"].encoding == "cp1252" and "Café €" in pairs["4"].text_raw
    assert pairs["2"].label == "negative" and pairs["2"].label_id == 2  # negative + neutral
    assert pairs["3"].label == "positive"  # neutral text + positive image
    assert pairs["5"].label is None and pairs["5"].label_id is None  # positive vs negative
    assert pairs["2"].text == "@user : so saad today"
    assert pairs["1"].image == "single/images/1.jpg"


def test_multiple_reader_majority_vote_text_only(tiny_root):
    pairs = {p.id: p for p in read_multiple(tiny_root)}
    assert "12" not in pairs  # no image majority
    assert pairs["10"].label == "positive" and pairs["10"].image is None
    assert pairs["11"].text_label == "negative" and pairs["11"].image_label == "neutral"
    assert pairs["13"].label is None  # positive text vs negative image
    assert pairs["14"].encoding == "missing" and pairs["14"].text_raw == ""
    assert majority(["a", "b", "c"]) is None and majority(["a", "b", "a"]) == "a"


def test_clmlf_and_cheema_splits(tiny_root):
    assert clmlf_split(tiny_root, "single") == {"1": "train", "2": "train", "3": "train",
                                                "4": "dev", "6": "test", "7": "test"}
    # cheema files hold row indices into valid_pairlist.txt, translated to MVSA ids
    assert cheema_split(tiny_root, "single", 3) == {"1": "train", "2": "train", "3": "train",
                                                    "4": "dev", "6": "test", "7": "test"}


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(DataRootError, match="MMSENT_DATA_ROOT"):
        read_single(tmp_path / "nowhere")


def test_prepare_stage_on_tiny_data(tiny_params):
    summary = prepare.run(tiny_params, progress=False)
    s = summary["single"]
    assert (s["raw_pairs"], s["clean_pairs"], s["dropped_conflicts"]) == (7, 6, 1)
    assert s["decoding"] == {"utf-8": 5, "gbk": 1, "cp1252": 1}
    assert s["splits"]["train"]["n"] == 3 and s["splits"]["test"]["n"] == 2
    df = load_prepared(tiny_params.path("data/prepared/single.parquet"))
    assert set(df.loc[df["leak"], "id"]) == {"6", "7"}  # image dup of 2, text dup of 1
    test = load_prepared(tiny_params.path("data/prepared/single.parquet"), "test")
    assert len(test) == 2
    assert len(load_prepared(tiny_params.path("data/prepared/single.parquet"), "test", dedup=True)) == 0
    leak = pd.read_csv(tiny_params.path("reports/tables/leakage_summary.csv"))
    row = leak[(leak.dataset == "single") & (leak.kind == "image_bytes")].iloc[0]
    assert row.groups == 1 and row.eval_pairs_with_train_duplicate == 1
    m = summary["multiple"]
    assert m["label_rows"] == 5 and m["raw_pairs"] == 4 and m["unassigned_clean_pairs"] == 1


def test_bad_image_is_counted_not_fatal(tiny_params, tiny_root):
    (tiny_root / "single/images/3.jpg").write_bytes(b"GIF89a broken")
    (tiny_root / "single/images/4.jpg").unlink()
    summary = prepare.run(tiny_params, progress=False)
    assert summary["single"]["image_status"] == {"ok": 5, "not_an_image": 1, "missing": 1}


def test_load_prepared_rejects_unknown_part(tiny_params):
    prepare.run(tiny_params, progress=False)
    with pytest.raises(ValueError, match="part must be one of"):
        load_prepared(tiny_params.path("data/prepared/single.parquet"), "validation")
