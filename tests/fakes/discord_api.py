"""A fake Discord REST API on 127.0.0.1 that answers like Discord and records every request.

Only the far side is fake: the bot under test talks to it over real HTTP through discord.py, so tests
assert on what the bot really sent (callbacks, edits, multipart uploads, channel posts). Every request is
checked against Discord's OpenAPI description (`discord_contract.py`) and every answer too; the limits the
bot's design depends on are enforced: 3 s to acknowledge, once; 15 min per interaction token; upload sizes.
The harness that logs a bot in against it and feeds it interactions is in `discord_harness.py`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import copy
import hashlib
import io
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image

from tests.fakes.discord_contract import contract, describe
from tests.fakes.interactions import (
    ADMINISTRATOR,
    ATTACHMENT_SIZE_LIMIT,
    CREATE_EXPRESSIONS,
    DEFAULT_APP_PERMISSIONS,
    DISCORD_CDN,
    DISCORD_MEDIA_PROXY,
    Attachment,
    Role,
    Sticker,
    User,
    channel_payload,
    everyone_role,
    guess_content_type,
    iso_now,
    make_user,
    message_payload,
    png_bytes,
    png_size,
    sign_cdn_url,
    snowflake,
)

API_PREFIX = "/api/v10"
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SENDABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)  # suppress embeds, ephemeral, silent, components v2
ACK_WINDOW_S = 3.0  # an interaction not acknowledged by then is gone for good
TOKEN_LIFETIME_S = 15 * 60  # the interaction webhook token

# Interaction callback types.
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
MODAL = 9
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3

_UNSET: Any = object()

# Routes Discord serves that its OpenAPI file (tests/contracts/discord-openapi.json) does not describe: the
# fake cannot check them against it, so each handler checks its own request instead.
# POST /attachments/refresh-urls: https://discord.com/developers/docs/resources/message (attachment URL
# refresh), `{"attachment_urls": [...]}` (1 to 50 CDN links) → `{"refreshed_urls": [{original, refreshed}]}`.
UNDOCUMENTED_ROUTES = frozenset({("POST", "/attachments/refresh-urls")})
MAX_REFRESH_URLS = 50

# Server emoji and stickers (https://discord.com/developers/docs/resources/emoji, .../resources/sticker).
EMOJI_MAX_BYTES = 256 * 1024
EMOJI_NAME = re.compile(r"[A-Za-z0-9_]{2,32}")
EMOJI_DATA_URI = re.compile(r"data:image/(?P<kind>png|jpeg|gif|webp|avif);base64,(?P<data>.*)", re.DOTALL)
STICKER_MAX_BYTES = 512 * 1024
STICKER_SIDE = 320  # uploaded PNG/APNG/GIF stickers must be exactly this square
STICKER_FORMATS = {"PNG": 1, "GIF": 4}  # Pillow's name → Discord's format_type (APNG is a PNG to Pillow)
DEFAULT_EMOJI_SLOTS = 50  # static emoji of a server without boosts
DEFAULT_STICKER_SLOTS = 5
# What the bot's role has in the fake's servers unless a test says otherwise: enough to create expressions.
DEFAULT_BOT_GUILD_PERMISSIONS = DEFAULT_APP_PERMISSIONS | CREATE_EXPRESSIONS


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes
    content_type: str | None


@dataclass(frozen=True)
class CreatedExpression:
    """An emoji or a sticker the bot created, with the exact image bytes Discord received."""

    guild_id: int
    id: int
    name: str
    data: bytes
    tags: str | None = None  # stickers only
    description: str | None = None


@dataclass
class RecordedRequest:
    """One request as the fake received it; `at` is the clock when it arrived (for acknowledgement delays)."""

    method: str
    path: str  # relative to /api/v10 (CDN requests keep their own path)
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    files: list[UploadedFile]
    at: float
    status: int = 0
    response: Any = None

    def matches(self, method: str | None, pattern: str) -> bool:
        return (method is None or method == "*" or method.upper() == self.method) and re.search(
            pattern, self.path
        ) is not None

    def __repr__(self) -> str:  # headers stay out: they carry the bot token
        return f"<{self.method} {self.path} -> {self.status}>"


@dataclass
class InjectedFailure:
    method: str | None
    pattern: str
    status: int
    body: Any
    headers: dict[str, str]
    times: int


@dataclass
class InteractionRecord:
    id: int
    token: str
    type: int
    payload: dict[str, Any]
    dispatched_at: float
    response_type: int | None = None
    acknowledged_at: float | None = None
    original_message_id: int | None = None
    expired: bool = False

    @property
    def payload_app(self) -> int:
        return int(self.payload["application_id"])


class DiscordError(Exception):
    """Raised inside a route to answer with Discord's JSON error shape."""

    def __init__(self, status: int, message: str, code: int = 0, errors: dict | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"message": message, "code": code}
        if errors:
            self.body["errors"] = errors


