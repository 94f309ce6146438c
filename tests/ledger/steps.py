"""Walking a job through the lifecycle the way the runner does, for tests that need it further along.

The ledger refuses shortcuts (reserved → complete is not a move), so a test that wants a settled job
must send it, have it submitted, then settle it; these helpers do that and fail loudly if a step is
refused, so a test never silently starts from the wrong state.
"""

from __future__ import annotations

from bot.ledger import COST_PER_JOB, JobRecord, JobStatus, Ledger


async def send(ledger: Ledger, interaction_id: int, *, position: int = 0) -> None:
    """reserved → sending: the create is on its way."""
    assert await ledger.mark_sending(interaction_id, position), f"{interaction_id}/{position} could not be sent"


async def submit(
    ledger: Ledger,
    interaction_id: int,
    *,
    project_id: str | None = None,
    credits_charged: int = COST_PER_JOB,
    position: int = 0,
) -> JobRecord:
    """reserved → sending → submitted, with a project id of its own unless one is given."""
    await send(ledger, interaction_id, position=position)
    record = await ledger.mark_submitted(
        interaction_id,
        project_id=project_id or f"project-{interaction_id}-{position}",
        credits_charged=credits_charged,
        position=position,
    )
    assert record is not None and record.status is JobStatus.SUBMITTED, record
    return record


async def settle(
    ledger: Ledger,
    interaction_id: int,
    *,
    status: JobStatus | str = JobStatus.COMPLETE,
    credits_charged: int = COST_PER_JOB,
    error: str | None = None,
    position: int = 0,
    project_id: str | None = None,
) -> JobRecord:
    """reserved → sending → submitted → complete or failed."""
    await submit(ledger, interaction_id, project_id=project_id, position=position)
    record = await ledger.settle(
        interaction_id, status=status, credits_charged=credits_charged, error=error, position=position
    )
    assert record is not None and record.status is JobStatus(status), record
    return record


async def hold(
    ledger: Ledger, interaction_id: int, *, error: str = "the create timed out", position: int = 0
) -> JobRecord:
    """reserved → sending → held: the create may have reached Magic Hour, no answer came back."""
    await send(ledger, interaction_id, position=position)
    record = await ledger.mark_held(interaction_id, error=error, position=position)
    assert record is not None and record.status is JobStatus.HELD, record
    return record
