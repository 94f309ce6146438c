"""The lifecycle table is the law: the ledger makes exactly the moves `TRANSITIONS` lists, a move it does
not list changes nothing at all (the job's row and every balance), and a restart applies `ON_RESTART`.

Every status is reached the way the runner reaches it, then every move the ledger offers is tried from
it on a job of its own (in a server of its own, so `release_held` touches only that job).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from itertools import count
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.ledger import TRANSITIONS, JobStatus, Ledger
from bot.ledger.lifecycle import ON_RESTART, RESUMABLE

from .conftest import NOW, Backend
from .steps import hold, send, settle, submit

USER = 7
_guilds = count(500)


async def reach(ledger: Ledger, status: JobStatus) -> tuple[int, int]:
    """A new job (interaction id = its own server's id) brought to `status`; returns (guild, interaction)."""
    guild = next(_guilds)
    await ledger.reserve(interaction_id=guild, guild_id=guild, channel_id=1, user_id=USER, now=NOW)
    if status is JobStatus.SENDING:
        await send(ledger, guild)
    elif status is JobStatus.HELD:
        await hold(ledger, guild)
    elif status is JobStatus.SUBMITTED:
        await submit(ledger, guild)
    elif status is JobStatus.COMPLETE:
        await settle(ledger, guild, credits_charged=4)
    elif status is JobStatus.FAILED:
        await settle(ledger, guild, status=JobStatus.FAILED, credits_charged=2)
    elif status is JobStatus.REFUNDED:
        await ledger.release(guild, error="refused for certain")
    current = await ledger.get_job(guild)
    assert current is not None and current.status is status
    return guild, guild


Attempt = Callable[[Ledger, int, int], Awaitable[Any]]


@dataclass(frozen=True)
class Action:
    """One way the ledger can be asked to move a job, the status it moves to, and where it may start from
    (None: wherever the table allows; some actions are narrower than the table)."""

    name: str
    target: JobStatus
    attempt: Attempt
    only_from: frozenset[JobStatus] | None = None

    def allowed_from(self, before: JobStatus) -> bool:
        return self.target in TRANSITIONS[before] and (self.only_from is None or before in self.only_from)


ACTIONS = (
    Action("mark_sending", JobStatus.SENDING, lambda ledger, _g, i: ledger.mark_sending(i)),
    Action(
        "mark_submitted", JobStatus.SUBMITTED, lambda ledger, _g, i: ledger.mark_submitted(i, project_id=f"new-{i}")
    ),
    Action("mark_held", JobStatus.HELD, lambda ledger, _g, i: ledger.mark_held(i, error="no answer")),
    Action(
        "settle complete",
        JobStatus.COMPLETE,
        lambda ledger, _g, i: ledger.settle(i, status=JobStatus.COMPLETE, credits_charged=3),
    ),
    Action(
        "settle failed",
        JobStatus.FAILED,
        lambda ledger, _g, i: ledger.settle(i, status=JobStatus.FAILED, credits_charged=1),
    ),
    Action("release", JobStatus.REFUNDED, lambda ledger, _g, i: ledger.release(i, error="422")),
    Action(
        "claim_project",
        JobStatus.SUBMITTED,
        lambda ledger, _g, i: ledger.claim_project(i, project_id=f"claimed-{i}", credits_charged=5),
        only_from=frozenset({JobStatus.SENDING, JobStatus.HELD}),
    ),
    Action(
        "release_held",
        JobStatus.REFUNDED,
        lambda ledger, g, _i: ledger.release_held(g, by="a test"),
        only_from=frozenset({JobStatus.HELD}),
    ),
)
# Nothing moves a job back to `reserved` (only a reservation creates one), so no action targets it.


async def snapshot(engine: AsyncEngine, interaction_id: int) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    """The job's whole row and the whole balances table, read around the ledger."""
    async with engine.connect() as conn:
        job = (await conn.execute(text("SELECT * FROM jobs WHERE interaction_id = :i"), {"i": interaction_id})).one()
        rows = await conn.execute(text("SELECT * FROM balances ORDER BY scope, guild_id, user_id, day"))
        return dict(job._mapping), [tuple(row) for row in rows]


async def test_every_move_outside_the_table_is_refused_and_changes_nothing(backend: Backend, ledger: Ledger) -> None:
    raw = backend.raw_engine()
    wrong: list[str] = []
    tried = refused = 0
    for before in JobStatus:
        for action in ACTIONS:
            guild, interaction_id = await reach(ledger, before)
            job_before, balances_before = await snapshot(raw, interaction_id)
            await action.attempt(ledger, guild, interaction_id)
            job_after, balances_after = await snapshot(raw, interaction_id)
            tried += 1
            pair = f"{before.value} → {action.target.value} ({action.name})"
            if action.allowed_from(before):
                if job_after["status"] != action.target.value:
                    wrong.append(f"{pair}: allowed, yet the job is {job_after['status']}")
            else:
                refused += 1
                if job_after != job_before:
                    changed = sorted(k for k in job_before if job_before[k] != job_after[k])
                    wrong.append(f"{pair}: refused, yet the job's {', '.join(changed)} changed")
                if balances_after != balances_before:
                    wrong.append(f"{pair}: refused, yet the balances moved")
    assert wrong == []
    assert (tried, refused) == (len(JobStatus) * len(ACTIONS), 40)  # 16 allowed: 2 + 4 + 4 + 4 + 1 + 1 + 0
    assert await ledger.verify() == []  # and every allowed move moved the balances by what it changed


async def test_recovery_applies_on_restart_to_every_status(ledger: Ledger) -> None:
    jobs = {status: await reach(ledger, status) for status in JobStatus}
    before = await ledger.usage(jobs[JobStatus.SENDING][0], now=NOW)

    to_poll = await ledger.recover_interrupted()

    for status, (_, interaction_id) in jobs.items():
        after = await ledger.get_job(interaction_id)
        assert after is not None and after.status is ON_RESTART.get(status, status), status
    assert {job.interaction_id for job in to_poll} == {jobs[status][1] for status in RESUMABLE}
    # The sent job keeps counting (now as held); only the never-sent one gave its credits back.
    sent = await ledger.usage(jobs[JobStatus.SENDING][0], now=NOW)
    assert (before.total, before.held, sent.total, sent.held) == (5, 0, 5, 5)
    assert (await ledger.usage(jobs[JobStatus.RESERVED][0], now=NOW)).total == 0
    assert await ledger.verify() == []


def test_the_table_itself() -> None:
    assert set(TRANSITIONS) == set(JobStatus)
    assert all(after in TRANSITIONS[before] for before, after in ON_RESTART.items())
    assert TRANSITIONS[JobStatus.REFUNDED] == frozenset()
    for final in (JobStatus.COMPLETE, JobStatus.FAILED):  # a settled job may only be settled again, as itself
        assert TRANSITIONS[final] == frozenset({final})
    assert not any(JobStatus.RESERVED in targets for targets in TRANSITIONS.values())
