"""Tweet text: byte decoding and deterministic normalisation.

Normalisation keeps the meaning-bearing parts of a tweet (emoji as words, hashtag
words, elongation as a capped repeat) and replaces what is unique per tweet (URLs,
user names) by fixed tokens. The raw text is always kept beside it by the data layer.
"""

from __future__ import annotations

import html
import re
import unicodedata
from dataclasses import dataclass

import emoji

from mmsent.config import TextConfig

# Order matters: UTF-8 first (most files), then GBK (1,129 MVSA-Single files written on a
# Chinese locale), then cp1252 as the last resort (IDs 824 and 5084).
ENCODINGS: tuple[str, ...] = ("utf-8", "gbk", "cp1252")


class TextDecodeError(ValueError):
    """Bytes that no supported encoding can decode."""


@dataclass(frozen=True)
class DecodedText:
    text: str
    encoding: str


def decode_bytes(raw: bytes, encodings: tuple[str, ...] = ENCODINGS) -> DecodedText:
    """Decode tweet bytes, trying each encoding strictly in order.

    A UTF-8 byte-order mark is dropped. Raises :class:`TextDecodeError` if every
    encoding fails, rather than silently replacing characters.
    """
    if not isinstance(raw, (bytes, bytearray)):
        raise TypeError(f"expected bytes, got {type(raw).__name__}")
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    for encoding in encodings:
        try:
            return DecodedText(bytes(raw).decode(encoding), encoding)
        except UnicodeDecodeError:
            continue
    raise TextDecodeError(f"bytes decode with none of {', '.join(encodings)}: {bytes(raw[:40])!r}")


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<![\w@])@\w+")
_RT = re.compile(r"^\s*RT\b:?\s*|(?<=\s)RT\s+(?=@)", re.IGNORECASE)
_HASHTAG = re.compile(r"(?<![\w#])#(\w+)")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_ELONGATION_TEMPLATE = r"([^\W\d_]|[!?])\1{%d,}"  # letters and !? only: "..." stays
_SPACES = re.compile(r"\s+")
_CONTROL = {c for c in map(chr, range(32)) if c not in "\t\n\r"} | {"\x7f"}


def split_hashtag(tag: str) -> str:
    """``TeamTrudeau`` → ``Team Trudeau``, ``elxn42`` → ``elxn 42``, ``ILoveNY`` → ``I Love NY``."""
    parts = [p for chunk in tag.split("_") for p in _CAMEL.findall(chunk)]
    return " ".join(parts) if parts else tag


def _emoji_to_words(text: str) -> str:
    # ":face_with_tears_of_joy:" → " face with tears of joy "
    return emoji.replace_emoji(
        text, replace=lambda chars, data: " " + data["en"].strip(":").replace("_", " ") + " "
    )


def _without_controls(text: str) -> str:
    return "".join(" " if c in _CONTROL else c for c in text)


def normalize_tweet(text: str, cfg: TextConfig | None = None) -> str:
    """Normalise one tweet deterministically (same input and config → same output)."""
    if not isinstance(text, str):
        raise TypeError(f"expected str, got {type(text).__name__}")
    cfg = cfg or TextConfig()
    if cfg.raw:  # the tweet as written, for the ablation row that turns normalisation off
        return _SPACES.sub(" ", _without_controls(text)).strip()
    text = html.unescape(html.unescape(text))  # MVSA has doubly escaped entities (&amp;amp;)
    text = _without_controls(unicodedata.normalize("NFC", text))
    text = _URL.sub(f" {cfg.urls} " if cfg.urls else " ", text)
    if cfg.drop_rt:
        text = _RT.sub(" ", text)
    if cfg.mentions is not None:
        text = _MENTION.sub(f" {cfg.mentions} " if cfg.mentions else " ", text)
    if cfg.split_hashtags:
        text = _HASHTAG.sub(lambda m: " " + split_hashtag(m.group(1)) + " ", text)
    if cfg.emoji == "words":
        text = _emoji_to_words(text)
    elif cfg.emoji == "drop":
        text = emoji.replace_emoji(text, replace=" ")
    text = re.sub(_ELONGATION_TEMPLATE % cfg.max_elongation,
                  lambda m: m.group(1) * cfg.max_elongation, text)
    if cfg.lowercase:
        text = text.lower()
    return _SPACES.sub(" ", text).strip()


_TOKEN = re.compile(r"@user|[a-z0-9]+(?:'[a-z]+)?|[^\sa-z0-9]", re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word / punctuation tokens of an already normalised tweet (for the LSTM)."""
    return [t.lower() for t in _TOKEN.findall(text)]
