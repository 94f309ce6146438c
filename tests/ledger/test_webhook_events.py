"""The ledger's part in webhooks, with nothing but the ledger: each event recorded once, a job claimed by
its project once, NOTIFY across ledgers on PostgreSQL, and events forgotten when their job ends.

(How the runner's relay turns a NOTIFY into a wake-up is `bot.project_events`' business, tested there.)
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.ledger import JobStatus, Ledger

from .conftest import NOW, Backend
from .steps import hold, send, settle, submit

GUILD, USER = 111_111_111_111_111_111, 222_222_222_222_222_222


def project_json(project_id: str, status: str = "complete") -> str:
    return json.dumps({"id": project_id, "status": status, "credits_charged": 5})


async def reserve(ledger: Ledger, interaction_id: int) -> None:
    await ledger.reserve(interaction_id=interaction_id, guild_id=GUILD, channel_id=3, user_id=USER)


async def running(ledger: Ledger, interaction_id: int, project_id: str) -> None:
    """A job Magic Hour is working on, under `project_id`: the only kind whose events are kept."""
    await reserve(ledger, interaction_id)
    await submit(ledger, interaction_id, project_id=project_id)


async def test_an_event_is_recorded_once(ledger: Ledger) -> None:
    await running(ledger, 1, "cm1")
    assert await ledger.record_webhook_event("cm1", "image.completed", project_json("cm1")) is True
    assert await ledger.record_webhook_event("cm1", "image.completed", project_json("cm1", "error")) is False
    assert await ledger.record_webhook_event("cm1", "image.started", project_json("cm1", "rendering")) is True
    recorded = await ledger.webhook_events_for("cm1")
    assert sorted(kind for kind, _ in recorded) == ["image.completed", "image.started"]
    completed = dict(recorded)["image.completed"]
    assert json.loads(completed)["status"] == "complete"  # the duplicate did not overwrite the first
    assert await ledger.webhook_events_for("cm2") == []
    assert await ledger.count_webhook_events() == 2


async def test_a_job_is_claimed_by_its_project_while_sending_or_held_and_only_once(ledger: Ledger) -> None:
    for interaction_id in (1, 2, 3, 4):
        await reserve(ledger, interaction_id)
    await hold(ledger, 1, error="timed out")
    await send(ledger, 3)
    await settle(ledger, 4, project_id="cm4")
    assert (await ledger.usage(GUILD, now=NOW)).held == 5

    assert await ledger.claim_project(2, project_id="cm2", credits_charged=5) is None  # never sent: not its project
    claimed = await ledger.claim_project(1, project_id="cm1", credits_charged=5)
    assert claimed is not None and claimed.previous is JobStatus.HELD  # someone must start following it
    assert (claimed.record.status, claimed.record.project_id, claimed.record.error) == (
        JobStatus.SUBMITTED,
        "cm1",
        None,
    )
    again = await ledger.claim_project(1, project_id="cm1", credits_charged=5)
    assert again is not None and again.previous is JobStatus.SUBMITTED  # the same project again: nothing new
    assert await ledger.claim_project(1, project_id="cm-other", credits_charged=5) is None
    in_flight = await ledger.claim_project(3, project_id="cm3", credits_charged=5)
    assert in_flight is not None and in_flight.previous is JobStatus.SENDING  # the create's caller follows it
    assert await ledger.claim_project(4, project_id="cm4", credits_charged=5) is None  # settled
    # The create's answer arriving after the event records the same project without complaint.
    late = await ledger.mark_submitted(3, project_id="cm3")
    assert late is not None and (late.status, late.project_id) == (JobStatus.SUBMITTED, "cm3")

    assert (await ledger.get_job_by_project("cm1")).interaction_id == 1  # type: ignore[union-attr]
    assert (await ledger.get_job(2)).status is JobStatus.RESERVED  # type: ignore[union-attr]
    usage = await ledger.usage(GUILD, now=NOW)
    assert (usage.held, usage.reserved, usage.used) == (0, 15, 5)
    assert await ledger.verify() == []


async def test_racing_claims_of_one_held_job_record_it_once(backend: Backend) -> None:
    ledgers = [await backend.open() for _ in range(3)]
    await reserve(ledgers[0], 7)
    await hold(ledgers[0], 7)
    claims = await asyncio.gather(
        *(ledgers[i % 3].claim_project(7, project_id="cm7", credits_charged=5) for i in range(9))
    )
    assert [c.previous for c in claims if c is not None].count(JobStatus.HELD) == 1
    assert await ledgers[1].verify() == []


async def test_events_of_no_open_job_are_not_kept(ledger: Ledger) -> None:
    await reserve(ledger, 1)
    await settle(ledger, 1, project_id="cm1")
    # Another app's project, and a job settled before its (late or repeated) event came: nothing to keep.
    assert await ledger.record_webhook_event("cm-unknown", "image.completed", project_json("cm-unknown")) is False
    assert await ledger.record_webhook_event("cm1", "image.completed", project_json("cm1")) is False
    assert await ledger.count_webhook_events() == 0


async def test_an_event_racing_its_jobs_settle_is_never_left_behind(backend: Backend) -> None:
    ledgers = [await backend.open() for _ in range(2)]
    for interaction_id in range(1, 21):
        await running(ledgers[0], interaction_id, f"cm{interaction_id}")

    async def settle_one(interaction_id: int) -> None:
        await ledgers[0].settle(interaction_id, status=JobStatus.COMPLETE, credits_charged=5)

    async def record_one(interaction_id: int) -> None:
        await ledgers[1].record_webhook_event(f"cm{interaction_id}", "image.completed", project_json("x"))

    await asyncio.gather(*(f(i) for i in range(1, 21) for f in (record_one, settle_one)))
    assert await ledgers[1].count_webhook_events() == 0


async def test_events_are_forgotten_when_their_job_ends(ledger: Ledger) -> None:
    for interaction_id in (1, 2):
        await running(ledger, interaction_id, f"cm{interaction_id}")
        await ledger.record_webhook_event(f"cm{interaction_id}", "image.started", project_json("x", "rendering"))
    await running(ledger, 3, "cm3")
    await ledger.record_webhook_event("cm3", "image.completed", project_json("cm3"))

    await ledger.settle(1, status=JobStatus.COMPLETE, credits_charged=5)
    assert await ledger.webhook_events_for("cm1") == []  # its payload held the member's result link
    assert len(await ledger.webhook_events_for("cm2")) == 1  # still running: still needed
    await ledger.settle(2, status=JobStatus.FAILED, credits_charged=0)
    assert await ledger.webhook_events_for("cm2") == []

    # Events of a job that never settles here (given up on) are pruned by age.
    assert await ledger.prune_webhook_events(NOW) == 0
    assert await ledger.prune_webhook_events(NOW + timedelta(seconds=1)) == 1
    assert await ledger.count_webhook_events() == 0


@pytest.mark.postgres
async def test_an_event_recorded_through_one_ledger_is_notified_to_another(backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    listener_side, receiver = await backend.open(), await backend.open()
    heard: asyncio.Queue[str] = asyncio.Queue()
    lost = asyncio.Event()
    await running(receiver, 42, "cm42")
    await running(receiver, 43, "cm43")
    listener = await listener_side.listen_for_events(heard.put_nowait, lost.set)
    try:
        assert listener.connected
        await receiver.record_webhook_event("cm42", "image.completed", project_json("cm42"))
        assert await asyncio.wait_for(heard.get(), timeout=5) == "cm42"
        # A duplicate delivery is refused and notifies nobody; the next new event still does.
        await receiver.record_webhook_event("cm42", "image.completed", project_json("cm42"))
        await receiver.record_webhook_event("cm43", "image.completed", project_json("cm43"))
        assert await asyncio.wait_for(heard.get(), timeout=5) == "cm43"
        assert heard.empty() and not lost.is_set()
        # The NOTIFY is sent on commit, so what it names is already readable by the listener's ledger.
        assert await listener_side.webhook_events_for("cm43") != []
    finally:
        await listener.close()


async def test_sqlite_has_no_event_relay(backend: Backend) -> None:
    if backend.name != "sqlite":
        pytest.skip("SQLite only")
    ledger = await backend.open()
    with pytest.raises(RuntimeError, match="PostgreSQL only"):
        await ledger.listen_for_events(lambda _project: None, lambda: None)
    assert ledger.shared is False
