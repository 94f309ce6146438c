"""A fresh install polls on the shipped prior, then on what it observes; a change of speed is followed.

Pure: durations are fed to the estimate directly and schedules are lists of elapsed times (no clock);
one test runs wait() against the fake on a manual clock.
"""

from __future__ import annotations

import itertools
import math
import random
import statistics

import pytest

from bot.magic_hour import AsyncClient, PollPolicy, ProjectStatus
from bot.magic_hour.durations import PRIOR, DurationEstimate, LogNormalFit, Prior, blend, fit_lognormal
from bot.magic_hour.polling import EstimatedPolicy, estimated_times
from tests.fakes.magic_hour import FakeClock, FakeMagicHour

ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}
SIGMA = math.log(10 / 4) / statistics.NormalDist().inv_cdf(0.9)  # Magic Hour-like: 10 % of jobs over 2.5x the median
FOLLOW_WITHIN = 30  # jobs after a 2x change of speed, in 9 of 10 simulated changes (median 13)


def lognormal(count: int, median: float, rng: random.Random) -> list[float]:
    return [median * math.exp(rng.gauss(0.0, SIGMA)) for _ in range(count)]


def no_jitter(estimate: DurationEstimate) -> EstimatedPolicy:
    return EstimatedPolicy(estimate, jitter=0.0)


def first_poll(estimate: DurationEstimate) -> float:
    return next(iter(no_jitter(estimate).schedule()))


def nearer(fit: LogNormalFit | None, new: float, old: float) -> bool:
    """The fitted median is nearer `new` than `old` (on the log scale, where durations spread)."""
    assert fit is not None
    return abs(fit.mu - math.log(new)) < abs(fit.mu - math.log(old))


def test_the_first_jobs_schedule_is_the_priors_not_the_cold_one():
    fresh = no_jitter(DurationEstimate())
    prior = blend(PRIOR, [])
    assert prior is not None
    assert list(fresh.schedule()) == list(estimated_times(prior))
    assert list(fresh.schedule()) != list(PollPolicy(jitter=0.0).schedule())
    assert math.exp(prior.mu) == pytest.approx(4.0)
    # Wider than the prior's own spread while the median is a belief, not an observation.
    assert prior.sigma > PRIOR.fit.sigma
    assert 1.0 < first_poll(DurationEstimate()) < PRIOR.fit.quantile(0.08)


def test_the_shipped_prior_is_a_4_s_median_with_a_long_tail():
    assert PRIOR.fit.quantile(0.5) == pytest.approx(4.0)
    assert PRIOR.fit.quantile(0.9) == pytest.approx(10.0)


def test_the_prior_counts_as_a_few_jobs_for_the_median():
    """Six jobs at 8 s against a prior worth six jobs at 4 s: halfway, on the log scale."""
    fit = blend(PRIOR, [8.0] * 6)
    assert fit is not None
    assert math.exp(fit.mu) == pytest.approx(math.sqrt(4.0 * 8.0))
    assert blend(PRIOR, [8.0] * 6, fade=0.0) == blend(None, [8.0] * 6)  # faded out: only what was seen


@pytest.mark.parametrize("median", [1.5, 8.0])
@pytest.mark.parametrize("seed", range(5))
def test_after_thirty_jobs_of_another_speed_the_schedule_follows_them(median: float, seed: int):
    estimate = DurationEstimate(shift=None)  # blending alone, no change detection
    for seconds in lognormal(30, median, random.Random(seed)):
        estimate.observe(seconds)
    assert nearer(estimate.fit(), median, 4.0)
    truth = LogNormalFit(math.log(median), SIGMA)
    assert abs(math.log(first_poll(estimate) / truth.quantile(0.08))) < abs(
        math.log(first_poll(DurationEstimate()) / truth.quantile(0.08))
    )


@pytest.mark.parametrize("median", [1.5, 8.0])
def test_a_full_window_is_what_was_observed(median: float):
    durations = lognormal(200, median, random.Random(7))
    estimate = DurationEstimate(durations, window=200)
    fit, observed = estimate.fit(), fit_lognormal(durations)
    assert fit is not None
    assert fit.mu == pytest.approx(observed.mu)
    assert fit.sigma == pytest.approx(observed.sigma, rel=0.005)  # widened only by the median's own error


def test_the_blend_moves_steadily_from_the_prior_to_the_observations():
    rng = random.Random(3)
    estimate = DurationEstimate(shift=None)
    medians = [math.exp(estimate.fit().mu)]  # type: ignore[union-attr]
    for seconds in lognormal(120, 8.0, rng):
        estimate.observe(seconds)
        medians.append(math.exp(estimate.fit().mu))  # type: ignore[union-attr]
    assert medians[0] == pytest.approx(4.0)
    assert 4.0 < medians[3] < medians[20] and 6.5 < medians[-1] < 10.0


