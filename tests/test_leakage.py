import pandas as pd

from mmsent.data.leakage import audit, exact_groups, leaked_ids, phash_groups


def test_exact_groups_ignore_empty_keys():
    assert exact_groups(["a", "b", "a", "", ""]) == [[0, 2]]


def test_phash_groups_use_hamming_distance():
    hashes = ["0000000000000000", "0000000000000003", "ffffffffffffffff", ""]
    assert phash_groups(hashes, max_distance=2) == [[0, 1]]
    assert phash_groups(hashes, max_distance=1) == []


def test_audit_counts_only_train_to_eval_leaks():
    df = pd.DataFrame({
        "id": ["a", "b", "c", "d", "e"],
        "split": ["train", "test", "dev", "test", "dropped"],
        "text": ["Same text", "same  TEXT", "other", "other", "Same text"],
    })
    summary, members = audit(df, max_distance=0)
    text = summary.set_index("kind").loc["text"]
    assert text["groups"] == 2 and text["groups_across_train_and_eval"] == 1
    assert text["eval_pairs_with_train_duplicate"] == 1
    assert leaked_ids(df, members) == {"b"}  # c/d duplicate each other, not train
