"""The owner's Magic Hour balance: a job the account cannot pay is refused before its create, and the owner
hears once when the balance falls below LOW_BALANCE_CREDITS."""

from __future__ import annotations

from pathlib import Path

from bot.ledger import JobStatus
from tests.e2e.conftest import bot_world
from tests.fakes.interactions import make_attachment, snowflake
from tests.fakes.magic_hour import FakeMagicHour

CREATE = "/v1/image-background-remover"


def account_reads(mh: FakeMagicHour) -> int:
    return mh.count("GET", "/v1/account")


async def test_a_job_the_account_cannot_pay_is_refused_before_the_create(tmp_path: Path, mh: FakeMagicHour) -> None:
    mh.credits = 3
    async with bot_world(tmp_path, mh) as world:
        payload = world.discord.slash_command("remove-background", {"image": make_attachment()})
        interaction_id = await world.discord.run(payload, timeout=10)
        assert mh.count("POST", CREATE) == 0
        text = world.discord.original_edits(payload["token"])[-1].json["content"]
        assert "out of credits" in text and "nothing was charged" in text  # as when Magic Hour answers 402
        job = await world.bot.ledger.get_job(interaction_id)
        assert (job.status, job.credits_charged) == (JobStatus.REFUNDED, 0)
        assert (await world.bot.ledger.usage(world.discord.guild_id)).total == 0


async def test_the_balance_is_read_at_most_once_a_minute(tmp_path: Path, mh: FakeMagicHour) -> None:
    async with bot_world(tmp_path, mh) as world:
        for _ in range(3):
            await world.discord.run(world.discord.slash_command("remove-background", {"image": make_attachment()}), 10)
        assert mh.count("POST", CREATE) == 3
        assert account_reads(mh) == 1


async def test_the_owner_is_told_once_when_the_balance_falls_below_the_threshold(
    tmp_path: Path, mh: FakeMagicHour
) -> None:
    mh.credits = 28
    owner_id = snowflake()
    async with bot_world(tmp_path, mh, harness={"owner_id": owner_id}, LOW_BALANCE_CREDITS="20") as world:

        def owner_dms() -> list[str]:
            opened = [r for r in world.discord.api.find("POST", r"^/users/@me/channels$") if r.status == 200]
            channels = {int(r.response["id"]) for r in opened if int(r.json["recipient_id"]) == owner_id}
            return [m.json["content"] for c in channels for m in world.discord.channel_messages(c)]

        async def job() -> None:
            await world.discord.run(world.discord.slash_command("remove-background", {"image": make_attachment()}), 10)

        await job()  # 28 → 23: still above
        assert owner_dms() == []
        await job()  # 23 → 18: below 20
        [dm] = owner_dms()
        assert "down to 18 credits" in dm and "LOW_BALANCE_CREDITS is 20" in dm
        assert "spent 10 credits in the last 24 hours" in dm
        await job()  # 13: the same crossing, no second message
        assert len(owner_dms()) == 1
