"""A request the Pipeline has validated and normalised, and the error for one it cannot score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


MAX_TEXT_CHARS = 2000


class InputError(ValueError):
    """A request the pipeline cannot score: no input, wrong type, empty or oversized text."""


@dataclass
class Prepared:
    text: str | None  # normalised
    image: Any | None  # RGB PIL image
    raw_text: str | None = None
    ocr: str | None = None  # text found inside the image (models trained with it only)
