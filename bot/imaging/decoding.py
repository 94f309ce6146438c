"""Opening untrusted image bytes within a pixel budget a small dyno can hold.

A PNG's header can promise far more pixels than its few compressed bytes suggest, and decoding
allocates them all (4 bytes each as RGBA, and the steps after copy them). The size is checked from
the header before any pixel is decoded, so an oversized image costs nothing; `configure_pillow`
(called by `ImageWorker`) lowers Pillow's own decompression-bomb limit to the same figure as a second
line of defence.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum

from PIL import Image

# 40 megapixels: 160 MB as RGBA; processing one at this size peaks near 300 MB (`python -m bench.imaging`).
MAX_PIXELS = 40_000_000
# The formats the bot's own results come in (Magic Hour's PNG, our WebP) and common stills; fewer decoders
# reachable from untrusted bytes is less attack surface.
READABLE_FORMATS = ("PNG", "WEBP", "JPEG", "GIF")
# What each readable format's file is called; the bot's results have always been named .png.
EXTENSIONS = {"PNG": "png", "WEBP": "webp", "JPEG": "jpg", "GIF": "gif"}
# Decode errors Pillow raises for bytes that are not (or no longer) an image.
_UNREADABLE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)


class ImageProblem(StrEnum):
    """Why an image was left as it came (or no emoji/sticker was made); the reply words each one."""

    TOO_LARGE = "too_large"  # over the pixel limit
    UNREADABLE = "unreadable"  # not an image Pillow can decode
    NOTHING_VISIBLE = "nothing_visible"  # fully transparent: no subject to trim to or make an emoji of
    TOO_MANY_BYTES = "too_many_bytes"  # could not be made small enough for Discord's limit


@dataclass(frozen=True)
class Header:
    """What the first bytes of an image say, read without decoding a pixel."""

    extension: str
    width: int
    height: int


@dataclass(frozen=True)
class Refused:
    """The image was not decoded, and why."""

    problem: ImageProblem
    width: int | None = None  # known when the header could be read
    height: int | None = None


def configure_pillow(max_pixels: int = MAX_PIXELS) -> None:
    """Make Pillow refuse what we would refuse, process-wide; safe to call more than once.

    Pillow warns between its limit and twice it and raises above; the warning is made an error so it
    reaches `open_rgba` as an outcome instead of a line on stderr.
    """
    Image.MAX_IMAGE_PIXELS = max_pixels
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


def _open(data: bytes, max_pixels: int) -> Image.Image | Refused:
    """Pillow's lazy open (the header only), refused when the header promises more than `max_pixels`."""
    try:
        image = Image.open(io.BytesIO(data), formats=READABLE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Refused(ImageProblem.TOO_LARGE)
    except _UNREADABLE_ERRORS:
        return Refused(ImageProblem.UNREADABLE)
    width, height = image.size
    if width * height > max_pixels:
        return Refused(ImageProblem.TOO_LARGE, width, height)
    return image


def peek(data: bytes, max_pixels: int = MAX_PIXELS) -> Header | Refused:
    """The format and size from the header alone, for results that need no processing."""
    image = _open(data, max_pixels)
    if isinstance(image, Refused):
        return image
    return Header(EXTENSIONS.get(image.format or "", "png"), image.width, image.height)


def open_rgba(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image | Refused:
    """Decode `data` as RGBA (the first frame of an animation), or say why not; never raises for bad input."""
    image = _open(data, max_pixels)
    if isinstance(image, Refused):
        return image
    try:
        image.load()
        return image if image.mode == "RGBA" else image.convert("RGBA")
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return Refused(ImageProblem.TOO_LARGE, image.width, image.height)
    except _UNREADABLE_ERRORS:
        return Refused(ImageProblem.UNREADABLE, image.width, image.height)
