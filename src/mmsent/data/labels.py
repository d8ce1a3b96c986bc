"""The one label mapping of the project.

Our ids follow the CLMLF split files (0 = positive, 1 = neutral, 2 = negative), so
predictions can be compared with the published CLMLF numbers id for id. The Cheema et
al. files use another order (0 = neutral, 1 = positive, 2 = negative); they are mapped
to names on reading and never leak their ids.
"""

LABELS: tuple[str, ...] = ("positive", "neutral", "negative")
ID2LABEL: dict[int, str] = dict(enumerate(LABELS))
LABEL2ID: dict[str, int] = {name: i for i, name in ID2LABEL.items()}

# How each shipped split file's numeric ids map to names.
CLMLF_ID2LABEL: dict[int, str] = {0: "positive", 1: "neutral", 2: "negative"}
CHEEMA_ID2LABEL: dict[int, str] = {0: "neutral", 1: "positive", 2: "negative"}


def merge_labels(text_label: str, image_label: str) -> str | None:
    """The standard MVSA cleaning rule for one pair.

    Equal labels are kept; neutral + polar gives the polar label; positive vs negative
    is a conflict and the pair is dropped (None).
    """
    for label in (text_label, image_label):
        if label not in LABEL2ID:
            raise ValueError(f"unknown label {label!r}; expected one of {LABELS}")
    if text_label == image_label:
        return text_label
    if text_label == "neutral":
        return image_label
    if image_label == "neutral":
        return text_label
    return None
