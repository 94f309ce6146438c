"""Drives a real discord.py bot against `FakeDiscordAPI`: login, INTERACTION_CREATE dispatch, payload builders.

The bot keeps all of discord.py: the command tree's parsing and checks, `Interaction` objects, views and
the webhook adapter. Interactions are fed to `ConnectionState.parse_interaction_create`, exactly where the
gateway would deliver them.
"""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import aiohttp
import discord
import discord.http
import discord.webhook.async_
from aiohttp.abc import AbstractResolver, ResolveResult
from discord import app_commands

from tests.fakes.discord_api import (
    _UNSET,
    APPLICATION_COMMAND,
    MESSAGE_COMPONENT,
    FakeDiscordAPI,
    RecordedRequest,
)
from tests.fakes.interactions import (
    ATTACHMENT_SIZE_LIMIT,
    DEFAULT_APP_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    Attachment,
    InteractionContext,
    Member,
    Role,
    Sticker,
    User,
    make_role,
    make_user,
    nest_subcommand,
    resolve_options,
    snowflake,
)


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


class DiscordHarness:
    """Runs a real discord.py bot against `FakeDiscordAPI` without a gateway.

    Entering starts the fake, points `Route.BASE` at it, and logs the bot in (which runs `setup_hook`).
    Leaving closes the bot, restores `Route.BASE` and stops the fake, failing the test if the bot sent
    anything Discord's OpenAPI description forbids (see `api.violations`). One harness at a time per process.
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

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        await self._teardown(check=exc_type is None)  # an exception in flight says more than violations

    async def _teardown(self, *, check: bool = False) -> None:
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
                await self.api.close(check=check)

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
        embeds: Iterable[dict[str, Any]] = (),
        stickers: Iterable[Sticker] = (),
    ) -> dict[str, Any]:
        """A message someone posted in a channel of the harness's guild (`guild_id=None`: a DM); `embeds` from
        the builders in `interactions.py` (`image_embed`, `gifv_embed`, ...), `stickers` from `make_sticker`."""
        guild = self.guild_id if guild_id is _UNSET else guild_id
        return self.api.add_message(
            channel_id or self.channel_id,
            content=content,
            attachments=attachments,
            author=author,
            guild_id=guild,
            embeds=embeds,
            stickers=stickers,
        )

    def add_role(self, name: str = "artists") -> Role:
        """A role created in the harness's guild; give it to members with `make_member(roles=(role.id,))`."""
        return self.api.add_role(self.guild_id, make_role(name))

    def delete_role(self, role: Role) -> None:
        """The role deleted in Discord: no longer listed, and members built afterwards should not carry it."""
        self.api.delete_role(self.guild_id, role.id)

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
        guild_id = self._guild_of(channel)
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
        app_permissions: int | None = None,
        component_type: int = 2,
        values: list[str] | None = None,
    ) -> dict[str, Any]:
        """A MESSAGE_COMPONENT interaction on a message the fake stored (where the view was sent); `permissions`
        are the presser's, `app_permissions` the bot's, both resolved in the message's channel."""
        stored = self._stored_message(message_id)
        channel = int(stored["channel_id"])
        ctx = self._context(
            guild_id=self._guild_of(channel),
            channel_id=channel,
            user=user,
            permissions=permissions,
            app_permissions=app_permissions,
            locale="en-US",
            attachment_size_limit=ATTACHMENT_SIZE_LIMIT,
        )
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        payload = ctx.envelope(MESSAGE_COMPONENT, data)
        payload["message"] = self.api.served(stored)
        return payload

    def _guild_of(self, channel_id: int) -> int | None:
        guild = self.api.channels.get(channel_id, {}).get("guild_id")
        return int(guild) if guild else None

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