def change_followed_after(seed: int, factor: float) -> int:
    """Jobs after the API turns `factor` times as slow until the fitted median is nearer the new speed
    than the old, and stays so for the next 30 jobs."""
    rng = random.Random(seed)
    estimate = DurationEstimate(lognormal(200, 4.0, rng))
    nearer_new = []
    for seconds in lognormal(200, 4.0 * factor, rng):
        estimate.observe(seconds)
        nearer_new.append(nearer(estimate.fit(), 4.0 * factor, 4.0))
    return next(n + 1 for n in range(len(nearer_new) - 30) if all(nearer_new[n : n + 30]))


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_a_twice_slower_or_faster_api_is_followed_within_the_bound(factor: float):
    """Fails without the change detection: the 200-job window alone turns only after ~100 jobs."""
    jobs = [change_followed_after(seed, factor) for seed in range(100)]
    assert sum(n <= FOLLOW_WITHIN for n in jobs) >= 88
    assert statistics.median(jobs) <= 16
    assert max(jobs) <= 100  # at worst, when the window itself has turned over


def test_after_a_change_the_window_restarts_from_the_new_jobs_with_the_old_spread():
    rng = random.Random(11)
    estimate = DurationEstimate(lognormal(200, 4.0, rng))
    spread_before = estimate.fit().sigma  # type: ignore[union-attr]
    slower = lognormal(60, 8.0, rng)
    for seconds in slower:
        estimate.observe(seconds)
    assert estimate.shifts == 1
    assert estimate.durations == slower[-len(estimate) :]
    assert len(estimate) < 60
    assert math.exp(estimate.prior.fit.mu) == pytest.approx(8.0, rel=0.35)  # type: ignore[union-attr]
    assert estimate.prior.fit.sigma == pytest.approx(spread_before, rel=0.05)  # type: ignore[union-attr]


def test_a_few_stuck_jobs_do_not_restart_the_window():
    rng = random.Random(5)
    estimate = DurationEstimate(lognormal(200, 4.0, rng))
    for seconds in [*lognormal(10, 4.0, rng), 600.0, 600.0, 600.0, *lognormal(30, 4.0, rng)]:
        estimate.observe(seconds)
    assert estimate.shifts == 0
    assert math.exp(estimate.fit().mu) == pytest.approx(4.0, rel=0.15)  # type: ignore[union-attr]


def test_an_unchanged_speed_rarely_restarts_the_window():
    rng = random.Random(2)
    estimate = DurationEstimate(lognormal(200, 4.0, rng))
    for seconds in lognormal(3000, 4.0, rng):
        estimate.observe(seconds)
    assert estimate.shifts <= 10  # ~4 expected: about one false alarm per 800 jobs


def test_a_job_in_flight_follows_what_other_jobs_taught_the_estimate():
    """A job started on the prior is not backed off as an outlier at 45 s once the bot knows its jobs
    take ~20 s; a schedule frozen at its start would be."""
    estimate = DurationEstimate()
    in_flight = no_jitter(estimate).schedule()
    started = list(itertools.takewhile(lambda moment: moment < 10.0, in_flight))
    assert started
    for seconds in lognormal(40, 20.0, random.Random(4)):
        estimate.observe(seconds)
    later = list(itertools.takewhile(lambda moment: moment < 60.0, in_flight))
    gaps_past_45 = [b - a for a, b in itertools.pairwise(later) if a > 45.0]
    assert gaps_past_45 and max(gaps_past_45) <= 0.7 + 1e-9
    frozen = list(itertools.takewhile(lambda moment: moment < 60.0, estimated_times(blend(PRIOR, []))))  # type: ignore[arg-type]
    assert max(b - a for a, b in itertools.pairwise(frozen) if a > 45.0) > 1.0


def test_a_prior_must_be_a_plausible_duration():
    with pytest.raises(ValueError):
        Prior(LogNormalFit(mu=math.log(4.0), sigma=0.0))
    with pytest.raises(ValueError):
        Prior(LogNormalFit(mu=100.0, sigma=0.7))


def test_a_stored_prior_that_is_not_a_distribution_is_refused():
    with pytest.raises(ValueError):
        DurationEstimate.from_json('{"durations": [4.0], "prior": {"mu": 1.4, "sigma": -1}}')
    with pytest.raises(ValueError):
        DurationEstimate.from_json('{"durations": [4.0], "prior": "fast"}')
    with pytest.raises(ValueError):
        DurationEstimate.from_json('{"durations": "many"}')


async def test_a_fresh_install_waits_on_the_prior_and_learns_from_the_job(
    fake: FakeMagicHour, clock: FakeClock, client: AsyncClient
):
    fake.job_duration = 4.0
    policy = no_jitter(DurationEstimate())
    expected_first = next(iter(estimated_times(blend(PRIOR, []))))  # type: ignore[arg-type]
    job = (await client.v1.image_background_remover.create(assets=ASSETS)).id
    project = await client.v1.image_projects.wait(id=job, policy=policy)
    assert project.status is ProjectStatus.COMPLETE
    assert clock.sleeps[0] == pytest.approx(expected_first)
    assert fake.gets <= 0.6 * (2 + math.ceil(4.0 / 0.5))  # the SDK: two GETs, then one per 0.5 s
    assert policy.estimate.durations == [pytest.approx(4.0, abs=0.36)]
