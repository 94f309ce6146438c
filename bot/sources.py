"""Where a request's images come from besides uploads: a message's embeds and stickers, an avatar, a link.

Every source ends as an `InputFile` whose URL Magic Hour fetches itself: the bot never downloads an image
a member pointed at, so a link can cost the bot's network nothing and reveal nothing. That makes the link
the one thing to judge, and `check_link` judges it from its text alone (no DNS, no request): what cannot
be a public https image link is refused before anything is reserved.

The adapter hands in small dataclasses rather than discord.py objects or raw payload dicts: the rules
below read a handful of fields, tests build them in one line, and neither discord.py's object model nor
the payloads' key spellings leak into the domain.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.i18n import N_, Message
from bot.inputs import IMAGE_EXTENSIONS, InputFile, Source, extension_of, is_image
from bot.magic_hour.client import UPLOAD_EXTENSIONS

MAX_MENU_IMAGES = 10  # a message holds at most 10 attachments; one request takes at most this many images

# Discord's string options go up to 6,000 characters, but a message is at most 2,000, so no link a member
# could post is longer; real image links (signed S3/CDN ones included) are a few hundred. The slash
# command's `url` option is declared with this same bound.
MAX_LINK_LENGTH = 2000

# Names that never reach the public internet (RFC 6761 special-use, RFC 6762 mDNS, RFC 9476 `.alt`, ICANN's
# `.internal`): a link to one can only mean a private network, or nothing.
SPECIAL_USE_NAMES = frozenset({"localhost", "local", "internal", "invalid", "test", "example", "onion", "alt", "arpa"})

_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_TOP_LABEL = re.compile(r"[a-z](?:[a-z0-9-]*[a-z0-9])?")  # every top-level domain starts with a letter
_ENDS_IN_NUMBER = re.compile(r"[0-9]+|0x[0-9a-f]*")  # the URL standard reads such a host as an IPv4 address
_FORBIDDEN_CHARACTERS = re.compile(r"[\x00-\x20\x7f\\]")  # spaces, controls and `\`, which parsers disagree on


class Skip(StrEnum):
    """Why an item of a message is not sent to Magic Hour (the reply names it with this reason)."""

    VIDEO = "video"
    GIF = "gif"
    LOTTIE = "lottie"
    FORMAT = "format"  # an image, but in a format Magic Hour does not take (e.g. SVG)
    NOT_AN_IMAGE = "not_an_image"  # a text file, an archive, ...
    LINK = "link"  # its link cannot be a public image link Magic Hour can read (e.g. no image extension)


@dataclass(frozen=True)
class AttachmentItem:
    filename: str
    content_type: str | None
    size: int
    url: str


@dataclass(frozen=True)
class Picture:
    """An embed's image or thumbnail: the original address and Discord's media-proxy copy of it."""

    url: str
    proxy_url: str | None = None


@dataclass(frozen=True)
class EmbedItem:
    kind: str  # Discord's embed type: "image", "gifv", "video", "rich", "article", "link", ...
    image: Picture | None = None
    thumbnail: Picture | None = None
    has_video: bool = False


@dataclass(frozen=True)
class StickerItem:
    name: str
    format: str  # "png", "apng", "lottie" or "gif" (Discord's sticker format types)
    url: str


@dataclass(frozen=True)
class Skipped:
    name: str
    reason: Skip


@dataclass(frozen=True)
class MessageImages:
    """What a message offers, in message order: the images to send, what was skipped and why."""

    images: tuple[InputFile, ...]
    skipped: tuple[Skipped, ...] = ()
    left_out: int = 0  # usable images past MAX_MENU_IMAGES


def message_images(
    attachments: Iterable[AttachmentItem],
    embeds: Iterable[EmbedItem] = (),
    stickers: Iterable[StickerItem] = (),
    *,
    limit: int = MAX_MENU_IMAGES,
) -> MessageImages:
    """Attachments, then embedded pictures, then stickers; the first `limit` usable ones are taken."""
    found: list[InputFile | Skipped] = [
        *(_from_attachment(a) for a in attachments),
        *(item for item in (_from_embed(e) for e in embeds) if item is not None),
        *(_from_sticker(s) for s in stickers),
    ]
    usable = [item for item in found if isinstance(item, InputFile)]
    return MessageImages(
        images=tuple(usable[:limit]),
        skipped=tuple(item for item in found if isinstance(item, Skipped)),
        left_out=max(0, len(usable) - limit),
    )


def _from_attachment(item: AttachmentItem) -> InputFile | Skipped:
    if is_image(item.filename, item.content_type):
        return InputFile("image", item.filename, item.content_type, item.size, item.url)
    content_type = (item.content_type or "").split(";")[0].strip().lower()
    extension = extension_of(item.filename)
    if content_type.startswith("video/") or extension in UPLOAD_EXTENSIONS["video"]:
        return Skipped(item.filename, Skip.VIDEO)
    if content_type == "image/gif" or extension == "gif":
        return Skipped(item.filename, Skip.GIF)
    if content_type.startswith("image/"):
        return Skipped(item.filename, Skip.FORMAT)
    return Skipped(item.filename, Skip.NOT_AN_IMAGE)


def _from_embed(embed: EmbedItem) -> InputFile | Skipped | None:
    """None for an embed without a picture (plain text, a poll result): there is nothing to name."""
    picture = embed.image or embed.thumbnail
    if picture is None and not embed.has_video:
        return None
    name = file_name_of(picture.url if picture else "") or "embedded image"
    if embed.kind == "gifv":  # Tenor, Giphy: a looping video whose thumbnail is only a still
        return Skipped(name, Skip.GIF)
    if embed.kind == "video" or embed.has_video or picture is None:
        return Skipped(name, Skip.VIDEO)
    url = picture.proxy_url or picture.url  # Discord's media proxy: Magic Hour can fetch it
    if extension_of(urlsplit(url).path) == "gif" or extension_of(name) == "gif":
        return Skipped(name, Skip.GIF)
    if check_link(url) is not None:
        return Skipped(name, Skip.LINK)
    return InputFile("image", name, None, None, url, Source.EMBED)


def _from_sticker(sticker: StickerItem) -> InputFile | Skipped:
    if sticker.format == "lottie":
        return Skipped(sticker.name, Skip.LOTTIE)
    if sticker.format == "gif":
        return Skipped(sticker.name, Skip.GIF)
    if sticker.format not in ("png", "apng") or check_link(sticker.url) is not None:
        return Skipped(sticker.name, Skip.LINK)
    return InputFile("image", f"{sticker.name}.png", None, None, sticker.url, Source.STICKER)


def avatar_image(display_name: str, url: str) -> InputFile:
    """The result is named `<name>-avatar-no-background.png`, so the member knows whose avatar it was."""
    return InputFile("image", f"{display_name}-avatar.png", None, None, url, Source.AVATAR)


def link_image(url: str) -> InputFile:
    """A link `check_link` accepted, passed to Magic Hour verbatim; the result is named after its file."""
    return InputFile("image", file_name_of(url) or "image.png", None, None, url, Source.LINK)


def file_name_of(url: str) -> str:
    """The last segment of a URL's path, decoded: `https://x.io/a/My%20Cat.png?s=1` → `My Cat.png`."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return ""
    return PurePosixPath(unquote(path)).name


