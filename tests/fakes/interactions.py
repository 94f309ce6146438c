"""Builders for the JSON Discord really sends: users, members, attachments, embeds, stickers, messages and
interactions.

Pure data, no I/O, so tests can build payloads without a server; `discord_api.DiscordHarness` fills in
the defaults (application id, guild, channel, the fake's CDN) and feeds them to a real discord.py client.
The shapes follow what Discord sends to discord.py 2.7 (see discord/types/interactions.py).
"""

from __future__ import annotations

import hashlib
import itertools
import mimetypes
import struct
import time
import zlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DISCORD_EPOCH_MS = 1_420_070_400_000
DISCORD_CDN = "https://cdn.discordapp.com"
DISCORD_MEDIA_PROXY = "https://media.discordapp.net"
DISCORD_EXTERNAL_PROXY = "https://images-ext-1.discordapp.net"  # where Discord serves embeds' outside pictures
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # unboosted servers and DMs: 10 MiB
CDN_LINK_LIFETIME_S = 24 * 3600

# Permission bits (https://discord.com/developers/docs/topics/permissions).
CREATE_INSTANT_INVITE = 1 << 0
ADMINISTRATOR = 1 << 3
MANAGE_CHANNELS = 1 << 4
MANAGE_GUILD = 1 << 5
ADD_REACTIONS = 1 << 6
VIEW_CHANNEL = 1 << 10
SEND_MESSAGES = 1 << 11
MANAGE_MESSAGES = 1 << 13
EMBED_LINKS = 1 << 14
ATTACH_FILES = 1 << 15
READ_MESSAGE_HISTORY = 1 << 16
USE_EXTERNAL_EMOJIS = 1 << 18
CONNECT = 1 << 20
SPEAK = 1 << 21
CHANGE_NICKNAME = 1 << 26
MANAGE_EXPRESSIONS = 1 << 30  # edit and delete the server's emoji and stickers (and, for members, create them)
USE_APPLICATION_COMMANDS = 1 << 31
SEND_MESSAGES_IN_THREADS = 1 << 38
CREATE_EXPRESSIONS = 1 << 43  # create emoji and stickers; bots need it since February 2026

# What @everyone gets on a fresh server: an ordinary member, notably without MANAGE_GUILD.
DEFAULT_MEMBER_PERMISSIONS = (
    CREATE_INSTANT_INVITE
    | ADD_REACTIONS
    | VIEW_CHANNEL
    | SEND_MESSAGES
    | EMBED_LINKS
    | ATTACH_FILES
    | READ_MESSAGE_HISTORY
    | USE_EXTERNAL_EMOJIS
    | CONNECT
    | SPEAK
    | CHANGE_NICKNAME
    | USE_APPLICATION_COMMANDS
    | SEND_MESSAGES_IN_THREADS
)
ADMIN_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS | MANAGE_GUILD | MANAGE_CHANNELS | MANAGE_MESSAGES
DEFAULT_APP_PERMISSIONS = DEFAULT_MEMBER_PERMISSIONS

# Option types (https://discord.com/developers/docs/interactions/application-commands).
(
    SUB_COMMAND,
    SUB_COMMAND_GROUP,
    STRING,
    INTEGER,
    BOOLEAN,
    USER,
    CHANNEL,
    ROLE,
    MENTIONABLE,
    NUMBER,
    ATTACHMENT,
) = range(1, 12)
# Interaction contexts.
CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL = 0, 1, 2

_sequence = itertools.count(1)


def snowflake(at: float | None = None) -> int:
    """A unique, time-ordered Discord id: discord.py derives `created_at` from it."""
    ms = int((time.time() if at is None else at) * 1000) - DISCORD_EPOCH_MS
    return (ms << 22) | (1 << 17) | (next(_sequence) & 0x1FFFF)


def iso_now() -> str:
    return datetime.now(UTC).isoformat()


def interaction_token() -> str:
    """Unique and URL-safe, like Discord's (which are long base64-ish strings)."""
    digest = hashlib.sha256(f"{time.time_ns()}-{next(_sequence)}".encode()).hexdigest()
    return f"aW50ZXJhY3Rpb246{digest}"


