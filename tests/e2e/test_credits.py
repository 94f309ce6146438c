"""/credits end to end: slash commands go through discord.py's real interaction dispatch, and every check is
on what the bot really sent to the fake Discord (and Magic Hour) or on what the SQLite ledger now holds.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from discord import app_commands

from bot.ledger import GuildSettings, JobStatus
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.interactions import (
    ADMIN_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    Member,
    make_attachment,
    make_member,
    make_user,
    snowflake,
)
from tests.fakes.magic_hour import FakeMagicHour

EPHEMERAL = 1 << 6
CHANNEL_MESSAGE = 4
DEFERRED_CHANNEL_MESSAGE = 5
JOB_TIMEOUT = 10.0
REFUSED = "🔒 You need the **Manage Server** permission to use this command."


def reset_mark(moment: datetime | None) -> str:
    """Discord's relative-timestamp markup for the reset time, built here, not with the bot's helper."""
    assert moment is not None
    return f"<t:{int(moment.timestamp())}:R>"


def ephemeral_reply(world: BotWorld, iid: int) -> tuple[str, dict[str, Any]]:
    """The bot's answer to `iid`; fails unless it is visible only to the caller.

    Either one immediate reply (refusals by a check), or a private "thinking…" acknowledgement followed by
    an edit of it (every /credits command that reaches the database defers first).
    """
    calls = world.discord.callbacks(iid)
    assert len(calls) == 1, calls
    body = calls[0].json
    assert int(body["data"].get("flags", 0)) & EPHEMERAL, body
    if body["type"] == CHANNEL_MESSAGE:
        return body["data"]["content"], body
    assert body["type"] == DEFERRED_CHANNEL_MESSAGE, body
    token = world.discord.token_of(iid)
    edits = world.discord.original_edits(token)
    assert edits, "the deferred answer was never edited in"
    return edits[-1].json["content"], edits[-1].json


async def credits(
    world: BotWorld,
    subcommand: str,
    options: dict[str, Any] | None = None,
    *,
    user: Member | None = None,
    permissions: int | None = DEFAULT_MEMBER_PERMISSIONS,
    resolved: dict[str, Any] | None = None,
) -> int:
    payload = world.discord.slash_command(
        "credits", options or {}, subcommand=subcommand, user=user, permissions=permissions
    )
    if resolved:
        payload["data"].setdefault("resolved", {}).update(resolved)
    return await world.discord.run(payload)


async def admin(world: BotWorld, subcommand: str, options: dict[str, Any] | None = None, **kw: Any) -> str:
    iid = await credits(world, subcommand, options, permissions=ADMIN_PERMISSIONS, **kw)
    assert world.discord.errors == [], world.discord.errors
    return ephemeral_reply(world, iid)[0]


def channel_resolved(channel_id: int, kind: int = 0) -> dict[str, Any]:
    """The harness fills `resolved` for users and attachments only; channels are added as Discord sends them."""
    channel = {"id": str(channel_id), "type": kind, "name": "credit-alerts", "permissions": str(ADMIN_PERMISSIONS)}
    return {"channels": {str(channel_id): channel}}


async def set_alert_channel(world: BotWorld, channel_id: int) -> str:
    world.discord.api.add_channel(channel_id, world.discord.guild_id, name="credit-alerts")
    return await admin(world, "alerts", {"channel": str(channel_id)}, resolved=channel_resolved(channel_id))


async def remove_background(world: BotWorld, user: Member | None = None) -> int:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment("cat.png")}, user=user)
    return await world.discord.run(payload, timeout=JOB_TIMEOUT)


async def add_job(
    world: BotWorld,
    user_id: int,
    *,
    status: JobStatus | None = JobStatus.COMPLETE,
    charged: int = 5,
    now: datetime | None = None,
) -> int:
    """A job written through the ledger API as the runner would (status None: still reserved)."""
    iid = snowflake()
    ledger = world.bot.ledger
    await ledger.reserve(
        interaction_id=iid,
        guild_id=world.discord.guild_id,
        channel_id=world.discord.channel_id,
        user_id=user_id,
        now=now,
    )
    if status is None:
        return iid
    await ledger.mark_sending(iid)
    await ledger.mark_submitted(iid, project_id=f"cm{iid}")
    if status is not JobStatus.SUBMITTED:
        await ledger.settle(iid, status=status, credits_charged=charged)
    return iid


async def settings(world: BotWorld) -> GuildSettings:
    return await world.bot.ledger.get_settings(world.discord.guild_id)


# -- /credits usage ---------------------------------------------------------------------------------------


async def test_usage_shows_server_and_own_usage_but_top_members_only_to_admins(world: BotWorld) -> None:
    alice = world.discord.user
    bob = make_member(make_user("bob"))
    await add_job(world, alice.id)
    await add_job(world, bob.id)
    await add_job(world, bob.id, status=None)  # still running: counts as reserved
    guild_usage = await world.bot.ledger.usage(world.discord.guild_id)

    iid = await credits(world, "usage")
    text, _ = ephemeral_reply(world, iid)
    assert "This server has used 15 of 100 credits this month." in text
    assert f"The limit resets {reset_mark(guild_usage.resets_at)}." in text
    assert "5 of those are reserved" in text
    assert "You have used 5 credits." in text
    assert "Top members" not in text
    assert f"<@{bob.id}>" not in text

    iid = await credits(world, "usage", user=bob, permissions=ADMIN_PERMISSIONS)
    text, _ = ephemeral_reply(world, iid)
    assert "This server has used 15 of 100 credits this month." in text
    assert "You have used 10 credits." in text
    assert f"**Top members:** <@{bob.id}> 10, <@{alice.id}> 5" in text


async def test_usage_shows_the_member_limit(world: BotWorld) -> None:
    await admin(world, "set-member-limit", {"credits": 20})
    await add_job(world, world.discord.user.id)
    text, _ = ephemeral_reply(world, await credits(world, "usage"))
    assert "You have used 5 credits of your 20-credit limit." in text


# -- permissions -------------------------------------------------------------------------------------------


ADMIN_COMMANDS = [
    ("set-limit", {"credits": 7, "period": "day"}),
    ("set-member-limit", {"credits": 3}),
    ("set-member-limit", {}),
    ("history", {}),
    ("export", {}),
]


@pytest.mark.parametrize(("subcommand", "options"), ADMIN_COMMANDS, ids=lambda v: str(v))
async def test_admin_commands_refuse_members_without_manage_server(
    world: BotWorld, subcommand: str, options: dict[str, Any]
) -> None:
    await admin(world, "set-member-limit", {"credits": 12})
    before = await settings(world)
    await add_job(world, world.discord.user.id)
    sent_before = len(world.discord.requests)

    # Discord would hide nothing here: the bot syncs no default_member_permissions, and admins may change them.
    iid = await credits(world, subcommand, options, permissions=DEFAULT_MEMBER_PERMISSIONS)

    (_, error), *_ = world.discord.errors
    assert isinstance(error, app_commands.MissingPermissions)  # it reached the bot, which said no
    text, body = ephemeral_reply(world, iid)
    assert text == REFUSED
    assert "attachments" not in body["data"]
    assert not world.discord.callbacks(iid)[0].files
    assert len(world.discord.requests) == sent_before + 1  # the refusal, nothing else
    after = await settings(world)
    assert (after.credit_limit, after.period, after.member_limit, after.alert_channel_id) == (
        before.credit_limit,
        before.period,
        before.member_limit,
        before.alert_channel_id,
    )


async def test_alerts_refuses_members_without_manage_server(world: BotWorld) -> None:
    channel_id = snowflake()
    await set_alert_channel(world, channel_id)
    iid = await credits(world, "alerts", {}, permissions=DEFAULT_MEMBER_PERMISSIONS)
    assert ephemeral_reply(world, iid)[0] == REFUSED
    assert (await settings(world)).alert_channel_id == channel_id


async def test_administrator_counts_as_manage_server(world: BotWorld) -> None:
    """Discord resolves an Administrator's permissions to every bit, Manage Server included."""
    text = await admin(world, "set-limit", {"credits": 40})
    assert text.startswith("✅ Limit set.")
    assert (await settings(world)).credit_limit == 40


