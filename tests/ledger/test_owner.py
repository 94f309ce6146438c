"""The owner's controls (issue 9): a bot-wide budget, per-server grants, reports and spend alerts."""

from datetime import timedelta

import pytest

from bot.ledger import CeilingExceeded, JobStatus, LedgerDefaults, LimitExceeded, Period

from .conftest import NOW, Backend
from .steps import settle
from .test_ledger import GUILD, OTHER_GUILD, fill, reserve, utc

THIRD_GUILD = 3


async def test_bot_budget_spans_servers_and_resets_with_the_bot_period(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100, bot_budget=20, bot_period="day"))
    await fill(ledger, 2, guild=GUILD)
    await fill(ledger, 2, guild=OTHER_GUILD)
    with pytest.raises(LimitExceeded) as caught:
        await reserve(ledger, guild=THIRD_GUILD)
    refused = caught.value
    assert (refused.scope, refused.used, refused.limit, refused.cost) == ("bot", 20, 20, 5)
    assert (refused.period, refused.resets_at) == (Period.DAY, utc(2025, 3, 16))
    # A refund frees bot-wide credits too; the next day starts afresh.
    first = (await ledger.history(GUILD))[-1]
    await ledger.release(first.interaction_id, error="create failed")
    await reserve(ledger, guild=THIRD_GUILD)
    await reserve(ledger, guild=THIRD_GUILD, now=utc(2025, 3, 16, 0, 1))
    bot = await ledger.bot_usage(now=NOW)
    assert (bot.total, bot.budget, bot.period, bot.resets_at) == (20, 20, Period.DAY, utc(2025, 3, 16))


async def test_no_bot_budget_means_no_bot_wide_limit(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=10))
    for guild in range(10, 20):
        await fill(ledger, 2, guild=guild)
    assert (await ledger.bot_usage(now=NOW)).total == 100


async def test_grant_raises_one_servers_ceiling_and_reset_returns_to_defaults(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100, period="month", max_credit_limit=100))
    with pytest.raises(CeilingExceeded) as caught:
        await ledger.set_limit(GUILD, 150, "month")
    assert (caught.value.ceiling, caught.value.granted, caught.value.requested) == (100, False, 150)
    assert "python -m bot grant" in str(caught.value)

    granted = await ledger.grant(GUILD, 500)
    assert (granted.credit_limit, granted.period, granted.granted_ceiling, granted.max_credit_limit) == (
        500,
        Period.MONTH,
        500,
        500,
    )
    assert not granted.is_default
    await fill(ledger, 30)  # 150 credits: above the default, within the grant
    # The admin may move within the grant, not above it; other servers keep the global ceiling.
    assert (await ledger.set_limit(GUILD, 400, "week")).credit_limit == 400
    with pytest.raises(CeilingExceeded) as above:
        await ledger.set_limit(GUILD, 501, "week")
    assert (above.value.ceiling, above.value.granted) == (500, True)
    with pytest.raises(CeilingExceeded):
        await ledger.set_limit(OTHER_GUILD, 101, "month")
    # A grant with a period sets it; without one it keeps the server's current period.
    assert (await ledger.grant(GUILD, 600)).period is Period.WEEK
    assert (await ledger.grant(GUILD, 600, "day")).period is Period.DAY

    await ledger.set_member_limit(GUILD, 20)
    reset = await ledger.reset_grant(GUILD)
    assert (reset.credit_limit, reset.period, reset.is_default, reset.granted_ceiling) == (
        100,
        Period.MONTH,
        True,
        None,
    )
    assert reset.max_credit_limit == 100 and reset.member_limit == 20
    with pytest.raises(CeilingExceeded):
        await ledger.set_limit(GUILD, 101, "month")
    with pytest.raises(ValueError, match="negative"):
        await ledger.grant(GUILD, -1)


async def test_report_lists_servers_by_spend_with_the_bot_total(backend: Backend) -> None:
    ledger = await backend.open(LedgerDefaults(credit_limit=100, bot_budget=1000, bot_period="month"))
    await ledger.set_limit(OTHER_GUILD, 300, "week")
    small = await fill(ledger, 1, guild=GUILD)
    await settle(ledger, small[0].interaction_id)
    big = await fill(ledger, 4, guild=OTHER_GUILD)
    await settle(ledger, big[0].interaction_id, status=JobStatus.FAILED, credits_charged=0, error="no subject")
    await settle(ledger, big[1].interaction_id)
    assert await ledger.mark_sending(big[2].interaction_id)
    await ledger.recover_interrupted()  # big[2] becomes held, big[3] (never sent) is released
    await reserve(ledger, guild=THIRD_GUILD, now=utc(2025, 2, 1))  # outside March

    report = await ledger.report("month", now=NOW)
    assert (report.period, report.period_start, report.resets_at) == (Period.MONTH, utc(2025, 3, 1), utc(2025, 4, 1))
    rows = [(g.guild_id, g.limit, g.period, g.used, g.reserved, g.held, g.jobs, g.failures) for g in report.guilds]
    assert rows == [
        (OTHER_GUILD, 300, Period.WEEK, 5, 5, 5, 4, 1),
        (GUILD, 100, Period.MONTH, 5, 0, 0, 1, 0),
    ]
    assert (report.bot.used, report.bot.reserved, report.bot.budget) == (10, 5, 1000)
    # All time: the February job counts too; equal spends are ordered by server id.
    assert [g.guild_id for g in (await ledger.report("none", now=NOW)).guilds] == [OTHER_GUILD, THIRD_GUILD, GUILD]


async def test_spend_since_counts_bot_wide_spend_in_the_window(ledger) -> None:
    await reserve(ledger, now=NOW - timedelta(hours=30))
    recent = await reserve(ledger, guild=OTHER_GUILD, now=NOW - timedelta(hours=2))
    await reserve(ledger, now=NOW - timedelta(hours=1))
    refunded = await reserve(ledger, now=NOW - timedelta(hours=1))
    await ledger.release(refunded.interaction_id, error="422")
    assert await ledger.spend_since(NOW - timedelta(hours=24)) == 10
    await settle(ledger, recent.interaction_id, status=JobStatus.FAILED, credits_charged=0)
    assert await ledger.spend_since(NOW - timedelta(hours=24)) == 5
