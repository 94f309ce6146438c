"""Which inputs Magic Hour can take, checked before anything is charged or sent.

A refused input must cost nothing and say exactly what is wrong, so the checks run on the attachment's
metadata (name, content type, size) that Discord already gave us, without fetching a byte. Inputs that are
links rather than uploads (embeds, stickers, avatars, a member's link: `bot/sources.py`) have no size or
type to read without downloading them, which the bot never does: their link is what gets checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from bot.i18n import N_, Message
from bot.magic_hour.client import UPLOAD_EXTENSIONS
from bot.markdown import code

# The image extensions Magic Hour accepts: the client's list, taken from the upload-URLs API's spec.
IMAGE_EXTENSIONS = UPLOAD_EXTENSIONS["image"]
# Content types Discord reports for those files.
IMAGE_CONTENT_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/pjpeg",
        "image/heic",
        "image/heif",
        "image/webp",
        "image/avif",
        "image/jp2",
        "image/jpx",
        "image/tiff",
        "image/bmp",
        "image/x-ms-bmp",
    }
)


class Source(StrEnum):
    """Where an input comes from; only attachments are uploads whose link Discord can refresh."""

    ATTACHMENT = "attachment"
    EMBED = "embed"
    STICKER = "sticker"
    AVATAR = "avatar"
    LINK = "link"


@dataclass(frozen=True)
class InputFile:
    """What the checks need to know about one input."""

    role: str  # "image" or "background", for the message
    filename: str  # names the result (`output_filename`)
    content_type: str | None  # None for links: known only by fetching them
    size: int | None  # None for links, as above
    url: str
    source: Source = Source.ATTACHMENT


def extension_of(filename: str) -> str:
    return PurePosixPath(filename).suffix.lower().lstrip(".")


def human_size(size: int) -> str:
    if size >= 1_000_000:
        return f"{size / 1_000_000:.1f} MB"
    if size >= 1_000:
        return f"{size / 1_000:.0f} KB"
    return f"{size} bytes"


def is_image(filename: str, content_type: str | None) -> bool:
    """An attachment Magic Hour could take, judged by name and type alone (size aside)."""
    content = (content_type or "").split(";")[0].strip().lower()
    return extension_of(filename) in IMAGE_EXTENSIONS and content in IMAGE_CONTENT_TYPES


def problem_with(item: InputFile, max_bytes: int) -> Message | None:
    """Why Magic Hour can't take this file, to be said to the member; None when it can."""
    label = (
        N_("The background {name}", name=code(item.filename))
        if item.role == "background"
        else N_("The image {name}", name=code(item.filename))
    )
    extension = extension_of(item.filename)
    url_extension = extension_of(urlsplit(item.url).path)
    content_type = (item.content_type or "").split(";")[0].strip().lower()
    accepted = ", ".join(sorted(IMAGE_EXTENSIONS))
    if item.source is not Source.ATTACHMENT:
        # Magic Hour reads the type from the link's path; the rest of the link was judged where it came from.
        if url_extension not in IMAGE_EXTENSIONS:
            return N_(
                "{label} has a link without an image extension ({accepted}), which Magic Hour cannot read.",
                label=label,
                accepted=accepted,
            )
        return None
    if extension not in IMAGE_EXTENSIONS:
        if not extension:
            return N_("{label} has no extension; Magic Hour accepts {accepted}.", label=label, accepted=accepted)
        return N_(
            "{label} has .{extension}; Magic Hour accepts {accepted}.",
            label=label,
            extension=extension,
            accepted=accepted,
        )
    if url_extension not in IMAGE_EXTENSIONS:
        return N_(
            "{label} has a link without an image extension, which Magic Hour cannot read. Re-upload it as .png or "
            ".jpg.",
            label=label,
        )
    if content_type not in IMAGE_CONTENT_TYPES:
        if not content_type:
            return N_(
                "{label} has an unknown type, not an image Magic Hour accepts ({accepted}).",
                label=label,
                accepted=accepted,
            )
        return N_(
            "{label} is {content_type}, not an image Magic Hour accepts ({accepted}).",
            label=label,
            content_type=content_type,
            accepted=accepted,
        )
    if item.size is None or item.size <= 0:
        return N_("{label} is empty.", label=label)
    if item.size > max_bytes:
        return N_(
            "{label} is {size}; the limit is {limit}. Send a smaller image.",
            label=label,
            size=human_size(item.size),
            limit=human_size(max_bytes),
        )
    return None


# What a result's name adds to its input's: `shoe.jpg` → `shoe-no-background.png`.
RESULT_SUFFIX = "-no-background"


def output_filename(input_filename: str | None, fmt: str = "png") -> str:
    """`cat.jpg` → `cat-no-background.png` (or `.webp` when that was asked for): the member recognises the file."""
    stem = PurePosixPath(input_filename or "image").stem or "image"
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in stem)[:60].strip("-") or "image"
    return f"{safe}{RESULT_SUFFIX}.{fmt}"