def png_bytes(width: int = 1, height: int = 1, rgba: tuple[int, int, int, int] = (255, 0, 0, 255)) -> bytes:
    """A real, decodable PNG: image code downstream may parse what the fake hands out."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes(rgba) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG header, as Discord reports them for uploaded images."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def guess_content_type(filename: str) -> str | None:
    """Discord sniffs the type of uploads; the extension is a close enough stand-in."""
    return mimetypes.guess_type(filename)[0]


def sign_cdn_url(url: str, *, issued_at: float | None = None, secret: str = "fake-cdn") -> str:  # noqa: S107
    """Give a CDN link a fresh `ex`/`is`/`hm` signature, as Discord does each time it hands one out."""
    issued = int(time.time() if issued_at is None else issued_at)
    expires = issued + CDN_LINK_LIFETIME_S
    parts = urlsplit(url)
    mac = hashlib.sha256(f"{secret}:{parts.path}:{issued}:{next(_sequence)}".encode()).hexdigest()
    query = f"ex={expires:x}&is={issued:x}&hm={mac}&"
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass
class User:
    id: int = field(default_factory=snowflake)
    username: str = "alice"
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name if self.global_name is not None else self.username.title(),
            "avatar": self.avatar,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Member:
    user: User = field(default_factory=User)
    permissions: int = DEFAULT_MEMBER_PERMISSIONS
    roles: tuple[int, ...] = ()
    nick: str | None = None
    joined_at: str = "2024-01-01T00:00:00.000000+00:00"
    avatar: str | None = None  # a server avatar's hash; None: the account avatar shows

    @property
    def id(self) -> int:
        return self.user.id

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        """`permissions` is the member's resolved permission set in the channel, as a string bitfield."""
        data: dict[str, Any] = {
            "roles": [str(r) for r in self.roles],
            "nick": self.nick,
            "avatar": self.avatar,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
            "permissions": str(self.permissions),
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


def make_user(username: str = "alice", *, id: int | None = None, bot: bool = False, avatar: str | None = None) -> User:
    """`avatar` is the account avatar's hash (`a_…` for an animated one); None: Discord's default avatar."""
    return User(id=id if id is not None else snowflake(), username=username, bot=bot, avatar=avatar)


@dataclass
class Role:
    """A server role as Discord describes it (in `resolved.roles` and GET /guilds/{id}/roles)."""

    name: str = "artists"
    id: int = field(default_factory=snowflake)
    position: int = 1
    permissions: int = DEFAULT_MEMBER_PERMISSIONS
    color: int = 0

    def payload(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "name": self.name,
            "permissions": str(self.permissions),
            "position": self.position,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "managed": False,
            "mentionable": False,
            "icon": None,
            "unicode_emoji": None,
            "flags": 0,
        }


def make_role(name: str = "artists", *, id: int | None = None, position: int = 1) -> Role:
    return Role(name=name, id=id if id is not None else snowflake(), position=position)


def everyone_role(guild_id: int) -> Role:
    """@everyone: its id is the server's, and members' role lists never include it."""
    return Role(name="@everyone", id=guild_id, position=0)


def make_member(
    user: User | None = None,
    *,
    permissions: int = DEFAULT_MEMBER_PERMISSIONS,
    roles: tuple[int, ...] = (),
    avatar: str | None = None,
    nick: str | None = None,
) -> Member:
    """`avatar` is a server avatar's hash, shown instead of the account's in that server."""
    return Member(user=user or make_user(), permissions=permissions, roles=roles, avatar=avatar, nick=nick)


def avatar_hash(animated: bool = False) -> str:
    digest = hashlib.md5(f"{time.time_ns()}-{next(_sequence)}".encode(), usedforsecurity=False).hexdigest()
    return f"a_{digest}" if animated else digest


@dataclass
class Attachment:
    """An uploaded file as Discord describes it; `url` depends on where it is shown (message or option)."""

    filename: str = "cat.png"
    size: int = 1234
    content_type: str | None = "image/png"
    id: int = field(default_factory=snowflake)
    width: int | None = None
    height: int | None = None
    data: bytes | None = None
    url: str | None = None
    ephemeral: bool = False

    def path(self, *, owner_id: int) -> str:
        """Message attachments live under the channel, slash-command uploads under ephemeral-attachments."""
        folder = "ephemeral-attachments" if self.ephemeral else "attachments"
        return f"/{folder}/{owner_id}/{self.id}/{self.filename}"

    def payload(self, *, owner_id: int, cdn: str = DISCORD_CDN, media_proxy: str = DISCORD_MEDIA_PROXY) -> dict:
        url = self.url or sign_cdn_url(cdn + self.path(owner_id=owner_id))
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": url,
            "proxy_url": media_proxy + url[len(cdn) :] if url.startswith(cdn) else url,
        }
        if self.content_type is not None:
            data["content_type"] = self.content_type
        if self.width is not None and self.height is not None:
            data["width"], data["height"] = self.width, self.height
        if self.ephemeral:
            data["ephemeral"] = True
        return data


