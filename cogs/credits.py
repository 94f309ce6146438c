"""/credits: how much of its Magic Hour budget a server has used, and the admins' controls over it.

Admin subcommands are guarded in code with `has_permissions(manage_guild=True)`: Discord's
`default_permissions` is only a hint server admins can change, and it is ignored on subcommands.
"""

from __future__ import annotations

import io
import logging
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot import replies
from bot.adapter.checks import require_guild
from bot.adapter.roles import carried_role_ids, existing_role_ids
from bot.adapter.views import ConfirmView
from bot.i18n import Words, words_for
from bot.ledger import CeilingExceeded, JobRecord, Period, RoleLimit, Usage, export_csv
from bot.server_chart import server_chart_data
from bot.usage_chart import legend_entries, render_chart

if TYPE_CHECKING:
    from bot.adapter.bot import BackgroundBot

log = logging.getLogger("bot.cogs.credits")

# The names members see, translated; the values are what the ledger stores.
PERIOD_CHOICES = [
    app_commands.Choice(name=locale_str("day"), value=Period.DAY.value),
    app_commands.Choice(name=locale_str("week"), value=Period.WEEK.value),
    app_commands.Choice(name=locale_str("month"), value=Period.MONTH.value),
    app_commands.Choice(name=locale_str("none"), value=Period.NONE.value),
]
admin_only = app_commands.checks.has_permissions(manage_guild=True)
EXPORT_MARGIN = 4096  # bytes of the upload limit left for the message around the file
CHART_FILENAME = "usage.png"


async def defer(interaction: discord.Interaction) -> None:
    """Every /credits answer is private and may need the database: acknowledge first, answer after."""
    await interaction.response.defer(ephemeral=True, thinking=True)


async def answer(
    interaction: discord.Interaction,
    text: str,
    *,
    file: discord.File | None = None,
    view: discord.ui.View | None = None,
) -> None:
    kwargs: dict[str, Any] = {"content": text}
    if file is not None:
        kwargs["attachments"] = [file]
    if view is not None:
        kwargs["view"] = view
    await interaction.edit_original_response(**kwargs)


class AlertChannel(app_commands.Transformer):
    """A text or announcement channel taken from the interaction's own resolved data.

    `discord.TextChannel` would be looked up in the guild cache, which can be cold (just after a start,
    before the guild's GUILD_CREATE arrives), and the command would then fail; the id is all we keep.
    """

    @property
    def type(self) -> discord.AppCommandOptionType:
        return discord.AppCommandOptionType.channel

    @property
    def channel_types(self) -> list[discord.ChannelType]:
        return [discord.ChannelType.text, discord.ChannelType.news]

    async def transform(self, interaction: discord.Interaction, value: object) -> app_commands.AppCommandChannel:
        if not isinstance(value, app_commands.AppCommandChannel) or value.type not in self.channel_types:
            raise app_commands.TransformerError(value, self.type, self)
        return value


def history_line(w: Words, record: JobRecord) -> str:
    credits = record.credits_charged if record.credits_charged is not None else record.credits_reserved
    return replies.history_line(w, record.created_at, record.user_id, record.status, credits)


