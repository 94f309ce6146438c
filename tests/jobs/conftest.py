"""The job runner with nothing of Discord: a real SQLite ledger, the fake Magic Hour, and an audience that records.

Magic Hour's job progress and the client's polling share one manual clock, so a 12-second job finishes in a
few milliseconds and every schedule is the same on every run. Where a test needs a job to stay in flight
(queues, cancel, drain), the audience holds it inside a status report until the test lets go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import ImageInput, JobEvents, JobResult, JobRunner, Request
from bot.ledger import Ledger, LedgerDefaults, Origin
from bot.magic_hour import AsyncClient, PollPolicy, ProjectStatus, RetryPolicy
from tests.fakes.magic_hour import FakeClock, FakeMagicHour

TOKEN = "mhk_live_runner_tests_secret"
GUILD_ID = 111_000_000_000_000_001
CHANNEL_ID = 222_000_000_000_000_002
USER_ID = 333_000_000_000_000_003
OTHER_USER_ID = 333_000_000_000_000_004
# The poll schedule's shape without jitter: on the manual clock the same polls happen on every run.
STEADY_POLL = PollPolicy(jitter=0.0)
Probe = Callable[[], Awaitable[Any]]


@dataclasses.dataclass
class Call:
    name: str
    args: tuple[Any, ...]


class RecordingEvents(JobEvents):
    """Appends every hook call, in order. Optionally holds the job in its first status report (`hold`),
    fails delivery (`deliver_error`), and reads the ledger from inside delivery (`probe`)."""

    def __init__(self, *, hold: bool = False, deliver_error: Exception | None = None, probe: Probe | None = None):
        self.calls: list[Call] = []
        self.held = asyncio.Event()  # set once the job is parked in `status`
        self.release = asyncio.Event()
        if not hold:
            self.release.set()
        self.deliver_error = deliver_error
        self.probe = probe
        self.probed: Any = None
        self.delivered_bytes: bytes | None = None
        self.ended = asyncio.Event()  # deliver or failed was called
        self.handed_over = asyncio.Event()  # deliver has done all it does (probe included)

    @property
    def names(self) -> list[str]:
        return [call.name for call in self.calls]

    def named(self, name: str) -> list[tuple[Any, ...]]:
        return [call.args for call in self.calls if call.name == name]

    def statuses(self) -> list[ProjectStatus]:
        return [args[0] for args in self.named("status")]

    def without_status(self) -> list[str]:
        """The order of the decisive events; how many polls saw which status is the poll schedule's business."""
        return [name for name in self.names if name != "status"]

    async def queued(self, position: int) -> None:
        self.calls.append(Call("queued", (position,)))

    async def started(self) -> None:
        self.calls.append(Call("started", ()))

    async def status(self, status: ProjectStatus) -> None:
        self.calls.append(Call("status", (status,)))
        if not self.release.is_set():
            self.held.set()
            await self.release.wait()

    async def slow(self) -> None:
        self.calls.append(Call("slow", ()))

    async def deliver(self, result: JobResult) -> bool:
        self.calls.append(Call("deliver", (result,)))
        if result.file is not None:
            self.delivered_bytes = result.file.read_bytes()  # the runner closes the file once we return
        if self.probe is not None:
            self.probed = await self.probe()
        self.ended.set()
        self.handed_over.set()
        if self.deliver_error is not None:
            raise self.deliver_error
        return True

    async def failed(self, error: BaseException) -> None:
        self.calls.append(Call("failed", (error,)))
        self.ended.set()

    async def interrupted(self, resumable: bool) -> None:
        self.calls.append(Call("interrupted", (resumable,)))

    def failure(self) -> BaseException:
        [(error,)] = self.named("failed")
        return error

    def result(self) -> JobResult:
        [(result,)] = self.named("deliver")
        return result


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (bounded) for a condition that another task brings about."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


@dataclasses.dataclass
class World:
    mh: FakeMagicHour
    client: AsyncClient
    ledger: Ledger
    clock: FakeClock
    settled: list[int]  # guild ids the runner reported as settled (on_settled)
    make_runner: Callable[..., JobRunner]
    make_client: Callable[..., AsyncClient]
    _ids: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(900_000_000_000_000_001))

    def request(
        self,
        *,
        user_id: int = USER_ID,
        images: int = 1,
        image_url: str | None = None,
        name: str | None = None,
        private: bool = False,
        **changes: Any,
    ) -> Request:
        """A member's request as the cogs would build it (one image unless asked), with a fresh interaction id."""
        interaction_id = next(self._ids)
        origin = Origin(
            interaction_id=interaction_id,
            guild_id=GUILD_ID,
            channel_id=CHANNEL_ID,
            user_id=user_id,
            created_at=datetime.now(UTC),
            application_id=444,
            token=f"interaction-token-{interaction_id}",
        )
        cdn = f"https://cdn.discordapp.com/attachments/{CHANNEL_ID}/{interaction_id}"
        inputs = tuple(
            ImageInput(
                image_url if image_url is not None and n == 0 else f"{cdn}/cat{n or ''}.png?ex=1&hm=stale",
                f"item{n}.png" if images > 1 else None,
                name if name is not None and n == 0 else f"discord #{interaction_id}" + (f"/{n}" if n else ""),
            )
            for n in range(images)
        )
        return dataclasses.replace(Request(origin, inputs, private=private), **changes)

    def sent(self) -> list[tuple[str, str]]:
        """(method, path) of every request Magic Hour received, in order."""
        return [(r.method, r.path) for r in self.mh.requests]

    def create_bodies(self) -> list[Any]:
        return [r.json for r in self.mh.requests if r.method == "POST" and r.path == "/v1/image-background-remover"]


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    clock = FakeClock()
    clients: list[AsyncClient] = []
    runners: list[JobRunner] = []
    settled: list[int] = []
    async with (
        FakeMagicHour(token=TOKEN, clock=clock, job_duration=12.0) as mh,
        await Ledger.open(
            f"sqlite:///{tmp_path / 'ledger.db'}", LedgerDefaults(credit_limit=100, period="month")
        ) as ledger,
    ):

        def make_client(**options: Any) -> AsyncClient:
            options.setdefault("base_url", mh.base_url)
            options.setdefault("retry", RetryPolicy(max_retries=2, base_delay=0.5, max_delay=4.0))
            options.setdefault("request_timeout", 5.0)
            options.setdefault("poll", STEADY_POLL)
            options.setdefault("sleep", clock.sleep)
            options.setdefault("clock", clock)
            made = AsyncClient(token=TOKEN, **options)
            clients.append(made)
            return made

        client = make_client()

        async def on_settled(guild_id: int) -> None:
            settled.append(guild_id)

        def make_runner(**options: Any) -> JobRunner:
            made = JobRunner(options.pop("client", client), ledger, **options)
            made.on_settled(on_settled)
            runners.append(made)
            return made

        yield World(mh, client, ledger, clock, settled, make_runner, make_client)

        for runner in runners:  # nothing may outlive the test: background trackers are stopped here
            tasks = runner.phases.tasks() | set(runner._background)
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)
        for made in clients:
            await made.close()
        assert mh.violations == [], "the runner sent Magic Hour something its OpenAPI description does not allow"
