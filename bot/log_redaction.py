"""A last line of defence: no log record leaves the process carrying a secret.

The code never logs secrets on purpose, but libraries log URLs and exception texts; interaction
tokens sit in webhook URLs. Every handler gets a filter that masks the known secrets and such tokens.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from bot.settings import Settings

TOKEN_IN_PATH = re.compile(r"(/(?:webhooks|interactions)/\d+/)[A-Za-z0-9_.\-]+")
MASK = "***"


class RedactSecrets(logging.Filter):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return TOKEN_IN_PATH.sub(rf"\1{MASK}", text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self.redact(text)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


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


def install_redaction(settings: Settings) -> RedactSecrets:
    redactor = RedactSecrets(secrets_of(settings))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    return redactor