@app_commands.guild_only()
@app_commands.allowed_installs(guilds=True, users=False)  # a server's budget: never offered to user installs
class Credits(
    commands.GroupCog, group_name="credits", group_description=locale_str("Magic Hour credits for this server")
):
    def __init__(self, bot: BackgroundBot) -> None:
        self.bot = bot
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return require_guild(interaction)

    @app_commands.command(name="usage", description=locale_str("How many credits this server and you have used"))
    async def usage(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        w = words_for(interaction.locale)
        guild_id = self._guild(interaction)
        roles = carried_role_ids(interaction.user)
        usage = await self.bot.ledger.usage(guild_id, user_id=interaction.user.id, roles=roles)
        held = await self.bot.ledger.held(guild_id)
        lines = [replies.usage_line(w, usage)]
        running = usage.reserved - usage.held
        if running > 0:
            lines.append(replies.reserved_for_running(w, running))
        if held.count:
            lines.append(replies.held_line(w, held))
        lines.append(replies.own_usage_line(w, usage))
        if role_limits := await self._live_role_limits(interaction, guild_id):
            lines.append(replies.role_limits_line(w, role_limits, usage.period))
        chart: discord.File | None = None
        if interaction.permissions.manage_guild:
            top = await self.bot.ledger.top_members(guild_id, limit=5)
            if top:
                lines.append(replies.top_members(w, top))
            caption, chart = await self._chart(w, guild_id, usage)
            lines.append(caption)
        await answer(interaction, "\n".join(lines), file=chart)

    async def _live_role_limits(self, interaction: discord.Interaction, guild_id: int) -> list[RoleLimit]:
        """The server's role limits whose role still exists (a deleted role's limit stays stored, unused)."""
        stored = await self.bot.ledger.role_limits(guild_id)
        if not stored:
            return []  # no need to ask Discord for the server's roles
        existing = await existing_role_ids(interaction)
        if existing is None:
            return stored  # Discord could not say: list them all rather than none
        return [limit for limit in stored if limit.role_id in existing]

    async def _chart(self, w: Words, guild_id: int, usage: Usage) -> tuple[str, discord.File | None]:
        """The chart's caption and its PNG, drawn in a worker thread; no spend, no chart (the caption says so)."""
        ledger = self.bot.ledger
        data = await server_chart_data(ledger, guild_id, period=usage.period, limit=usage.limit, now=ledger.now())
        if data is None:
            return replies.no_chart(w, usage.period), None
        try:
            png = await render_chart(data)
        except Exception:
            log.exception("usage chart failed guild=%s", guild_id)
            return replies.chart_failed(w), None
        caption = replies.chart_caption(w, legend_entries(data), period=usage.period, limit=data.limit)
        return caption, discord.File(io.BytesIO(png), filename=CHART_FILENAME)

    @app_commands.command(
        name="set-limit", description=locale_str("Set how many credits this server may use per period")
    )
    @app_commands.describe(
        credits=locale_str("Credits allowed per period (0 stops all jobs)"),
        period=locale_str("When the count starts over"),
    )
    @app_commands.choices(period=PERIOD_CHOICES)
    @admin_only
    async def set_limit(
        self,
        interaction: discord.Interaction,
        credits: app_commands.Range[int, 0, 100_000_000],
        period: str = Period.MONTH.value,
    ) -> None:
        await defer(interaction)  # an owner lookup and two writes can outlast Discord's 3 s
        w = words_for(interaction.locale)
        guild_id = self._guild(interaction)
        owner = await self.bot.is_owner(interaction.user)
        try:
            await self.bot.ledger.set_limit(guild_id, credits, period, bypass_ceiling=owner)
        except CeilingExceeded as error:
            await answer(interaction, replies.ceiling_exceeded(w, error.requested, error.ceiling))
            return
        usage = await self.bot.ledger.usage(guild_id)
        log.info("limit set guild=%s user=%s credits=%s period=%s", guild_id, interaction.user.id, credits, period)
        await answer(interaction, replies.limit_set(w, usage))

    @app_commands.command(
        name="set-member-limit", description=locale_str("Set how many credits each member may use per period")
    )
    @app_commands.describe(credits=locale_str("Credits per member per period; 0 or empty removes the member limit"))
    @admin_only
    async def set_member_limit(
        self, interaction: discord.Interaction, credits: app_commands.Range[int, 0, 100_000_000] | None = None
    ) -> None:
        await defer(interaction)
        guild_id = self._guild(interaction)
        value = credits or None
        await self.bot.ledger.set_member_limit(guild_id, value)
        await answer(interaction, replies.member_limit_set(words_for(interaction.locale), value))

    @app_commands.command(
        name="set-role-limit", description=locale_str("Set how many credits each member with a role may use")
    )
    @app_commands.describe(
        role=locale_str("Members with this role"),
        credits=locale_str(
            "Credits per member per period; replaces the member limit for them; 0 removes the role's limit"
        ),
    )
    @admin_only
    async def set_role_limit(
        self, interaction: discord.Interaction, role: discord.Role, credits: app_commands.Range[int, 0, 100_000_000]
    ) -> None:
        await defer(interaction)
        w = words_for(interaction.locale)
        guild_id = self._guild(interaction)
        if role.id == guild_id:  # @everyone's id is the server's; members never carry it in their role list
            await answer(interaction, replies.everyone_role_refused(w))
            return
        await self.bot.ledger.set_role_limit(guild_id, role.id, credits)
        log.info("role limit set guild=%s user=%s role=%s credits=%s", guild_id, interaction.user.id, role.id, credits)
        if credits == 0:
            await answer(interaction, replies.role_limit_removed(w, role.id))
            return
        settings = await self.bot.ledger.get_settings(guild_id)
        await answer(interaction, replies.role_limit_set(w, role.id, credits, settings.period))

    @app_commands.command(name="history", description=locale_str("The latest background removals in this server"))
    @app_commands.describe(member=locale_str("Only this member's jobs"))
    @admin_only
    async def history(self, interaction: discord.Interaction, member: discord.Member | None = None) -> None:
        await defer(interaction)
        guild_id = self._guild(interaction)
        records = await self.bot.ledger.history(guild_id, user_id=member.id if member else None, limit=20)
        w = words_for(interaction.locale)
        if not records:
            await answer(interaction, replies.no_jobs_yet(w))
            return
        lines: list[str] = []
        for record in records:
            line = history_line(w, record)
            if sum(len(x) + 1 for x in lines) + len(line) > 1900:
                break
            lines.append(line)
        await answer(interaction, "\n".join(lines))

    @app_commands.command(name="export", description=locale_str("This period's jobs as a CSV file"))
    @admin_only
    async def export(self, interaction: discord.Interaction) -> None:
        await defer(interaction)  # every row of the period (all rows ever with period "none")
        guild_id = self._guild(interaction)
        records = await self.bot.ledger.export_rows(guild_id)
        usage = await self.bot.ledger.usage(guild_id)
        name = f"credits-{guild_id}-{usage.period_start:%Y-%m-%d}.csv"
        data, left_out = export_csv(records, max_bytes=interaction.filesize_limit - EXPORT_MARGIN)
        text = replies.export_summary(words_for(interaction.locale), len(records), left_out)
        await answer(interaction, text, file=discord.File(io.BytesIO(data), filename=name))

    @app_commands.command(
        name="alerts", description=locale_str("Where to post when the server reaches 80% and 100% of its limit")
    )
    @app_commands.describe(channel=locale_str("The channel for alerts; leave empty to turn alerts off"))
    @admin_only
    async def alerts(
        self,
        interaction: discord.Interaction,
        channel: app_commands.Transform[app_commands.AppCommandChannel, AlertChannel] | None = None,
    ) -> None:
        await defer(interaction)
        guild_id = self._guild(interaction)
        await self.bot.ledger.set_alert_channel(guild_id, channel.id if channel else None)
        await answer(interaction, replies.alerts_set(words_for(interaction.locale), channel.id if channel else None))

    @app_commands.command(
        name="release-held",
        description=locale_str("Release the credits of jobs Magic Hour never confirmed (outcome unknown)"),
    )
    @admin_only
    async def release_held(self, interaction: discord.Interaction) -> None:
        await defer(interaction)
        w = words_for(interaction.locale)
        guild_id = self._guild(interaction)
        held = await self.bot.ledger.held(guild_id)
        if not held.count:
            await answer(interaction, replies.nothing_held(w))
            return
        by = f"user {interaction.user.id} (/credits release-held)"

        async def release() -> str:
            # Only held jobs move: a create still in flight is "sending", never released from under it.
            released = await self.bot.ledger.release_held(guild_id, by=by)
            log.info("held jobs released guild=%s user=%s jobs=%s", guild_id, interaction.user.id, released.count)
            return replies.released_held(w, released.count, released.credits)

        view = ConfirmView(interaction.user.id, release, timeout=120, words=w)
        await answer(interaction, replies.release_held_question(w, held), view=view)

    @staticmethod
    def _guild(interaction: discord.Interaction) -> int:
        assert interaction.guild_id is not None  # the group is guild_only
        return interaction.guild_id


async def setup(bot: BackgroundBot) -> None:
    await bot.add_cog(Credits(bot))