# -- /credits set-limit and set-member-limit ------------------------------------------------------------------


async def test_set_limit_changes_the_ledger(world: BotWorld) -> None:
    text = await admin(world, "set-limit", {"credits": 50, "period": "week"})
    stored = await settings(world)
    assert (stored.credit_limit, str(stored.period), stored.is_default) == (50, "week", False)
    usage = await world.bot.ledger.usage(world.discord.guild_id)
    assert text == (
        f"✅ Limit set. This server has used 0 of 50 credits this week. The limit resets {reset_mark(usage.resets_at)}."
    )

    text = await admin(world, "set-limit", {"credits": 30})  # period defaults to month
    stored = await settings(world)
    assert (stored.credit_limit, str(stored.period)) == (30, "month")
    assert "0 of 30 credits this month" in text

    text = await admin(world, "set-limit", {"credits": 80, "period": "none"})
    assert (await settings(world)).credit_limit == 80
    assert text == "✅ Limit set. This server has used 0 of 80 credits in total."


async def test_set_member_limit_sets_and_clears(world: BotWorld) -> None:
    text = await admin(world, "set-member-limit", {"credits": 20})
    assert text == "✅ Each member may now use 20 credits per period."
    assert (await settings(world)).member_limit == 20

    assert await admin(world, "set-member-limit", {"credits": 0}) == "✅ Member limit removed."
    assert (await settings(world)).member_limit is None

    await admin(world, "set-member-limit", {"credits": 15})
    assert (await settings(world)).member_limit == 15
    assert await admin(world, "set-member-limit") == "✅ Member limit removed."
    assert (await settings(world)).member_limit is None


