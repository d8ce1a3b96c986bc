import pytest

from mmsent.data.labels import CHEEMA_ID2LABEL, CLMLF_ID2LABEL, ID2LABEL, LABEL2ID, merge_labels


@pytest.mark.parametrize("text,image,expected", [
    ("positive", "positive", "positive"),
    ("neutral", "neutral", "neutral"),
    ("negative", "negative", "negative"),
    ("neutral", "positive", "positive"),
    ("negative", "neutral", "negative"),
    ("positive", "negative", None),
    ("negative", "positive", None),
])
def test_cleaning_rule(text, image, expected):
    assert merge_labels(text, image) == expected


def test_unknown_label_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown label 'happy'"):
        merge_labels("happy", "positive")


def test_one_mapping_matches_clmlf_and_translates_cheema():
    assert ID2LABEL == CLMLF_ID2LABEL
    assert {LABEL2ID[v] for v in ID2LABEL.values()} == {0, 1, 2}
    assert CHEEMA_ID2LABEL[0] == "neutral" and CHEEMA_ID2LABEL[1] == "positive"
