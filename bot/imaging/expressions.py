"""A cutout turned into a server emoji or sticker that Discord will accept on the first try.

Discord refuses an emoji over 256 KiB and a sticker that is not 320×320 or is over 512 KiB, and a
refused upload is a failed click for the member; so the sizes are guaranteed here, and when no encoding
fits the caller gets a `CannotFit` to word, not an exception.

At these sizes plain RGBA PNG is already within the limits (128×128×4 bytes is 64 KiB, 320×320×4 is
400 KiB, and PNG adds little to incompressible pixels), so the quantize-and-shrink steps are a guard
for smaller budgets rather than the usual path.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from PIL import Image

from .decoding import MAX_PIXELS, ImageProblem, Refused, open_rgba
from .names import STICKER_TAG, emoji_name, sticker_name
from .results import trim_box

EMOJI_SIDE = 128
EMOJI_MAX_BYTES = 256 * 1024
STICKER_SIDE = 320
STICKER_MAX_BYTES = 512 * 1024

# What is tried, in order, until the PNG fits: (scale of the subject, palette colours or None for full RGBA).
# Fewer colours first, since at emoji size a palette is hard to see and a smaller subject is not.
ENCODING_STEPS: tuple[tuple[float, int | None], ...] = (
    (1.0, None),
    (1.0, 256),
    (1.0, 64),
    (0.75, 64),
    (0.5, 32),
    (0.35, 16),
)


@dataclass(frozen=True)
class EmojiImage:
    data: bytes  # PNG
    name: str  # a valid Discord emoji name
    width: int
    height: int

    @property
    def filename(self) -> str:
        return f"{self.name}.png"


@dataclass(frozen=True)
class StickerImage:
    data: bytes  # PNG, STICKER_SIDE square
    name: str  # a valid Discord sticker name
    tag: str  # the Discord name of a Unicode emoji, as the sticker's `tags`
    width: int
    height: int

    @property
    def filename(self) -> str:
        return f"{self.name.replace(' ', '_')}.png"


@dataclass(frozen=True)
class CannotFit:
    """No emoji or sticker was made; `problem` says why, for the reply to word."""

    problem: ImageProblem


def fitted_size(size: tuple[int, int], side: int) -> tuple[int, int]:
    """The largest size with `size`'s proportions inside a `side` square (scaling up as well as down)."""
    width, height = size
    scale = side / max(width, height)
    return (max(1, round(width * scale)), max(1, round(height * scale)))


def png_within(
    render: Callable[[float], Image.Image], max_bytes: int, steps: Iterable[tuple[float, int | None]] = ENCODING_STEPS
) -> tuple[bytes, tuple[int, int]] | None:
    """The PNG (and its size) of the first of `steps` that is at most `max_bytes`, or None if none is."""
    for scale, colors in steps:
        image = render(scale)
        if colors is not None:
            image = image.quantize(colors, method=Image.Quantize.FASTOCTREE)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=True)
        if out.tell() <= max_bytes:
            return out.getvalue(), image.size
    return None


def _subject(data: bytes, max_pixels: int) -> Image.Image | CannotFit:
    """The decoded image cropped to its subject."""
    image = open_rgba(data, max_pixels)
    if isinstance(image, Refused):
        return CannotFit(image.problem)
    box = trim_box(image)
    if box is None:
        return CannotFit(ImageProblem.NOTHING_VISIBLE)
    return image.crop(box)


def _resized(image: Image.Image, side: int) -> Image.Image:
    size = fitted_size(image.size, side)
    # reducing_gap: a fast box reduction first, then Lanczos on the last steps; same look, far less time on big inputs.
    return image if size == image.size else image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _fitted_subject(data: bytes, side: int, max_pixels: int) -> Image.Image | CannotFit:
    """The subject, trimmed and fitted into a `side` square: where an emoji and a sticker both start."""
    subject = _subject(data, max_pixels)
    return subject if isinstance(subject, CannotFit) else _resized(subject, side)


def make_emoji(
    data: bytes,
    filename: str | None,
    side: int = EMOJI_SIDE,
    max_bytes: int = EMOJI_MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> EmojiImage | CannotFit:
    """Trimmed to the subject, fitted into a `side` square (proportions kept), PNG within `max_bytes`."""
    fitted = _fitted_subject(data, side, max_pixels)
    if isinstance(fitted, CannotFit):
        return fitted

    def render(scale: float) -> Image.Image:
        return fitted if scale == 1.0 else _resized(fitted, max(1, round(side * scale)))

    encoded = png_within(render, max_bytes)
    if encoded is None:
        return CannotFit(ImageProblem.TOO_MANY_BYTES)
    png, (width, height) = encoded
    return EmojiImage(png, emoji_name(filename), width, height)


def make_sticker(
    data: bytes,
    filename: str | None,
    max_bytes: int = STICKER_MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
) -> StickerImage | CannotFit:
    """Trimmed, fitted and centred on a transparent STICKER_SIDE square, PNG within `max_bytes`."""
    fitted = _fitted_subject(data, STICKER_SIDE, max_pixels)
    if isinstance(fitted, CannotFit):
        return fitted

    def render(scale: float) -> Image.Image:
        inner = fitted if scale == 1.0 else _resized(fitted, max(1, round(STICKER_SIDE * scale)))
        canvas = Image.new("RGBA", (STICKER_SIDE, STICKER_SIDE), (0, 0, 0, 0))
        canvas.paste(inner, ((STICKER_SIDE - inner.width) // 2, (STICKER_SIDE - inner.height) // 2))
        return canvas

    encoded = png_within(render, max_bytes)
    if encoded is None:
        return CannotFit(ImageProblem.TOO_MANY_BYTES)
    png, (width, height) = encoded
    return StickerImage(png, sticker_name(filename), STICKER_TAG, width, height)