async def test_member_limit_refuses_that_member_only(world: BotWorld) -> None:
    await admin(world, "set-member-limit", {"credits": 5})
    await remove_background(world)
    creates = world.mh.creates
    iid = await remove_background(world)
    followup = world.discord.followups(world.discord.token_of(iid))[-1].json
    assert followup["flags"] & EPHEMERAL
    assert "You can't start another background removal: 5 of 5 credits used this month" in followup["content"]
    assert world.mh.creates == creates

    await remove_background(world, make_member(make_user("bob")))
    assert world.mh.creates == creates + 1


async def test_ceiling_binds_admins_but_not_the_owner(tmp_path: Path, mh: FakeMagicHour) -> None:
    owner_id = snowflake()
    async with bot_world(tmp_path, mh, harness={"owner_id": owner_id}, MAX_GUILD_CREDIT_LIMIT="200") as world:
        text = await admin(world, "set-limit", {"credits": 500})
        assert text.startswith("❌")
        assert "200" in text
        stored = await settings(world)
        assert (stored.credit_limit, stored.is_default) == (100, True)

        assert (await admin(world, "set-limit", {"credits": 200})).startswith("✅ Limit set.")
        assert (await settings(world)).credit_limit == 200

        owner = make_member(make_user("owner", id=owner_id))
        text = await admin(world, "set-limit", {"credits": 500}, user=owner)
        assert text.startswith("✅ Limit set.")
        assert "0 of 500 credits" in text
        assert (await settings(world)).credit_limit == 500


# -- /credits history and export --------------------------------------------------------------------------------


