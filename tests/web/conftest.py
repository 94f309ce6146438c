"""The running bot with its HTTP server on 127.0.0.1, and a real aiohttp client to talk to it."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import mh  # noqa: F401 - the fake Magic Hour fixture
from tests.fakes.magic_hour import FakeMagicHour

WEBHOOK_SECRET = "whsec_e2e_webhook_secret"


def signed(body: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: float | None = None) -> dict[str, str]:
    stamp = str(int(time.time() if timestamp is None else timestamp))
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "magic-hour-event-timestamp": stamp,
        "magic-hour-event-signature": digest,
    }


def event_body(fake: FakeMagicHour, event_type: str, project_id: str) -> bytes:
    """An event carrying the project exactly as the fake's GET /v1/image-projects/{id} shows it now."""
    project: dict[str, Any] = fake._project_body(fake.jobs[project_id])
    return json.dumps({"type": event_type, "payload": project}).encode()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
