"""The estimated schedule: a pure function of the observed durations, checked without a clock, then wait()."""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from bot.magic_hour import AsyncClient, PollPolicy, ProjectStatus
from bot.magic_hour.durations import DurationEstimate, LogNormalFit, fit_lognormal
from bot.magic_hour.polling import EstimatedPolicy, bracketed_duration, estimated_times, webhook_fallback_policy
from tests.fakes.magic_hour import FakeClock, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}
SIGMA = math.log(10 / 4) / statistics.NormalDist().inv_cdf(0.9)  # median 4 s, 10 % over 10 s


def lognormal(count: int, median: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [median * math.exp(rng.gauss(0.0, SIGMA)) for _ in range(count)]


def estimate_of(median: float, seed: int = 1) -> DurationEstimate:
    return DurationEstimate(lognormal(200, median, seed), window=200)


def seen(times, finish: float) -> tuple[int, float]:
    """(polls, delay) for a job finishing at `finish` on a schedule of elapsed poll times."""
    for count, moment in enumerate(times, start=1):
        if moment >= finish:
            return count, moment - finish
    raise AssertionError("the schedule ended before the job finished")


def sdk_polls(finish: float) -> int:
    """The official SDK: one GET, then GET + sleep(0.5) until it sees the job terminal."""
    return 2 + math.ceil(finish / 0.5)


def no_jitter(estimate: DurationEstimate) -> EstimatedPolicy:
    return EstimatedPolicy(estimate, jitter=0.0)


def test_first_poll_waits_for_the_early_quantile_of_what_was_observed():
    fit = LogNormalFit(mu=math.log(4.0), sigma=SIGMA)
    times = list(estimated_times(fit))
    assert times[0] == pytest.approx(fit.quantile(0.08))
    assert 1.2 < times[0] < 1.8


def test_gaps_stay_under_the_delay_bound_while_jobs_are_likely_to_finish():
    fit = LogNormalFit(mu=math.log(4.0), sigma=SIGMA)
    times = list(estimated_times(fit))
    body = [(a, b - a) for a, b in itertools.pairwise(times) if fit.survival(a) >= 0.002]
    assert body and all(0.6 - 1e-9 <= gap <= 0.7 + 1e-9 for _, gap in body)
    assert body[0][1] > body[-1][1]  # wide while most jobs run, narrower as the survivors get few


def test_outliers_past_the_estimate_back_off_and_the_schedule_ends_on_the_deadline():
    fit = LogNormalFit(mu=math.log(4.0), sigma=SIGMA)
    times = list(estimated_times(fit, deadline=600.0))
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert max(gaps[:-1]) == pytest.approx(5.0)
    assert times[-1] == 600.0
    assert len(times) < 200  # a fixed 0.5 s loop would poll 1200 times


@pytest.mark.parametrize(("median", "finish"), [(1.0, 1.2), (4.0, 4.4), (8.0, 8.3), (8.0, 14.0)])
def test_jobs_like_the_observed_ones_are_seen_quickly_with_few_polls(median: float, finish: float):
    """Fails when the estimate is ignored: the fixed schedule sees a 1.2 s job at 2.5 s and polls an 8 s job
    through its 3.5-5.5 s window for nothing."""
    polls, delay = seen(no_jitter(estimate_of(median)).schedule(), finish)
    assert delay <= 0.7 + 1e-9
    assert polls <= 0.6 * sdk_polls(finish)


def test_the_schedule_follows_the_estimate():
    fast = list(itertools.islice(no_jitter(estimate_of(2.0)).schedule(), 5))
    slow = list(itertools.islice(no_jitter(estimate_of(8.0)).schedule(), 5))
    assert slow[0] > 2 * fast[0]


def test_on_a_realistic_spread_it_polls_at_most_60_percent_of_the_sdk_and_halves_its_median_delay():
    """Expected figures over a seeded sample, from the pure schedule (the timed run is bench/polling.py)."""
    times = list(no_jitter(estimate_of(4.0, seed=1)).schedule())
    jobs = lognormal(400, 4.0, seed=2)  # not the jobs the estimate was built from
    outcomes = [seen(times, finish) for finish in jobs]
    assert statistics.mean(p for p, _ in outcomes) <= 0.6 * statistics.mean(sdk_polls(f) for f in jobs)
    assert statistics.median(d for _, d in outcomes) <= 0.75 / 2  # the SDK's is 0.5 s + U(0, 0.5)
    assert max(d for f, (_, d) in zip(jobs, outcomes, strict=True) if 1.5 < f < 25) <= 0.7 + 1e-9


def test_only_without_a_prior_and_before_any_job_is_it_the_fallback_schedule():
    fallback = PollPolicy(jitter=0.0)
    cold = EstimatedPolicy(DurationEstimate(prior=None), fallback=fallback, jitter=0.0)
    assert list(cold.schedule()) == list(fallback.schedule())
    cold.observe(4.0)
    assert list(cold.schedule()) != list(fallback.schedule())


@pytest.mark.parametrize("seed", range(10))
def test_jitter_keeps_polls_in_order_and_near_the_plan(seed: int):
    policy = EstimatedPolicy(estimate_of(4.0), jitter=0.03)
    planned = list(no_jitter(policy.estimate).schedule())
    jittered = list(policy.schedule(rand=random.Random(seed).random))
    assert all(b > a for a, b in itertools.pairwise(jittered[:-1]))
    for (a, b), (c, d) in zip(itertools.pairwise(planned[:50]), itertools.pairwise(jittered[:50]), strict=True):
        assert d - c == pytest.approx(b - a, rel=0.031, abs=0.2)
    assert jittered[-1] <= policy.deadline


def test_the_webhook_fallback_polls_late_and_seldom():
    times = list(webhook_fallback_policy().schedule(rand=lambda: 0.5))
    assert times[0] == pytest.approx(20.0)
    assert min(b - a for a, b in itertools.pairwise(times[:-1])) >= 10.0 - 1e-9
    assert len(times) < 25
    slow = list(webhook_fallback_policy(estimate_of(12.0)).schedule(rand=lambda: 0.5))
    assert slow[0] == pytest.approx(estimate_of(12.0).fit().quantile(0.99))  # type: ignore[union-attr]
    assert slow[0] > 30.0


def test_the_fit_is_robust_to_outliers():
    durations = lognormal(180, 4.0, 4)
    clean = fit_lognormal(durations)
    dirty = fit_lognormal([*durations, *([600.0] * 20)])  # 10 % stuck jobs
    assert math.exp(dirty.mu) == pytest.approx(math.exp(clean.mu), rel=0.15)
    assert dirty.sigma == pytest.approx(clean.sigma, rel=0.35)  # a mean/stdev fit would triple it
    assert math.exp(clean.mu) == pytest.approx(4.0, rel=0.15)


def test_the_estimate_keeps_a_bounded_window_and_ignores_nonsense():
    estimate = DurationEstimate(window=3)
    for value in (1.0, float("nan"), -2.0, 0.0, float("inf"), 2.0, 3.0, 4.0):
        estimate.observe(value)
    assert estimate.durations == [2.0, 3.0, 4.0]
    assert DurationEstimate.from_json(estimate.to_json(), window=3).durations == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError):
        DurationEstimate.from_json('{"not": "a list"}')


