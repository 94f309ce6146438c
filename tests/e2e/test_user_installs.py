"""Members who install the app to their own account: where the commands are offered, who pays, where answers go.

Interactions are built the way Discord sends them: `authorizing_integration_owners` names the server ("0") when
the server installed the app and the member ("1") when they did; a bot DM carries `"0": "0"` (no server).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.ledger import JobStatus, Payer
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.discord_api import RecordedRequest
from tests.fakes.interactions import CONTEXT_BOT_DM, CONTEXT_GUILD, CONTEXT_PRIVATE_CHANNEL, make_attachment, snowflake
from tests.fakes.magic_hour import FakeMagicHour

EPHEMERAL = 1 << 6
GUILD_INSTALL, USER_INSTALL = 0, 1


def command_puts(world: BotWorld) -> list[RecordedRequest]:
    return [r for r in world.discord.requests if r.method == "PUT" and r.path.endswith("/commands")]


def user_install(payload: dict[str, Any], *, context: int, also_guild: bool = False) -> dict[str, Any]:
    """The same interaction as Discord sends it when the member installed the app (and, with `also_guild`,
    the server did too)."""
    user = payload["member"]["user"] if "member" in payload else payload["user"]
    owners = {"1": user["id"]}
    if also_guild:
        owners["0"] = payload["guild_id"]
    elif context == CONTEXT_BOT_DM:
        owners["0"] = "0"  # what Discord sends in the bot's DM: no server
    payload["authorizing_integration_owners"] = owners
    payload["context"] = context
    return payload


def dm(world: BotWorld, options: dict[str, Any]) -> dict[str, Any]:
    payload = world.discord.slash_command("remove-background", options, guild_id=None)
    return user_install(payload, context=CONTEXT_BOT_DM)


async def test_with_user_installs_the_image_commands_are_offered_everywhere_and_credits_stays_in_servers(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="20") as world:
        [put] = command_puts(world)
        commands = {c["name"]: c for c in put.json}
        for name in ("remove-background", "Remove background"):
            assert sorted(commands[name]["integration_types"]) == [GUILD_INSTALL, USER_INSTALL]
            assert sorted(commands[name]["contexts"]) == [CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL]
        assert commands["credits"]["integration_types"] == [GUILD_INSTALL]
        assert commands["credits"]["contexts"] == [CONTEXT_GUILD]


async def test_without_user_installs_every_command_is_a_server_command_as_before(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh) as world:
        [put] = command_puts(world)
        for command in put.json:
            assert command.get("integration_types") in (None, [GUILD_INSTALL]), command["name"]
            assert command["contexts"] == [CONTEXT_GUILD], command["name"]


async def test_a_bot_dm_is_answered_in_the_interaction_and_paid_by_the_members_own_budget(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="10", USER_INSTALL_CREDIT_PERIOD="day") as world:
        for n in range(2):
            payload = dm(world, {"image": make_attachment(f"cat{n}.png")})
            interaction_id = await world.discord.run(payload, timeout=10)
            [final] = [edit for edit in world.discord.original_edits(payload["token"]) if edit.files]
            assert [f.filename for f in final.files] == [f"cat{n}-no-background.png"]
            used = 5 * (n + 1)
            assert f"You have used {used} of 10 credits today" in final.json["content"]
            job = await world.bot.ledger.get_job(interaction_id)
            assert (job.payer, job.guild_id, job.status, job.delivered) == (Payer.USER, None, JobStatus.COMPLETE, True)

        refused = dm(world, {"image": make_attachment("third.png")})
        interaction_id = await world.discord.run(refused, timeout=10)
        [answer] = world.discord.followups(refused["token"])
        assert answer.json["flags"] & EPHEMERAL
        assert "10 of 10 credits used today" in answer.json["content"]
        assert await world.bot.ledger.get_job(interaction_id) is None
        assert mh.creates == 2
        usage = await world.bot.ledger.usage(world.discord.guild_id)
        assert usage.total == 0  # no server paid for any of it
        assert not [r for r in world.discord.requests if r.method == "POST" and r.path.endswith("/messages")]


async def test_the_same_member_in_a_server_that_installed_the_bot_is_charged_to_the_server(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="10") as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
        user_install(payload, context=CONTEXT_GUILD, also_guild=True)  # both the server and the member installed it
        interaction_id = await world.discord.run(payload, timeout=10)
        job = await world.bot.ledger.get_job(interaction_id)
        assert (job.payer, job.guild_id) == (Payer.GUILD, world.discord.guild_id)
        assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 5
        assert (await world.bot.ledger.user_usage(world.discord.user.id)).total == 0


async def test_a_server_without_the_bot_pays_nothing_and_gets_no_channel_post(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="10") as world:
        elsewhere = snowflake()
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()}, guild_id=elsewhere)
        user_install(payload, context=CONTEXT_GUILD)
        mh.job_duration = 0.5
        interaction_id = world.discord.dispatch(payload)
        await world.discord.wait_for(lambda _: mh.creates == 1, timeout=5)
        world.discord.api.expire_interaction(interaction_id)  # the reply can no longer be edited
        await world.discord.finished(interaction_id, timeout=10)
        job = await world.bot.ledger.get_job(interaction_id)
        assert (job.payer, job.guild_id, job.status, job.delivered) == (Payer.USER, None, JobStatus.COMPLETE, True)
        posts = [r for r in world.discord.requests if r.method == "POST" and r.path.startswith("/channels/")]
        assert all(f"/channels/{world.discord.channel_id}/" not in r.path for r in posts)  # never the channel
        opened = world.discord.api.find("POST", r"^/users/@me/channels$")
        [dm_channel] = {int(r.response["id"]) for r in opened}
        [delivered] = world.discord.channel_messages(dm_channel)
        assert delivered.files and delivered.files[0].filename == "cat-no-background.png"


async def test_the_bot_wide_budget_refuses_a_user_install_when_it_is_spent(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="100", BOT_CREDIT_BUDGET="5") as world:
        await world.discord.run(world.discord.slash_command("remove-background", {"image": make_attachment()}), 10)
        refused = dm(world, {"image": make_attachment()})
        await world.discord.run(refused, timeout=10)
        [answer] = world.discord.followups(refused["token"])
        assert "The bot's credit budget" in answer.json["content"] and "used up" in answer.json["content"]
        assert mh.creates == 1


async def test_without_user_installs_a_dm_is_refused_with_no_call(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh) as world:
        payload = dm(world, {"image": make_attachment()})
        interaction_id = await world.discord.run(payload)
        [callback] = world.discord.callbacks(interaction_id)
        assert "only works in a server" in callback.json["data"]["content"]
        assert mh.requests == []


async def test_the_allowlist_still_refuses_a_server_that_installed_the_bot(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh, USER_INSTALL_CREDIT_LIMIT="10", ALLOWED_GUILD_IDS="12345") as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
        user_install(payload, context=CONTEXT_GUILD, also_guild=True)
        interaction_id = await world.discord.run(payload)
        [callback] = world.discord.callbacks(interaction_id)
        assert "not enabled in this server" in callback.json["data"]["content"]
        # ... while the same member's own install works in their DMs.
        await world.discord.run(dm(world, {"image": make_attachment()}), timeout=10)
        assert mh.creates == 1
