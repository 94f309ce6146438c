"""Where a job's messages go: the command's reply while its token lives, the channel after that.

An interaction token lets the bot edit its reply for 15 minutes. Jobs can outlive that (a slow job, a
restart), so every message goes through `Reply`, which picks the reply or a channel post mentioning
the member, and falls back from one to the other when Discord refuses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import discord

from bot import replies
from bot.adapter.packing import pack_files
from bot.i18n import Words, words_for
from bot.inputs import output_filename
from bot.jobs import JobResult, RequestResult, classify
from bot.ledger import RequestRecord
from bot.markdown import code

log = logging.getLogger("bot.adapter.reply")

TOKEN_LIFETIME = timedelta(minutes=15)
USER_INSTALL_FOLLOWUPS = 5  # Discord's cap on follow-ups where the app is only user-installed
TOKEN_MARGIN = timedelta(seconds=30)  # don't start an edit the token may not outlive
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024  # servers without boosts
FileMaker = Callable[
    [], "discord.File | list[discord.File]"
]  # called once per attempt: a file is read once  # said only to the member, never in the channel
RESULT_IN_REPLY = "result_in_reply"  # Interaction.extras key: the reply carries a delivered result
ResultsView = Callable[[Words], discord.ui.View]  # the buttons for a message that carries result files


class Reply:
    def __init__(
        self,
        bot: discord.Client,
        *,
        channel_id: int,
        user_id: int,
        guild_id: int | None,
        created_at: datetime,
        application_id: int | None = None,
        token: str | None = None,
        interaction: discord.Interaction | None = None,
        filesize_limit: int = DEFAULT_UPLOAD_LIMIT,
        private: bool,
        channel_posts: bool,
        words: Words,
        view_for_results: ResultsView | None = None,
    ) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self.user_id = user_id
        self.guild_id = guild_id
        self.created_at = created_at
        self.application_id = application_id
        self.token = token
        self.interaction = interaction
        self.filesize_limit = filesize_limit
        self.private = private  # the member asked for an ephemeral exchange: never post in the channel
        self.words = words  # the member's language
        # Where the bot is not installed (a member's own install) it can only answer through the interaction.
        self.channel_posts = channel_posts and not private
        self.followups_left = None if channel_posts else USER_INSTALL_FOLLOWUPS
        # Buttons go only on public messages in a server that installed the bot (never private, never a DM).
        self.view_for_results = view_for_results if self.channel_posts else None
        self.sent_without_file = False  # the last send_final arrived as its link-only fallback

    @classmethod
    def for_request(
        cls, bot: discord.Client, request: RequestRecord, *, view_for_results: ResultsView | None = None
    ) -> Reply:
        """The one way to reach the member of a request the bot no longer holds the interaction of (a restart,
        a held job found later): everything, the private flag included, comes from the request's record."""
        origin = request.origin
        return cls(
            bot,
            channel_id=origin.channel_id,
            user_id=origin.user_id,
            guild_id=origin.guild_id,
            created_at=origin.created_at,
            application_id=origin.application_id,
            token=origin.token,
            private=request.private,
            channel_posts=request.channel_posts,
            words=words_for(origin.locale),
            view_for_results=view_for_results,
        )

    @classmethod
    def for_interaction(
        cls,
        bot: discord.Client,
        interaction: discord.Interaction,
        *,
        private: bool,
        channel_posts: bool,
        view_for_results: ResultsView | None = None,
    ) -> Reply:
        return cls(
            bot,
            channel_id=interaction.channel_id or 0,
            user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            created_at=interaction.created_at,
            application_id=interaction.application_id,
            token=interaction.token,
            interaction=interaction,
            filesize_limit=interaction.filesize_limit,
            private=private,
            channel_posts=channel_posts,
            words=words_for(interaction.locale),
            view_for_results=view_for_results,
        )

    def token_seconds_left(self) -> float:
        if self.token is None or self.application_id is None:
            return 0.0
        expires = self.created_at + TOKEN_LIFETIME - TOKEN_MARGIN
        return max((expires - datetime.now(UTC)).total_seconds(), 0.0)

    async def edit_progress(self, content: str, view: discord.ui.View | None = None, **_: Any) -> None:
        """Progress only matters while the reply can still be edited; after that it is skipped."""
        if self.token_seconds_left() <= 0:
            return
        kwargs: dict[str, Any] = {"content": content, "view": view}
        try:
            await self._edit_reply(**kwargs)
        except discord.HTTPException as error:
            log.info(
                "progress edit skipped interaction_token_valid=%s: %s", self.token_seconds_left() > 0, error.status
            )

    async def send_final(self, content: str, file: FileMaker | None = None, *, without_file: str | None = None) -> bool:
        """Get the message to the member by the first way that works; True when something arrived.

        The reply while its token lives, then a channel post mentioning the member; when files can't be
        attached there, `without_file` (the same news with a link); and when the channel is closed to the
        bot (no permission, deleted), a DM. Each refusal is logged; only a message that arrived counts.
        """
        self.sent_without_file = False
        if self.token_seconds_left() > 0:
            try:
                attachments = _listed(file()) if file else []
                await self._edit_reply(content=content, attachments=attachments, view=self._buttons(attachments))
                self._mark_delivered()
                return True
            except discord.HTTPException as error:
                log.warning("reply edit failed (status %s); trying the next way", error.status)
        attempts: list[tuple[str, FileMaker | None]] = [(content, file)]
        if file is not None and without_file is not None:
            attempts.append((without_file, None))
        for text, attachment in attempts if self.channel_posts else []:
            if await self._post_in_channel(text, attachment):
                self.sent_without_file = file is not None and attachment is None
                return True
        for text, attachment in attempts:
            if await self._send_dm(text, attachment):
                self.sent_without_file = file is not None and attachment is None
                return True
        log.warning(
            "no way to reach user=%s for channel=%s; the job is settled and logged only", self.user_id, self.channel_id
        )
        return False

    async def deliver(self, result: JobResult, input_filename: str | None) -> bool:
        """True when a message carrying the image (or its link) arrived. A link given marks the result `linked`:
        its project must outlive the link."""
        filename = output_filename(input_filename, result.extension)
        attach = result.file is not None and result.file.size <= self.filesize_limit
        downloaded = result.file

        def make_file() -> discord.File:
            assert downloaded is not None
            source = downloaded.file if downloaded.file is not None else str(downloaded.path)
            if downloaded.file is not None:
                downloaded.file.seek(0)
            return discord.File(source, filename=filename)

        text = replies.success(self.words, result, attached=attach)
        if not attach:
            result.linked = True
            return await self.send_final(text)
        link = replies.success(self.words, result, attached=False, reason=replies.could_not_attach(self.words))
        arrived = await self.send_final(text, make_file, without_file=link)
        result.linked = self.sent_without_file
        return arrived

    async def deliver_batch(self, batch: RequestResult) -> frozenset[int]:
        """Every result of a request: as many files as fit the reply, the rest in further messages in the
        same place (followups while the token lives, then channel posts), and links for what fits nowhere.

        Returns the positions whose file or link reached the member.
        """
        in_reply = self.token_seconds_left() > 0
        later_limit = self.filesize_limit if in_reply else min(self.filesize_limit, DEFAULT_UPLOAD_LIMIT)
        files = [
            (outcome.position, outcome.result.file.size)
            for outcome in batch.delivered
            if outcome.result is not None and outcome.result.file is not None
        ]
        most = None if self.followups_left is None else 1 + self.followups_left
        pack = pack_files(files, first_limit=later_limit, later_limit=later_limit, max_messages=most)
        by_position = {outcome.position: outcome for outcome in batch.outcomes}
        links = [
            self._link(by_position[position].result, by_position[position].filename)
            for position in pack.links + [o.position for o in batch.delivered if o.result and o.result.file is None]
        ]
        first = pack.messages[0] if pack.messages else []
        following = len(pack.messages) - 1 if pack.messages else 0
        text = replies.batch_success(self.words, batch, links=links, following=following)
        arrived: set[int] = set()
        linked = {o.position for o in batch.delivered} - {p for message in pack.messages for p in message}
        _mark_linked(batch, linked)
        if await self.send_final(
            text,
            self._files(batch, first) if first else None,
            without_file=self._as_links(text, batch, first),
        ):
            arrived |= linked | set(first)
            if self.sent_without_file:
                _mark_linked(batch, first)
        for index, message in enumerate(pack.messages[1:], start=2):
            heading = replies.batch_more(self.words, index, len(pack.messages))
            if await self._send_more(heading, self._files(batch, message)):
                arrived |= set(message)
            elif await self._send_more(self._as_links(heading, batch, message)):
                _mark_linked(batch, message)
                arrived |= set(message)
        return frozenset(arrived)

    async def deliver_extra(self, result: JobResult, input_filename: str | None) -> bool:
        """One result after its request's final message: a message of its own, never an edit of that one."""
        filename = output_filename(input_filename, result.extension)
        limit = self.filesize_limit if self.token_seconds_left() > 0 else min(self.filesize_limit, DEFAULT_UPLOAD_LIMIT)
        downloaded = result.file
        if (
            downloaded is not None
            and downloaded.size <= limit
            and await self._send_more(
                f"{code(filename)}: {replies.success(self.words, result, attached=True)}",
                self._one_file(result, filename),
            )
        ):
            return True
        reason = replies.could_not_attach(self.words) if downloaded is not None else None
        text = replies.success(self.words, result, attached=False, reason=reason)
        result.linked = True
        return await self._send_more(f"{code(filename)}: {text}")

    async def send_extra(self, text: str) -> bool:
        return await self._send_more(text)

    @staticmethod
    def _one_file(result: JobResult, filename: str) -> FileMaker:
        def make() -> discord.File:
            downloaded = result.file
            assert downloaded is not None
            if downloaded.file is not None:
                downloaded.file.seek(0)
            return discord.File(
                downloaded.file if downloaded.file is not None else str(downloaded.path), filename=filename
            )

        return make

    def _link(self, result: JobResult | None, filename: str | None) -> str:
        assert result is not None
        if result.too_large or result.file is not None:
            reason = replies.too_large_here(self.words)
        else:
            reason = replies.not_attached(self.words)
        return replies.link_line(self.words, output_filename(filename, result.extension), result, reason)

    def _as_links(self, text: str, batch: RequestResult, positions: list[int]) -> str:
        by_position = {outcome.position: outcome for outcome in batch.outcomes}
        lines = [text] + [
            replies.link_line(
                self.words,
                output_filename(by_position[p].filename, by_position[p].result.extension),  # type: ignore[union-attr]
                by_position[p].result,  # type: ignore[arg-type]
                replies.could_not_attach(self.words),
            )
            for p in positions
        ]
        return "\n".join(lines)

    @staticmethod
    def _files(batch: RequestResult, positions: list[int]) -> Callable[[], list[discord.File]]:
        by_position = {outcome.position: outcome for outcome in batch.outcomes}

        def make() -> list[discord.File]:
            made = []
            for position in positions:
                outcome = by_position[position]
                assert outcome.result is not None and outcome.result.file is not None
                downloaded = outcome.result.file
                if downloaded.file is not None:
                    downloaded.file.seek(0)
                source = downloaded.file if downloaded.file is not None else str(downloaded.path)
                name = output_filename(outcome.filename, outcome.result.extension)
                made.append(discord.File(source, filename=name))
            return made

        return make

    async def _send_more(self, content: str, files: FileMaker | None = None) -> bool:
        """A further message of the same result: a followup while the token lives, else the channel (or DM)."""
        if self.token_seconds_left() > 0 and self.followups_left != 0:
            try:
                webhook = self._followup()
                if files is not None:
                    made = _listed(files())
                    await webhook.send(content, files=made, ephemeral=self.private, **self._view_kwarg(made))
                else:
                    await webhook.send(content, ephemeral=self.private)
                if self.followups_left is not None:
                    self.followups_left -= 1
                return True
            except discord.HTTPException as error:
                log.warning("followup failed (status %s); posting in the channel instead", error.status)
        if self.channel_posts and await self._post_in_channel(content, files):
            return True
        return await self._send_dm(content, files)

    def _followup(self) -> discord.Webhook:
        if self.interaction is not None:
            return self.interaction.followup
        assert self.application_id is not None and self.token is not None
        return discord.Webhook.partial(self.application_id, self.token, client=self.bot)

    def _buttons(self, files: list[discord.File]) -> discord.ui.View | None:
        """The result buttons for a message carrying `files` (they act on its first image), where they belong."""
        return self.view_for_results(self.words) if files and self.view_for_results is not None else None

    def _view_kwarg(self, files: list[discord.File]) -> dict[str, discord.ui.View]:
        view = self._buttons(files)
        return {"view": view} if view is not None else {}

    def _mark_delivered(self) -> None:
        """Remember on the interaction that its reply now carries the result (the tree's on_error reads it)."""
        if self.interaction is not None:
            self.interaction.extras[RESULT_IN_REPLY] = True

    async def report_failure(self, error: BaseException) -> None:
        failed = classify(error)
        text = replies.failure_text(self.words, failed)
        if failed.is_refusal and self.interaction is not None:
            # The "thinking…" reply is public; a refusal is for the member only.
            try:
                await self.interaction.delete_original_response()
            except discord.HTTPException:
                log.debug("could not delete the deferred reply")
            try:
                await self.interaction.followup.send(text, ephemeral=True)
                return
            except discord.HTTPException as failure:
                log.warning("could not send the refusal (status %s)", failure.status)
                return
        await self.send_final(text)

    async def _edit_reply(self, **kwargs: Any) -> None:
        if self.interaction is not None:
            await self.interaction.edit_original_response(**kwargs)
            return
        assert self.application_id is not None and self.token is not None
        webhook = discord.Webhook.partial(self.application_id, self.token, client=self.bot)
        if kwargs.get("view") is None:
            kwargs.pop("view", None)
        await webhook.edit_message("@original", **kwargs)  # type: ignore[arg-type]  # the route takes @original

    async def _post_in_channel(self, content: str, file: FileMaker | None) -> bool:
        channel = self.bot.get_partial_messageable(self.channel_id, guild_id=self.guild_id)
        mention = discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(self.user_id)])
        try:
            if file is not None:
                made = _listed(file())
                await channel.send(
                    f"<@{self.user_id}> {content}", files=made, allowed_mentions=mention, **self._view_kwarg(made)
                )
            else:
                await channel.send(f"<@{self.user_id}> {content}", allowed_mentions=mention)
            return True
        except discord.HTTPException as error:
            log.warning(
                "could not post in channel=%s for user=%s (status %s, files=%s)",
                self.channel_id,
                self.user_id,
                error.status,
                file is not None,
            )
            return False

    async def _send_dm(self, content: str, file: FileMaker | None) -> bool:
        try:
            dm = await self.bot.create_dm(discord.Object(self.user_id))
            text = f"{replies.dm_preface(self.words, self.channel_id)}\n{content}"
            if file is not None:
                await dm.send(text, files=_listed(file()))
            else:
                await dm.send(text)
            return True
        except discord.HTTPException as error:
            log.warning("could not DM user=%s (status %s, files=%s)", self.user_id, error.status, file is not None)
            return False


def _mark_linked(batch: RequestResult, positions: set[int] | list[int]) -> None:
    """These results reached the member as Magic Hour's links: their projects must outlive the links."""
    for outcome in batch.outcomes:
        if outcome.position in positions and outcome.result is not None:
            outcome.result.linked = True


def _listed(made: discord.File | list[discord.File]) -> list[discord.File]:
    return made if isinstance(made, list) else [made]
