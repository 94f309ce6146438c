"""A finished cutout made the way the member asked: trimmed to the subject, on a colour, as PNG or WebP.

Everything here is synchronous and CPU-bound: the bot runs it through `ImageWorker`, never on the
event loop. Each step drops the previous copy of the pixels as soon as it can, because at the pixel
limit one RGBA copy is 160 MB.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from .colors import RGB
from .decoding import MAX_PIXELS, ImageProblem, Refused, open_rgba, peek
from .options import Format, ResultOptions

Box = tuple[int, int, int, int]  # left, top, right, bottom (right and bottom exclusive), as Pillow uses

# Alpha at or below this is treated as empty: the faint fringe a matting model leaves is not the subject.
TRIM_ALPHA_THRESHOLD = 8
# Pixels of air kept around the subject so its soft edge isn't cut flush.
TRIM_MARGIN = 8
# WebP cannot hold a side longer than this; such an image is sent as PNG instead.
WEBP_MAX_SIDE = 16383
# libwebp's lossless encoder holds about 36 bytes per pixel (measured: `python -m bench.imaging`), against
# about 7 for the PNG path; above this (4K UHD fits) WebP would need more than a small dyno has, so PNG.
WEBP_MAX_PIXELS = 8_500_000


@dataclass(frozen=True)
class Processed:
    """The bytes to deliver, how to name them, and what was done (or, with `problem`, why nothing was)."""

    data: bytes
    extension: str  # the file's real format, "png" or "webp" once processed: name the file with it
    width: int | None  # None only when the image could not be read
    height: int | None
    applied: ResultOptions  # what was actually done; its describe() is for the reply
    problem: ImageProblem | None = None  # set: `data` is the input, delivered unprocessed

    @property
    def skipped(self) -> bool:
        return self.problem is not None


def trim_box(image: Image.Image, threshold: int = TRIM_ALPHA_THRESHOLD, margin: int = TRIM_MARGIN) -> Box | None:
    """The subject's bounding box (alpha above `threshold`) grown by `margin` and clamped to the image.

    None when nothing is above the threshold (a fully transparent image has no subject to trim to).
    An image without an alpha band is all subject: its whole box.
    """
    if "A" not in image.getbands():
        return (0, 0, image.width, image.height)
    lut = [255 if value > threshold else 0 for value in range(256)]
    box = image.getchannel("A").point(lut).getbbox()
    if box is None:
        return None
    left, top, right, bottom = box
    return (
        max(0, left - margin),
        max(0, top - margin),
        min(image.width, right + margin),
        min(image.height, bottom + margin),
    )


def on_color(image: Image.Image, color: RGB, box: Box | None = None) -> Image.Image:
    """`image` (or its `box`) composited over a solid colour: a fully opaque RGB image.

    Pasting with a negative offset crops and composites in one pass, so a trim costs no extra copy.
    """
    left, top, right, bottom = box or (0, 0, image.width, image.height)
    background = Image.new("RGB", (right - left, bottom - top), color)
    background.paste(image, (-left, -top), image)
    return background


def encode(image: Image.Image, fmt: Format, icc_profile: bytes | None = None) -> tuple[bytes, Format]:
    """PNG, or lossless WebP that keeps alpha and every pixel exactly; returns the format really used.

    An image past WebP's side limit or WEBP_MAX_PIXELS is encoded as PNG instead: the reply can tell
    from the returned format (and `Processed.applied.format`) that WebP was not possible.
    """
    if fmt == "webp" and (max(image.size) > WEBP_MAX_SIDE or image.width * image.height > WEBP_MAX_PIXELS):
        fmt = "png"
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if fmt == "webp":
        # exact: keep the colour under fully transparent pixels too, so a round trip is pixel-equal.
        # method 2 compresses as well as the slower ones on photos; method 0 was up to 40 % larger.
        image.save(out, "WEBP", lossless=True, exact=True, quality=50, method=2, **extra)
    else:
        image.save(out, "PNG", **extra)
    return out.getvalue(), fmt


def process(data: bytes, options: ResultOptions, max_pixels: int = MAX_PIXELS) -> Processed:
    """Trim, then colour, then encode.

    Default options return the input as it is (its header read, no pixel decoded). An image over
    `max_pixels` or unreadable also comes back as it is, with `problem` saying why; this never raises
    for bad input.
    """
    if options.is_default:
        header = peek(data, max_pixels)
        if isinstance(header, Refused):
            return _unprocessed(data, header)
        return Processed(data, header.extension, header.width, header.height, options)
    image = open_rgba(data, max_pixels)
    if isinstance(image, Refused):
        return _unprocessed(data, image)
    icc_profile = image.info.get("icc_profile")

    box = trim_box(image) if options.trim else None
    if box == (0, 0, image.width, image.height):
        box = None  # nothing to cut
    # Each step rebinds `image`, so the previous copy of the pixels is freed before encoding.
    if options.color is not None:
        image = on_color(image, options.color, box)
    elif box is not None:
        image = image.crop(box)

    data_out, fmt = encode(image, options.format, icc_profile)
    applied = ResultOptions(color=options.color, trim=box is not None, format=fmt)
    return Processed(data_out, fmt, image.width, image.height, applied)


def _unprocessed(data: bytes, refused: Refused) -> Processed:
    return Processed(data, "png", refused.width, refused.height, ResultOptions(), refused.problem)
