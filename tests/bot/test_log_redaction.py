"""No log line carries a secret: the tokens, the API key, a database password, interaction tokens."""

from __future__ import annotations

import logging

from bot.log_redaction import install_redaction
from bot.settings import parse_settings


def test_secrets_are_masked_in_messages_and_tracebacks() -> None:
    settings = parse_settings(
        {
            "DISCORD_TOKEN": "discord-token-value",
            "MAGIC_HOUR_API_KEY": "mhk_live_topsecret",
            "DATABASE_URL": "postgresql://bot:pa55word-xyz@db.example:5432/bot",
        }
    )
    root = logging.getLogger()
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Collect()
    root.addHandler(handler)
    redactor = install_redaction(settings)
    try:
        log = logging.getLogger("bot.test")
        log.warning("calling with %s and %s", "mhk_live_topsecret", "discord-token-value")
        log.warning("PATCH https://discord.com/api/v10/webhooks/123/aW50ZXJhY3Rpb24abc/messages/@original")
        try:
            raise RuntimeError("connect failed for postgresql://bot:pa55word-xyz@db.example/bot")
        except RuntimeError:
            log.exception("database trouble")
    finally:
        root.removeHandler(handler)
        handler.removeFilter(redactor)
    text = "\n".join(records)
    for secret in ("mhk_live_topsecret", "discord-token-value", "pa55word-xyz", "aW50ZXJhY3Rpb24abc"):
        assert secret not in text
    assert "/webhooks/123/***/messages/@original" in text
    assert "database trouble" in text and "RuntimeError" in text
