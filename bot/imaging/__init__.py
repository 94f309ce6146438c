"""Results made for Discord, done locally with Pillow: a solid background colour, a trim to the subject,
WebP, and server emoji and stickers; no second Magic Hour job and no credits.

Everything but `ImageWorker` is pure and synchronous (bytes in, bytes out), so it is tested without
Discord; the bot calls it through `ImageWorker.run`, in a thread and a bounded number at a time.
"""

from .colors import RGB, BadColor, color_hex, parse_color
from .decoding import MAX_PIXELS, ImageProblem, configure_pillow
from .expressions import (
    EMOJI_MAX_BYTES,
    EMOJI_SIDE,
    STICKER_MAX_BYTES,
    STICKER_SIDE,
    CannotFit,
    EmojiImage,
    StickerImage,
    make_emoji,
    make_sticker,
)
from .names import STICKER_TAG, emoji_name, sticker_name
from .options import FORMATS, BadFormat, Format, OptionApplied, ResultOptions, parse_format
from .results import TRIM_ALPHA_THRESHOLD, TRIM_MARGIN, Processed, process, trim_box
from .worker import ImageWorker

__all__ = [
    "EMOJI_MAX_BYTES",
    "EMOJI_SIDE",
    "FORMATS",
    "MAX_PIXELS",
    "RGB",
    "STICKER_MAX_BYTES",
    "STICKER_SIDE",
    "STICKER_TAG",
    "TRIM_ALPHA_THRESHOLD",
    "TRIM_MARGIN",
    "BadColor",
    "BadFormat",
    "CannotFit",
    "EmojiImage",
    "Format",
    "ImageProblem",
    "ImageWorker",
    "OptionApplied",
    "Processed",
    "ResultOptions",
    "StickerImage",
    "color_hex",
    "configure_pillow",
    "emoji_name",
    "make_emoji",
    "make_sticker",
    "parse_color",
    "parse_format",
    "process",
    "sticker_name",
    "trim_box",
]
