"""A job's moves through its lifecycle, each one a compare-and-set that `lifecycle.TRANSITIONS` allows.

Every move locks the job's row, checks the table, writes the new status and moves the balances by what
the job counted before and counts after, in one transaction. A move the table refuses changes nothing
and is logged: a late or repeated call can never undo what happened (a released job stays released, a
settled charge is never erased). Transactions that move several jobs lock every job row first, then
the balances, so they cannot deadlock with single moves.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement

from . import balances
from .core import LedgerCore, chunks
from .lifecycle import FINAL_STATUSES, ON_RESTART, OPEN_STATUSES, RESUMABLE, JobStatus, can_move, tally
from .models import COST_PER_JOB, HeldJobs, JobRecord, ReleasedJobs
from .records import job_key, job_record
from .sanitize import plausible_charge, storable_project_id
from .schema import jobs, requests, webhook_events

log = logging.getLogger("bot.ledger")

INTERRUPTED_ERROR = "interrupted before Magic Hour answered"
NEVER_SENT_ERROR = "released at start-up: it was queued and never sent to Magic Hour"
INTERACTION_TOKEN_LIFETIME = timedelta(minutes=15)
DELIVERY_LEASE = timedelta(minutes=5)
_RESTART_ERRORS = {JobStatus.REFUNDED: NEVER_SENT_ERROR, JobStatus.HELD: INTERRUPTED_ERROR}

Values = Mapping[str, Any] | Callable[[JobRecord], Mapping[str, Any]]


@dataclass(frozen=True)
class Move:
    """A job before a move and after it; `after` is None when the move was refused (or the job is missing)."""

    before: JobRecord | None
    after: JobRecord | None

    @property
    def record(self) -> JobRecord | None:
        """The job as it now stands."""
        return self.after or self.before


@dataclass(frozen=True)
class Claim:
    """A job found by its project (a webhook event named it): its record and its status before the claim."""

    record: JobRecord
    previous: JobStatus


class Transitions(LedgerCore):
    # ---- the one way a job's status changes ------------------------------------------------------

    async def _lock_job(self, conn: AsyncConnection, condition: ColumnElement[bool]) -> JobRecord | None:
        row = (await conn.execute(select(jobs).where(condition).with_for_update())).first()
        return None if row is None else job_record(row)

    async def _apply(
        self,
        conn: AsyncConnection,
        before: JobRecord,
        target: JobStatus,
        values: Mapping[str, Any],
        moment: datetime,
        moves: balances.Moves,
    ) -> JobRecord:
        """Write one allowed move; its balance change goes into `moves` (written by the caller, last)."""
        row = (
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == before.id)
                .values(status=target.value, updated_at=moment, **values)
                .returning(*jobs.c)
            )
        ).one()
        after = job_record(row)
        was = tally(before.status, before.credits_reserved, before.credits_charged)
        now = tally(after.status, after.credits_reserved, after.credits_charged)
        moves.add(after.payer, after.guild_id, after.user_id, after.created_at, now - was)
        if target in FINAL_STATUSES and before.project_id is not None:
            # A settled job's events are of no more use, and their payloads carry members' result links.
            await conn.execute(delete(webhook_events).where(webhook_events.c.project_id == before.project_id))
        return after

    async def _move(
        self,
        interaction_id: int,
        position: int,
        target: JobStatus,
        values: Values,
        action: str,
        *,
        only_from: Iterable[JobStatus] | None = None,
    ) -> Move:
        """Move one job to `target` if the lifecycle allows it (and, with `only_from`, from those statuses)."""
        moment = self._now()
        allowed_from = frozenset(only_from) if only_from is not None else None

        async def work(conn: AsyncConnection) -> Move:
            before = await self._lock_job(conn, job_key(interaction_id, position))
            if before is None:
                return Move(None, None)
            if not can_move(before.status, target) or (allowed_from is not None and before.status not in allowed_from):
                return Move(before, None)
            moves = balances.Moves()
            chosen = values(before) if callable(values) else values
            after = await self._apply(conn, before, target, chosen, moment, moves)
            await moves.write(conn, self._insert)
            return Move(before, after)

        move = await self._run(work, write=True, durable=action)
        if move.before is None:
            log.warning("%s: no job recorded for interaction %s/%s", action, interaction_id, position)
        elif move.after is None:
            log.warning(
                "%s ignored: job for interaction %s/%s is %s", action, interaction_id, position, move.before.status
            )
        return move

    # ---- the runner's steps ------------------------------------------------------------------------

    async def mark_sending(self, interaction_id: int, position: int = 0) -> bool:
        """The runner is about to send the create: True means go ahead, False means do not send.

        From here a restart holds the credits (the create may have happened) instead of releasing them.
        False when the job is gone or final, e.g. a newer process released it as never sent.
        """
        move = await self._move(
            interaction_id, position, JobStatus.SENDING, {"sent_at": self._now(), "project_id": None}, "mark_sending"
        )
        return move.after is not None or (move.before is not None and move.before.status is JobStatus.SENDING)

    async def mark_submitted(
        self, interaction_id: int, *, project_id: str, credits_charged: int = COST_PER_JOB, position: int = 0
    ) -> JobRecord | None:
        """Magic Hour accepted the job (or a held job's project turned up): record its project id.

        Implausible figures are logged and replaced (see sanitize.py) rather than raised; an id too long to
        store leaves the job held (it cannot be polled), with the reason in its error.
        """
        stored = storable_project_id(project_id, interaction_id=interaction_id)
        if stored is None:
            error = f"Magic Hour's project id was too long to store ({len(project_id)} characters)"
            return await self.mark_held(interaction_id, error=error, position=position)

        def values(before: JobRecord) -> dict[str, Any]:
            return {"project_id": stored, "credits_charged": _charge(credits_charged, before)}

        move = await self._move(interaction_id, position, JobStatus.SUBMITTED, values, "mark_submitted")
        return move.record

    async def settle(
        self,
        interaction_id: int,
        *,
        status: JobStatus | str,
        credits_charged: int,
        error: str | None = None,
        position: int = 0,
    ) -> JobRecord | None:
        """Final outcome; on error/canceled pass the project's final credits_charged (refunds make it 0).

        A settled job may be settled again (Magic Hour updates credits_charged when it refunds): the later
        charge replaces the earlier one, it never adds to it.
        """
        final = JobStatus(status)
        if final not in (JobStatus.COMPLETE, JobStatus.FAILED):
            raise ValueError(f"settle takes complete or failed, not {final.value}")

        def values(before: JobRecord) -> dict[str, Any]:
            return {"credits_charged": _charge(credits_charged, before), "error": error}

        return (await self._move(interaction_id, position, final, values, "settle")).record

    async def release(self, interaction_id: int, *, error: str, position: int = 0) -> JobRecord | None:
        """Nothing was charged for certain (never sent, or refused): free the credits."""
        values = {"credits_charged": 0, "error": error}
        return (await self._move(interaction_id, position, JobStatus.REFUNDED, values, "release")).record

    async def mark_held(self, interaction_id: int, *, error: str, position: int = 0) -> JobRecord | None:
        """The create's outcome is unknown: its credits keep counting until its project turns up or an admin
        releases them. Refused unless the job is sending: an event may already have named its project."""
        return (await self._move(interaction_id, position, JobStatus.HELD, {"error": error}, "mark_held")).record

    async def claim_project(
        self, interaction_id: int, *, project_id: str, credits_charged: int, position: int = 0
    ) -> Claim | None:
        """A webhook event names this job (by its name's suffix) and its project: record the project once.

        Works while the create is still in flight (sending) and after its answer was lost (held). The claim
        tells the caller what the job was: only a held job needs someone to start following it. An event
        for the project the job already has is a claim of nothing new (previous = submitted); None when the
        job is missing, never sent, final, or has another project.
        """
        stored = storable_project_id(project_id, interaction_id=interaction_id)
        if stored is None:
            return None
        moment = self._now()

        async def work(conn: AsyncConnection) -> Claim | None:
            before = await self._lock_job(conn, job_key(interaction_id, position))
            if before is None:
                return None
            if before.status is JobStatus.SUBMITTED and before.project_id == stored:
                return Claim(before, JobStatus.SUBMITTED)
            if before.status not in (JobStatus.SENDING, JobStatus.HELD):
                return None
            moves = balances.Moves()
            values = {"project_id": stored, "credits_charged": _charge(credits_charged, before), "error": None}
            after = await self._apply(conn, before, JobStatus.SUBMITTED, values, moment, moves)
            await moves.write(conn, self._insert)
            return Claim(after, before.status)

        return await self._run(work, write=True, durable="claim_project")

    # ---- delivery ------------------------------------------------------------------------------------

    async def claim_delivery(
        self, interaction_id: int, owner: str, *, lease: timedelta = DELIVERY_LEASE, position: int = 0
    ) -> bool:
        """True for exactly one deliverer of a job: two processes overlapping in a deploy never both post.

        The same owner may claim again (a retried write); another owner may take over a claim older than
        `lease` (its holder died before delivering). False once delivered.
        """
        moment = self._now()

        async def work(conn: AsyncConnection) -> bool:
            statement = (
                update(jobs)
                .where(
                    job_key(interaction_id, position),
                    jobs.c.delivered.is_(False),
                    (jobs.c.delivery_owner.is_(None))
                    | (jobs.c.delivery_owner == owner)
                    | (jobs.c.delivery_claimed_at < moment - lease),
                )
                .values(delivery_owner=owner, delivery_claimed_at=moment)
                .returning(jobs.c.id)
            )
            return (await conn.execute(statement)).first() is not None

        return await self._run(work, write=True, durable="claim_delivery")

    async def mark_delivered(self, interaction_id: int, position: int = 0) -> JobRecord | None:
        """A message really carried the result to Discord (call it after the post, not before)."""
        moment = self._now()

        async def work(conn: AsyncConnection) -> JobRecord | None:
            statement = (
                update(jobs)
                .where(job_key(interaction_id, position))
                .values(delivered=True, updated_at=moment)
                .returning(*jobs.c)
            )
            row = (await conn.execute(statement)).first()
            return None if row is None else job_record(row)

        return await self._run(work, write=True, durable="mark_delivered")

    # ---- reading jobs ----------------------------------------------------------------------------------

    async def get_job(self, interaction_id: int, position: int = 0) -> JobRecord | None:
        """A job by its key: the request's interaction id and the image's place in it."""

        async def work(conn: AsyncConnection) -> JobRecord | None:
            row = (await conn.execute(select(jobs).where(job_key(interaction_id, position)))).first()
            return None if row is None else job_record(row)

        return await self._run(work, write=False)

    async def get_job_by_project(self, project_id: str) -> JobRecord | None:
        """The job a webhook event is about (events name the project, not the interaction)."""

        async def work(conn: AsyncConnection) -> JobRecord | None:
            row = (await conn.execute(select(jobs).where(jobs.c.project_id == project_id))).first()
            return None if row is None else job_record(row)

        return await self._run(work, write=False)

    # ---- restarts and held jobs ------------------------------------------------------------------------

    async def recover_interrupted(
        self, owns_guild: Callable[[int], bool] | None = None, now: datetime | None = None
    ) -> list[JobRecord]:
        """Start-up, for this process's guilds only (`owns_guild`; None = all): returns the jobs to poll.

        Jobs a member's own install paid for have no server: they belong to whoever owns guild id 0 (shard 0).

        A dead process's jobs move as `lifecycle.ON_RESTART` says (queued → refunded, sending → held);
        `RESUMABLE` ones (submitted) are returned to be polled to their end. Also forgets expired tokens.
        """
        moment = self._now(now)
        mine = owns_guild or (lambda _guild: True)

        async def work(conn: AsyncConnection) -> dict[JobStatus, int]:
            found = await conn.execute(
                select(jobs.c.id, jobs.c.guild_id)
                .where(jobs.c.status.in_([status.value for status in ON_RESTART]))
                .order_by(jobs.c.id)
            )
            ids = [int(row.id) for row in found if mine(int(row.guild_id or 0))]
            moved: dict[JobStatus, int] = {}
            moves = balances.Moves()
            for chunk in chunks(ids):
                locked = await conn.execute(
                    select(jobs).where(jobs.c.id.in_(chunk)).order_by(jobs.c.id).with_for_update()
                )
                for before in [job_record(row) for row in locked]:
                    target = ON_RESTART.get(before.status)  # re-checked: another process may have moved it
                    if target is None:
                        continue
                    values: dict[str, Any] = {"error": _RESTART_ERRORS[target]}
                    if target is JobStatus.REFUNDED:
                        values["credits_charged"] = 0
                    await self._apply(conn, before, target, values, moment, moves)
                    moved[target] = moved.get(target, 0) + 1
            await moves.write(conn, self._insert)
            return moved

        moved = await self._run(work, write=True, durable="recover_interrupted")
        if released := moved.get(JobStatus.REFUNDED):
            log.info("%d queued job(s) were never sent to Magic Hour; their credits are released", released)
        if held := moved.get(JobStatus.HELD):
            log.warning("%d job(s) were interrupted before Magic Hour answered; their credits stay held", held)
        await self.clear_expired_tokens(moment)

        async def resumable(conn: AsyncConnection) -> list[JobRecord]:
            rows = await conn.execute(
                select(jobs)
                .where(jobs.c.status.in_([status.value for status in RESUMABLE]), jobs.c.project_id.is_not(None))
                .order_by(jobs.c.created_at, jobs.c.id)
            )
            return [job_record(row) for row in rows]

        return [job for job in await self._run(resumable, write=False) if mine(job.guild_id or 0)]

    async def held(self, guild_id: int) -> HeldJobs:
        """Jobs Magic Hour never confirmed (across all periods): how many, their credits, since when."""

        async def work(conn: AsyncConnection) -> HeldJobs:
            row = (
                await conn.execute(
                    select(
                        func.count(), func.coalesce(func.sum(jobs.c.credits_reserved), 0), func.min(jobs.c.created_at)
                    ).where(jobs.c.status == JobStatus.HELD.value, jobs.c.guild_id == guild_id)
                )
            ).one()
            return HeldJobs(count=int(row[0]), credits=int(row[1]), since=row[2])

        return await self._run(work, write=False)

    async def release_held(self, guild_id: int, *, by: str, exclude: Iterable[int] = ()) -> ReleasedJobs:
        """Free a guild's held jobs, except `exclude` (interaction ids still in flight in this process). The
        job's error records who released it and when; atomic and idempotent."""
        moment = self._now()
        skipped = {int(i) for i in exclude}
        note = f"released by {by} at {moment.isoformat(timespec='seconds')}"

        async def work(conn: AsyncConnection) -> ReleasedJobs:
            locked = await conn.execute(
                select(jobs)
                .where(jobs.c.guild_id == guild_id, jobs.c.status == JobStatus.HELD.value)
                .order_by(jobs.c.id)
                .with_for_update()
            )
            moves = balances.Moves()
            released: list[JobRecord] = []
            for before in [job_record(row) for row in locked]:
                if before.interaction_id in skipped:
                    continue
                error = note + (f" (was: {before.error})" if before.error else "")
                values = {"credits_charged": 0, "error": error}
                released.append(await self._apply(conn, before, JobStatus.REFUNDED, values, moment, moves))
            await moves.write(conn, self._insert)
            ids = tuple(sorted(job.interaction_id for job in released))
            return ReleasedJobs(
                count=len(released), credits=sum(job.credits_reserved for job in released), interaction_ids=ids
            )

        released = await self._run(work, write=True, durable="release_held")
        if released.count:
            log.warning(
                "released %d held job(s), %d credits, guild=%s by %s", released.count, released.credits, guild_id, by
            )
        return released

    async def clear_expired_tokens(
        self, now: datetime | None = None, *, max_age: timedelta = INTERACTION_TOKEN_LIFETIME
    ) -> int:
        """Forget the interaction tokens of ended requests older than Discord's 15 minutes: useless, yet
        credentials. Called at start-up and periodically by the runner; returns how many were cleared."""
        cutoff = self._now(now) - max_age
        still_open = (
            select(jobs.c.id)
            .where(jobs.c.request_id == requests.c.id, jobs.c.status.in_([s.value for s in OPEN_STATUSES]))
            .exists()
        )

        async def work(conn: AsyncConnection) -> int:
            result = await conn.execute(
                update(requests)
                .where(requests.c.interaction_token.is_not(None), requests.c.created_at < cutoff, ~still_open)
                .values(interaction_token=None)
            )
            return result.rowcount or 0

        return await self._run(work, write=True)


def _charge(credits_charged: object, before: JobRecord) -> int:
    """A plausible charge as given; otherwise the job's own reservation."""
    checked = plausible_charge(credits_charged, interaction_id=before.interaction_id)
    return before.credits_reserved if checked is None else checked
