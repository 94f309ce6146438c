"""Deleting members' results at Magic Hour once they have them: when it is due, and who does it.

A deletion is scheduled when a job's result reached the member (or its request ended in failure), at once or,
when the member was given Magic Hour's link instead of a file, when that link expires. Any process may carry it
out: a due row is claimed for a lease, so two processes never both try, and a failure is tried again later with
a growing delay, never affecting the member.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from .core import LedgerCore
from .models import DueDeletion
from .records import job_key
from .schema import jobs

CLAIM_LEASE = timedelta(minutes=5)


class Cleanup(LedgerCore):
    async def schedule_deletion(self, interaction_id: int, *, at: datetime, position: int = 0) -> bool:
        """Delete the job's project at Magic Hour from `at` on (never earlier: a link the member holds lives
        until then); False when the job has no project or was deleted already."""

        async def work(conn: AsyncConnection) -> bool:
            result = await conn.execute(
                update(jobs)
                .where(job_key(interaction_id, position), jobs.c.project_id.is_not(None), jobs.c.deleted_at.is_(None))
                .values(delete_after=at)
            )
            return bool(result.rowcount)

        return await self._run(work, write=True, durable="schedule_deletion")

    async def claim_due_deletions(self, *, limit: int = 20, lease: timedelta = CLAIM_LEASE) -> list[DueDeletion]:
        """Due deletions, each claimed for `lease` by moving its due time (a compare-and-set: one claimer)."""
        moment = self._now()

        async def work(conn: AsyncConnection) -> list[DueDeletion]:
            due = await conn.execute(
                select(jobs.c.id, jobs.c.project_id, jobs.c.delete_after, jobs.c.delete_attempts)
                .where(jobs.c.delete_after <= moment, jobs.c.deleted_at.is_(None), jobs.c.project_id.is_not(None))
                .order_by(jobs.c.delete_after)
                .limit(limit)
            )
            claimed = []
            for row in due.all():
                taken = await conn.execute(
                    update(jobs)
                    .where(jobs.c.id == row.id, jobs.c.delete_after == row.delete_after, jobs.c.deleted_at.is_(None))
                    .values(delete_after=moment + lease)
                )
                if taken.rowcount:
                    claimed.append(DueDeletion(int(row.id), row.project_id, int(row.delete_attempts)))
            return claimed

        return await self._run(work, write=True)

    async def deletion_done(self, job_id: int) -> None:
        moment = self._now()

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(update(jobs).where(jobs.c.id == job_id).values(deleted_at=moment, delete_after=None))

        await self._run(work, write=True, durable="deletion_done")

    async def deletion_failed(self, job_id: int, *, retry_at: datetime | None) -> None:
        """Count a failed try; `retry_at` None gives up (the project stays at Magic Hour, logged by the caller)."""

        async def work(conn: AsyncConnection) -> None:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id)
                .values(delete_attempts=jobs.c.delete_attempts + 1, delete_after=retry_at)
            )

        await self._run(work, write=True, durable="deletion_failed")
