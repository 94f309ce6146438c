"""The whole bot against local fakes: Discord's REST API and Magic Hour on 127.0.0.1, a real SQLite ledger.

`BotWorld` starts both fakes, opens the bot's resources (ledger, HTTP session, Magic Hour client, runner)
the way `python -m bot` does, builds a real `BackgroundBot` from real `Settings`, and logs it in through the
Discord harness, which runs `setup_hook` (cogs, command sync).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.adapter.bot import BackgroundBot
from bot.magic_hour import PollPolicy
from bot.project_events import SPARSE_POLL
from bot.resources import open_resources, serve_http
from bot.settings import Settings, parse_settings
from bot.web.limits import HttpLimits
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.magic_hour import FakeMagicHour

MH_TOKEN = "mhk_live_e2e_secret_key"
DISCORD_TOKEN = "discord.e2e.secret-token"
FAST_POLL = PollPolicy(
    first_delay=0.05, dense_start=0.05, dense_end=1.0, dense_interval=0.05, max_interval=0.2, jitter=0.0
)


@dataclass
class BotWorld:
    bot: BackgroundBot
    discord: DiscordHarness
    mh: FakeMagicHour
    settings: Settings
    extra: dict[str, Any] = field(default_factory=dict)
    http_url: str | None = None  # with bot_world(http=True): the bot's own HTTP server


def make_settings(tmp_path: Path, mh: FakeMagicHour, **overrides: str) -> Settings:
    env = {
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "MAGIC_HOUR_API_KEY": MH_TOKEN,
        "MAGIC_HOUR_BASE_URL": mh.base_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        "MAGIC_HOUR_MAX_RETRIES": "2",
        "SHUTDOWN_GRACE_SECONDS": "5",
        **overrides,
    }
    return parse_settings(env)


@contextlib.asynccontextmanager
async def bot_world(
    tmp_path: Path,
    mh: FakeMagicHour,
    *,
    poll: PollPolicy = FAST_POLL,
    webhook_poll: PollPolicy = SPARSE_POLL,
    harness: dict[str, Any] | None = None,
    http: bool = False,
    http_limits: HttpLimits | None = None,
    **overrides: str,
) -> AsyncIterator[BotWorld]:
    """`http=True` also starts the bot's HTTP server on an ephemeral 127.0.0.1 port (PORT=0)."""
    if http:
        overrides = {"PORT": "0", "HOST": "127.0.0.1", **overrides}
    settings = make_settings(tmp_path, mh, **overrides)
    async with open_resources(settings, poll=poll, webhook_poll=webhook_poll) as resources:
        bot = BackgroundBot(settings, resources)
        async with (
            DiscordHarness(bot, token=DISCORD_TOKEN, **(harness or {})) as fake_discord,
            serve_http(settings, resources, gateway_connected=bot.gateway_connected, limits=http_limits) as port,
        ):
            url = f"http://127.0.0.1:{port}" if port is not None else None
            yield BotWorld(bot=bot, discord=fake_discord, mh=mh, settings=settings, http_url=url)


@pytest.fixture
async def mh() -> AsyncIterator[FakeMagicHour]:
    async with FakeMagicHour(token=MH_TOKEN, job_duration=0.2) as fake:
        yield fake
    assert fake.violations == [], "the bot sent Magic Hour something its OpenAPI description does not allow"


@pytest.fixture
async def world(tmp_path: Path, mh: FakeMagicHour) -> AsyncIterator[BotWorld]:
    async with bot_world(tmp_path, mh) as w:
        yield w
