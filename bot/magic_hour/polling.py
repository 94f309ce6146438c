"""When to poll a project: sparse early, dense around the expected finish, then geometric back-off.

A fixed 0.5 s loop (the official SDK) spends most requests before anything can have happened and has
no end. The median background removal takes ~4 s end to end, so the schedule waits before the first
poll, polls densely across the window where most jobs finish, then backs off to a cap, under an
overall deadline. It is a pure function of elapsed time so it can be tested without a clock.

EstimatedPolicy places polls by a duration estimate instead (see estimated_times for the placement
rule): from the first job a shipped prior, blended with the durations the bot observes (see
durations.py). PollPolicy is the cold schedule, kept for when no estimate is usable. Anything with a
`deadline` and a `schedule(rand)` of elapsed poll times is a schedule wait() can follow.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from .durations import DurationEstimate, LogNormalFit


@dataclass(frozen=True)
class PollPolicy:
    """Poll schedule parameters, all in seconds since the wait started."""

    first_delay: float = 2.5  # nothing useful can be seen earlier for most jobs
    dense_start: float = 3.5  # the window where most jobs finish ...
    dense_end: float = 5.5
    dense_interval: float = 0.3  # ... polled this often: a finish there is seen within 0.3 s
    backoff: float = 0.25  # past the window the interval grows by this fraction of the overtime (geometric)
    max_interval: float = 5.0
    jitter: float = 0.1  # ± fraction, so many jobs started together do not poll in lockstep
    deadline: float = 600.0

    def __post_init__(self) -> None:
        if not 0 <= self.first_delay <= self.dense_start <= self.dense_end:
            raise ValueError("PollPolicy needs 0 <= first_delay <= dense_start <= dense_end.")
        if self.dense_interval <= 0 or self.max_interval < self.dense_interval:
            raise ValueError("PollPolicy needs 0 < dense_interval <= max_interval.")
        if not 0 <= self.jitter < 1 or self.backoff < 0 or self.deadline <= 0:
            raise ValueError("PollPolicy needs 0 <= jitter < 1, backoff >= 0 and deadline > 0.")

    def base_delay(self, elapsed: float) -> float:
        """The un-jittered wait before the next poll, given the time since the wait started.

        Phase boundaries are matched loosely (within the jitter, and never closer than one dense
        interval), so a jittered poll landing just short of a boundary does not cause a tiny extra poll.
        """
        if elapsed < self.first_delay * (1.0 - self.jitter) - 1e-9:
            target = self.first_delay
        elif elapsed < self.dense_start - self.dense_interval:
            target = self.dense_start
        elif elapsed < self.dense_end:
            return self.dense_interval
        else:
            overtime = elapsed - self.dense_end
            return min(self.max_interval, self.dense_interval + self.backoff * overtime)
        return max(target - elapsed, self.dense_interval)

    def next_delay(self, elapsed: float, rand: Callable[[], float] = random.random) -> float:
        """The wait before the next poll, jittered by ±`jitter`; `rand` returns a float in [0, 1)."""
        spread = self.jitter * (2.0 * rand() - 1.0)
        return max(0.0, self.base_delay(elapsed) * (1.0 + spread))

    def schedule(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        """Elapsed times of successive polls until the deadline (the last poll lands on the deadline)."""
        elapsed = 0.0
        while elapsed < self.deadline:
            elapsed = min(elapsed + self.next_delay(elapsed, rand), self.deadline)
            yield elapsed


@runtime_checkable
class PollSchedule(Protocol):
    """What wait() follows: elapsed times (since the wait started) at which to poll, and a deadline."""

    @property
    def deadline(self) -> float: ...

    def schedule(self, rand: Callable[[], float] = random.random) -> Iterator[float]: ...


def estimated_times(
    fit: LogNormalFit | Callable[[], LogNormalFit],
    *,
    first_quantile: float = 0.08,
    min_interval: float = 0.6,
    max_interval: float = 0.7,
    shape: float = 0.5,
    tail_survival: float = 0.002,
    backoff: float = 1.25,
    max_backoff_interval: float = 5.0,
    deadline: float = 600.0,
) -> Iterator[float]:
    """Poll times for jobs whose durations follow `fit`: a pure function, no clock, no randomness.

    Why this shape: a job finishing inside a gap of g seconds is seen on average g/2 later, and every gap
    costs one poll for each job still running at its start. So the first poll waits for the
    `first_quantile` of durations (nothing before it is worth a request for most jobs); after it the gap
    is min_interval + (max_interval - min_interval) * survival**shape: widest while most jobs are still
    running (each poll there is paid by nearly every job), narrowing as survivors get few (polls are cheap
    there, and the slowest jobs' users have waited longest). max_interval bounds the pick-up delay
    everywhere. Once fewer than `tail_survival` of jobs would still run, the job is an outlier the estimate
    knows nothing about: gaps grow geometrically (x `backoff`) to `max_backoff_interval`.

    `fit` may be a callable read before each gap, so a job in flight follows what other jobs taught the
    estimate meanwhile (a job started on the prior is not backed off as an outlier once the bot knows its
    jobs are slower than the prior said).
    """
    current = fit if callable(fit) else (lambda: fit)
    moment = min(current().quantile(first_quantile), deadline)
    gap = max_interval
    while True:
        yield moment
        if moment >= deadline:
            return
        surviving = current().survival(moment)
        if surviving >= tail_survival:
            gap = min_interval + (max_interval - min_interval) * surviving**shape
        else:
            gap = min(max_backoff_interval, max(gap, min_interval) * backoff)
        moment = min(moment + gap, deadline)


@dataclass
class EstimatedPolicy:
    """Polls where jobs are expected to finish: the estimate's prior at first, then what the bot observed.

    Each gap is placed by the estimate's current fit, so schedules follow the API as it gets faster or
    slower, even those of jobs already in flight; wait() reports each completed job back through
    observe(). The fixed `fallback` is used only when the estimate gives no usable fit (no prior and
    nothing observed).
    """

    estimate: DurationEstimate
    fallback: PollPolicy = field(default_factory=PollPolicy)
    first_quantile: float = 0.08
    min_interval: float = 0.6
    max_interval: float = 0.7
    shape: float = 0.5
    jitter: float = 0.03  # small: the gaps are already close to the delay bound; enough to break lockstep
    deadline: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.first_quantile < 1 or not 0 < self.min_interval <= self.max_interval:
            raise ValueError("EstimatedPolicy needs 0 < first_quantile < 1 and 0 < min_interval <= max_interval.")
        if not 0 <= self.jitter < 1 or self.shape < 0 or self.deadline <= 0:
            raise ValueError("EstimatedPolicy needs 0 <= jitter < 1, shape >= 0 and deadline > 0.")

    def times(self, fit: LogNormalFit | Callable[[], LogNormalFit]) -> Iterator[float]:
        """The un-jittered schedule for `fit` (or for whatever a callable `fit` returns at each gap)."""
        return estimated_times(
            fit,
            first_quantile=self.first_quantile,
            min_interval=self.min_interval,
            max_interval=self.max_interval,
            shape=self.shape,
            deadline=self.deadline,
        )

    def schedule(self, rand: Callable[[], float] = random.random) -> Iterator[float]:
        latest = self.estimate.fit()
        if latest is None or not _usable(latest):
            yield from self.fallback.schedule(rand)
            return

        def current() -> LogNormalFit:
            nonlocal latest
            fit = self.estimate.fit()
            if fit is not None and _usable(fit):
                latest = fit
            return latest

        previous = 0.0
        for moment in self.times(current):
            # Jitter each gap, never the order: a poll stays after the previous one and at most on the deadline.
            jittered = previous + (moment - previous) * (1.0 + self.jitter * (2.0 * rand() - 1.0))
            previous = min(max(jittered, previous), self.deadline)
            yield previous
            if previous >= self.deadline:
                return

    def observe(self, seconds: float) -> None:
        """A job took `seconds` from the start of its wait to completion (as bracketed by two polls)."""
        self.estimate.observe(seconds)


def _usable(fit: LogNormalFit | None) -> bool:
    """A fit whose quantiles are finite durations (a corrupt estimate must not stop polling)."""
    if fit is None or not (math.isfinite(fit.mu) and math.isfinite(fit.sigma) and fit.sigma > 0):
        return False
    try:
        return math.isfinite(fit.quantile(0.999))
    except OverflowError:
        return False


def webhook_fallback_policy(
    estimate: DurationEstimate | None = None,
    *,
    first_delay: float = 20.0,
    interval: float = 10.0,
    max_interval: float = 60.0,
    deadline: float = 600.0,
) -> PollPolicy:
    """A sparse safety net for when webhooks deliver completions: first poll late, then seldom.

    A poll here only catches a lost webhook, so it waits until nearly every job should have finished:
    the later of `first_delay` and the estimate's 99th percentile, then every `interval` growing to
    `max_interval`.
    """
    fit = estimate.fit() if estimate is not None else None
    first = max(first_delay, fit.quantile(0.99)) if fit is not None and _usable(fit) else first_delay
    first = min(first, deadline)
    return PollPolicy(
        first_delay=first,
        dense_start=first,
        dense_end=first,
        dense_interval=interval,
        backoff=0.1,
        max_interval=max_interval,
        deadline=deadline,
    )


def bracketed_duration(last_running: float, seen_complete: float) -> float:
    """The estimate of when a job finished, from the last poll that saw it running and the one that saw
    it complete: the middle of that gap. (Taking the later poll would bias the estimate upwards, and the
    schedule built from it later still: the first poll could only drift later.)"""
    return (last_running + seen_complete) / 2.0 if seen_complete > last_running else seen_complete
