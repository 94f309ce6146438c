"""When to poll a project: sparse early, dense around the expected finish, then geometric back-off.

A fixed 0.5 s loop (the official SDK) spends most requests before anything can have happened and has
no end. The median background removal takes ~4 s end to end, so the schedule waits before the first
poll, polls densely across the window where most jobs finish, then backs off to a cap, under an
overall deadline. It is a pure function of elapsed time so it can be tested without a clock.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass


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
