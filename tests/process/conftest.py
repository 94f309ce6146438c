"""The bot as a real OS process (`python -m bot`) against fakes that run in the test process on 127.0.0.1.

`Fakes` bundles FakeMagicHour, FakeDiscordAPI and FakeGateway; `BotProcess` starts the child with a clean
environment in `tmp_path` (so no stray .env is read), captures its output to files, and is killed at
teardown if a test left it running. Every wait has a timeout so a hang fails instead of blocking CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import discord
import pytest

from bot.ledger import JobRecord, JobStatus, Ledger
from tests.fakes.discord_api import FakeDiscordAPI
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.gateway import FakeGateway
from tests.fakes.interactions import User, make_user, snowflake
from tests.fakes.magic_hour import FakeMagicHour

REPO = Path(__file__).resolve().parents[2]
CHILD = Path(__file__).with_name("child_bot.py")
DISCORD_TOKEN = "MTIzNDU2.process-test.discord-secret-token"
MH_KEY = "mhk_live_process_test_secret_key"
SECRETS = (DISCORD_TOKEN, MH_KEY)


def base_env(**extra: str) -> dict[str, str]:
    """Only what Python needs, so nothing from the developer's shell (DATABASE_URL, tokens) leaks in."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(REPO),
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    env.update(extra)
    return env


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in secrets or SECRETS:
        assert secret not in text, "a secret appeared in the child's output"


class BotProcess:
    """One child process; stdout/stderr go to files so a chatty child can never block on a full pipe."""

    def __init__(self, tmp_path: Path, name: str) -> None:
        self.tmp_path = tmp_path
        self.stdout_path = tmp_path / f"{name}.stdout"
        self.stderr_path = tmp_path / f"{name}.stderr"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, argv: list[str], env: dict[str, str]) -> BotProcess:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, *argv, cwd=self.tmp_path, env=env, stdout=out, stderr=err
            )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    async def wait(self, timeout: float) -> int:
        assert self.proc is not None
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the bot process did not exit within {timeout}s:\n{self.output}") from None

    def send(self, sig: signal.Signals) -> None:
        assert self.proc is not None and self.proc.returncode is None, "the bot process is not running"
        self.proc.send_signal(sig)

    async def stop(self) -> None:
        """Teardown: a child a failed test left behind is killed, never left running."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            await self.proc.wait()

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8", errors="replace")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    @property
    def output(self) -> str:
        return f"--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


@dataclass
class Fakes:
    mh: FakeMagicHour
    api: FakeDiscordAPI
    gateway: FakeGateway
    harness: DiscordHarness  # used only for its payload builders; never entered
    tmp_path: Path
    processes: list[BotProcess]

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.tmp_path / 'bot.db'}"

    def env(self, **extra: str) -> dict[str, str]:
        settings = {
            "DISCORD_TOKEN": DISCORD_TOKEN,
            "MAGIC_HOUR_API_KEY": MH_KEY,
            "MAGIC_HOUR_BASE_URL": self.mh.base_url,
            "DATABASE_URL": self.database_url,
        }
        return base_env(**{**settings, **extra})

    async def start_bot(self, *args: str, **env: str) -> BotProcess:
        process = BotProcess(self.tmp_path, f"bot{len(self.processes)}")
        self.processes.append(process)
        return await process.start([str(CHILD), self.api.api_base, self.gateway.url, *args], self.env(**env))

    async def ledger_job(self, interaction_id: int) -> JobRecord | None:
        async with await Ledger.open(self.database_url) as ledger:
            return await ledger.get_job(interaction_id)

    async def wait_job(self, interaction_id: int, status: JobStatus, timeout: float = 10.0) -> JobRecord:
        """Poll the child's SQLite ledger (from this process) until the job reaches `status`."""
        record: JobRecord | None = None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while (record := await self.ledger_job(interaction_id)) is None or record.status != status:
                    await asyncio.sleep(0.05)
        assert record is not None and record.status == status, f"job never reached {status}: {record!r}"
        return record

    async def wait_mh_creates(self, count: int = 1, timeout: float = 10.0) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.mh.creates < count:
                    await asyncio.sleep(0.02)
        assert self.mh.creates >= count, f"Magic Hour saw {self.mh.creates} create(s), expected {count}"


@pytest.fixture
def bot_user() -> Iterator[User]:
    app_id = snowflake()
    yield User(id=app_id, username="background-bot", bot=True)


@pytest.fixture
async def fakes(tmp_path: Path, bot_user: User) -> AsyncIterator[Fakes]:
    api = FakeDiscordAPI(token=DISCORD_TOKEN, application_id=bot_user.id, bot_user=bot_user, owner=make_user("owner"))
    await api.start()
    processes: list[BotProcess] = []
    try:
        async with FakeMagicHour(token=MH_KEY, job_duration=2.0) as mh, FakeGateway(api) as gateway:
            builder = discord.Client(intents=discord.Intents(guilds=True))
            harness = DiscordHarness(builder, api=api)
            harness.api.add_channel(harness.channel_id, harness.guild_id)
            try:
                yield Fakes(mh, api, gateway, harness, tmp_path, processes)
            finally:
                for process in processes:
                    await process.stop()
            assert mh.violations == [], "the bot sent Magic Hour something its OpenAPI description does not allow"
    finally:
        await api.close()
    for process in processes:
        if process.proc is not None:
            assert_no_secrets(process.stdout + process.stderr)
