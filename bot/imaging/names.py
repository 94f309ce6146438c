"""Names for emoji and stickers, made from a file name so the member recognises what they added.

Discord refuses an emoji name outside 2–32 ASCII letters, digits and underscores, and a sticker name
outside 2–30 characters; a refused name would fail the whole upload, so every file name, in any
script or none, yields a valid one.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath

from bot.inputs import RESULT_SUFFIX

FALLBACK_NAME = "cutout"
EMOJI_NAME_MAX = 32
STICKER_NAME_MAX = 30
NAME_MIN = 2
# A sticker's `tags` must be the Discord name of a Unicode emoji; ✂️ says "cut out" for any subject.
STICKER_TAG = "scissors"

_NOT_EMOJI_CHARACTERS = re.compile(r"[^A-Za-z0-9]+")


def _stem(filename: str | None) -> str:
    """The file's own name without folders, extension, or the `-no-background` the bot added."""
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    stem = PurePosixPath(name).stem if "." in name.lstrip(".") else name
    if stem.lower().endswith(RESULT_SUFFIX):
        stem = stem[: -len(RESULT_SUFFIX)]
    return stem


def _long_enough(name: str, separator: str) -> str:
    if len(name) >= NAME_MIN:
        return name
    return f"{name}{separator}{FALLBACK_NAME}" if name else FALLBACK_NAME


def emoji_name(filename: str | None) -> str:
    """`Crème brûlée-no-background.png` → `Creme_brulee`; letters with no ASCII form are dropped."""
    ascii_only = unicodedata.normalize("NFKD", _stem(filename)).encode("ascii", "ignore").decode("ascii")
    name = _NOT_EMOJI_CHARACTERS.sub("_", ascii_only).strip("_")
    return _long_enough(name[:EMOJI_NAME_MAX].rstrip("_"), "_")


def sticker_name(filename: str | None) -> str:
    """`my_cat-no-background.png` → `my cat`: letters and digits of any script, words split by single spaces.

    Characters outside the Basic Multilingual Plane are dropped, so the length is the same however
    Discord counts it (code points or UTF-16 units).
    """
    normalized = unicodedata.normalize("NFKC", _stem(filename))
    kept = "".join(ch if ch.isalnum() and ord(ch) < 0x10000 else " " for ch in normalized)
    name = " ".join(kept.split())
    return _long_enough(name[:STICKER_NAME_MAX].rstrip(), " ")
