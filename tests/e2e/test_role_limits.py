"""Role limits end to end, through discord.py's real dispatch, on SQLite and PostgreSQL: `/credits set-role-limit`,
members' caps from the roles Discord sends with each interaction, refusals that name the cap, `/credits usage`."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from discord import app_commands

from bot.ledger import JobStatus
from tests.e2e.conftest import BotWorld, bot_world
from tests.e2e.engines import database_url, engine_settings
from tests.e2e.test_credits import REFUSED, credits, ephemeral_reply, reset_mark
from tests.fakes.discord_api import EPHEMERAL
from tests.fakes.interactions import (
    ADMIN_PERMISSIONS,
    DEFAULT_MEMBER_PERMISSIONS,
    Member,
    Role,
    everyone_role,
    make_attachment,
    make_member,
    make_user,
)
from tests.fakes.magic_hour import FakeMagicHour

__all__ = ["database_url"]  # the fixture, imported so pytest finds it here

JOB_TIMEOUT = 15.0
DAILY = {"DEFAULT_GUILD_CREDIT_LIMIT": "1000", "DEFAULT_GUILD_CREDIT_PERIOD": "day"}


@pytest.fixture
async def world(tmp_path: Path, mh: FakeMagicHour, database_url: str | None) -> AsyncIterator[BotWorld]:
    """A server allowing 1,000 credits a day, so only members' caps bind; up to 5 requests per member at once."""
    async with bot_world(tmp_path, mh, MAX_JOBS_PER_MEMBER="5", **DAILY, **engine_settings(database_url)) as w:
        yield w


def member(name: str, *roles: Role) -> Member:
    return make_member(make_user(name), roles=tuple(role.id for role in roles))


async def admin(world: BotWorld, subcommand: str, options: dict[str, Any] | None = None) -> str:
    iid = await credits(world, subcommand, options, permissions=ADMIN_PERMISSIONS)
    assert world.discord.errors == [], world.discord.errors
    return ephemeral_reply(world, iid)[0]


async def remove_background(world: BotWorld, user: Member, images: int = 1) -> int:
    options: dict[str, Any] = {"image": make_attachment("cat.png")}
    options |= {f"image{n}": make_attachment(f"cat{n}.png") for n in range(2, images + 1)}
    payload = world.discord.slash_command("remove-background", options, user=user)
    return await world.discord.run(payload, timeout=JOB_TIMEOUT)


async def outcome(world: BotWorld, iid: int) -> str:
    """ "done" when every image of the request completed; else the refusal the member was sent (privately)."""
    job = await world.bot.ledger.get_job(iid)
    if job is not None:
        assert job.status is JobStatus.COMPLETE, job
        return "done"
    (refusal,) = world.discord.followups(world.discord.token_of(iid))
    assert refusal.json["flags"] & EPHEMERAL
    return refusal.json["content"]


async def test_set_role_limit_stores_replaces_and_removes(world: BotWorld) -> None:
    artists = world.discord.add_role("artists")
    text = await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    assert text == (
        f"✅ Members with <@&{artists.id}> may now use up to 10 credits each, per day. For them it replaces the member "
        "limit; a member with several limited roles gets the largest."
    )
    assert [(r.role_id, r.credits) for r in await world.bot.ledger.role_limits(world.discord.guild_id)] == [
        (artists.id, 10)
    ]
    await admin(world, "set-role-limit", {"role": artists, "credits": 25})
    assert [r.credits for r in await world.bot.ledger.role_limits(world.discord.guild_id)] == [25]

    assert await admin(world, "set-role-limit", {"role": artists, "credits": 0}) == (
        f"✅ <@&{artists.id}> has no limit of its own now."
    )
    assert await world.bot.ledger.role_limits(world.discord.guild_id) == []


async def test_set_role_limit_needs_manage_server_and_refuses_everyone(world: BotWorld) -> None:
    artists = world.discord.add_role("artists")
    iid = await credits(
        world, "set-role-limit", {"role": artists, "credits": 50}, permissions=DEFAULT_MEMBER_PERMISSIONS
    )
    (_, error), *_ = world.discord.errors
    assert isinstance(error, app_commands.MissingPermissions)
    assert ephemeral_reply(world, iid)[0] == REFUSED

    world.discord.errors.clear()
    everyone = everyone_role(world.discord.guild_id)
    text = await admin(world, "set-role-limit", {"role": everyone, "credits": 50})
    assert text == "❌ Every member has @everyone: to limit every member, use `/credits set-member-limit`."
    assert await world.bot.ledger.role_limits(world.discord.guild_id) == []


async def test_a_role_limit_of_10_a_day_the_larger_of_two_roles_and_the_member_limit_without(
    world: BotWorld,
) -> None:
    artists, patrons, guests = (world.discord.add_role(name) for name in ("artists", "patrons", "guests"))
    await admin(world, "set-member-limit", {"credits": 5})
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    await admin(world, "set-role-limit", {"role": patrons, "credits": 20})
    alice, bob, carol = member("alice", artists), member("bob", guests, artists, patrons), member("carol", guests)

    first, second, third = [await remove_background(world, alice) for _ in range(3)]
    assert [await outcome(world, first), await outcome(world, second)] == ["done", "done"]
    usage = await world.bot.ledger.usage(world.discord.guild_id)
    assert await outcome(world, third) == (
        f"🚫 You can't start another background removal: you have used 10 credits of your role <@&{artists.id}>'s "
        f"cap of 10 credits today, and each one costs 5. The limit resets {reset_mark(usage.resets_at)}."
    )

    bobs = [await outcome(world, await remove_background(world, bob)) for _ in range(5)]
    assert bobs[:4] == ["done"] * 4
    assert f"of your role <@&{patrons.id}>'s cap of 20 credits today" in bobs[4]

    carols = [await outcome(world, await remove_background(world, carol)) for _ in range(2)]
    assert carols[0] == "done"
    assert "You can't start another background removal: 5 of 5 credits used today" in carols[1]
    assert "role" not in carols[1]

    spent = Counter(job.user_id for job in await world.bot.ledger.export_rows(world.discord.guild_id))
    assert spent == {alice.id: 2, bob.id: 4, carol.id: 1}


