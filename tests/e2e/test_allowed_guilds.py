"""ALLOWED_GUILD_IDS: in any other server every command says the bot is not enabled there, and nothing else
happens: no Magic Hour call, no ledger row."""

from __future__ import annotations

from pathlib import Path

from bot.ledger.schema import jobs
from tests.e2e.conftest import BotWorld, bot_world
from tests.fakes.discord_api import EPHEMERAL
from tests.fakes.interactions import ADMIN_PERMISSIONS, make_attachment, snowflake
from tests.fakes.magic_hour import FakeMagicHour

NOT_ENABLED = "not enabled in this server"


async def ledger_rows(world: BotWorld) -> int:
    async with world.bot.ledger.engine.connect() as conn:
        return len((await conn.execute(jobs.select())).all())


def only_answer(world: BotWorld, interaction_id: int) -> str:
    [callback] = world.discord.callbacks(interaction_id)
    assert callback.json["type"] == 4 and callback.json["data"]["flags"] & EPHEMERAL
    return callback.json["data"]["content"]


async def test_every_command_is_refused_outside_the_allowed_servers(tmp_path: Path, mh: FakeMagicHour) -> None:
    elsewhere = snowflake()
    async with bot_world(tmp_path, mh, ALLOWED_GUILD_IDS=str(elsewhere)) as world:
        guild = world.discord.guild_id  # the harness's own server is not on the list
        image = world.discord.slash_command("remove-background", {"image": make_attachment()})
        usage = world.discord.slash_command("credits", {}, subcommand="usage")
        limit = world.discord.slash_command(
            "credits", {"credits": 10}, subcommand="set-limit", permissions=ADMIN_PERMISSIONS
        )
        message = world.discord.add_message(content="look", attachments=[make_attachment("a.png")])
        menu = world.discord.message_context_menu("Remove background", message)
        for payload in (image, usage, limit, menu):
            interaction_id = await world.discord.run(payload)
            assert NOT_ENABLED in only_answer(world, interaction_id)
        assert mh.requests == []
        assert await ledger_rows(world) == 0
        assert (await world.bot.ledger.get_settings(guild)).is_default  # set-limit wrote nothing


async def test_an_allowed_server_works_as_usual(tmp_path: Path, mh: FakeMagicHour) -> None:
    guild = snowflake()
    async with bot_world(
        tmp_path, mh, harness={"guild_id": guild}, ALLOWED_GUILD_IDS=f"{snowflake()},{guild}"
    ) as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
        interaction_id = await world.discord.run(payload, timeout=10)
        assert mh.creates == 1
        assert (await world.bot.ledger.get_job(interaction_id)).status.value == "complete"