def refreshed_links(answer: Any) -> dict[str, str]:
    """Original → fresh URL from Discord's `POST /attachments/refresh-urls` answer; anything malformed is
    left out (the caller then has no fresh link, which means no retry, never a wrong one)."""
    entries = answer.get("refreshed_urls") if isinstance(answer, Mapping) else None
    out: dict[str, str] = {}
    for entry in entries if isinstance(entries, list) else ():
        if isinstance(entry, Mapping):
            original, fresh = entry.get("original"), entry.get("refreshed")
            if isinstance(original, str) and isinstance(fresh, str) and fresh.startswith("https://"):
                out[original] = fresh
    return out


def check_link(url: str) -> Message | None:
    """Why this cannot be a public https link to an image Magic Hour can read, to be said to the member;
    None when it can. Judged from the text alone: nothing is resolved or fetched."""
    if len(url) > MAX_LINK_LENGTH:
        return N_("The link is {length} characters long; the most is {most}.", length=len(url), most=MAX_LINK_LENGTH)
    if _FORBIDDEN_CHARACTERS.search(url):
        return N_("The link has spaces, control characters or a backslash in it; copy the image's address again.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return N_("That isn't a valid link.")
    if parts.scheme.lower() != "https":
        return N_("The link must start with `https://` (Magic Hour only fetches secure links).")
    if "@" in parts.netloc:
        return N_("The link has a user name or password in it; use the image's public link.")
    if port == 0:
        return N_("That isn't a valid link.")
    if problem := _host_problem(parts.hostname or ""):
        return problem
    extension = extension_of(parts.path)  # as written: Magic Hour reads the type from the link's own text
    if extension not in IMAGE_EXTENSIONS:
        accepted = ", ".join(sorted(IMAGE_EXTENSIONS))
        if extension:
            return N_(
                "The link's path ends in .{extension}; Magic Hour needs a link to an image file ({accepted}). Use "
                "the image's direct link (right-click the image → Copy image address).",
                extension=extension,
                accepted=accepted,
            )
        return N_(
            "The link's path doesn't end in a file extension; Magic Hour needs a link to an image file ({accepted}). "
            "Use the image's direct link (right-click the image → Copy image address).",
            accepted=accepted,
        )
    return None


def _host_problem(host: str) -> Message | None:
    ip_address = N_("The link points at an IP address; use a link with a server name.")
    invalid = N_("The link's server name isn't valid.")
    if not host:
        return N_("The link has no server name.")
    if ":" in host:
        return ip_address
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()  # also maps full-width digits and dots
    except UnicodeError:
        return invalid
    labels = ascii_host.removesuffix(".").split(".")
    if _ENDS_IN_NUMBER.fullmatch(labels[-1]) or _is_ip(ascii_host):
        return ip_address
    if not all(_LABEL.fullmatch(label) for label in labels):
        return invalid
    if labels[-1] == "localhost":
        return N_("The link points at this computer (`localhost`); use a public link.")
    if len(labels) == 1:
        return N_("The link's server `{host}` has no domain (like `.com`); use a public link.", host=labels[0])
    if labels[-1] in SPECIAL_USE_NAMES:
        return N_("`.{suffix}` names only work inside a private network; use a public link.", suffix=labels[-1])
    if not _TOP_LABEL.fullmatch(labels[-1]):
        return invalid
    return None


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