async def test_a_request_of_several_images_over_the_role_cap_is_refused_whole(world: BotWorld) -> None:
    artists = world.discord.add_role("artists")
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    alice = member("alice", artists)
    creates = world.mh.creates

    refusal = await outcome(world, await remove_background(world, alice, images=3))

    assert refusal.startswith(
        f"🚫 This request of 3 images needs 15 credits, but your role <@&{artists.id}>'s cap of 10 credits leaves "
        "you only 10 today. Nothing was charged; try fewer images."
    )
    assert world.mh.creates == creates
    assert await world.bot.ledger.export_rows(world.discord.guild_id) == []
    assert await outcome(world, await remove_background(world, alice, images=2)) == "done"


async def test_ten_members_with_the_role_at_once_never_exceed_it(world: BotWorld) -> None:
    artists = world.discord.add_role("artists")
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    members = [member(f"m{n}", artists) for n in range(10)]
    payloads = [
        world.discord.slash_command("remove-background", {"image": make_attachment(f"m{n}-{t}.png")}, user=who)
        for t in range(3)
        for n, who in enumerate(members)
    ]

    ids = [world.discord.dispatch(payload) for payload in payloads]  # 30 at once: 3 per member
    await asyncio.gather(*(world.discord.finished(iid, timeout=30) for iid in ids))

    outcomes = [await outcome(world, iid) for iid in ids]
    assert outcomes.count("done") == 20
    assert all(f"your role <@&{artists.id}>'s cap of 10 credits" in o for o in outcomes if o != "done")
    spent = Counter(job.user_id for job in await world.bot.ledger.export_rows(world.discord.guild_id))
    assert spent == {who.id: 2 for who in members}
    assert world.mh.created == 20
    for who in members:
        usage = await world.bot.ledger.usage(world.discord.guild_id, user_id=who.id)
        assert usage.member_used == 10


async def test_usage_lists_role_limits_and_the_members_own_cap_and_forgets_deleted_roles(world: BotWorld) -> None:
    artists, patrons, guests = (world.discord.add_role(name) for name in ("artists", "patrons", "guests"))
    await admin(world, "set-member-limit", {"credits": 15})
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    await admin(world, "set-role-limit", {"role": patrons, "credits": 40})
    alice = member("alice", artists, guests)
    await remove_background(world, alice)

    text, _ = ephemeral_reply(world, await credits(world, "usage", user=alice))
    assert f"You have used 5 credits of your 10-credit cap, from your role <@&{artists.id}>." in text
    roles_line = (
        f"**Role limits** (credits per member per day; a member's largest replaces the member limit): "
        f"<@&{patrons.id}> 40 · <@&{artists.id}> 10."
    )
    assert roles_line in text

    world.discord.delete_role(patrons)
    text, _ = ephemeral_reply(world, await credits(world, "usage", user=member("bob", guests)))
    assert "You have used 0 credits of your 15-credit limit." in text  # no limited role: the member limit
    assert f"<@&{artists.id}> 10." in text and f"<@&{patrons.id}>" not in text
    assert [r.role_id for r in await world.bot.ledger.role_limits(world.discord.guild_id)] == [patrons.id, artists.id]

    world.discord.delete_role(artists)  # Discord takes it off every member: alice's next command carries none
    text, _ = ephemeral_reply(world, await credits(world, "usage", user=replace(alice, roles=(guests.id,))))
    assert "You have used 5 credits of your 15-credit limit." in text
    assert "Role limits" not in text


async def test_usage_lists_every_stored_role_limit_when_discord_cannot_list_the_roles(world: BotWorld) -> None:
    artists = world.discord.add_role("artists")
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    world.discord.fail_next("GET", rf"^/guilds/{world.discord.guild_id}/roles$", status=403)
    text, _ = ephemeral_reply(world, await credits(world, "usage"))
    assert f"<@&{artists.id}> 10." in text


async def test_a_server_in_the_cache_is_read_from_it_without_asking_discord(world: BotWorld) -> None:
    """With the `guilds` intent the gateway's GUILD_CREATE and GUILD_ROLE_DELETE keep the server's roles current."""
    guild_id = world.discord.guild_id
    artists, patrons = world.discord.add_role("artists"), world.discord.add_role("patrons")
    await admin(world, "set-role-limit", {"role": artists, "credits": 10})
    await admin(world, "set-role-limit", {"role": patrons, "credits": 20})
    roles = [everyone_role(guild_id).payload(), artists.payload(), patrons.payload()]
    state = world.bot._connection  # where the gateway delivers events, as the harness delivers interactions
    state.parse_guild_create({"id": str(guild_id), "name": "Art Club", "roles": roles, "unavailable": False})
    state.parse_guild_role_delete({"guild_id": str(guild_id), "role_id": str(patrons.id)})

    text, _ = ephemeral_reply(world, await credits(world, "usage"))

    assert f"<@&{artists.id}> 10." in text and f"<@&{patrons.id}>" not in text
    assert world.discord.api.find("GET", r"^/guilds/\d+/roles$") == []
