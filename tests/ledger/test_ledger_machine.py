"""The ledger against a model of itself, under random sequences of everything that can happen to credits.

A Hypothesis state machine reserves requests of 1–3 images for several members of several servers (with
server limits, member limits and a bot-wide budget that change as it goes), moves the images through
every step the runner and admins take (send, submit, hold, claim by project, settle and settle again,
release, release held, deliver, restart) and moves the clock across day and month boundaries. After every
step it checks what must always hold:

- the stored balances equal the ones derived from the journal (`verify()`), and the figures people read
  (usage, held, the bot-wide total) equal a model kept here from first principles;
- a reservation passes exactly when it fits every limit at that moment (limits may be lowered later);
- a settled job counts its latest charge, once; every held credit belongs to a held job;
- a restart never loses a reservation: sending → held keeps counting, only never-sent jobs are refunded.

The ledger is async and the machine is not: each rule runs on an event loop the test run owns. One
database per engine serves the whole run; its tables are emptied before each example.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bot.ledger import (
    TRANSITIONS,
    ImageSpec,
    JobRecord,
    JobStatus,
    Ledger,
    LedgerDefaults,
    LimitExceeded,
    Origin,
    Period,
    normalize_database_url,
    period_bounds,
)

from .conftest import postgres_url

T = TypeVar("T")

GUILDS = (1_100_000_000_000_000_001, 1_100_000_000_000_000_002, 1_100_000_000_000_000_003)
MEMBERS = (1_300_000_000_000_000_001, 1_300_000_000_000_000_002, 1_300_000_000_000_000_003)
COST = 5
START = datetime(2025, 1, 30, 21, 0, tzinfo=UTC)  # two days from a month's end, in a week ending Sunday 2 Feb
DELIVERY_LEASE = timedelta(minutes=5)
TABLES = ("jobs", "requests", "guild_settings", "balances", "alerts_sent", "webhook_events")
MACHINE_SETTINGS = settings(
    derandomize=True,  # the same sequences every run: a failure here is a bug, not bad luck
    database=None,
    max_examples=20,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---- the model: what the credits must be, written out without the ledger's code --------------------------


@dataclass
class ModelJob:
    guild: int
    user: int
    created_at: datetime
    reserved: int
    status: JobStatus = JobStatus.RESERVED
    charged: int | None = None
    project: str | None = None
    delivered: bool = False
    owner: str | None = None
    claimed_at: datetime | None = None

    def counted(self) -> tuple[int, int, int]:
        """(used, reserved, held): the charge once settled, the hold while open, the unknown apart."""
        if self.status in (JobStatus.RESERVED, JobStatus.SENDING, JobStatus.SUBMITTED):
            return 0, self.reserved, 0
        if self.status is JobStatus.HELD:
            return 0, 0, self.reserved
        if self.status in (JobStatus.COMPLETE, JobStatus.FAILED):
            return (self.reserved if self.charged is None else self.charged), 0, 0
        return 0, 0, 0


@dataclass
class Limits:
    guild_limit: dict[int, tuple[int, Period]] = field(default_factory=dict)  # set by an admin (else defaults)
    member_limit: dict[int, int] = field(default_factory=dict)


def totals(jobs: Iterable[ModelJob]) -> tuple[int, int, int]:
    used = reserved = held = 0
    for job in jobs:
        u, r, h = job.counted()
        used, reserved, held = used + u, reserved + r, held + h
    return used, reserved, held


# ---- one database per engine for the whole run ---------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Run:
    """The event loop, ledger and raw engine every example of one engine shares."""

    loop: asyncio.AbstractEventLoop
    ledger: Ledger
    raw: AsyncEngine
    clock: Clock
    dialect: str
    steps: int = 0

    def __call__(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    def empty(self) -> None:
        async def work() -> None:
            async with self.raw.begin() as conn:
                if self.dialect == "postgresql":
                    await conn.execute(text(f"TRUNCATE {', '.join(TABLES)}"))
                else:
                    for table in TABLES:
                        await conn.execute(text(f"DELETE FROM {table}"))  # noqa: S608 - constant names

        self(work())


_interactions = count(1_000_000)
_projects = count(1)


class LedgerMachine(RuleBasedStateMachine):
    run: ClassVar[Run]

    def __init__(self) -> None:
        super().__init__()
        self.run.empty()
        self.run.clock.now = START
        self.jobs: dict[tuple[int, int], ModelJob] = {}
        self.limits = Limits()
        self.defaults = LedgerDefaults()

    # ---- helpers ---------------------------------------------------------------------------------

    @property
    def ledger(self) -> Ledger:
        return self.run.ledger

    @property
    def now(self) -> datetime:
        return self.run.clock.now

    def do(self, work: Awaitable[T]) -> T:
        self.run.steps += 1
        return self.run(work)

    def guild_settings(self, guild: int) -> tuple[int, Period]:
        return self.limits.guild_limit.get(guild, (self.defaults.credit_limit, self.defaults.period))

    def in_period(self, period: Period, **match: int) -> list[ModelJob]:
        start, end = period_bounds(period, self.now)
        return [
            job
            for job in self.jobs.values()
            if start <= job.created_at
            and (end is None or job.created_at < end)
            and all(getattr(job, name) == value for name, value in match.items())
        ]

    def check_record(self, key: tuple[int, int], record: JobRecord | None) -> None:
        model = self.jobs[key]
        assert record is not None, key
        assert (record.status, record.credits_charged, record.project_id) == (
            model.status,
            model.charged,
            model.project,
        )

    def pick(self, data: st.DataObject) -> tuple[int, int]:
        return data.draw(st.sampled_from(sorted(self.jobs)), label="job")

    def move(self, key: tuple[int, int], target: JobStatus, **changes: Any) -> bool:
        """Apply a move to the model if the table allows it; returns whether it did."""
        model = self.jobs[key]
        if target not in TRANSITIONS[model.status]:
            return False
        model.status = target
        for name, value in changes.items():
            setattr(model, name, value)
        return True

    # ---- set-up: the owner's defaults for this example ---------------------------------------------

    @initialize(
        limit=st.sampled_from([15, 30, 60]),
        period=st.sampled_from(list(Period)),
        budget=st.sampled_from([None, 20, 45]),
        bot_period=st.sampled_from([Period.DAY, Period.MONTH]),
        member_limits=st.lists(st.sampled_from([None, 10, 15, 25]), min_size=len(GUILDS), max_size=len(GUILDS)),
    )
    def owner_settings(
        self, limit: int, period: Period, budget: int | None, bot_period: Period, member_limits: list[int | None]
    ) -> None:
        self.restart_with(LedgerDefaults(credit_limit=limit, period=period, bot_budget=budget, bot_period=bot_period))
        for guild, credits in zip(GUILDS, member_limits, strict=True):
            if credits is not None:
                self.set_member_limit(guild, credits)

    def restart_with(self, defaults: LedgerDefaults) -> None:
        """The owner's settings are read at start-up: the one ledger of the run takes this example's."""
        self.defaults = defaults
        self.ledger.defaults = defaults

    # ---- limits, lowered and raised as admins and the owner do -----------------------------------

    @rule(data=st.data(), who=st.sampled_from(["server", "member", "bot"]))
    def limits_change(self, data: st.DataObject, who: str) -> None:
        """An admin sets the server's limit or the member limit; the owner restarts with another budget."""
        if who == "server":
            guild = data.draw(st.sampled_from(GUILDS), label="guild")
            self.set_limit(
                guild, data.draw(st.integers(0, 60), label="credits"), data.draw(st.sampled_from(list(Period)))
            )
        elif who == "member":
            guild = data.draw(st.sampled_from(GUILDS), label="guild")
            self.set_member_limit(guild, data.draw(st.one_of(st.none(), st.integers(0, 25)), label="credits"))
        else:
            budget = data.draw(st.sampled_from([None, 10, 25, 50]), label="budget")
            defaults = self.defaults
            self.restart_with(LedgerDefaults(defaults.credit_limit, defaults.period, None, budget, defaults.bot_period))

    def set_limit(self, guild: int, credits: int, period: Period) -> None:
        self.do(self.ledger.set_limit(guild, credits, period, bypass_ceiling=True))
        self.limits.guild_limit[guild] = (credits, period)

    def set_member_limit(self, guild: int, credits: int | None) -> None:
        self.do(self.ledger.set_member_limit(guild, credits))
        if credits:
            self.limits.member_limit[guild] = credits
        else:
            self.limits.member_limit.pop(guild, None)

    # ---- reservations ------------------------------------------------------------------------------

    @rule(
        requests=st.lists(
            st.tuples(st.sampled_from(GUILDS), st.sampled_from(MEMBERS), st.integers(1, 3)), min_size=1, max_size=4
        )
    )
    def reserve(self, requests: list[tuple[int, int, int]]) -> None:
        """Members' requests, one after another (several per step, so limits are reached often)."""
        for guild, user, images in requests:
            self.reserve_one(guild, user, images)

    def reserve_one(self, guild: int, user: int, images: int) -> None:
        need = COST * images
        limit, period = self.guild_settings(guild)
        checks: list[tuple[str, int, int]] = [("guild", sum(totals(self.in_period(period, guild=guild))), limit)]
        if guild in self.limits.member_limit:
            mine = sum(totals(self.in_period(period, guild=guild, user=user)))
            checks.append(("member", mine, self.limits.member_limit[guild]))
        if self.defaults.bot_budget is not None:
            checks.append(("bot", sum(totals(self.in_period(self.defaults.bot_period))), self.defaults.bot_budget))
        over = [(scope, counted, cap) for scope, counted, cap in checks if counted + need > cap]

        interaction_id = next(_interactions)
        origin = Origin(interaction_id, guild, 9, user, self.now, 5, "tok")
        specs = [ImageSpec(input_url=f"https://cdn.test/{i}.png") for i in range(images)]
        try:
            _, reserved = self.do(self.ledger.reserve_request(origin, specs, private=False, cost=COST))
        except LimitExceeded as refused:
            # Refused exactly when something does not fit, naming the first limit it did not fit, with its figures.
            assert over, f"refused ({refused}) though {need} fits {checks}"
            assert (refused.scope, refused.used, refused.limit, refused.cost) == (*over[0], need)
            return
        # Accepted only if used + reserved + held stays within every limit at this moment.
        assert not over, f"reserved {need} past {over}"
        assert [job.position for job in reserved] == list(range(images))
        for job in reserved:
            self.jobs[(interaction_id, job.position)] = ModelJob(guild, user, self.now, COST)

    # ---- the runner's steps, one image at a time ---------------------------------------------------------

    def send(self, key: tuple[int, int], data: st.DataObject) -> None:
        was = self.jobs[key].status
        go = self.do(self.ledger.mark_sending(*key))
        moved = self.move(key, JobStatus.SENDING, project=None)
        assert go == (moved or was is JobStatus.SENDING)  # "go ahead" only for a job that is being sent

    def submit(self, key: tuple[int, int], data: st.DataObject) -> None:
        project = f"cm-{next(_projects)}"
        record = self.do(self.ledger.mark_submitted(key[0], project_id=project, credits_charged=COST, position=key[1]))
        self.move(key, JobStatus.SUBMITTED, project=project, charged=COST)
        self.check_record(key, record)

    def hold(self, key: tuple[int, int], data: st.DataObject) -> None:
        record = self.do(self.ledger.mark_held(key[0], error="no answer", position=key[1]))
        self.move(key, JobStatus.HELD)
        self.check_record(key, record)

    def claim(self, key: tuple[int, int], data: st.DataObject) -> None:
        """A webhook event names the job's project: its own (a repeat) or a new one."""
        model = self.jobs[key]
        same = model.project is not None and data.draw(st.booleans(), label="same project")
        project = model.project if same else f"cm-{next(_projects)}"
        claim = self.do(self.ledger.claim_project(key[0], project_id=project, credits_charged=COST, position=key[1]))
        was = model.status
        if was in (JobStatus.SENDING, JobStatus.HELD):
            assert self.move(key, JobStatus.SUBMITTED, project=project, charged=COST)
            assert claim is not None and claim.previous is was
        elif was is JobStatus.SUBMITTED and model.project == project:
            assert claim is not None and claim.previous is JobStatus.SUBMITTED
        else:
            assert claim is None
        if claim is not None:
            self.check_record(key, claim.record)

    def settle(self, key: tuple[int, int], data: st.DataObject, final: JobStatus) -> None:
        """Settling again replaces the charge (Magic Hour's refund of a failed job arrives this way)."""
        charged = data.draw(st.integers(0, 7), label="charged")
        record = self.do(self.ledger.settle(key[0], status=final, credits_charged=charged, position=key[1]))
        self.move(key, final, charged=charged)
        self.check_record(key, record)

    def release(self, key: tuple[int, int], data: st.DataObject) -> None:
        record = self.do(self.ledger.release(key[0], error="422", position=key[1]))
        self.move(key, JobStatus.REFUNDED, charged=0)
        self.check_record(key, record)

    MOVES: ClassVar[tuple[tuple[str, JobStatus], ...]] = (
        ("send", JobStatus.SENDING),
        ("submit", JobStatus.SUBMITTED),
        ("hold", JobStatus.HELD),
        ("claim", JobStatus.SUBMITTED),
        ("complete", JobStatus.COMPLETE),
        ("fail", JobStatus.FAILED),
        ("release", JobStatus.REFUNDED),
    )

    def apply(self, name: str, key: tuple[int, int], data: st.DataObject) -> None:
        if name in ("complete", "fail"):
            self.settle(key, data, JobStatus.COMPLETE if name == "complete" else JobStatus.FAILED)
        else:
            getattr(self, name)(key, data)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), moves=st.integers(1, 6))
    def runner_moves_jobs_on(self, data: st.DataObject, moves: int) -> None:
        """Several images each take a step their status allows, so jobs get far (settled, then settled
        again) within one example."""
        for _ in range(moves):
            movable = sorted(
                k for k, job in self.jobs.items() if any(t in TRANSITIONS[job.status] for _, t in self.MOVES)
            )
            if not movable:
                return
            key = data.draw(st.sampled_from(movable), label="job")
            allowed = [name for name, target in self.MOVES if target in TRANSITIONS[self.jobs[key].status]]
            self.apply(data.draw(st.sampled_from(allowed), label="move"), key, data)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data())
    def anything_on_any_job(self, data: st.DataObject) -> None:
        """Late, repeated or out-of-order calls: a move the table refuses must change nothing."""
        key = data.draw(st.sampled_from(sorted(self.jobs)), label="job")
        self.apply(data.draw(st.sampled_from([name for name, _ in self.MOVES]), label="move"), key, data)

    # ---- admins and restarts -------------------------------------------------------------------------

    @rule(data=st.data())
    def release_held(self, data: st.DataObject) -> None:
        holding = sorted({job.guild for job in self.jobs.values() if job.status is JobStatus.HELD})
        mostly_holding = holding and data.draw(st.integers(0, 4), label="holding") > 0
        guild = data.draw(st.sampled_from(holding if mostly_holding else GUILDS), label="guild")
        released = self.do(self.ledger.release_held(guild, by="an admin"))
        expected = sorted(k for k, job in self.jobs.items() if job.guild == guild and job.status is JobStatus.HELD)
        for key in expected:
            assert self.move(key, JobStatus.REFUNDED, charged=0)
        assert released.count == len(expected)
        assert released.credits == sum(self.jobs[key].reserved for key in expected)

    @precondition(lambda self: self.jobs)
    @rule(data=st.data(), owner=st.sampled_from(["old", "new"]), deliver=st.booleans())
    def claim_delivery(self, data: st.DataObject, owner: str, deliver: bool) -> None:
        key = self.pick(data)
        model = self.jobs[key]
        claimed = self.do(self.ledger.claim_delivery(key[0], owner, position=key[1]))
        free = model.owner is None or model.owner == owner or model.claimed_at < self.now - DELIVERY_LEASE
        assert claimed == (not model.delivered and free)
        if claimed:
            model.owner, model.claimed_at = owner, self.now
            if deliver:
                delivered = self.do(self.ledger.mark_delivered(key[0], position=key[1]))
                assert delivered is not None and delivered.delivered
                model.delivered = True

    @rule(owned=st.sets(st.sampled_from(GUILDS), min_size=1))
    def restart(self, owned: set[int]) -> None:
        """A new process recovers the jobs of its own servers (shards)."""
        before = {key: (job.status, sum(job.counted())) for key, job in self.jobs.items()}
        to_poll = self.do(self.ledger.recover_interrupted(lambda guild: guild in owned, now=self.now))
        for key, job in self.jobs.items():
            if job.guild not in owned:
                continue
            if job.status is JobStatus.RESERVED:
                assert self.move(key, JobStatus.REFUNDED, charged=0)
            elif job.status is JobStatus.SENDING:
                assert self.move(key, JobStatus.HELD)
        for key, job in self.jobs.items():
            status, counted = before[key]
            # Nothing is lost: only jobs that were never sent stop counting.
            assert sum(job.counted()) == (0 if status is JobStatus.RESERVED and job.guild in owned else counted)
        polled = {(job.interaction_id, job.position) for job in to_poll}
        assert polled == {
            key
            for key, job in self.jobs.items()
            if job.guild in owned and job.status is JobStatus.SUBMITTED and job.project is not None
        }

    # ---- time ----------------------------------------------------------------------------------------

    @rule(boundary=st.sampled_from([None, "day", "month"]), minutes=st.integers(1, 600))
    def time_passes(self, boundary: str | None, minutes: int) -> None:
        """A while, or into the next day or month: periods end, their figures stay in their days."""
        if boundary is None:
            self.run.clock.now += timedelta(minutes=minutes)
            return
        start, end = period_bounds(Period(boundary), self.now)
        assert end is not None
        self.run.clock.now = end + timedelta(minutes=minutes % 90)
        assert period_bounds(Period(boundary), self.now)[0] > start

    # ---- what must always hold -----------------------------------------------------------------------

    @invariant()
    def balances_agree_with_the_journal(self) -> None:
        assert self.do(self.ledger.verify()) == []

    @invariant()
    def figures_equal_the_model(self) -> None:
        for guild in GUILDS:
            _, period = self.guild_settings(guild)
            used, reserved, held = totals(self.in_period(period, guild=guild))
            usage = self.do(self.ledger.usage(guild, now=self.now))
            assert (usage.used, usage.reserved, usage.held) == (used, reserved + held, held), guild
            assert usage.limit == self.guild_settings(guild)[0]
        used, reserved, held = totals(self.in_period(self.defaults.bot_period))
        bot = self.do(self.ledger.bot_usage(now=self.now))
        assert (bot.used, bot.reserved, bot.budget) == (used, reserved + held, self.defaults.bot_budget)

    @invariant()
    def every_held_credit_belongs_to_a_held_job(self) -> None:
        for guild in GUILDS:
            held_jobs = [job for job in self.jobs.values() if job.guild == guild and job.status is JobStatus.HELD]
            held = self.do(self.ledger.held(guild))
            assert (held.count, held.credits) == (len(held_jobs), sum(job.reserved for job in held_jobs))