def make_attachment(
    filename: str = "cat.png",
    size: int | None = None,
    content_type: str | None = "image/png",
    *,
    data: bytes | None = None,
    width: int | None = None,
    height: int | None = None,
    url: str | None = None,
) -> Attachment:
    """An image attachment; with `data`, size and (for PNGs) dimensions come from the bytes themselves."""
    if data is not None:
        size = len(data) if size is None else size
        dims = png_size(data)
        if dims and width is None and height is None:
            width, height = dims
    elif content_type and content_type.startswith("image/") and width is None and height is None:
        width, height = 64, 64
    return Attachment(
        filename=filename,
        size=1234 if size is None else size,
        content_type=content_type,
        width=width,
        height=height,
        data=data,
        url=url,
    )


def external_proxy_url(url: str) -> str:
    """Discord's media-proxy copy of an outside picture: `https://x.io/a.png` → `…/external/<hash>/https/x.io/a.png`."""
    parts = urlsplit(url)
    digest = hashlib.sha256(url.encode()).hexdigest()[:43]
    query = f"?{parts.query}" if parts.query else ""
    return f"{DISCORD_EXTERNAL_PROXY}/external/{digest}/{parts.scheme}/{parts.netloc}{parts.path}{query}"


def embed_media(url: str, *, width: int = 640, height: int = 480) -> dict[str, Any]:
    """An embed's image, thumbnail or video object: the original URL and Discord's proxied copy."""
    return {"url": url, "proxy_url": external_proxy_url(url), "width": width, "height": height}


def image_embed(url: str = "https://images.example.com/photos/cat.png") -> dict[str, Any]:
    """What Discord makes of a link to a picture posted in a message: the picture is the thumbnail."""
    return {"type": "image", "url": url, "thumbnail": embed_media(url)}


def gifv_embed(page: str = "https://tenor.com/view/party-gif-123") -> dict[str, Any]:
    """A Tenor/Giphy GIF: a looping video, with a still as its thumbnail."""
    return {
        "type": "gifv",
        "url": page,
        "provider": {"name": "Tenor", "url": "https://tenor.co"},
        "thumbnail": embed_media("https://media.tenor.com/abc/party.png"),
        "video": embed_media("https://media.tenor.com/abc/party.mp4"),
    }


def video_embed(page: str = "https://www.youtube.com/watch?v=abc") -> dict[str, Any]:
    return {
        "type": "video",
        "url": page,
        "title": "A video",
        "thumbnail": embed_media("https://i.ytimg.com/vi/abc/hqdefault.jpg"),
        "video": {"url": "https://www.youtube.com/embed/abc", "width": 1280, "height": 720},
    }


def rich_embed(*, image: str | None = None, thumbnail: str | None = None, title: str = "A card") -> dict[str, Any]:
    """An embed a bot or a link preview made: a big `image`, a small `thumbnail`, or both."""
    data: dict[str, Any] = {"type": "rich", "title": title}
    if image is not None:
        data["image"] = embed_media(image)
    if thumbnail is not None:
        data["thumbnail"] = embed_media(thumbnail, width=80, height=80)
    return data


# Sticker format types (https://discord.com/developers/docs/resources/sticker#sticker-object-sticker-format-types).
STICKER_PNG, STICKER_APNG, STICKER_LOTTIE, STICKER_GIF = 1, 2, 3, 4


@dataclass
class Sticker:
    """A sticker as a message carries it (`sticker_items`): discord.py builds its CDN URL from id and format."""

    name: str = "wave"
    format_type: int = STICKER_PNG
    id: int = field(default_factory=snowflake)

    def item_payload(self) -> dict[str, Any]:
        return {"id": str(self.id), "name": self.name, "format_type": self.format_type}


def make_sticker(name: str = "wave", format_type: int = STICKER_PNG) -> Sticker:
    return Sticker(name=name, format_type=format_type)


@dataclass(frozen=True)
class Option:
    """An explicit option when the Python value's type is ambiguous (e.g. a NUMBER given as int)."""

    type: int
    value: Any


def option_type_of(value: Any) -> int:
    if isinstance(value, Option):
        return value.type
    if isinstance(value, Attachment):
        return ATTACHMENT
    if isinstance(value, User | Member):
        return USER
    if isinstance(value, Role):
        return ROLE
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, float):
        return NUMBER
    return STRING


