"""What the bot knows of job durations, reduced to a log-normal that a poll schedule can be built from.

Background removals have a log-normal-like spread (a ~4 s median with a long tail). The estimate keeps a
bounded window of recent durations and fits the log-normal from the median and inter-quartile range of
the log durations: a few stuck or instant jobs move those quantiles very little, unlike a mean and
standard deviation.

A fresh install has no window, so the estimate starts from a shipped prior (what is publicly known of
the API) and blends the observed durations in as they arrive: the prior counts as a few jobs for the
median and as more for the spread (a spread is much harder to learn from a handful of jobs), and those
pseudo-jobs fade out as the window fills, so a full window is what was observed. The fit is the next
job's predictive distribution: the median's own uncertainty is added to the spread (a lot while it rests
on a belief and a few jobs, a fraction of a percent with a full window), which keeps the first poll early
and the tail back-off late until the bot knows where its jobs finish.

When the API's speed changes, a two-sided CUSUM on the standardised log durations notices a run of jobs
all slower (or faster) than the estimate; the window then restarts from the jobs since the change, with
the prior re-centred on them and the old spread kept, instead of waiting for the change to fill half of
a 200-job window.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

_NORMAL = NormalDist()
_IQR_TO_SIGMA = 2 * _NORMAL.inv_cdf(0.75)  # 1.349: the IQR of a standard normal
_MEDIAN_VARIANCE = math.pi / 2  # the sample median's variance is (pi/2) sigma^2 / n for normal data
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

    @classmethod
    def from_median(cls, median: float, *, p90: float) -> LogNormalFit:
        """The log-normal with this median and 90th percentile (how durations are usually described)."""
        if not 0 < median < p90:
            raise ValueError("LogNormalFit.from_median needs 0 < median < p90.")
        return cls(mu=math.log(median), sigma=math.log(p90 / median) / _NORMAL.inv_cdf(0.9))


@dataclass(frozen=True)
class Prior:
    """What the estimate believes before (and while) it sees the bot's own jobs.

    `location_jobs` and `spread_jobs` say how many observed jobs the prior's median and spread are worth.
    Six jobs for the median: the sample median of n jobs has a standard error of about 1.25 sigma /
    sqrt(n), so six jobs' worth is "about 4 s, within a factor of two". Sixty for the spread: a sigma
    taken from the inter-quartile range of n jobs is off by about 1.2 / sqrt(n) of itself (20 % at 30
    jobs), so the shipped shape is kept until a few dozen jobs have shown their own.
    """

    fit: LogNormalFit
    location_jobs: float = 6.0
    spread_jobs: float = 60.0

    def __post_init__(self) -> None:
        if not (-10.0 < self.fit.mu < math.log(MAX_DURATION) and 0 < self.fit.sigma < 5.0):
            raise ValueError("Prior needs a median between 0 s and a day and 0 < sigma < 5.")
        if not self.location_jobs > 0 or not self.spread_jobs > 0:
            raise ValueError("Prior needs location_jobs > 0 and spread_jobs > 0.")


# Background removal as publicly described: a median of about 4 s, with a long tail (about one job in ten
# over 10 s). Not fitted to any benchmark sample.
PRIOR = Prior(LogNormalFit.from_median(4.0, p90=10.0))


@dataclass(frozen=True)
class ShiftDetector:
    """Two-sided CUSUM parameters, in units of the estimate's predictive sigma.

    `slack` (k) ignores drifts smaller than half a sigma; `threshold` (h) = 6 raises a false alarm about
    once per ~800 jobs of unchanged speed, and a 2x change (about one sigma of Magic Hour's spread) is
    followed after 13 jobs typically, within 30 in 9 cases out of 10 and within ~100 (the window's own
    turnover) at worst (400 simulated changes each way). `clip` bounds one job's say and `min_run` asks
    for a run of jobs, so a few stuck jobs cannot restart the window. Nothing is watched until the window
    holds `min_jobs`: a thinner one is too noisy to compare against, and blending follows a change quickly
    while the window is thin anyway.
    """

    slack: float = 0.5
    threshold: float = 6.0
    clip: float = 3.0
    min_run: int = 8
    min_jobs: int = 20


SHIFT = ShiftDetector()


def _quantile(ordered: Sequence[float], p: float) -> float:
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


@dataclass(frozen=True)
class _Blend:
    mu: float
    spread: float  # sigma of single jobs around mu
    behind_median: float  # how many jobs (observed and pseudo) the median rests on

    def predictive(self) -> LogNormalFit:
        """The next job's log-normal: the spread widened by the median's own uncertainty."""
        return LogNormalFit(self.mu, self.spread * math.sqrt(1.0 + _MEDIAN_VARIANCE / self.behind_median))


def _blend(prior: Prior | None, durations: Sequence[float], fade: float) -> _Blend | None:
    fade = min(max(fade, 0.0), 1.0)
    location_weight = prior.location_jobs * fade if prior is not None else 0.0
    spread_weight = prior.spread_jobs * fade if prior is not None else 0.0
    count = len(durations)
    if count == 0:
        if prior is None or location_weight == 0:
            return None
        return _Blend(prior.fit.mu, prior.fit.sigma, location_weight)
    observed = fit_lognormal(durations)
    if prior is None or location_weight == 0:
        return _Blend(observed.mu, observed.sigma, count)
    return _Blend(
        mu=(location_weight * prior.fit.mu + count * observed.mu) / (location_weight + count),
        spread=(spread_weight * prior.fit.sigma + count * observed.sigma) / (spread_weight + count),
        behind_median=location_weight + count,
    )


def blend(prior: Prior | None, durations: Sequence[float], *, fade: float = 1.0) -> LogNormalFit | None:
    """The predictive log-normal of the next duration, from `prior` and the observed `durations`.

    The prior's median and spread count as `prior.location_jobs` and `prior.spread_jobs` observations,
    times `fade` (1 with an empty window, 0 with a full one). The result's sigma adds the uncertainty of
    the median ((pi/2) sigma^2 / jobs behind it) to the spread. None without a prior or any duration.
    """
    parts = _blend(prior, durations, fade)
    return parts.predictive() if parts is not None else None


class DurationEstimate:
    """A bounded window of recent job durations (seconds), blended with a prior into a fit."""

    def __init__(
        self,
        durations: Iterable[float] = (),
        *,
        window: int = 200,
        prior: Prior | None = PRIOR,
        shift: ShiftDetector | None = SHIFT,
    ) -> None:
        if window < 1:
            raise ValueError("DurationEstimate needs window >= 1.")
        self.window = window
        self.prior = prior
        self.shift = shift
        self._default_prior = prior
        self._durations: deque[float] = deque(maxlen=window)
        self._fit: LogNormalFit | None = None
        self._fit_ready = False
        self._rise = self._fall = 0.0  # the CUSUM sums, upwards and downwards
        self._rise_run = self._fall_run = 0  # jobs since each sum was last zero: the shift's start
        self.shifts = 0  # how many times a change of speed restarted the window
        self._listeners: list[Callable[[], None]] = []
        self.extend(durations)

    def __len__(self) -> int:
        return len(self._durations)

    @property
    def durations(self) -> list[float]:
        return list(self._durations)

    def observe(self, seconds: float) -> bool:
        """Record one job's duration; nonsense (non-finite, <= 0, absurdly long) is ignored. True if kept."""
        if not _plausible(seconds):
            return False
        before = self.fit()
        self._add(seconds)
        if before is not None and self.shift is not None and len(self) > self.shift.min_jobs:
            self._watch_for_shift(math.log(seconds), before)
        for listener in list(self._listeners):
            listener()
        return True

    def extend(self, durations: Iterable[float]) -> None:
        """Load many durations at once (e.g. from storage) without notifying listeners or watching for shifts."""
        for seconds in durations:
            if _plausible(seconds):
                self._add(seconds)

    def _add(self, seconds: float) -> None:
        self._durations.append(float(seconds))
        self._fit_ready = False

    def _watch_for_shift(self, log_seconds: float, before: LogNormalFit) -> None:
        assert self.shift is not None
        limit = self.shift.clip
        z = min(max((log_seconds - before.mu) / before.sigma, -limit), limit)
        self._rise = max(0.0, self._rise + z - self.shift.slack)
        self._fall = max(0.0, self._fall - z - self.shift.slack)
        self._rise_run = self._rise_run + 1 if self._rise > 0 else 0
        self._fall_run = self._fall_run + 1 if self._fall > 0 else 0
        if self._rise > self.shift.threshold and self._rise_run >= self.shift.min_run:
            self._restart(self._rise_run)
        elif self._fall > self.shift.threshold and self._fall_run >= self.shift.min_run:
            self._restart(self._fall_run)

    def _restart(self, recent_count: int) -> None:
        """The speed changed `recent_count` jobs ago: keep only those, and re-centre the prior on them
        with the spread the estimate had before (the shape of the jobs outlives a change in their speed)."""
        everything = list(self._durations)
        earlier, recent = everything[:-recent_count], everything[-recent_count:]
        parts = _blend(self.prior, earlier, 1.0 - len(earlier) / self.window)
        base = self.prior if self.prior is not None else PRIOR
        self.prior = Prior(
            LogNormalFit(mu=fit_lognormal(recent).mu, sigma=parts.spread if parts is not None else base.fit.sigma),
            location_jobs=base.location_jobs,
            spread_jobs=base.spread_jobs,
        )
        self._durations.clear()
        self._durations.extend(recent)
        self._fit_ready = False
        self._rise = self._fall = 0.0
        self._rise_run = self._fall_run = 0
        self.shifts += 1

    def _fade(self) -> float:
        return 1.0 - len(self._durations) / self.window

    def fit(self) -> LogNormalFit | None:
        """The log-normal of the next job's duration: the prior blended with the window (None only with
        neither a prior nor any observation)."""
        if not self._fit_ready:
            self._fit = blend(self.prior, self._durations, fade=self._fade())
            self._fit_ready = True
        return self._fit

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Called (synchronously) after each observation, e.g. to schedule saving the window."""
        self._listeners.append(listener)

    def to_json(self) -> str:
        """The window, and the prior when a shift re-centred it (the shipped one is not stored, so a
        release with a better prior applies it)."""
        data: dict[str, Any] = {"durations": [round(d, 3) for d in self._durations]}
        if self.prior is not None and self.prior != self._default_prior:
            data["prior"] = {"mu": self.prior.fit.mu, "sigma": self.prior.fit.sigma}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str, *, window: int = 200, prior: Prior | None = PRIOR) -> DurationEstimate:
        """Rebuild from to_json(), or from the plain JSON list of durations earlier releases stored;
        raises ValueError on anything else."""
        data = json.loads(text)
        stored_prior = None
        if isinstance(data, dict):
            stored_prior = data.get("prior")
            data = data.get("durations")
        if not isinstance(data, list) or not all(_is_number(d) for d in data):
            raise ValueError("stored durations are not a JSON list of numbers")
        estimate = cls(data, window=window, prior=prior)
        if stored_prior is not None:
            if not isinstance(stored_prior, dict) or not all(_is_number(stored_prior.get(k)) for k in ("mu", "sigma")):
                raise ValueError("stored prior is not {mu, sigma}")
            base = prior if prior is not None else PRIOR
            estimate.prior = Prior(
                LogNormalFit(float(stored_prior["mu"]), float(stored_prior["sigma"])),
                location_jobs=base.location_jobs,
                spread_jobs=base.spread_jobs,
            )
            estimate._fit_ready = False
        return estimate


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _plausible(seconds: object) -> bool:
    return _is_number(seconds) and math.isfinite(seconds) and 0 < seconds <= MAX_DURATION  # type: ignore[operator,arg-type]