# ---- one run per engine ------------------------------------------------------------------------------------


def run_machine(url: str, dialect: str, connect_args: dict[str, Any] | None = None) -> tuple[float, int]:
    """Run the machine on a fresh database at `url`; returns (seconds, ledger calls)."""
    loop = asyncio.new_event_loop()
    clock = Clock()
    ledger = loop.run_until_complete(Ledger.open(url, LedgerDefaults(), connect_args=connect_args, clock=clock))
    raw = create_async_engine(normalize_database_url(url), connect_args=connect_args or {})
    run = Run(loop, ledger, raw, clock, dialect)
    machine = type(f"LedgerMachine_{dialect}", (LedgerMachine,), {"run": run})
    started = time.perf_counter()
    try:
        run_state_machine_as_test(machine, settings=MACHINE_SETTINGS)
    finally:
        loop.run_until_complete(ledger.close())
        loop.run_until_complete(raw.dispose())
        loop.close()
    return time.perf_counter() - started, run.steps


def report(dialect: str, seconds: float, calls: int, capsys: pytest.CaptureFixture[str]) -> None:
    with capsys.disabled():
        print(f"\nledger state machine on {dialect}: {seconds:.1f} s, {calls} ledger calls", end="")


def test_the_ledger_keeps_its_invariants_on_sqlite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seconds, calls = run_machine(f"sqlite:///{tmp_path / 'machine.db'}", "sqlite")
    report("SQLite", seconds, calls, capsys)


@pytest.mark.postgres
def test_the_ledger_keeps_its_invariants_on_postgresql(capsys: pytest.CaptureFixture[str]) -> None:
    url = postgres_url()
    schema = f"ledger_machine_{uuid.uuid4().hex[:12]}"
    admin_loop = asyncio.new_event_loop()
    admin = create_async_engine(normalize_database_url(url))

    async def ddl(statement: str) -> None:
        async with admin.begin() as conn:
            await conn.execute(text(statement))

    admin_loop.run_until_complete(ddl(f'CREATE SCHEMA "{schema}"'))
    try:
        seconds, calls = run_machine(url, "postgresql", {"server_settings": {"search_path": schema}})
        report("PostgreSQL", seconds, calls, capsys)
    finally:
        admin_loop.run_until_complete(ddl(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_loop.run_until_complete(admin.dispose())
        admin_loop.close()
