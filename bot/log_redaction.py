"""A last line of defence: no log line leaves the process carrying a secret.

The code never logs secrets on purpose, but libraries log URLs, payloads and exception texts:
interaction tokens sit in webhook URLs and in discord.py's DEBUG dump of every INTERACTION_CREATE.
Masking happens on the formatted line, at the formatter, because a formatter may rebuild the text from
the record (discord.py's colour formatter re-renders tracebacks from `exc_info`), which would undo
anything a filter changed on the record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.settings import Settings

MASK = "***"
TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]+")
# Interaction tokens are base64 of "interaction:<id>:<random>"; they begin with "aW50ZXJhY3Rpb246".
INTERACTION_TOKEN = re.compile(r"aW50ZXJhY3Rpb2[0-9A-Za-z_\-.]{8,}")
TOKEN_FIELD = re.compile(r"""(["']token["']\s*:\s*["'])[^"']+(["'])""")


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        text = TOKEN_IN_PATH.sub(rf"\1{MASK}", text)
        text = TOKEN_FIELD.sub(rf"\1{MASK}\2", text)
        return INTERACTION_TOKEN.sub(MASK, text)


class RedactingFormatter(logging.Formatter):
    """Wraps whatever formatter a handler has and masks the finished line, tracebacks included."""

    def __init__(self, inner: logging.Formatter, redact: Redactor) -> None:
        super().__init__()
        self.inner = inner
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(self.inner.format(record))


def secrets_of(settings: Settings) -> list[str]:
    from sqlalchemy.engine import make_url

    found = [settings.discord_token, settings.magic_hour_api_key]
    if settings.magic_hour_webhook_secret:
        found.append(settings.magic_hour_webhook_secret)
    try:
        password = make_url(settings.database_url).password
    except Exception:  # an unparsable URL has already been refused at start-up
        password = None
    if password:
        found.append(str(password))
    return found


def install_redaction(settings: Settings, handlers: Iterable[logging.Handler] | None = None) -> Redactor:
    """Wrap the formatter of every root handler (or of `handlers`); safe to call twice."""
    redact = Redactor(secrets_of(settings))
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        inner = handler.formatter or logging.Formatter(logging.BASIC_FORMAT)
        if isinstance(inner, RedactingFormatter):
            inner = inner.inner
        handler.setFormatter(RedactingFormatter(inner, redact))
    return redact
