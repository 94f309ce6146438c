"""Magic Hour's signed webhook events: checked on the raw bytes, then parsed, before anything trusts them.

The signature is the only thing that tells a real event from anyone who found the URL, so it is
verified first (constant-time, on the exact bytes received), and a timestamp window stops an old,
captured event from being replayed. Pure functions, so every refusal can be table-tested.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from bot.magic_hour import ImageProject, MagicHourError

TIMESTAMP_HEADER = "magic-hour-event-timestamp"
SIGNATURE_HEADER = "magic-hour-event-signature"
MAX_BODY_BYTES = 1024 * 1024
MAX_CLOCK_SKEW = 300.0  # seconds either side of now
STARTED, COMPLETED, ERRORED = "image.started", "image.completed", "image.errored"
IMAGE_EVENTS = frozenset({STARTED, COMPLETED, ERRORED})
TERMINAL_EVENTS = frozenset({COMPLETED, ERRORED})


class WebhookRefused(Exception):
    """The request is not a trustworthy event; `reason` is a short word for the log and the metrics."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class WebhookEvent:
    type: str
    project: ImageProject | None  # None for event types the bot does not handle
    payload: dict[str, Any] | None


def sign(secret: str, timestamp: str, raw_body: bytes) -> str:
    """What Magic Hour puts in the signature header (the fake uses it too)."""
    message = timestamp.encode() + b"." + raw_body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, raw_body: bytes, now: float) -> None:
    """Raise WebhookRefused unless `signature` is the HMAC of `raw_body` at a fresh `timestamp`."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise WebhookRefused("too_large", 413)
    if not timestamp or not signature:
        raise WebhookRefused("unsigned", 401)
    expected = sign(secret, timestamp, raw_body)
    # Compare first, so a forged request learns nothing from how fast a timestamp is refused.
    signature_ok = hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
    if not signature_ok:
        raise WebhookRefused("bad_signature", 401)
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise WebhookRefused("bad_timestamp", 400) from None
    if not abs(now - sent_at) <= MAX_CLOCK_SKEW:  # also refuses nan
        raise WebhookRefused("stale", 400)


def parse(raw_body: bytes) -> WebhookEvent:
    """A verified body as an event; an image event must carry a valid project."""
    try:
        data = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRefused("malformed", 400) from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise WebhookRefused("malformed", 400)
    kind = data["type"]
    if kind not in IMAGE_EVENTS:
        return WebhookEvent(kind, None, None)
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise WebhookRefused("malformed", 400)
    try:
        project = ImageProject.from_json(payload)
    except MagicHourError:
        raise WebhookRefused("malformed", 400) from None
    return WebhookEvent(kind, project, payload)
