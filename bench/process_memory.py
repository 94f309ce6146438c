"""This process's memory and descriptors, as the kernel counts them: what the benchmarks' memory rows report.

A thread samples VmRSS (so a blocked event loop cannot hide a peak); VmHWM, the kernel's exact high-water
mark, is reset to the current RSS at start by writing 5 to clear_refs, so both start at the baseline.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path


def status_kib(name: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/self/status, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{name} not in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _mb(kib: int) -> float:
    return kib * 1024 / 1e6


@dataclass(frozen=True)
class Peaks:
    baseline_mb: float
    sampled_growth_mb: float
    hwm_growth_mb: float | None  # None where clear_refs could not be written (the HWM would predate the run)
    baseline_fds: int
    peak_fds: int
    samples: int

    @property
    def growth_mb(self) -> float:
        """The larger of the two measures (a sample can miss a short peak; the HWM cannot)."""
        return max(self.sampled_growth_mb, self.hwm_growth_mb if self.hwm_growth_mb is not None else 0.0)


class PeakSampler:
    """Peak RSS (and, with `fds`, open descriptors) from `start()` to `stop()`, sampled every `interval` s."""

    def __init__(self, interval: float = 0.01, *, fds: bool = False) -> None:
        self.interval = interval
        self.fds = fds
        self.baseline_kib = self.peak_kib = 0
        self.baseline_fds = self.peak_fds = 0
        self.samples = 0
        self.hwm_reset = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.baseline_kib = self.peak_kib = status_kib("VmRSS")
        if self.fds:
            self.baseline_fds = self.peak_fds = open_fds()
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
            self.hwm_reset = True
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_kib = max(self.peak_kib, status_kib("VmRSS"))
            if self.fds:
                self.peak_fds = max(self.peak_fds, open_fds())
            self.samples += 1

    def stop(self) -> Peaks:
        self._stop.set()
        self._thread.join()
        hwm = _mb(status_kib("VmHWM") - self.baseline_kib) if self.hwm_reset else None
        return Peaks(
            baseline_mb=_mb(self.baseline_kib),
            sampled_growth_mb=_mb(self.peak_kib - self.baseline_kib),
            hwm_growth_mb=hwm,
            baseline_fds=self.baseline_fds,
            peak_fds=self.peak_fds,
            samples=self.samples,
        )
