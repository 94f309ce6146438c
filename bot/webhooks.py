"""Magic Hour's signed webhook events: checked on the raw bytes, then parsed, before anything trusts them.

The signature is the only thing that tells a real event from anyone who found the URL, but it can
only be checked once the body is in memory. So the headers are checked first (`check_headers`:
present, a parseable timestamp inside the window, which needs no secret and no body), then the body
is read, within MAX_BODY_BYTES, and its HMAC compared in constant time on the exact bytes received.
The timestamp window also stops an old, captured event from being replayed. Pure functions, so every
refusal can be table-tested.
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
# The largest event body accepted. An event is {"type": ..., "payload": <image project>}, the project
# as GET /v1/image-projects/{id} returns it: ten short fields (an id of at most 255 characters), the
# job's name (at most 100 characters here, ~1.2 KB even with every character JSON-escaped as a
# surrogate pair), an error code and message, and one download per image with its signed URL (~1-2 KB
# each; a background removal has one). That is 1-5 KB; 64 KiB is over ten times it, and bounds what
# each connection can make the bot hold.
MAX_BODY_BYTES = 64 * 1024
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


def check_headers(timestamp: str | None, signature: str | None, now: float) -> None:
    """Raise WebhookRefused unless both headers are present and `timestamp` is inside the window.

    Needs neither the secret nor the body, so it runs before a byte of the body is read. Telling a
    caller that its timestamp is stale gives nothing away: the current time is no secret.
    """
    if not timestamp or not signature:
        raise WebhookRefused("unsigned", 401)
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise WebhookRefused("bad_timestamp", 400) from None
    if not abs(now - sent_at) <= MAX_CLOCK_SKEW:  # also refuses nan
        raise WebhookRefused("stale", 400)


def verify(secret: str, timestamp: str | None, signature: str | None, raw_body: bytes, now: float) -> None:
    """Raise WebhookRefused unless `signature` is the HMAC of `raw_body` at a fresh `timestamp`."""
    if len(raw_body) > MAX_BODY_BYTES:
        raise WebhookRefused("too_large", 413)
    check_headers(timestamp, signature, now)
    assert timestamp is not None and signature is not None
    expected = sign(secret, timestamp, raw_body)
    if not hmac.compare_digest(expected.encode(), signature.strip().lower().encode()):
        raise WebhookRefused("bad_signature", 401)


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
