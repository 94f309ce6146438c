"""Background colours as members type them, turned into an opaque RGB triple or a sentence they can act on.

Pillow's ImageColor knows the CSS names, but it also takes `#RGBA`, `rgba(…)` and `hsl(…)`; the command
promises three spellings and an opaque result, so only those are let through and everything else is
refused in words a member understands.
"""

from __future__ import annotations

import re

from PIL import ImageColor

from bot.i18n import N_, Message

RGB = tuple[int, int, int]

_HEX = re.compile(r"#(?:[0-9a-f]{3}|[0-9a-f]{6})", re.IGNORECASE)
_HEX_WITH_ALPHA = re.compile(r"#(?:[0-9a-f]{4}|[0-9a-f]{8})", re.IGNORECASE)
_BARE_HEX = re.compile(r"(?:[0-9a-f]{3}|[0-9a-f]{6})", re.IGNORECASE)
_SHOWN_MAX = 32  # how much of the member's text is echoed back


class BadColor(ValueError):
    """The member's colour text was refused; `message` is what to tell them (in their language, when said)."""

    def __init__(self, text: str, message: Message) -> None:
        super().__init__(message.id.format(**message.values))
        self.text = text
        self.message = message


def _shown(text: str) -> str:
    """The member's text, safe inside a code span: no backticks or line breaks, and not a wall of text."""
    flat = " ".join(text.replace("`", "'").split())
    return flat if len(flat) <= _SHOWN_MAX else flat[: _SHOWN_MAX - 1] + "…"


def parse_color(text: str) -> RGB:
    """`#RRGGBB`, `#RGB` or a CSS colour name (any case, spaces or hyphens ignored) → (r, g, b)."""
    cleaned = text.strip()
    if not cleaned:
        raise BadColor(text, N_("No colour given: use #RRGGBB, #RGB or a colour name like white."))
    if _HEX.fullmatch(cleaned):
        return _rgb(cleaned)
    if _HEX_WITH_ALPHA.fullmatch(cleaned):
        raise BadColor(
            text,
            N_(
                "`{text}` has transparency; the background is solid, so use #RRGGBB, #RGB or a colour name like "
                "white (e.g. #{example}).",
                text=_shown(text),
                example=cleaned[1:7] if len(cleaned) == 9 else cleaned[1:4],  # the colour without its alpha
            ),
        )
    name = re.sub(r"[\s_-]+", "", cleaned).lower()
    if name in ImageColor.colormap:
        return _rgb(name)
    if _BARE_HEX.fullmatch(cleaned):
        raise BadColor(text, N_("`{text}` is not a colour: did you mean #{hex}?", text=_shown(text), hex=cleaned))
    raise BadColor(
        text, N_("`{text}` is not a colour: use #RRGGBB, #RGB or a colour name like white.", text=_shown(text))
    )


def _rgb(spec: str) -> RGB:
    red, green, blue = ImageColor.getrgb(spec)[:3]
    return (red, green, blue)


def color_hex(color: RGB) -> str:
    """(30, 144, 255) → `#1E90FF`, the spelling the reply shows whatever the member typed."""
    return "#{:02X}{:02X}{:02X}".format(*color)