def default_failure_body(status: int, path: str, retry_after: float) -> Any:
    """What Discord answers for each status, so injected failures look like the real ones."""
    if status == 429:
        return {"message": "You are being rate limited.", "retry_after": retry_after, "global": False, "code": 0}
    if status == 401:
        return {"message": "401: Unauthorized", "code": 0}
    if status == 403:
        return {"message": "Missing Access", "code": 50001}
    if status == 404:
        if "/callback" in path:
            return {"message": "Unknown interaction", "code": 10062}
        if "/messages/" in path:
            return {"message": "Unknown Message", "code": 10008}
        if path.startswith("/webhooks/"):
            return {"message": "Unknown Webhook", "code": 10015}
        return {"message": "404: Not Found", "code": 0}
    if status >= 500:
        return {"message": f"{status}: Server Error", "code": 0}
    return {"message": "Bad Request", "code": 0}


Handler = Callable[[RecordedRequest, re.Match[str]], Awaitable[tuple[int, Any]]]


class FakeDiscordAPI:
    """Discord's REST API (the parts a slash-command bot uses), answering like Discord and recording all."""

    def __init__(
        self,
        *,
        token: str,
        application_id: int,
        bot_user: User,
        owner: User,
        local_cdn: bool = False,
        clock: Callable[[], float] = time.monotonic,
        validate: bool = True,
    ) -> None:
        # validate=False only for benchmarks: checking every request against the OpenAPI file costs the fake
        # milliseconds of CPU per request, which under a burst would be measured as the bot's latency.
        self.validate = validate
        self.token = token
        self.application_id = application_id
        self.bot_user = bot_user
        self.owner = owner
        self.local_cdn = local_cdn
        self.clock = clock
        # Off: like Discord for an app without the Message Content intent, GET of a message someone else
        # posted answers with no content, embeds, attachments or components (interactions still carry them).
        self.message_content_intent = True
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []  # requests Discord's description forbids, and answers it does not allow
        self.messages: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.emojis: list[CreatedExpression] = []
        self.stickers: list[CreatedExpression] = []
        # Per server, set by tests: free slots (Discord's counts by boost level) and the bot role's permissions.
        self.emoji_slots: dict[int, int] = {}
        self.sticker_slots: dict[int, int] = {}
        self.bot_guild_permissions: dict[int, int] = {}
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
        self.roles: dict[int, dict[int, Role]] = {}  # guild id → its roles besides @everyone (see add_role)
        self._by_token: dict[str, InteractionRecord] = {}
        self._failures: list[InjectedFailure] = []
        self._cdn_files: dict[str, bytes] = {}
        self._live_signatures: set[str] = set()
        self._changed = asyncio.Condition()
        self._server: TestServer | None = None
        self._routes: list[tuple[str, re.Pattern[str], bool, Handler]] = []
        self._add_routes()

    # -- lifecycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()

    async def close(self, *, check: bool = True) -> None:
        """Stop serving; then fail if the bot sent (or the fake answered) anything off-contract."""
        if self._server is not None:
            await self._server.close()
            self._server = None
        if check and self.violations:
            raise AssertionError("fake Discord: off-contract traffic:\n" + "\n".join(self.violations))

    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake Discord API is not started"
        return str(self._server.make_url("")).rstrip("/")

    @property
    def api_base(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def cdn_base(self) -> str:
        return self.base_url if self.local_cdn else DISCORD_CDN

    @property
    def media_proxy_base(self) -> str:
        return self.base_url if self.local_cdn else DISCORD_MEDIA_PROXY

    # -- test-facing API -----------------------------------------------------------------------------

    def add_route(self, method: str, path_regex: str, handler: Handler, *, bot_auth: bool = True) -> None:
        """Serve one more REST route (e.g. the fake gateway's GET /gateway/bot), recorded like the others."""
        self._routes.append((method.upper(), re.compile(path_regex), bot_auth, handler))

    def fail_next(
        self,
        method: str | None,
        path_regex: str,
        *,
        status: int,
        json: Any = _UNSET,
        headers: dict[str, str] | None = None,
        times: int = 1,
        retry_after: float = 0.01,
    ) -> None:
        """Answer the next `times` matching requests with `status` (default body/headers like Discord's)."""
        body = default_failure_body(status, path_regex, retry_after) if json is _UNSET else json
        extra = dict(headers or {})
        if status == 429:
            # discord.py treats a 429 without `Via` as a Cloudflare ban and raises instead of retrying.
            extra = {
                "Retry-After": str(max(1, round(retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Scope": "user",
                "X-RateLimit-Bucket": "fake-bucket",
                "Via": "1.1 google",
                **extra,
            }
        self._failures.append(InjectedFailure(method, path_regex, status, body, extra, times))

    def expire_interaction(self, interaction_id: int) -> None:
        """The token ran out now, whatever the clock says: later calls fail like Discord's."""
        self.interactions[interaction_id].expired = True

    def revoke_cdn_links(self) -> None:
        """Every CDN link handed out so far stops working (local CDN); fetching a message signs new ones."""
        self._live_signatures.clear()

    def add_channel(self, channel_id: int, guild_id: int | None, *, name: str = "general") -> dict[str, Any]:
        return self.channels.setdefault(channel_id, channel_payload(channel_id, guild_id, name=name))

    def add_role(self, guild_id: int, role: Role) -> Role:
        """A role created in the server: GET /guilds/{id}/roles lists it until `delete_role`."""
        self.roles.setdefault(guild_id, {})[role.id] = role
        return role

    def delete_role(self, guild_id: int, role_id: int) -> None:
        """Deleted in Discord: no longer listed (members stop carrying it; their payloads are the test's to build)."""
        self.roles.get(guild_id, {}).pop(role_id, None)

    def add_message(
        self,
        channel_id: int,
        *,
        content: str = "",
        attachments: Iterable[Attachment] = (),
        author: User | None = None,
        guild_id: int | None = None,
        embeds: Iterable[dict[str, Any]] = (),
        stickers: Iterable[Sticker] = (),
    ) -> dict[str, Any]:
        """A message someone posted (e.g. an image to right-click); stored so it can be fetched later."""
        self.add_channel(channel_id, guild_id)
        for attachment in attachments:
            self.publish(attachment, attachment.path(owner_id=channel_id))
        extra: dict[str, Any] = {"sticker_items": [s.item_payload() for s in stickers]} if stickers else {}
        message = message_payload(
            channel_id=channel_id,
            author=(author or make_user("bob")).payload(),
            content=content,
            attachments=[
                a.payload(owner_id=channel_id, cdn=self.cdn_base, media_proxy=self.media_proxy_base)
                for a in attachments
            ],
            embeds=[copy.deepcopy(e) for e in embeds],
            **extra,
        )
        self.messages[int(message["id"])] = message
        return self.served(message)

    def publish(self, attachment: Attachment, path: str) -> None:
        """Let the local CDN serve this attachment's bytes (real ones if given, else a matching PNG)."""
        data = attachment.data
        if data is None:
            data = (
                png_bytes(attachment.width or 1, attachment.height or 1)
                if attachment.content_type == ("image/png")
                else bytes(attachment.size)
            )
        self._cdn_files[path] = data

    def served(self, message: dict[str, Any]) -> dict[str, Any]:
        """A copy of a stored message with freshly signed attachment links, as each GET hands them out."""
        out = copy.deepcopy(message)
        for attachment in out.get("attachments", []):
            attachment["url"] = self.sign(attachment["url"])
            attachment["proxy_url"] = self.sign(attachment["proxy_url"])
        return out

    def sign(self, url: str) -> str:
        signed = sign_cdn_url(url)
        self._live_signatures.add(dict(parse_qsl(urlsplit(signed).query)).get("hm", ""))
        return signed

    def register_interaction(self, payload: dict[str, Any]) -> InteractionRecord:
        record = InteractionRecord(
            id=int(payload["id"]),
            token=payload["token"],
            type=payload["type"],
            payload=payload,
            dispatched_at=self.clock(),
        )
        self.interactions[record.id] = record
        self._by_token[record.token] = record
        self.add_channel(int(payload["channel_id"]), int(payload["guild_id"]) if "guild_id" in payload else None)
        for url in _attachment_urls(payload):
            self._live_signatures.add(dict(parse_qsl(urlsplit(url).query)).get("hm", ""))
        return record

    def command_id(self, name: str, kind: int, guild_id: int | None) -> tuple[int | None, int | None]:
        """(command id, guild id if it is a guild command) as synced by the bot, else (None, None)."""
        for scope, commands in (
            (guild_id, self.guild_commands.get(guild_id or 0, [])),
            (None, self.global_commands),
        ):
            for command in commands:
                if command["name"] == name and command.get("type", 1) == kind:
                    return int(command["id"]), scope
        return None, None

    def find(self, method: str | None = None, path_regex: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.matches(method, path_regex)]

    def callbacks(self, interaction_id: int) -> list[RecordedRequest]:
        return self.find("POST", rf"^/interactions/{interaction_id}/[^/]+/callback$")

    def original_edits(self, token: str) -> list[RecordedRequest]:
        return self.find("PATCH", rf"^/webhooks/\d+/{re.escape(token)}/messages/@original$")

    def followups(self, token: str) -> list[RecordedRequest]:
        return self.find("POST", rf"^/webhooks/\d+/{re.escape(token)}$")

    def channel_messages(self, channel_id: int) -> list[RecordedRequest]:
        return self.find("POST", rf"^/channels/{channel_id}/messages$")

    def ack_delay(self, interaction_id: int) -> float | None:
        """Clock time from dispatch to the first callback's arrival: Discord allows 3 s."""
        record = self.interactions[interaction_id]
        calls = self.callbacks(interaction_id)
        return None if not calls else calls[0].at - record.dispatched_at

    async def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 5.0
    ) -> list[RecordedRequest]:
        """Wait until the recorded requests satisfy `predicate` (checked after each request is answered)."""
        try:
            async with asyncio.timeout(timeout), self._changed:
                await self._changed.wait_for(lambda: predicate(self.requests))
        except TimeoutError:
            seen = ", ".join(f"{r.method} {r.path} {r.status}" for r in self.requests[-20:]) or "none"
            raise AssertionError(f"fake Discord: condition not met within {timeout}s; last requests: {seen}") from None
        return self.requests

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- HTTP plumbing -------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        raw_path = request.path
        path = raw_path[len(API_PREFIX) :] if raw_path.startswith(API_PREFIX) else raw_path
        body_json, files = await _read_body(request)
        record = RecordedRequest(
            method=request.method,
            path=path,
            query=dict(request.query),
            headers=dict(request.headers),
            json=body_json,
            files=files,
            at=arrived,
        )
        self.requests.append(record)
        is_api = raw_path.startswith(API_PREFIX)
        operation, errors = (
            contract().request_errors(record.method, path, record.query, body_json, request.content_type)
            if is_api and self.validate and (record.method, path) not in UNDOCUMENTED_ROUTES
            else (None, {})
        )
        try:
            if errors:
                self.violations.append(f"{record.method} {path}: {describe(errors)}")
                raise DiscordError(400, "Invalid Form Body", 50035, errors)
            status, body, headers = await self._respond(record, is_api)
        except DiscordError as error:
            status, body, headers = error.status, error.body, {}
        if operation is not None and not isinstance(body, bytes):
            wrong = contract().response_errors(operation, status, body)
            if wrong:  # a bug in the fake: the answer still goes out, and `close()` fails the test
                self.violations.append(f"fake answered {record.method} {path} -> {status} off-contract: {wrong}")
        record.status, record.response = status, body
        await self.notify()
        if status == 204 or body is None:
            return web.Response(status=status, headers=headers)
        if isinstance(body, bytes):
            return web.Response(status=status, body=body, headers=headers)
        # Exactly `application/json`, as Discord sends: discord.py compares the header verbatim and would
        # otherwise hand the bot a str (aiohttp's json_response appends "; charset=utf-8").
        return web.Response(
            status=status,
            body=json.dumps(body).encode(),
            headers={**headers, "Content-Type": "application/json"},
        )

    async def _respond(self, record: RecordedRequest, is_api: bool) -> tuple[int, Any, dict[str, str]]:
        for failure in self._failures:
            if record.matches(failure.method, failure.pattern):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure.status, failure.body, failure.headers
        if not is_api:
            return self._serve_cdn(record)
        for method, pattern, needs_bot_auth, handler in self._routes:
            match = pattern.fullmatch(record.path)
            if match is None or method != record.method:
                continue
            if needs_bot_auth and record.headers.get("Authorization") != f"Bot {self.token}":
                raise DiscordError(401, "401: Unauthorized")
            status, body = await handler(record, match)
            return status, body, self._ratelimit_headers(method, pattern.pattern)
        raise DiscordError(404, "404: Not Found")

    @staticmethod
    def _ratelimit_headers(method: str, route: str) -> dict[str, str]:
        bucket = hashlib.sha1(f"{method} {route}".encode(), usedforsecurity=False).hexdigest()[:16]
        return {
            "X-RateLimit-Limit": "50",
            "X-RateLimit-Remaining": "49",
            "X-RateLimit-Reset-After": "0.050",
            "X-RateLimit-Reset": f"{time.time() + 0.05:.3f}",
            "X-RateLimit-Bucket": bucket,
        }

    def _serve_cdn(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        data = self._cdn_files.get(record.path)
        if not self.local_cdn or data is None:
            return 404, {"message": "404: Not Found", "code": 0}, {}
        if record.query.get("hm") not in self._live_signatures:
            return 404, b"This content is no longer available.", {"Content-Type": "text/plain"}
        return 200, data, {"Content-Type": guess_content_type(record.path) or "application/octet-stream"}

    def _add_routes(self) -> None:
        snow, token = r"(?P<{}>\d+)", r"(?P<token>[^/]+)"
        app, guild, cid = snow.format("app"), snow.format("guild"), snow.format("cid")
        table: list[tuple[str, str, bool, Handler]] = [
            ("GET", "/users/@me", True, self._get_me),
            ("GET", "/oauth2/applications/@me", True, self._get_application),  # discord.py's application_info()
            ("GET", "/applications/@me", True, self._get_application),
            ("GET", f"/applications/{app}/commands", True, self._get_commands),
            ("PUT", f"/applications/{app}/commands", True, self._put_commands),
            ("GET", f"/applications/{app}/guilds/{guild}/commands", True, self._get_commands),
            ("PUT", f"/applications/{app}/guilds/{guild}/commands", True, self._put_commands),
            ("POST", f"/interactions/{snow.format('iid')}/{token}/callback", False, self._callback),
            ("POST", f"/webhooks/{app}/{token}", False, self._followup),
            ("GET", f"/webhooks/{app}/{token}/messages/@original", False, self._webhook_get),
            ("PATCH", f"/webhooks/{app}/{token}/messages/@original", False, self._webhook_edit),
            ("DELETE", f"/webhooks/{app}/{token}/messages/@original", False, self._webhook_delete),
            ("GET", f"/guilds/{guild}/roles", True, self._get_roles),
            ("GET", f"/channels/{cid}", True, self._get_channel),
            ("POST", f"/channels/{cid}/messages", True, self._channel_post),
            ("GET", f"/channels/{cid}/messages/{snow.format('mid')}", True, self._channel_get),
            ("POST", "/users/@me/channels", True, self._open_dm),
            ("POST", "/attachments/refresh-urls", True, self._refresh_urls),  # see UNDOCUMENTED_ROUTES
            ("POST", f"/guilds/{guild}/emojis", True, self._create_emoji),
            ("POST", f"/guilds/{guild}/stickers", True, self._create_sticker),
        ]
        self._routes = [(m, re.compile(p), auth, h) for m, p, auth, h in table]

    # -- identity and commands -------------------------------------------------------------------------

    async def _get_roles(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        """Every role of a server the bot is in, @everyone first, as Discord lists them."""
        guild_id = int(match["guild"])
        known = {int(c.get("guild_id") or 0) for c in self.channels.values()} | set(self.roles)
        if guild_id not in known:
            raise DiscordError(404, "Unknown Guild", 10004)
        roles = [everyone_role(guild_id), *self.roles.get(guild_id, {}).values()]
        return 200, [role.payload() for role in roles]

    async def _get_me(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        me = self.bot_user.payload()
        me.update({"bot": True, "verified": True, "mfa_enabled": False, "flags": 0, "locale": "en-US"})
        return 200, me

    async def _get_application(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.owner.payload(),
            "verify_key": "0" * 64,
            "flags": 0,
            "flags_new": "0",
            "team": None,
            "bot": {**self.bot_user.payload(), "bot": True},
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "approximate_guild_count": 1,
            "approximate_user_install_count": 0,
            "approximate_user_authorization_count": 0,
            "explicit_content_filter": 0,
            "eligible_oauth2_scopes": [],
        }

    def _command_scope(self, match: re.Match[str]) -> list[dict[str, Any]]:
        if int(match["app"]) != self.application_id:
            raise DiscordError(403, "Missing Access", 50001)
        guild = match.groupdict().get("guild")
        return self.guild_commands.setdefault(int(guild), []) if guild else self.global_commands

    async def _get_commands(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._command_scope(match))

    async def _put_commands(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        """Bulk overwrite: commands keep their id when name and type are unchanged, as on Discord."""
        current = self._command_scope(match)
        if not isinstance(record.json, list) or len(record.json) > 100:
            raise DiscordError(400, "Invalid Form Body", 50035)
        known = {(c["name"], c.get("type", 1)): c["id"] for c in current}
        guild = match.groupdict().get("guild")
        stored = []
        for command in record.json:
            name = command.get("name", "")
            if not re.fullmatch(r"[-_\w]{1,32}", name) and command.get("type", 1) == 1:
                raise DiscordError(
                    400,
                    "Invalid Form Body",
                    50035,
                    {"name": {"_errors": [{"code": "APPLICATION_COMMAND_INVALID_NAME"}]}},
                )
            entry = {
                "id": known.get((name, command.get("type", 1))) or str(snowflake()),
                "application_id": str(self.application_id),
                "version": str(snowflake()),
                "default_member_permissions": None,
                "type": 1,
                "description": "",
                "nsfw": False,
                **{key: value for key, value in command.items() if value is not None},  # Discord fills defaults
            }
            if guild:
                entry["guild_id"] = guild
            stored.append(entry)
        current[:] = stored
        return 200, copy.deepcopy(stored)

    # -- interactions ---------------------------------------------------------------------------------

    async def _callback(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        interaction = self.interactions.get(int(match["iid"]))
        if interaction is None or interaction.token != match["token"] or interaction.expired:
            raise DiscordError(404, "Unknown interaction", 10062)
        if interaction.response_type is not None:
            raise DiscordError(400, "Interaction has already been acknowledged.", 40060)
        if record.at - interaction.dispatched_at > ACK_WINDOW_S:
            raise DiscordError(404, "Unknown interaction", 10062)
        body = record.json if isinstance(record.json, dict) else {}
        kind, data = body.get("type"), body.get("data") or {}
        allowed = {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}
        if interaction.type == MESSAGE_COMPONENT:
            allowed |= {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}
        if kind not in allowed:
            raise DiscordError(400, "Invalid Form Body", 50035, {"type": {"_errors": [{"code": "INVALID"}]}})
        message: dict[str, Any] | None = None
        flags = int(data.get("flags", 0))
        if kind == CHANNEL_MESSAGE:
            message = self._create_message(
                interaction_channel(interaction), data, record.files, interaction=interaction
            )
        elif kind == DEFERRED_CHANNEL_MESSAGE:
            message = self._create_message(
                interaction_channel(interaction),
                {"flags": (flags & EPHEMERAL) | LOADING},
                [],
                interaction=interaction,
                allow_empty=True,
            )
        elif kind in (DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE):
            message = self.messages.get(int(interaction.payload["message"]["id"]))
            if message is None:
                raise DiscordError(404, "Unknown Message", 10008)
            if kind == UPDATE_MESSAGE:
                self._edit_message(message, data, record.files, interaction)
        if message is not None:
            interaction.original_message_id = int(message["id"])
        interaction.response_type, interaction.acknowledged_at = kind, record.at
        if record.query.get("with_response") not in ("1", "true", "True"):
            return 204, None
        response: dict[str, Any] = {"id": str(interaction.id), "type": interaction.type}
        if message is not None:
            response.update(
                response_message_id=message["id"],
                response_message_loading=kind == DEFERRED_CHANNEL_MESSAGE,
                response_message_ephemeral=bool(int(message["flags"]) & EPHEMERAL),
            )
        if kind in (CHANNEL_MESSAGE, UPDATE_MESSAGE) and message is not None:  # the only documented resources
            return 200, {"interaction": response, "resource": {"type": kind, "message": self.served(message)}}
        return 200, {"interaction": response}

    def _interaction_for(self, match: re.Match[str]) -> InteractionRecord:
        interaction = self._by_token.get(match["token"])
        if (
            interaction is None
            or int(match["app"]) != interaction.payload_app
            or interaction.expired
            or self.clock() - interaction.dispatched_at > TOKEN_LIFETIME_S
        ):
            raise DiscordError(401, "Invalid Webhook Token", 50027)
        if interaction.response_type is None:
            raise DiscordError(404, "Unknown Webhook", 10015)
        return interaction

    def _original(self, interaction: InteractionRecord) -> dict[str, Any]:
        message = self.messages.get(interaction.original_message_id or 0)
        if message is None:
            raise DiscordError(404, "Unknown Message", 10008)
        return message

    async def _followup(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        interaction = self._interaction_for(match)
        message = self._create_message(
            interaction_channel(interaction),
            record.json or {},
            record.files,
            interaction=interaction,
            followup=True,
        )
        return 200, self.served(message)  # for interaction followups `wait` is always true

    async def _webhook_get(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, self.served(self._original(self._interaction_for(match)))

    async def _webhook_edit(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        interaction = self._interaction_for(match)
        message = self._original(interaction)
        self._edit_message(message, record.json or {}, record.files, interaction)
        return 200, self.served(message)

    async def _webhook_delete(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        message = self._original(self._interaction_for(match))
        del self.messages[int(message["id"])]
        return 204, None

    # -- channels --------------------------------------------------------------------------------------

    def _channel(self, match: re.Match[str]) -> dict[str, Any]:
        channel = self.channels.get(int(match["cid"]))
        if channel is None:
            raise DiscordError(404, "Unknown Channel", 10003)
        return channel

    def _channel_message(self, match: re.Match[str]) -> dict[str, Any]:
        self._channel(match)
        message = self.messages.get(int(match["mid"]))
        if message is None or message["channel_id"] != match["cid"] or int(message["flags"]) & EPHEMERAL:
            raise DiscordError(404, "Unknown Message", 10008)
        return message

    async def _get_channel(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._channel(match))

    async def _channel_post(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        channel = self._channel(match)
        body = dict(record.json or {})
        body["flags"] = int(body.get("flags", 0)) & ~EPHEMERAL  # only interaction replies can be ephemeral
        return 200, self.served(self._create_message(int(channel["id"]), body, record.files))

    async def _channel_get(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        message = self.served(self._channel_message(match))
        if not self.message_content_intent and message["author"]["id"] != str(self.bot_user.id):
            message.update(content="", embeds=[], attachments=[], components=[])
        return 200, message

    # -- attachments -------------------------------------------------------------------------------------

    async def _refresh_urls(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        """Fresh signatures for links to attachments of stored messages; other links are left out (a deleted
        message's files are gone from Discord's CDN). Not in the OpenAPI file, so the body is checked here."""
        body = record.json if isinstance(record.json, dict) else {}
        urls = body.get("attachment_urls")
        if (
            set(body) != {"attachment_urls"}
            or not isinstance(urls, list)
            or not 1 <= len(urls) <= MAX_REFRESH_URLS
            or not all(isinstance(url, str) for url in urls)
        ):
            self.violations.append(f"POST /attachments/refresh-urls: malformed body {record.json!r}")
            raise DiscordError(400, "Invalid Form Body", 50035, {"attachment_urls": {"_errors": [{"code": "INVALID"}]}})
        stored = {
            urlsplit(attachment["url"]).path
            for message in self.messages.values()
            for attachment in message.get("attachments", [])
        }
        refreshed = [{"original": url, "refreshed": self.sign(url)} for url in urls if urlsplit(url).path in stored]
        return 200, {"refreshed_urls": refreshed}

    # -- server emoji and stickers ------------------------------------------------------------------------
    # The body's shape is checked against the OpenAPI file like every route; Discord's own rules beyond it are
    # checked here. A malformed name or image is a bug of the bot (recorded as a violation); what Discord refuses
    # at run time (permissions, full slots, a file over its size limit) is answered as Discord does, and the bot
    # must word it.

    def _may_create_expressions(self, guild_id: int) -> None:
        permissions = self.bot_guild_permissions.get(guild_id, DEFAULT_BOT_GUILD_PERMISSIONS)
        if not permissions & (CREATE_EXPRESSIONS | ADMINISTRATOR):
            raise DiscordError(403, "Missing Permissions", 50013)

    def _malformed(self, route: str, field_name: str, message: str) -> DiscordError:
        """A form error in Discord's shape (the spec types its `code` as an integer), recorded as the bot's bug."""
        self.violations.append(f"POST {route}: {field_name}: {message}")
        return DiscordError(
            400, "Invalid Form Body", 50035, {field_name: {"_errors": [{"code": 50035, "message": message}]}}
        )

    async def _create_emoji(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        guild_id, body = int(match["guild"]), record.json if isinstance(record.json, dict) else {}
        route = "/guilds/{guild_id}/emojis"
        name, image = str(body.get("name", "")), str(body.get("image", ""))
        if not EMOJI_NAME.fullmatch(name):
            raise self._malformed(route, "name", "Must be 2-32 letters, digits or underscores.")
        uri = EMOJI_DATA_URI.fullmatch(image)
        try:
            data = base64.b64decode(uri["data"], validate=True) if uri else b""
        except binascii.Error:
            data = b""
        if not data or _image_format(data) is None:
            raise self._malformed(route, "image", "Invalid image data")
        self._may_create_expressions(guild_id)
        if len(data) > EMOJI_MAX_BYTES:
            raise DiscordError(400, f"Failed to resize asset below the maximum size: {EMOJI_MAX_BYTES}", 50138)
        slots = self.emoji_slots.get(guild_id, DEFAULT_EMOJI_SLOTS)
        if sum(e.guild_id == guild_id for e in self.emojis) >= slots:
            raise DiscordError(400, f"Maximum number of emojis reached ({slots})", 30008)
        emoji = CreatedExpression(guild_id, snowflake(), name, data)
        self.emojis.append(emoji)
        return 201, {
            "id": str(emoji.id),
            "name": name,
            "roles": [],
            "user": self.bot_user.payload(),
            "require_colons": True,
            "managed": False,
            "animated": False,
            "available": True,
        }

    async def _create_sticker(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        guild_id, body = int(match["guild"]), record.json if isinstance(record.json, dict) else {}
        route = "/guilds/{guild_id}/stickers"
        name, tags, description = str(body.get("name", "")), str(body.get("tags", "")), body.get("description") or ""
        if description and not 2 <= len(description) <= 100:
            raise self._malformed(route, "description", "Must be empty or 2-100 characters long.")
        if len(record.files) != 1:
            raise self._malformed(route, "file", "Exactly one file is required.")
        data = record.files[0].data
        found = _image_format(data)
        if found is None or found[0] not in STICKER_FORMATS:
            raise self._malformed(route, "file", "Stickers are PNG, APNG, GIF or Lottie.")
        self._may_create_expressions(guild_id)
        if len(data) > STICKER_MAX_BYTES:
            raise DiscordError(400, "File uploaded exceeds the maximum size", 50045)
        if found[1] != (STICKER_SIDE, STICKER_SIDE):
            raise self._malformed(route, "file", f"Stickers must be exactly {STICKER_SIDE}x{STICKER_SIDE}.")
        slots = self.sticker_slots.get(guild_id, DEFAULT_STICKER_SLOTS)
        if sum(e.guild_id == guild_id for e in self.stickers) >= slots:
            raise DiscordError(400, f"Maximum number of stickers reached ({slots})", 30039)
        sticker = CreatedExpression(guild_id, snowflake(), name, data, tags, description)
        self.stickers.append(sticker)
        return 201, {
            "id": str(sticker.id),
            "name": name,
            "tags": tags,
            "type": 2,
            "format_type": STICKER_FORMATS[found[0]],
            "description": description or None,
            "available": True,
            "guild_id": str(guild_id),
            "user": self.bot_user.payload(),
        }

    async def _open_dm(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        recipient = str((record.json or {}).get("recipient_id", ""))
        for channel in self.channels.values():
            if channel["type"] == 1 and [u["id"] for u in channel.get("recipients", [])] == [recipient]:
                return 200, copy.deepcopy(channel)
        channel = self.add_channel(snowflake(), None)
        channel["recipients"] = [make_user("recipient", id=int(recipient)).payload()] if recipient.isdigit() else []
        return 200, copy.deepcopy(channel)

    # -- messages ---------------------------------------------------------------------------------------

    def _uploads(
        self, channel_id: int, body: dict[str, Any], files: list[UploadedFile], limit: int, *, ephemeral: bool
    ) -> list[dict[str, Any]]:
        """Turn `files[n]` parts into attachment objects, with metadata from the `attachments` entries."""
        if sum(len(upload.data) for upload in files) > limit:
            raise DiscordError(413, "Request entity too large", 40005)
        described = {str(a.get("id")): a for a in body.get("attachments") or [] if isinstance(a, dict)}
        out = []
        for index, upload in enumerate(files):
            meta = described.get(str(index), {})
            filename = meta.get("filename") or upload.filename
            dims = png_size(upload.data)
            attachment = Attachment(
                filename=filename,
                size=len(upload.data),
                content_type=guess_content_type(filename),
                width=dims[0] if dims else None,
                height=dims[1] if dims else None,
                data=upload.data,
                ephemeral=ephemeral,
            )
            owner = self.application_id if ephemeral else channel_id
            self.publish(attachment, attachment.path(owner_id=owner))
            payload = attachment.payload(owner_id=owner, cdn=self.cdn_base, media_proxy=self.media_proxy_base)
            if meta.get("description"):
                payload["description"] = meta["description"]
            out.append(payload)
        return out

    def _create_message(
        self,
        channel_id: int,
        body: dict[str, Any],
        files: list[UploadedFile],
        *,
        interaction: InteractionRecord | None = None,
        followup: bool = False,
        allow_empty: bool = False,
    ) -> dict[str, Any]:
        content = body.get("content") or ""
        flags = int(body.get("flags") or 0)
        if flags & ~(SENDABLE_FLAGS | LOADING):
            raise DiscordError(400, "Invalid Form Body", 50035, {"flags": {"_errors": [{"code": "INVALID"}]}})
        limit = interaction.payload["attachment_size_limit"] if interaction else ATTACHMENT_SIZE_LIMIT
        attachments = self._uploads(channel_id, body, files, limit, ephemeral=bool(flags & EPHEMERAL))
        has_body = content or attachments or body.get("embeds") or body.get("components") or body.get("poll")
        if not (has_body or allow_empty):
            raise DiscordError(400, "Cannot send an empty message", 50006)
        extra: dict[str, Any] = {}
        kind = 0
        if interaction is not None:
            extra = {
                "webhook_id": str(self.application_id),
                "application_id": str(self.application_id),
                "interaction_metadata": _interaction_metadata(interaction),
            }
            if followup and interaction.original_message_id is not None:
                extra["interaction_metadata"]["original_response_message_id"] = str(interaction.original_message_id)
            data_type = interaction.payload.get("data", {}).get("type", 1)
            kind = 19 if interaction.type == MESSAGE_COMPONENT else (20 if data_type == 1 else 23)
        message = message_payload(
            channel_id=channel_id,
            author={**self.bot_user.payload(), "bot": True},
            content=content,
            attachments=attachments,
            flags=flags,
            type=kind,
            components=_numbered(body.get("components")),
            embeds=body.get("embeds"),
            **extra,
        )
        self.messages[int(message["id"])] = message
        return message

    def _edit_message(
        self,
        message: dict[str, Any],
        body: dict[str, Any],
        files: list[UploadedFile],
        interaction: InteractionRecord | None,
    ) -> None:
        """PATCH semantics: only given fields change; `attachments` lists the existing ones to keep."""
        if "content" in body:
            message["content"] = body["content"] or ""
        if "embeds" in body:
            message["embeds"] = body["embeds"] or []
        if "components" in body:
            message["components"] = _numbered(body["components"])
        flags = int(message["flags"])
        if "flags" in body and body["flags"] is not None:
            flags = (flags & EPHEMERAL) | (int(body["flags"]) & SENDABLE_FLAGS & ~EPHEMERAL)
        message["flags"] = flags & ~LOADING
        existing = message.get("attachments", [])
        if "attachments" in body and body["attachments"] is not None:
            keep_ids = {str(a.get("id")) for a in body["attachments"] if isinstance(a, dict)}
            existing = [a for a in existing if a["id"] in keep_ids]
        limit = interaction.payload["attachment_size_limit"] if interaction else ATTACHMENT_SIZE_LIMIT
        uploads = self._uploads(int(message["channel_id"]), body, files, limit, ephemeral=bool(flags & EPHEMERAL))
        message["attachments"] = existing + uploads
        message["edited_timestamp"] = iso_now()


def _numbered(components: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """Discord gives every component without one a numeric `id`, counting through the message."""
    counter = iter(range(1, 1000))

    def number(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            item = {"id": next(counter), **{k: v for k, v in item.items() if v is not None}}
            if "components" in item:
                item["components"] = number(item["components"])
            out.append(item)
        return out

    return number(components or [])


def interaction_channel(interaction: InteractionRecord) -> int:
    return int(interaction.payload["channel_id"])


def _interaction_metadata(interaction: InteractionRecord) -> dict[str, Any]:
    payload = interaction.payload
    user = payload["member"]["user"] if "member" in payload else payload["user"]
    meta: dict[str, Any] = {
        "id": str(interaction.id),
        "type": interaction.type,
        "user": user,
        "authorizing_integration_owners": payload.get("authorizing_integration_owners", {}),
    }
    if interaction.type == APPLICATION_COMMAND:
        meta["name"] = payload["data"]["name"]
        meta["command_type"] = payload["data"].get("type", 1)
    elif interaction.type == MESSAGE_COMPONENT:
        meta["interacted_message_id"] = payload["message"]["id"]
    return meta


def _attachment_urls(payload: dict[str, Any]) -> list[str]:
    resolved = payload.get("data", {}).get("resolved", {})
    urls = [a["url"] for a in resolved.get("attachments", {}).values()]
    messages = list(resolved.get("messages", {}).values()) + ([payload["message"]] if "message" in payload else [])
    for message in messages:
        urls += [a["url"] for a in message.get("attachments", [])]
    return urls


async def _read_body(request: web.Request) -> tuple[Any, list[UploadedFile]]:
    """JSON bodies as-is; multipart as discord.py sends it: `payload_json` plus `files[n]` parts."""
    if not request.can_read_body:
        return None, []
    if request.content_type.startswith("multipart/"):
        body: Any = None
        fields: dict[str, Any] = {}  # a form without payload_json (a sticker's name, tags, description and file)
        files: list[UploadedFile] = []
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader):
                continue
            data = await part.read(decode=False)
            if part.name == "payload_json":
                body = json.loads(data)
            elif part.filename is not None:
                files.append(UploadedFile(part.filename, bytes(data), part.headers.get("Content-Type")))
                if part.name and not part.name.startswith("files["):
                    fields[part.name] = f"<{len(data)} bytes>"  # binary in the spec: present is what it checks
            elif part.name:
                fields[part.name] = bytes(data).decode(errors="replace")
        return (body if body is not None else fields or None), files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode(errors="replace"), []


def _image_format(data: bytes) -> tuple[str, tuple[int, int]] | None:
    """Pillow's name for the image's format and its size, or None when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.format or "", image.size
    except (OSError, SyntaxError, ValueError):
        return None
