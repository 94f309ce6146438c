"""The ledger's part in webhooks: each event recorded once, held jobs claimed once, NOTIFY across ledgers."""

from __future__ import annotations

import asyncio
import json

import pytest

from bot.ledger import JobStatus, Ledger
from bot.magic_hour import AsyncClient
from bot.project_events import PostgresRelay, ProjectEvents
from tests.fakes.magic_hour import FakeMagicHour, iso

from .conftest import NOW, Backend

GUILD, USER = 111_111_111_111_111_111, 222_222_222_222_222_222


def project_json(project_id: str, status: str = "complete") -> str:
    return json.dumps(
        {
            "id": project_id,
            "name": "Discord Test #1",
            "status": status,
            "image_count": 1,
            "type": "BACKGROUND_REMOVER",
            "created_at": iso(NOW),
            "enabled": True,
            "credits_charged": 5,
            "downloads": [{"url": "https://example.invalid/out.png", "expires_at": iso(NOW)}],
            "error": None,
        }
    )


async def test_an_event_is_recorded_once(ledger: Ledger) -> None:
    assert await ledger.record_webhook_event("cm1", "image.completed", project_json("cm1")) is True
    assert await ledger.record_webhook_event("cm1", "image.completed", project_json("cm1")) is False
    assert await ledger.record_webhook_event("cm1", "image.started", project_json("cm1", "rendering")) is True
    recorded = await ledger.webhook_events_for("cm1")
    assert sorted(kind for kind, _ in recorded) == ["image.completed", "image.started"]
    assert await ledger.webhook_events_for("cm2") == []


async def test_only_a_held_job_without_a_project_is_claimed_and_only_once(ledger: Ledger) -> None:
    for interaction_id in (1, 2):
        await ledger.reserve(interaction_id=interaction_id, guild_id=GUILD, channel_id=3, user_id=USER)
    await ledger.mark_unknown(1, error="timed out")
    assert await ledger.claim_held_job(2, project_id="cm2", credits_charged=5) is None  # reserved: may still answer
    claimed = await ledger.claim_held_job(1, project_id="cm1", credits_charged=5)
    assert claimed is not None and (claimed.status, claimed.project_id) == (JobStatus.SUBMITTED, "cm1")
    assert await ledger.claim_held_job(1, project_id="cm1", credits_charged=5) is None
    assert (await ledger.get_job_by_project("cm1")).interaction_id == 1


@pytest.mark.postgres
async def test_an_event_recorded_through_one_ledger_wakes_the_waiter_listening_on_another(backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    owner, receiver = await backend.open(), await backend.open()
    hub = ProjectEvents()
    relay = await PostgresRelay(owner, hub).start()
    try:
        with hub.watch("cm42") as queue:
            await receiver.record_webhook_event("cm42", "image.completed", project_json("cm42"))
            event = await asyncio.wait_for(queue.get(), timeout=5)
        assert (event.type, event.project.id, event.project.status) == ("image.completed", "cm42", "complete")
    finally:
        await relay.close()


@pytest.mark.postgres
async def test_an_event_recorded_before_the_wait_began_ends_it_without_a_poll(backend: Backend) -> None:
    if backend.name != "postgresql":
        pytest.skip("NOTIFY is PostgreSQL's")
    owner, receiver = await backend.open(), await backend.open()
    hub = ProjectEvents()
    hub.live = True  # first poll after 20 s: only the recorded event can end this wait in time
    relay = await PostgresRelay(owner, hub).start()
    try:
        async with (
            FakeMagicHour(token="mhk_t", job_duration=0.0) as mh,
            AsyncClient("mhk_t", base_url=mh.base_url) as client,
        ):
            created = await client.v1.image_background_remover.create(
                assets={"image_file_path": "https://x.test/a.png"}
            )
            body = json.dumps(mh._project_body(mh.jobs[created.id]))
            await receiver.record_webhook_event(created.id, "image.completed", body)
            project = await asyncio.wait_for(hub.wait(client, created.id, deadline=30), timeout=5)
            assert project.status == "complete" and project.downloads
            assert mh.jobs[created.id].polls == 0
            assert mh.violations == []
    finally:
        await relay.close()
