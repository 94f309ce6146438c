"""Unexpected errors reach the member as a short apology with a reference that is also in the log."""

from __future__ import annotations

import logging
import re

import pytest

from tests.e2e.conftest import DISCORD_TOKEN, MH_TOKEN, BotWorld
from tests.fakes.interactions import make_attachment


async def test_an_unexpected_error_gets_an_apology_with_a_logged_reference(
    world: BotWorld, caplog: pytest.LogCaptureFixture
) -> None:
    await world.bot.ledger.engine.dispose()
    world.bot.ledger.engine.sync_engine.pool._creator = _broken_connection  # the database went away
    payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
    with caplog.at_level(logging.ERROR):
        interaction_id = world.discord.dispatch(payload)
        await world.discord.finished(interaction_id, timeout=10)
    edits = world.discord.original_edits(payload["token"])
    assert edits, "the deferred reply was left thinking"
    text = edits[-1].json["content"]
    match = re.search(r"Error reference: `([0-9A-F]{8})`", text)
    assert match, text
    assert f"ref={match.group(1)}" in caplog.text
    assert "the database is gone" in caplog.text  # the cause is in the log, not in Discord
    assert "the database is gone" not in text
    assert MH_TOKEN not in caplog.text and DISCORD_TOKEN not in caplog.text


def _broken_connection(*args: object, **kwargs: object) -> object:
    raise OSError("the database is gone")


async def test_commands_are_refused_in_direct_messages(world: BotWorld) -> None:
    payload = world.discord.slash_command("remove-background", {"image": make_attachment()}, guild_id=None)
    interaction_id = world.discord.dispatch(payload)
    await world.discord.finished(interaction_id)
    callbacks = world.discord.callbacks(interaction_id)
    assert callbacks and "only works in a server" in callbacks[0].json["data"]["content"]
    assert world.mh.requests == []
