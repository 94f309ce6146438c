"""What the bot has seen of job durations, reduced to a log-normal that a poll schedule can be built from.

Background removals have a log-normal-like spread (a ~4 s median with a long tail). The estimate keeps a
bounded window of recent durations, so it follows the API when it gets faster or slower, and fits the
log-normal from the median and inter-quartile range of the log durations: a few stuck or instant jobs
move those quantiles very little, unlike a mean and standard deviation.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
_IQR_TO_SIGMA = 2 * _NORMAL.inv_cdf(0.75)  # 1.349: the IQR of a standard normal
MIN_SIGMA = 0.05  # a window of identical durations must not give a zero-width (undefined) distribution
MAX_DURATION = 24 * 3600.0  # anything longer is not a job duration but a bug upstream


@dataclass(frozen=True)
class LogNormalFit:
    """log(duration) ~ Normal(mu, sigma)."""

    mu: float
    sigma: float

    def quantile(self, p: float) -> float:
        return math.exp(self.mu + self.sigma * _NORMAL.inv_cdf(min(max(p, 1e-9), 1 - 1e-9)))

    def survival(self, seconds: float) -> float:
        """P(a job is still running after `seconds`)."""
        if seconds <= 0:
            return 1.0
        return 1.0 - _NORMAL.cdf((math.log(seconds) - self.mu) / self.sigma)


def _quantile(ordered: list[float], p: float) -> float:
    position = p * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def fit_lognormal(durations: Iterable[float]) -> LogNormalFit:
    """Robust fit: mu from the median of the logs, sigma from their inter-quartile range."""
    logs = sorted(math.log(d) for d in durations)
    if not logs:
        raise ValueError("fit_lognormal needs at least one duration.")
    sigma = (_quantile(logs, 0.75) - _quantile(logs, 0.25)) / _IQR_TO_SIGMA
    return LogNormalFit(mu=_quantile(logs, 0.5), sigma=max(sigma, MIN_SIGMA))


class DurationEstimate:
    """A bounded window of recent job durations (seconds) and its fit, once enough jobs were seen."""

    def __init__(self, durations: Iterable[float] = (), *, window: int = 200, min_samples: int = 20) -> None:
        if window < 1 or min_samples < 1:
            raise ValueError("DurationEstimate needs window >= 1 and min_samples >= 1.")
        self.window = window
        self.min_samples = min_samples
        self._durations: deque[float] = deque(maxlen=window)
        self._fit: LogNormalFit | None = None
        self._listeners: list[Callable[[], None]] = []
        self.extend(durations)

    def __len__(self) -> int:
        return len(self._durations)

    @property
    def durations(self) -> list[float]:
        return list(self._durations)

    def observe(self, seconds: float) -> bool:
        """Record one job's duration; nonsense (non-finite, <= 0, absurdly long) is ignored. True if kept."""
        if not self._add(seconds):
            return False
        for listener in list(self._listeners):
            listener()
        return True

    def extend(self, durations: Iterable[float]) -> None:
        """Load many durations at once (e.g. from storage) without notifying listeners."""
        for seconds in durations:
            self._add(seconds)

    def _add(self, seconds: float) -> bool:
        if not isinstance(seconds, int | float) or not math.isfinite(seconds) or not 0 < seconds <= MAX_DURATION:
            return False
        self._durations.append(float(seconds))
        self._fit = None
        return True

    def fit(self) -> LogNormalFit | None:
        """The log-normal of the window, or None until `min_samples` durations were seen."""
        if len(self._durations) < self.min_samples:
            return None
        if self._fit is None:
            self._fit = fit_lognormal(self._durations)
        return self._fit

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called (synchronously) after each observation, e.g. to schedule saving the window."""
        self._listeners.append(listener)

    def to_json(self) -> str:
        return json.dumps([round(d, 3) for d in self._durations])

    @classmethod
    def from_json(cls, text: str, *, window: int = 200, min_samples: int = 20) -> DurationEstimate:
        """Rebuild from to_json(); raises ValueError on anything but a JSON list of numbers."""
        data = json.loads(text)
        if not isinstance(data, list) or not all(isinstance(d, int | float) for d in data):
            raise ValueError("stored durations are not a JSON list of numbers")
        return cls(data, window=window, min_samples=min_samples)