def test_a_completion_is_dated_between_the_two_polls_that_bracket_it():
    assert bracketed_duration(3.0, 3.6) == pytest.approx(3.3)
    assert bracketed_duration(0.0, 1.4) == pytest.approx(0.7)


async def start(client: AsyncClient) -> str:
    return (await client.v1.image_background_remover.create(assets=ASSETS)).id


async def test_wait_follows_the_estimated_schedule_and_reports_the_duration(
    fake: FakeMagicHour, clock: FakeClock, client: AsyncClient
):
    fake.job_duration = 8.0
    policy = EstimatedPolicy(estimate_of(8.0), jitter=0.0)
    before = len(policy.estimate)
    first = policy.estimate.fit().quantile(0.08)  # type: ignore[union-attr]
    project = await client.v1.image_projects.wait(id=await start(client), policy=policy)
    assert project.status is ProjectStatus.COMPLETE
    assert fake.gets <= 0.6 * sdk_polls(8.0)
    assert clock.sleeps[0] == pytest.approx(first)
    assert len(policy.estimate) == min(before + 1, 200)
    assert policy.estimate.durations[-1] == pytest.approx(8.0, abs=0.36)


async def test_a_second_wait_carries_on_with_the_schedule_instead_of_restarting_it(
    fake: FakeMagicHour, clock: FakeClock, client: AsyncClient
):
    fake.job_duration = 50.0
    policy = EstimatedPolicy(estimate_of(4.0), jitter=0.0)
    started = clock()
    job = await start(client)
    clock.now += 20.0  # as after a first wait(deadline=20) timed out
    clock.sleeps.clear()
    await client.v1.image_projects.wait(id=job, policy=policy, started_at=started)
    planned = [t for t in policy.schedule() if t > 20.0]
    assert clock.sleeps[0] == pytest.approx(planned[0] - 20.0)
    assert clock.sleeps[0] < policy.estimate.fit().quantile(0.08)  # type: ignore[union-attr]
