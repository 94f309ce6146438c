"""A fake Discord REST API on 127.0.0.1 and a harness that drives a real discord.py bot against it.

The bot under test keeps all of discord.py: `login()` over HTTP, the command tree's parsing and checks,
`Interaction` objects, views, the webhook adapter, multipart uploads. Only the far side is fake, and it
records every request so tests assert on what the bot really sent. No gateway: interactions are fed to
`ConnectionState.parse_interaction_create`, exactly where the gateway would deliver them.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import discord
import discord.http
import discord.webhook.async_
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from discord import app_commands

from tests.fakes.interactions import (
    ATTACHMENT_SIZE_LIMIT,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    DISCORD_CDN,
    DISCORD_MEDIA_PROXY,
    Attachment,
    InteractionContext,
    Member,
    User,
    channel_payload,
    guess_content_type,
    iso_now,
    make_user,
    message_payload,
    nest_subcommand,
    png_bytes,
    png_size,
    resolve_options,
    sign_cdn_url,
    snowflake,
)

API_PREFIX = "/api/v10"
EPHEMERAL = 1 << 6
LOADING = 1 << 7
SENDABLE_FLAGS = (1 << 2) | EPHEMERAL | (1 << 12) | (1 << 15)  # suppress embeds, ephemeral, silent, components v2
MAX_CONTENT = 2000

# Interaction callback types.
CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE = 4, 5, 6, 7
AUTOCOMPLETE_RESULT, MODAL = 8, 9
APPLICATION_COMMAND, MESSAGE_COMPONENT = 2, 3

_UNSET: Any = object()


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    data: bytes
    content_type: str | None


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
    followup_ids: list[int] = field(default_factory=list)
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


def _too_long(field_name: str, limit: int) -> DiscordError:
    detail = {"code": "BASE_TYPE_MAX_LENGTH", "message": f"Must be {limit} or fewer in length."}
    return DiscordError(400, "Invalid Form Body", 50035, {field_name: {"_errors": [detail]}})


def default_failure_body(status: int, path: str, retry_after: float) -> Any:
    """What Discord answers for each status, so injected failures look like the real ones."""
    if status == 429:
        return {"message": "You are being rate limited.", "retry_after": retry_after, "global": False}
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


class LoopbackOnlyResolver(AbstractResolver):
    """Makes any attempt of the bot to reach the internet (e.g. the real CDN) fail fast and loudly."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != "localhost":
            raise OSError(f"the Discord harness blocks {host!r}: tests only reach 127.0.0.1")
        return [
            ResolveResult(
                hostname=host,
                host="127.0.0.1",
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None


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
    ) -> None:
        self.token = token
        self.application_id = application_id
        self.bot_user = bot_user
        self.owner = owner
        self.local_cdn = local_cdn
        self.clock = clock
        self.requests: list[RecordedRequest] = []
        self.messages: dict[int, dict[str, Any]] = {}
        self.channels: dict[int, dict[str, Any]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.global_commands: list[dict[str, Any]] = []
        self.guild_commands: dict[int, list[dict[str, Any]]] = {}
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

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()
            self._server = None

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
        """The token ran out (3 s to acknowledge, 15 min for the webhook): later calls fail like Discord's."""
        self.interactions[interaction_id].expired = True

    def revoke_cdn_links(self) -> None:
        """Every CDN link handed out so far stops working (local CDN); fetching a message signs new ones."""
        self._live_signatures.clear()

    def add_channel(self, channel_id: int, guild_id: int | None, *, name: str = "general") -> dict[str, Any]:
        return self.channels.setdefault(channel_id, channel_payload(channel_id, guild_id, name=name))

    def add_message(
        self,
        channel_id: int,
        *,
        content: str = "",
        attachments: Iterable[Attachment] = (),
        author: User | None = None,
        guild_id: int | None = None,
    ) -> dict[str, Any]:
        """A message someone posted (e.g. an image to right-click); stored so it can be fetched later."""
        self.add_channel(channel_id, guild_id)
        for attachment in attachments:
            self.publish(attachment, attachment.path(owner_id=channel_id))
        message = message_payload(
            channel_id=channel_id,
            author=(author or make_user("bob")).payload(),
            content=content,
            attachments=[
                a.payload(owner_id=channel_id, cdn=self.cdn_base, media_proxy=self.media_proxy_base)
                for a in attachments
            ],
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
        try:
            response = self._respond(record, raw_path.startswith(API_PREFIX))
            status, body, headers = await response
        except DiscordError as error:
            status, body, headers = error.status, error.body, {}
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
        app = snow.format("app")
        table: list[tuple[str, str, bool, Handler]] = [
            ("GET", "/users/@me", True, self._get_me),
            ("GET", "/oauth2/applications/@me", True, self._get_application),
            ("GET", f"/applications/{app}/commands", True, self._get_commands),
            ("PUT", f"/applications/{app}/commands", True, self._put_commands),
            ("GET", f"/applications/{app}/guilds/{snow.format('guild')}/commands", True, self._get_commands),
            ("PUT", f"/applications/{app}/guilds/{snow.format('guild')}/commands", True, self._put_commands),
            ("POST", f"/interactions/{snow.format('iid')}/{token}/callback", False, self._callback),
            ("POST", f"/webhooks/{app}/{token}", False, self._followup),
            ("GET", f"/webhooks/{app}/{token}/messages/(?P<mid>@original|\\d+)", False, self._webhook_get),
            ("PATCH", f"/webhooks/{app}/{token}/messages/(?P<mid>@original|\\d+)", False, self._webhook_edit),
            (
                "DELETE",
                f"/webhooks/{app}/{token}/messages/(?P<mid>@original|\\d+)",
                False,
                self._webhook_delete,
            ),
            ("GET", f"/channels/{snow.format('cid')}", True, self._get_channel),
            ("POST", f"/channels/{snow.format('cid')}/typing", True, self._typing),
            ("POST", f"/channels/{snow.format('cid')}/messages", True, self._channel_post),
            ("GET", f"/channels/{snow.format('cid')}/messages/{snow.format('mid')}", True, self._channel_get),
            (
                "PATCH",
                f"/channels/{snow.format('cid')}/messages/{snow.format('mid')}",
                True,
                self._channel_edit,
            ),
            (
                "DELETE",
                f"/channels/{snow.format('cid')}/messages/{snow.format('mid')}",
                True,
                self._channel_delete,
            ),
            ("POST", "/users/@me/channels", True, self._open_dm),
        ]
        self._routes = [(m, re.compile(p), auth, h) for m, p, auth, h in table]

    # -- identity and commands -------------------------------------------------------------------------

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
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": self.owner.payload(),
            "verify_key": "0" * 64,
            "flags": 0,
            "summary": "",
            "team": None,
            "bot": {**self.bot_user.payload(), "bot": True},
            "redirect_uris": [],
            "interactions_endpoint_url": None,
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
                **command,
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
        body = record.json if isinstance(record.json, dict) else {}
        kind, data = body.get("type"), body.get("data") or {}
        allowed = {CHANNEL_MESSAGE, DEFERRED_CHANNEL_MESSAGE, MODAL}
        if interaction.type == MESSAGE_COMPONENT or interaction.type == 5:
            allowed |= {DEFERRED_UPDATE_MESSAGE, UPDATE_MESSAGE}
        if interaction.type == 4:
            allowed = {AUTOCOMPLETE_RESULT}
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
        resource: dict[str, Any] = {"type": kind}
        if message is not None:
            response.update(
                response_message_id=message["id"],
                response_message_loading=kind == DEFERRED_CHANNEL_MESSAGE,
                response_message_ephemeral=bool(int(message["flags"]) & EPHEMERAL),
            )
            if kind != DEFERRED_UPDATE_MESSAGE:
                resource["message"] = self.served(message)
        return 200, {"interaction": response, "resource": resource}

    def _interaction_for(self, match: re.Match[str]) -> InteractionRecord:
        interaction = self._by_token.get(match["token"])
        if interaction is None or int(match["app"]) != interaction.payload_app or interaction.expired:
            raise DiscordError(401, "Invalid Webhook Token", 50027)
        if interaction.response_type is None:
            raise DiscordError(404, "Unknown Webhook", 10015)
        return interaction

    def _webhook_message(self, interaction: InteractionRecord, mid: str) -> dict[str, Any]:
        message_id = interaction.original_message_id if mid == "@original" else int(mid)
        if message_id is None or (
            mid != "@original"
            and message_id not in interaction.followup_ids
            and message_id != interaction.original_message_id
        ):
            raise DiscordError(404, "Unknown Message", 10008)
        message = self.messages.get(message_id)
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
        interaction.followup_ids.append(int(message["id"]))
        return 200, self.served(message)  # for interaction followups `wait` is always true

    async def _webhook_get(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, self.served(self._webhook_message(self._interaction_for(match), match["mid"]))

    async def _webhook_edit(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        interaction = self._interaction_for(match)
        message = self._webhook_message(interaction, match["mid"])
        self._edit_message(message, record.json or {}, record.files, interaction)
        return 200, self.served(message)

    async def _webhook_delete(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        message = self._webhook_message(self._interaction_for(match), match["mid"])
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

    async def _typing(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        self._channel(match)
        return 204, None

    async def _channel_post(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        channel = self._channel(match)
        body = dict(record.json or {})
        body["flags"] = int(body.get("flags", 0)) & ~EPHEMERAL  # only interaction replies can be ephemeral
        return 200, self.served(self._create_message(int(channel["id"]), body, record.files))

    async def _channel_get(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        return 200, self.served(self._channel_message(match))

    async def _channel_edit(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        message = self._channel_message(match)
        if message["author"]["id"] != str(self.bot_user.id):
            raise DiscordError(403, "Cannot edit a message authored by another user", 50005)
        self._edit_message(message, record.json or {}, record.files, None)
        return 200, self.served(message)

    async def _channel_delete(self, record: RecordedRequest, match: re.Match[str]) -> tuple[int, Any]:
        del self.messages[int(self._channel_message(match)["id"])]
        return 204, None

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
        described = {str(a.get("id")): a for a in body.get("attachments", []) if isinstance(a, dict)}
        out = []
        for index, upload in enumerate(files):
            if len(upload.data) > limit:
                raise DiscordError(413, "Request entity too large", 40005)
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
        if len(content) > MAX_CONTENT:
            raise _too_long("content", MAX_CONTENT)
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
            components=body.get("components"),
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
            content = body["content"] or ""
            if len(content) > MAX_CONTENT:
                raise _too_long("content", MAX_CONTENT)
            message["content"] = content
        for key in ("embeds", "components"):
            if key in body:
                message[key] = body[key] or []
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
        return body, files
    raw = await request.read()
    if not raw:
        return None, []
    try:
        return json.loads(raw), []
    except ValueError:
        return raw.decode(errors="replace"), []


class DiscordHarness:
    """Runs a real discord.py bot against `FakeDiscordAPI` without a gateway.

    Entering starts the fake, points `Route.BASE` at it, and logs the bot in (which runs `setup_hook`).
    Leaving closes the bot, restores `Route.BASE` and stops the fake. One harness at a time per process.
    """

    def __init__(
        self,
        bot: discord.Client,
        *,
        token: str = "test-token",  # noqa: S107 - a fake token for a fake server
        owner_id: int | None = None,
        application_id: int | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        user: User | Member | None = None,
        local_cdn: bool = False,
        ready: bool = False,
        clock: Callable[[], float] = time.monotonic,
        api: FakeDiscordAPI | None = None,
    ) -> None:
        self.bot = bot
        self.token = token
        if api is not None:  # shared with other bots (e.g. a restarted process): its identity wins
            application_id, owner_id, token = api.application_id, api.owner.id, api.token
            self.token = token
        self.application_id = application_id or bot.application_id or snowflake()
        self.bot_user = api.bot_user if api else User(id=self.application_id, username="background-bot", bot=True)
        self.owner = api.owner if api else User(id=owner_id or snowflake(), username="owner")
        self.guild_id = guild_id or snowflake()
        self.channel_id = channel_id or snowflake()
        self.user: User | Member = user or Member(user=make_user("alice"))
        self.ready = ready
        # An `api` given by the caller is started and closed by the caller, never by the harness.
        self._owns_api = api is None
        self.api = api or FakeDiscordAPI(
            token=token,
            application_id=self.application_id,
            bot_user=self.bot_user,
            owner=self.owner,
            local_cdn=local_cdn,
            clock=clock,
        )
        self.errors: list[tuple[discord.Interaction, BaseException]] = []
        self._saved_bases: tuple[str, str] | None = None
        self._tree_on_error: Any = _UNSET  # the tree's own instance-level on_error, if it had one
        self._fixed_command_ids: dict[tuple[str, int], int] = {}
        self._handler_tasks: dict[int, set[asyncio.Task[Any]]] = {}

    # -- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> DiscordHarness:
        if discord.http.Route.BASE != "https://discord.com/api/v10":
            raise RuntimeError("another DiscordHarness is active: Route.BASE is process-wide")
        if self._owns_api:
            await self.api.start()
        self._saved_bases = (discord.http.Route.BASE, discord.webhook.async_.Route.BASE)
        discord.http.Route.BASE = self.api.api_base
        discord.webhook.async_.Route.BASE = self.api.api_base
        self.api.add_channel(self.channel_id, self.guild_id)
        if self.bot.http.connector is discord.utils.MISSING:
            self.bot.http.connector = aiohttp.TCPConnector(limit=0, resolver=LoopbackOnlyResolver())
        try:
            await self.bot.login(self.token)
        except BaseException:
            await self._teardown()
            raise
        self._watch_tree_errors()
        if self.ready:
            self.bot._ready.set()  # no gateway READY: release wait_until_ready() waiters
            self.bot.dispatch("ready")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._teardown()

    async def _teardown(self) -> None:
        tree = getattr(self.bot, "tree", None)
        if tree is not None and "on_error" in vars(tree):
            if self._tree_on_error is _UNSET:
                del tree.on_error
            else:
                tree.on_error = self._tree_on_error
        # Handlers still running would talk to a closed session: stop them, as a shutdown would.
        pending = [t for tasks in self._handler_tasks.values() for t in tasks if not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.bot.close()
        finally:
            if self._saved_bases is not None:
                discord.http.Route.BASE, discord.webhook.async_.Route.BASE = self._saved_bases
                self._saved_bases = None
            if self._owns_api:
                await self.api.close()

    def _watch_tree_errors(self) -> None:
        """Record every app-command error (still handled by the bot's own on_error) so tests can see it."""
        tree: app_commands.CommandTree | None = getattr(self.bot, "tree", None)
        if tree is None:
            return
        self._tree_on_error = vars(tree).get("on_error", _UNSET)
        original = tree.on_error

        async def on_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
            self.errors.append((interaction, error))
            await self.api.notify()
            await original(interaction, error)

        tree.on_error = on_error  # type: ignore[method-assign]

    # -- delegation to the fake ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.api.requests

    @property
    def messages(self) -> dict[int, dict[str, Any]]:
        return self.api.messages

    def callbacks(self, interaction_id: int) -> list[RecordedRequest]:
        return self.api.callbacks(interaction_id)

    def original_edits(self, token: str) -> list[RecordedRequest]:
        return self.api.original_edits(token)

    def followups(self, token: str) -> list[RecordedRequest]:
        return self.api.followups(token)

    def channel_messages(self, channel_id: int) -> list[RecordedRequest]:
        return self.api.channel_messages(channel_id)

    def ack_delay(self, interaction_id: int) -> float | None:
        return self.api.ack_delay(interaction_id)

    def fail_next(self, method: str | None, path_regex: str, **kwargs: Any) -> None:
        self.api.fail_next(method, path_regex, **kwargs)

    async def wait_for(
        self, predicate: Callable[[list[RecordedRequest]], bool], timeout: float = 5.0
    ) -> list[RecordedRequest]:
        return await self.api.wait_for(predicate, timeout)

    async def wait_for_error(self, timeout: float = 5.0) -> BaseException:
        """The first app-command error, unwrapped from CommandInvokeError to what the handler raised."""
        await self.api.wait_for(lambda _: bool(self.errors), timeout)
        error = self.errors[0][1]
        return error.original if isinstance(error, app_commands.CommandInvokeError) else error

    def token_of(self, interaction_id: int) -> str:
        return self.api.interactions[interaction_id].token

    def add_message(
        self,
        channel_id: int | None = None,
        *,
        content: str = "",
        attachments: Iterable[Attachment] = (),
        author: User | None = None,
        guild_id: int | None = _UNSET,
    ) -> dict[str, Any]:
        """A message someone posted in a channel of the harness's guild (`guild_id=None`: a DM)."""
        guild = self.guild_id if guild_id is _UNSET else guild_id
        return self.api.add_message(
            channel_id or self.channel_id,
            content=content,
            attachments=attachments,
            author=author,
            guild_id=guild,
        )

    # -- payload builders ----------------------------------------------------------------------------

    def _context(
        self,
        *,
        guild_id: int | None,
        channel_id: int | None,
        user: User | Member | None,
        permissions: int | None,
        app_permissions: int | None,
        locale: str,
        attachment_size_limit: int,
    ) -> InteractionContext:
        who: User | Member = user or self.user
        if guild_id is not None and isinstance(who, User):
            who = Member(user=who, permissions=DEFAULT_MEMBER_PERMISSIONS if permissions is None else permissions)
        elif isinstance(who, Member) and permissions is not None:
            who = replace(who, permissions=permissions)
        return InteractionContext(
            application_id=self.application_id,
            user=who,
            guild_id=guild_id,
            channel_id=channel_id or self.channel_id,
            app_permissions=DEFAULT_APP_PERMISSIONS if app_permissions is None else app_permissions,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
        )

    def _command_data(self, name: str, kind: int, guild_id: int | None) -> dict[str, Any]:
        command_id, scope = self.api.command_id(name, kind, guild_id)
        if command_id is None:
            command_id = self._fixed_command_ids.setdefault((name, kind), snowflake())
        data: dict[str, Any] = {"id": str(command_id), "name": name, "type": kind}
        if scope is not None:
            data["guild_id"] = str(scope)
        return data

    def _command_parameters(
        self, name: str, subcommand: str | None, guild_id: int | None
    ) -> list[app_commands.Parameter] | None:
        """The bot's own definition of the command's options, or None if the tree has no such command."""
        tree: app_commands.CommandTree | None = getattr(self.bot, "tree", None)
        if tree is None:
            return None
        command: Any = None
        if guild_id is not None:
            command = tree.get_command(name, guild=discord.Object(guild_id))
        command = command or tree.get_command(name)
        for part in (subcommand or "").split():
            command = command.get_command(part) if isinstance(command, app_commands.Group) else None
        return command.parameters if isinstance(command, app_commands.Command) else None

    def _option_types(
        self, name: str, subcommand: str | None, guild_id: int | None, given: dict[str, Any], validate: bool
    ) -> dict[str, int]:
        """Types from the bot's definitions (so 3 for a NUMBER becomes 3.0); typos caught before dispatch.

        Without this check a misspelt option only shows up as discord.py's CommandSignatureMismatch.
        """
        parameters = self._command_parameters(name, subcommand, guild_id)
        if parameters is None:
            return {}
        known = {p.display_name: p for p in parameters}
        if validate:
            unknown = sorted(set(given) - set(known))
            missing = sorted(n for n, p in known.items() if p.required and n not in given)
            if unknown or missing:
                raise ValueError(
                    f"/{' '.join([name, *(subcommand or '').split()])}: unknown options {unknown}, "
                    f"missing required {missing}; it takes {sorted(known)} (validate=False to send anyway)"
                )
        return {n: p.type.value for n, p in known.items()}

    def slash_command(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        subcommand: str | None = None,
        guild_id: int | None = _UNSET,
        channel_id: int | None = None,
        user: User | Member | None = None,
        permissions: int | None = None,
        app_permissions: int | None = None,
        locale: str = "en-US",
        attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT,
        validate: bool = True,
    ) -> dict[str, Any]:
        """A CHAT_INPUT interaction; `subcommand` is 'sub' or 'group sub'; `guild_id=None` for a DM."""
        guild = self.guild_id if guild_id is _UNSET else guild_id
        ctx = self._context(
            guild_id=guild,
            channel_id=channel_id,
            user=user,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
        )
        types = self._option_types(name, subcommand, guild, options or {}, validate)
        flat, resolved = resolve_options(ctx, options or {}, types=types, cdn=self.api.cdn_base)
        for value in (options or {}).values():
            if isinstance(value, Attachment):
                self.api.publish(value, replace(value, ephemeral=True).path(owner_id=self.application_id))
        data = self._command_data(name, 1, guild)
        data["options"] = nest_subcommand(subcommand, flat)
        if resolved:
            data["resolved"] = resolved
        return ctx.envelope(APPLICATION_COMMAND, data)

    def message_context_menu(
        self,
        name: str,
        message: dict[str, Any] | int,
        *,
        user: User | Member | None = None,
        permissions: int | None = None,
        app_permissions: int | None = None,
        locale: str = "en-US",
        attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT,
    ) -> dict[str, Any]:
        """A MESSAGE context-menu interaction on a stored message (see `add_message`)."""
        stored = self._stored_message(message)
        channel = int(stored["channel_id"])
        guild = self.api.channels.get(channel, {}).get("guild_id")
        guild_id = int(guild) if guild else None
        ctx = self._context(
            guild_id=guild_id,
            channel_id=channel,
            user=user,
            permissions=permissions,
            app_permissions=app_permissions,
            locale=locale,
            attachment_size_limit=attachment_size_limit,
        )
        data = self._command_data(name, 3, guild_id)
        data["target_id"] = stored["id"]
        data["resolved"] = {"messages": {stored["id"]: self.api.served(stored)}}
        return ctx.envelope(APPLICATION_COMMAND, data)

    def user_context_menu(
        self,
        name: str,
        target: User | Member,
        *,
        user: User | Member | None = None,
        permissions: int | None = None,
    ) -> dict[str, Any]:
        ctx = self._context(
            guild_id=self.guild_id,
            channel_id=None,
            user=user,
            permissions=permissions,
            app_permissions=None,
            locale="en-US",
            attachment_size_limit=ATTACHMENT_SIZE_LIMIT,
        )
        target_user = target.user if isinstance(target, Member) else target
        target_member = target if isinstance(target, Member) else Member(user=target)
        data = self._command_data(name, 2, self.guild_id)
        data["target_id"] = str(target_user.id)
        data["resolved"] = {
            "users": {str(target_user.id): target_user.payload()},
            "members": {str(target_user.id): target_member.payload(with_user=False)},
        }
        return ctx.envelope(APPLICATION_COMMAND, data)

    def button_click(
        self,
        custom_id: str,
        *,
        message_id: int,
        user: User | Member | None = None,
        permissions: int | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_COMPONENT interaction on a message the fake stored (where the view was sent)."""
        stored = self._stored_message(message_id)
        channel = int(stored["channel_id"])
        guild = self.api.channels.get(channel, {}).get("guild_id")
        ctx = self._context(
            guild_id=int(guild) if guild else None,
            channel_id=channel,
            user=user,
            permissions=permissions,
            app_permissions=None,
            locale="en-US",
            attachment_size_limit=ATTACHMENT_SIZE_LIMIT,
        )
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload = ctx.envelope(MESSAGE_COMPONENT, data)
        payload["message"] = self.api.served(stored)
        return payload

    def _stored_message(self, message: dict[str, Any] | int) -> dict[str, Any]:
        message_id = int(message["id"]) if isinstance(message, dict) else int(message)
        try:
            return self.api.messages[message_id]
        except KeyError:
            raise KeyError(f"message {message_id} is not in the fake's store; use add_message() first") from None

    # -- dispatch ------------------------------------------------------------------------------------------

    def dispatch(self, payload: dict[str, Any]) -> int:
        """Deliver an INTERACTION_CREATE as the gateway would; returns the interaction id."""
        if self.bot._connection.application_id != int(payload["application_id"]):
            raise RuntimeError("the bot's application_id differs from the payload's: enter the harness first")
        self.api.register_interaction(payload)
        before = asyncio.all_tasks()
        self.bot._connection.parse_interaction_create(copy.deepcopy(payload))  # discord.py mutates `resolved`
        # The tree, the view store and `on_interaction` listeners each start a task: remember them so a
        # test can wait for the handler itself, not just for the fake to have answered its requests.
        self._handler_tasks[int(payload["id"])] = asyncio.all_tasks() - before
        return int(payload["id"])

    async def run(self, payload: dict[str, Any], timeout: float = 5.0) -> int:
        """Dispatch and wait until the bot's handlers for it have returned."""
        interaction_id = self.dispatch(payload)
        await self.finished(interaction_id, timeout=timeout)
        return interaction_id

    async def finished(self, interaction_id: int | None = None, timeout: float = 5.0) -> None:
        """Wait for the handler tasks of one interaction (or of all dispatched so far) to return.

        Needed after e.g. a view was sent: the fake answers the callback before discord.py has read
        the answer and registered the view, so a button pressed right after `wait_for` may find none.
        """
        if interaction_id is None:
            tasks = set().union(*self._handler_tasks.values()) if self._handler_tasks else set()
        else:
            tasks = self._handler_tasks[interaction_id]
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        _, still = await asyncio.wait(pending, timeout=timeout)
        if still:
            raise AssertionError(f"{len(still)} interaction handler task(s) still running after {timeout}s")