def message_payload(
    *,
    channel_id: int,
    author: dict[str, Any],
    content: str = "",
    attachments: list[dict[str, Any]] | None = None,
    message_id: int | None = None,
    flags: int = 0,
    type: int = 0,
    components: list[dict[str, Any]] | None = None,
    embeds: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A message object as the REST API returns it (no guild_id/member: those come only over the gateway)."""
    data: dict[str, Any] = {
        "id": str(message_id if message_id is not None else snowflake()),
        "type": type,
        "channel_id": str(channel_id),
        "content": content,
        "author": author,
        "attachments": attachments or [],
        "embeds": embeds or [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": iso_now(),
        "edited_timestamp": None,
        "flags": flags,
        "components": components or [],
    }
    data.update(extra)
    return data


def channel_payload(channel_id: int, guild_id: int | None, *, name: str = "general") -> dict[str, Any]:
    """The partial channel Discord puts in interactions (GUILD_TEXT, or DM without a guild)."""
    if guild_id is None:
        return {"id": str(channel_id), "type": 1, "last_message_id": None, "flags": 0, "recipients": []}
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": 0,
        "parent_id": None,
        "topic": None,
        "nsfw": False,
        "rate_limit_per_user": 0,
        "last_message_id": None,
        "flags": 0,
        "permission_overwrites": [],
    }


@dataclass
class InteractionContext:
    """Who pressed what, where: everything an interaction carries besides its data."""

    application_id: int
    user: User | Member
    guild_id: int | None
    channel_id: int
    app_permissions: int = DEFAULT_APP_PERMISSIONS
    locale: str = "en-US"
    guild_locale: str = "en-US"
    attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT
    id: int = field(default_factory=snowflake)
    token: str = field(default_factory=interaction_token)

    @property
    def member(self) -> Member | None:
        if self.guild_id is None:
            return None
        return self.user if isinstance(self.user, Member) else Member(user=self.user)

    def envelope(self, type: int, data: dict[str, Any]) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "id": str(self.id),
            "application_id": str(self.application_id),
            "type": type,
            "data": data,
            "channel_id": str(self.channel_id),
            "channel": channel_payload(self.channel_id, self.guild_id),
            "token": self.token,
            "version": 1,
            "locale": self.locale,
            "app_permissions": str(self.app_permissions),
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
        }
        member = self.member
        if member is not None and self.guild_id is not None:
            payload["guild_id"] = str(self.guild_id)
            payload["guild"] = {"id": str(self.guild_id), "locale": self.guild_locale, "features": []}
            payload["guild_locale"] = self.guild_locale
            payload["member"] = member.payload()
            payload["authorizing_integration_owners"] = {"0": str(self.guild_id)}
            payload["context"] = CONTEXT_GUILD
        else:
            user = self.user.user if isinstance(self.user, Member) else self.user
            payload["user"] = user.payload()
            payload["authorizing_integration_owners"] = {"0": "0"}
            payload["context"] = CONTEXT_BOT_DM
        return payload

    @property
    def invoker(self) -> User:
        return self.user.user if isinstance(self.user, Member) else self.user


def resolve_options(
    ctx: InteractionContext,
    options: dict[str, Any],
    *,
    types: dict[str, int] | None = None,
    cdn: str = DISCORD_CDN,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """Option values as Discord sends them: attachments, users and roles by id, their objects under `resolved`."""
    resolved: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for name, raw in options.items():
        kind = (types or {}).get(name) or option_type_of(raw)
        value = raw.value if isinstance(raw, Option) else raw
        if isinstance(value, Attachment):
            value = replace(value, ephemeral=True)  # slash-command uploads are ephemeral attachments
            resolved.setdefault("attachments", {})[str(value.id)] = value.payload(owner_id=ctx.application_id, cdn=cdn)
            value = str(value.id)
        elif isinstance(value, User | Member):
            user = value.user if isinstance(value, Member) else value
            resolved.setdefault("users", {})[str(user.id)] = user.payload()
            if ctx.guild_id is not None:
                member = value if isinstance(value, Member) else Member(user=user)
                resolved.setdefault("members", {})[str(user.id)] = member.payload(with_user=False)
            value = str(user.id)
        elif isinstance(value, Role):
            resolved.setdefault("roles", {})[str(value.id)] = value.payload()
            value = str(value.id)
        elif kind == NUMBER and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out.append({"name": name, "type": kind, "value": value})
    return out, resolved


def nest_subcommand(path: str | None, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """'group sub' → SUB_COMMAND_GROUP(group) → SUB_COMMAND(sub) → options, as Discord nests them."""
    if not path:
        return options
    names = path.split()
    nested: list[dict[str, Any]] = [{"name": names[-1], "type": SUB_COMMAND, "options": options}]
    for group in reversed(names[:-1]):
        nested = [{"name": group, "type": SUB_COMMAND_GROUP, "options": nested}]
    return nested