async def test_history_lists_latest_jobs_with_member_status_credits_and_time(world: BotWorld) -> None:
    alice = world.discord.user
    bob = make_member(make_user("bob"))
    first = await add_job(world, alice.id)
    second = await add_job(world, bob.id, status=JobStatus.FAILED, charged=0)
    third = await add_job(world, bob.id, status=None)
    records = {r.interaction_id: r for r in await world.bot.ledger.history(world.discord.guild_id)}

    def line(iid: int, user_id: int, status: str, credits: int) -> str:
        return f"<t:{int(records[iid].created_at.timestamp())}:f> <@{user_id}> · {status} · {credits} credits"

    text = await admin(world, "history", user=bob)
    assert text.splitlines() == [
        line(third, bob.id, "reserved", 5),
        line(second, bob.id, "failed", 0),
        line(first, alice.id, "complete", 5),
    ]

    text = await admin(world, "history", {"member": alice})
    assert text.splitlines() == [line(first, alice.id, "complete", 5)]


async def test_history_of_an_empty_server(world: BotWorld) -> None:
    assert await admin(world, "history") == "No jobs yet."


async def test_export_attaches_this_periods_jobs_as_csv(world: BotWorld) -> None:
    alice = world.discord.user
    bob = make_member(make_user("bob"))
    await add_job(world, alice.id, now=datetime.now(UTC) - timedelta(days=40))  # an earlier period
    jobs = [await remove_background(world), await remove_background(world, bob)]
    refunded = await add_job(world, bob.id, status=JobStatus.FAILED, charged=0)

    iid = await credits(world, "export", permissions=ADMIN_PERMISSIONS)
    text, body = ephemeral_reply(world, iid)
    assert text == "3 jobs this period."
    (upload,) = world.discord.original_edits(world.discord.token_of(iid))[-1].files
    usage = await world.bot.ledger.usage(world.discord.guild_id)
    assert upload.filename == f"credits-{world.discord.guild_id}-{usage.period_start:%Y-%m-%d}.csv"
    assert body["attachments"][0]["filename"] == upload.filename

    rows = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert [int(r["interaction_id"]) for r in rows] == [*jobs, refunded]
    assert [int(r["user_id"]) for r in rows] == [alice.id, bob.id, bob.id]
    assert [r["status"] for r in rows] == ["complete", "complete", "failed"]
    assert [r["credits_charged"] for r in rows] == ["5", "5", "0"]
    assert {r["project_id"] for r in rows[:2]} == set(world.mh.jobs)
    assert all(int(r["channel_id"]) == world.discord.channel_id for r in rows)
    assert all(datetime.fromisoformat(r["created_at"]) >= usage.period_start for r in rows)


# -- alerts and the limit -----------------------------------------------------------------------------------------


async def test_alerts_post_once_at_80_and_100_percent(world: BotWorld) -> None:
    alert_channel = snowflake()
    await admin(world, "set-limit", {"credits": 25})
    text = await set_alert_channel(world, alert_channel)
    assert text == f"✅ Alerts will be posted in <#{alert_channel}>."
    assert (await settings(world)).alert_channel_id == alert_channel

    def alerts() -> list[str]:
        return [r.json["content"] for r in world.discord.channel_messages(alert_channel)]

    for _ in range(3):
        await remove_background(world)
    assert alerts() == []  # 15 of 25: 60 %

    await remove_background(world)  # 20 of 25
    assert len(alerts()) == 1
    assert alerts()[0].startswith("📈 This server has reached 80% of its credit limit.")
    assert "used 20 of 25 credits" in alerts()[0]

    await remove_background(world)  # 25 of 25
    assert len(alerts()) == 2
    assert alerts()[1].startswith("📈 This server has reached 100% of its credit limit.")

    # More activity in the same period: refused jobs, a raised limit, more jobs, a lowered limit: no repeats.
    await remove_background(world)
    await admin(world, "set-limit", {"credits": 30})
    await remove_background(world)  # 30 of 30
    await admin(world, "set-limit", {"credits": 35})
    await remove_background(world)  # 35 of 35
    assert world.mh.creates == 7
    assert len(alerts()) == 2


