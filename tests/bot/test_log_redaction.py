"""No log line carries a secret: the tokens, the API key, a database password, interaction tokens."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import discord
import pytest
from discord.utils import _ColourFormatter

from bot.log_redaction import install_redaction
from bot.settings import parse_settings

SETTINGS = parse_settings(
    {
        "DISCORD_TOKEN": "discord-token-value",
        "MAGIC_HOUR_API_KEY": "mhk_live_topsecret",
        "DATABASE_URL": "postgresql://bot:pa55word-xyz@db.example:5432/bot",
    }
)
INTERACTION_TOKEN = "aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDpzZWNyZXRwYXJ0"
SECRETS = ("mhk_live_topsecret", "discord-token-value", "pa55word-xyz", INTERACTION_TOKEN)


@pytest.fixture(params=["plain", "colour"])
def handler(request: pytest.FixtureRequest) -> Iterator[tuple[logging.Handler, io.StringIO]]:
    """The two formatters discord.py's setup_logging picks: plain, or colour on a TTY and in Docker."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    if request.param == "colour":
        handler.setFormatter(_ColourFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(logging.DEBUG)
    install_redaction(SETTINGS, [handler])
    yield handler, stream
    root.removeHandler(handler)
    root.setLevel(previous)


def test_secrets_are_masked_in_messages_and_tracebacks(handler: tuple[logging.Handler, io.StringIO]) -> None:
    _, stream = handler
    log = logging.getLogger("bot.test")
    log.warning("calling with %s and %s", "mhk_live_topsecret", "discord-token-value")
    log.warning(f"PATCH https://discord.com/api/v10/webhooks/123/{INTERACTION_TOKEN}/messages/@original")
    try:
        raise RuntimeError("connect failed for postgresql://bot:pa55word-xyz@db.example/bot with mhk_live_topsecret")
    except RuntimeError:
        log.exception("database trouble")
    text = stream.getvalue()
    for secret in SECRETS:
        assert secret not in text
    assert "/webhooks/123/***/messages/@original" in text
    assert "database trouble" in text and "RuntimeError" in text


def test_discord_py_debug_dump_of_an_interaction_is_masked(handler: tuple[logging.Handler, io.StringIO]) -> None:
    _, stream = handler
    payload = {"t": "INTERACTION_CREATE", "d": {"id": "1", "token": INTERACTION_TOKEN, "type": 2}}
    logging.getLogger(discord.gateway.__name__).debug("For Shard ID %s: WebSocket Event: %s", 0, payload)
    text = stream.getvalue()
    assert "INTERACTION_CREATE" in text
    assert INTERACTION_TOKEN not in text
    assert "'token': '***'" in text


def test_a_token_that_is_not_an_interaction_token_is_masked_by_field_name(
    handler: tuple[logging.Handler, io.StringIO],
) -> None:
    _, stream = handler
    logging.getLogger("bot.test").info('{"token": "some-other-credential-123"}')
    assert "some-other-credential-123" not in stream.getvalue()
