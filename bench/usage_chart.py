"""Usage chart render cost: `python -m bench.usage_chart [--renders N]`.

A 31-day chart of six series (five members and others) with a limit line, the size `/credits usage` sends.
Runs in a fresh child interpreter so the first render pays matplotlib's import and font loading, as the bot's
first chart would, and so the peak RSS (kernel VmHWM) is the chart's and not the benchmark's. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path

START = date(2025, 3, 1)
DAYS = 31


def rows() -> list[tuple[date, int, int]]:
    """Eight members active on different days, so all six series have bars on most days."""
    return [
        (START + timedelta(days=d), user, 5 * (1 + (d * user) % 4))
        for user in range(1, 9)
        for d in range(DAYS)
        if (d + user) % 2 == 0 or user <= 2
    ]


def peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure(renders: int) -> dict[str, float]:
    """Runs in the child: everything from the import of matplotlib on is counted."""
    from bot.usage_chart import build_chart_data, render_png

    data = build_chart_data(rows(), start=START, end=START + timedelta(days=DAYS - 1), limit=2000)
    assert data is not None and len(data.series) == 6
    rss_before = peak_rss_kib()

    began = time.perf_counter()
    png = render_png(data)
    first = time.perf_counter() - began
    rss_after_first = peak_rss_kib()

    timings = []
    for _ in range(renders):
        began = time.perf_counter()
        render_png(data)
        timings.append(time.perf_counter() - began)
    rss_after_all = peak_rss_kib()  # before tracemalloc, whose own bookkeeping would count

    tracemalloc.start()  # after the timed renders: tracing slows every allocation
    render_png(data)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    return {
        "first_ms": first * 1000,
        "median_ms": statistics.median(timings) * 1000,
        "max_ms": max(timings) * 1000,
        "renders": renders,
        "rss_first_mib": (rss_after_first - rss_before) / 1024,
        "rss_all_mib": (rss_after_all - rss_before) / 1024,
        "traced_peak_mib": traced_peak / 2**20,
        "png_kib": len(png) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--renders", type=int, default=20, help="warm renders after the first (default 20)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.renders)))
        return

    child = [sys.executable, "-m", "bench.usage_chart", "--child", "--renders", str(args.renders)]
    result = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
    r = result
    table = [
        ("first render (imports matplotlib, loads the font)", f"{r['first_ms']:.0f} ms"),
        (f"later renders, median / max of {r['renders']}", f"{r['median_ms']:.0f} / {r['max_ms']:.0f} ms"),
        ("peak RSS growth (VmHWM): first render / after all", f"{r['rss_first_mib']:.1f} / {r['rss_all_mib']:.1f} MiB"),
        ("Python allocations peak during a warm render (tracemalloc)", f"{r['traced_peak_mib']:.1f} MiB"),
    ]
    print(f"31 days × 6 series, 1200×600 PNG, {r['png_kib']:.1f} KiB\n")
    print("| metric | measured |")
    print("| --- | ---: |")
    for metric, value in table:
        print(f"| {metric} | {value} |")


if __name__ == "__main__":
    main()