async def test_alerts_refuse_a_voice_channel(world: BotWorld) -> None:
    voice = snowflake()
    iid = await credits(
        world, "alerts", {"channel": str(voice)}, permissions=ADMIN_PERMISSIONS, resolved=channel_resolved(voice, 2)
    )
    (_, error), *_ = world.discord.errors
    assert isinstance(error, app_commands.TransformerError)
    assert ephemeral_reply(world, iid)[0].startswith("❌")
    assert (await settings(world)).alert_channel_id is None


async def test_alerts_can_be_turned_off(world: BotWorld) -> None:
    alert_channel = snowflake()
    await set_alert_channel(world, alert_channel)
    assert await admin(world, "alerts") == "✅ Alerts turned off."
    assert (await settings(world)).alert_channel_id is None
    await admin(world, "set-limit", {"credits": 5})
    await remove_background(world)
    assert world.discord.channel_messages(alert_channel) == []


async def test_reached_limit_refuses_without_calling_magic_hour(world: BotWorld) -> None:
    await admin(world, "set-limit", {"credits": 10})
    await remove_background(world)
    await remove_background(world)
    mh_requests, creates = len(world.mh.requests), world.mh.creates
    assert creates == 2

    iid = await remove_background(world)

    assert len(world.mh.requests) == mh_requests
    token = world.discord.token_of(iid)
    followups = world.discord.followups(token)
    assert len(followups) == 1
    refusal = followups[0].json
    assert refusal["flags"] & EPHEMERAL
    usage = await world.bot.ledger.usage(world.discord.guild_id)
    assert refusal["content"] == (
        "🚫 This server can't start another background removal: 10 of 10 credits used this month. "
        f"Each one costs 5 credits. The limit resets {reset_mark(usage.resets_at)}."
    )
    # The public "thinking…" placeholder is removed, so nothing about it stays visible to others.
    assert world.discord.api.find("DELETE", rf"/webhooks/\d+/{token}/messages/@original$")
    assert len(await world.bot.ledger.history(world.discord.guild_id)) == 2


async def test_zero_limit_refuses_the_first_job(world: BotWorld) -> None:
    await admin(world, "set-limit", {"credits": 0, "period": "none"})
    iid = await remove_background(world)
    refusal = world.discord.followups(world.discord.token_of(iid))[0].json
    assert refusal["flags"] & EPHEMERAL
    assert "0 of 0 credits used in total" in refusal["content"]
    assert "A server admin can raise the server's limit with `/credits set-limit`." in refusal["content"]
    assert world.mh.requests == []


async def test_an_alert_whose_post_failed_is_posted_after_the_next_job(world: BotWorld) -> None:
    alert_channel = snowflake()
    await admin(world, "set-limit", {"credits": 25})
    await set_alert_channel(world, alert_channel)

    def posted() -> list[str]:
        return [r.json["content"] for r in world.discord.channel_messages(alert_channel) if r.status == 200]

    for _ in range(3):
        await remove_background(world)  # 15 of 25
    world.discord.api.fail_next("POST", rf"^/channels/{alert_channel}/messages$", status=403)
    await remove_background(world)  # 20 of 25: the 80 % post is refused
    assert posted() == []
    assert len(world.discord.channel_messages(alert_channel)) == 1  # it was tried

    await remove_background(world)  # 25 of 25: the 80 % alert goes out now, then the 100 % one
    assert [text.split(" of its")[0] for text in posted()] == [
        "📈 This server has reached 80%",
        "📈 This server has reached 100%",
    ]


