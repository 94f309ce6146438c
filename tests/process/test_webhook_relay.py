"""Two processes on one PostgreSQL database: the webhook reaches the one that does not own the job.

The owner is `python -m bot` as a worker (no PORT: it receives no HTTP); the receiver is a second bot
process's resources with the HTTP server, here in the test process. The event is recorded by the
receiver and NOTIFY wakes the owner, which delivers without a single poll (its first fallback poll
would only come after 20 s, past this test's timeouts).
"""

from __future__ import annotations

import asyncio

from bot.ledger import JobStatus
from bot.resources import open_resources, serve_http
from bot.settings import parse_settings
from tests.fakes.interactions import make_attachment
from tests.postgres import fresh_postgres_database
from tests.process.conftest import DISCORD_TOKEN, MH_KEY, Fakes
from tests.web.conftest import WEBHOOK_SECRET


async def test_the_event_sent_to_another_process_wakes_the_owner(fakes: Fakes) -> None:
    async with fresh_postgres_database() as url:
        database_url = url.render_as_string(hide_password=False)
        receiver_settings = parse_settings(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "MAGIC_HOUR_API_KEY": MH_KEY,
                "MAGIC_HOUR_BASE_URL": fakes.mh.base_url,
                "DATABASE_URL": database_url,
                "PORT": "0",
                "HOST": "127.0.0.1",
                "MAGIC_HOUR_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        )
        async with (
            open_resources(receiver_settings) as receiver,
            serve_http(receiver_settings, receiver, gateway_connected=lambda: True) as port,
        ):
            fakes.mh.send_webhooks(f"http://127.0.0.1:{port}/webhooks/magic-hour", WEBHOOK_SECRET)
            owner = await fakes.start_bot("run", DATABASE_URL=database_url, MAGIC_HOUR_WEBHOOK_SECRET=WEBHOOK_SECRET)
            await fakes.gateway.wait_ready(count=1, timeout=20)
            payload = fakes.harness.slash_command("remove-background", {"image": make_attachment("cat.png")})
            interaction_id = await fakes.gateway.push_interaction(payload)
            token = payload["token"]
            await fakes.api.wait_for(
                lambda _: any(r.files and r.status == 200 for r in fakes.api.original_edits(token)), timeout=12
            )
            async with asyncio.timeout(5):
                while not (record := await receiver.ledger.get_job(interaction_id)) or not record.delivered:
                    await asyncio.sleep(0.05)

            assert record.status is JobStatus.COMPLETE, owner.output
            [job] = fakes.mh.jobs.values()
            assert job.polls == 0, owner.output  # woken by NOTIFY, not by its fallback poll
            assert [(d.type, d.status) for d in fakes.mh.webhook_deliveries][-1] == ("image.completed", 200)
            assert "webhooks received by other processes, relayed over PostgreSQL" in owner.stderr, owner.output
            assert receiver.project_events.is_waiting(job.id) is False
        await owner.stop()
