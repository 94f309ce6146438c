"""The duration estimate survives a restart through the ledger's meta table (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest

from bot.ledger.durations import META_KEY, DurationKeeper, load_estimate
from bot.magic_hour.durations import PRIOR, DurationEstimate, blend, fit_lognormal
from tests.ledger.conftest import Backend


class Gate:
    """An injectable sleep that returns only when the test opens it."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.waits: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        await self.event.wait()
        self.event.clear()


async def until(condition) -> None:
    """Let the keeper's background write reach the database (a real one: it takes real I/O)."""
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)


async def test_nothing_stored_gives_the_shipped_prior(ledger):
    estimate = await load_estimate(ledger)
    assert len(estimate) == 0 and estimate.fit() == blend(PRIOR, [])


async def test_observations_survive_a_restart(backend: Backend):
    first = await backend.open()
    estimate = await load_estimate(first)
    keeper = DurationKeeper(first, estimate, min_interval=0.0)
    for seconds in (3.5, 4.25, 9.75):
        estimate.observe(seconds)
    await keeper.close()
    await first.close()

    again = await backend.open()
    restored = await load_estimate(again)
    assert restored.durations == [3.5, 4.25, 9.75]


async def test_saving_is_throttled_and_close_writes_what_is_pending(ledger):
    gate = Gate()
    estimate = DurationEstimate()
    keeper = DurationKeeper(ledger, estimate, min_interval=30.0, sleep=gate.sleep)
    estimate.observe(4.0)
    await until(lambda: gate.waits)
    assert keeper.saves == 1 and gate.waits == [30.0]
    for seconds in (5.0, 6.0, 7.0):  # a burst inside the throttle window
        estimate.observe(seconds)
    await asyncio.sleep(0.05)
    assert keeper.saves == 1
    gate.event.set()  # the window passes: one write for the whole burst
    await until(lambda: len(gate.waits) == 2)
    assert keeper.saves == 2
    assert (await load_estimate(ledger)).durations == [4.0, 5.0, 6.0, 7.0]
    estimate.observe(8.0)  # inside the next window, then shutdown
    await keeper.close()
    assert (await load_estimate(ledger)).durations == [4.0, 5.0, 6.0, 7.0, 8.0]


async def test_the_window_stays_bounded_in_storage(ledger):
    estimate = DurationEstimate(window=200, shift=None)  # a steady drift would restart the window
    keeper = DurationKeeper(ledger, estimate, min_interval=0.0)
    for index in range(500):
        estimate.observe(1.0 + index / 100)
    await keeper.close()
    restored = await load_estimate(ledger)
    assert len(restored) == 200 and restored.durations[-1] == pytest.approx(5.99)


async def test_an_unreadable_value_starts_from_the_prior_instead_of_failing(ledger, caplog):
    await ledger.set_meta(META_KEY, "{not json")
    with caplog.at_level(logging.WARNING):
        estimate = await load_estimate(ledger)
    assert len(estimate) == 0 and estimate.fit() == blend(PRIOR, [])
    assert "unreadable" in caplog.text


async def test_the_plain_list_earlier_releases_stored_still_loads(ledger):
    """Existing installs keep their window: a 200-job window is purely what they observed."""
    durations = [round(3.0 + (i % 7) * 0.5, 3) for i in range(200)]
    await ledger.set_meta(META_KEY, json.dumps(durations))
    estimate = await load_estimate(ledger)
    assert estimate.durations == durations
    fit = estimate.fit()
    assert fit is not None and fit.mu == pytest.approx(fit_lognormal(durations).mu)


async def test_a_prior_recentred_by_a_change_of_speed_survives_a_restart(backend: Backend):
    first = await backend.open()
    estimate = await load_estimate(first)
    keeper = DurationKeeper(first, estimate, min_interval=0.0)
    estimate.extend([round(4.0 * 1.02 ** (i % 9 - 4), 3) for i in range(200)])
    for i in range(40):  # the API turns twice as slow
        estimate.observe(round(8.0 * 1.02 ** (i % 9 - 4), 3))
    assert estimate.shifts == 1
    await keeper.close()
    await first.close()

    again = await backend.open()
    restored = await load_estimate(again)
    assert restored.durations == estimate.durations
    assert restored.prior == estimate.prior != PRIOR
    assert restored.fit() == estimate.fit()
