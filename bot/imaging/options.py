"""What a member asked to be done to a result, and what was done, as data the reply can put into words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from bot.i18n import N_, Message

from .colors import RGB, color_hex, parse_color

Format = Literal["png", "webp"]
FORMATS: tuple[Format, ...] = get_args(Format)


class BadFormat(ValueError):
    """A format other than the ones offered; `message` is what to tell the member (in their language, when said)."""

    def __init__(self, message: Message) -> None:
        super().__init__(message.id.format(**message.values))
        self.message = message


def parse_format(text: str) -> Format:
    cleaned = text.strip().lower().lstrip(".")
    for fmt in FORMATS:
        if cleaned == fmt:
            return fmt
    raise BadFormat(N_("`{text}` is not a format I can send: choose `png` or `webp`.", text=text.strip()[:16]))


@dataclass(frozen=True)
class OptionApplied:
    """One option that changed the result, in the order it was applied (trim, colour, format)."""

    name: Literal["trim", "color", "format"]
    value: str  # "on", "#1E90FF", "webp"


@dataclass(frozen=True)
class ResultOptions:
    """The `color`, `trim` and `format` options of a request; the default is today's plain PNG."""

    color: RGB | None = None
    trim: bool = False
    format: Format = "png"

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise BadFormat(N_("`{text}` is not a format I can send: choose `png` or `webp`.", text=self.format))
        if self.color is not None and (len(self.color) != 3 or not all(0 <= c <= 255 for c in self.color)):
            raise ValueError(f"color must be three values 0–255, not {self.color!r}")

    @classmethod
    def parse(cls, color: str | None = None, trim: bool | None = None, fmt: str | None = None) -> ResultOptions:
        """From the command's raw option values; raises BadColor or BadFormat with the member's sentence."""
        return cls(
            color=parse_color(color) if color is not None and color.strip() else None,
            trim=bool(trim),
            format=parse_format(fmt) if fmt else "png",
        )

    @property
    def is_default(self) -> bool:
        """Nothing to do locally: the result can be delivered exactly as Magic Hour made it."""
        return self == ResultOptions()

    def describe(self) -> tuple[OptionApplied, ...]:
        applied: list[OptionApplied] = []
        if self.trim:
            applied.append(OptionApplied("trim", "on"))
        if self.color is not None:
            applied.append(OptionApplied("color", color_hex(self.color)))
        if self.format != "png":
            applied.append(OptionApplied("format", self.format))
        return tuple(applied)