async def test_export_escapes_cells_a_spreadsheet_would_run_as_formulas(world: BotWorld) -> None:
    await add_job(world, world.discord.user.id, status=JobStatus.FAILED, charged=0)
    async with world.bot.ledger.engine.begin() as conn:
        from bot.ledger.schema import jobs

        await conn.execute(jobs.update().values(error='=HYPERLINK("http://evil.example","click")'))
    iid = await credits(world, "export", permissions=ADMIN_PERMISSIONS)
    ephemeral_reply(world, iid)
    (upload,) = world.discord.original_edits(world.discord.token_of(iid))[-1].files
    [row] = list(csv.DictReader(io.StringIO(upload.data.decode())))
    assert row["error"].startswith("'=HYPERLINK"), row["error"]


async def test_export_larger_than_the_upload_limit_is_cut_and_says_so(world: BotWorld) -> None:
    for _ in range(60):
        await add_job(world, world.discord.user.id, status=JobStatus.FAILED, charged=0)  # refunded: no limit hit
    payload = world.discord.slash_command(
        "credits", {}, subcommand="export", permissions=ADMIN_PERMISSIONS, attachment_size_limit=4096 + 2000
    )
    iid = await world.discord.run(payload)
    text, _ = ephemeral_reply(world, iid)
    (upload,) = world.discord.original_edits(world.discord.token_of(iid))[-1].files
    kept = len(list(csv.DictReader(io.StringIO(upload.data.decode()))))
    assert 0 < kept < 60 and len(upload.data) <= 2000
    assert f"60 jobs this period. The file holds the first {kept} of them; {60 - kept} more did not fit" in text


async def test_usage_names_the_credits_held_by_unconfirmed_jobs_and_admins_can_release_them(world: BotWorld) -> None:
    ledger = world.bot.ledger
    guild = world.discord.guild_id
    await ledger.reserve(interaction_id=777, guild_id=guild, channel_id=1, user_id=world.discord.user.id)
    assert await ledger.mark_sending(777)
    await ledger.mark_held(777, error="Magic Hour answered 504")

    text, _ = ephemeral_reply(world, await credits(world, "usage"))
    assert "5 credits are held by 1 job Magic Hour never confirmed since <t:" in text
    assert "/credits release-held" in text

    refused = await credits(world, "release-held", permissions=DEFAULT_MEMBER_PERMISSIONS)
    assert ephemeral_reply(world, refused)[0] == REFUSED
    assert (await ledger.get_job(777)).status is JobStatus.HELD

    iid = await credits(world, "release-held", permissions=ADMIN_PERMISSIONS)
    question, body = ephemeral_reply(world, iid)
    assert "1 job (5 credits) never got an answer" in question
    buttons = {b["label"]: b for b in body["components"][0]["components"]}
    assert set(buttons) == {"Release", "Keep"}
    assert (await ledger.get_job(777)).status is JobStatus.HELD, "nothing is released before the answer"

    message_id = int(world.discord.original_edits(world.discord.token_of(iid))[-1].response["id"])
    click = world.discord.button_click(
        buttons["Release"]["custom_id"], message_id=message_id, permissions=ADMIN_PERMISSIONS
    )
    await world.discord.run(click)
    final = world.discord.original_edits(click["token"])[-1].json["content"]
    assert final.startswith("✅ Released 1 job: 5 credits are back")
    record = await ledger.get_job(777)
    assert (record.status, record.credits_charged) == (JobStatus.REFUNDED, 0)
    assert f"released by user {world.discord.user.id}" in record.error
    assert (await ledger.usage(guild)).total == 0


async def test_by_default_an_admin_can_lower_the_budget_but_not_raise_it(world: BotWorld) -> None:
    before = await settings(world)
    text = await admin(world, "set-limit", {"credits": 100_000_000, "period": "day"})
    assert text.startswith("❌ 100,000,000 credits is above this server's ceiling of 100 credits.")
    assert "Only the bot's owner can raise it" in text and "python -m bot grant" in text
    assert await settings(world) == before
    assert (await admin(world, "set-limit", {"credits": 40})).startswith("✅ Limit set.")
    assert (await settings(world)).credit_limit == 40
