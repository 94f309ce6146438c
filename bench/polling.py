"""Polls per job and completion-to-download delay: this client's wait()+download() vs the official SDK.

Run: python -m bench.polling [--jobs 20] [--durations 2,4,10]

Real time against the local fake (tests/fakes/magic_hour.py on 127.0.0.1), jobs of each duration run
concurrently. The official SDK (magic-hour 0.90.0) is driven for real: its AsyncClient accepts
base_url, so its own generate() (fixed 0.5 s poll loop, no deadline) talks to the same fake.
The delay is measured by the fake: from the moment a job completed to the first request for its output.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from bot.magic_hour import AsyncClient
from tests.fakes.magic_hour import FakeMagicHour

TOKEN = "mhk_bench_token"
ASSETS = {"image_file_path": "https://cdn.example.com/cat.png"}


@dataclass
class Row:
    client: str
    duration: float
    jobs: int
    polls: list[int]
    delays: list[float]
    wall: float


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


async def ours(fake: FakeMagicHour, jobs: int, workdir: Path) -> None:
    async with AsyncClient(token=TOKEN, base_url=fake.base_url) as client:

        async def one() -> None:
            created = await client.v1.image_background_remover.create(assets=dict(ASSETS))
            project = await client.v1.image_projects.wait(id=created.id)
            (await client.v1.image_projects.download(project)).close()

        await asyncio.gather(*(one() for _ in range(jobs)))


async def official_sdk(fake: FakeMagicHour, jobs: int, workdir: Path) -> None:
    import httpx
    from magic_hour import AsyncClient as SdkAsyncClient

    async with httpx.AsyncClient(timeout=60) as http:
        sdk = SdkAsyncClient(token=TOKEN, base_url=fake.base_url, httpx_client=http)

        async def one(index: int) -> None:
            folder = workdir / f"sdk-{index}"  # the SDK names files after the URL: one folder per job
            folder.mkdir()
            await sdk.v1.image_background_remover.generate(
                assets=dict(ASSETS),
                wait_for_completion=True,
                download_outputs=True,
                download_directory=str(folder),
            )

        await asyncio.gather(*(one(i) for i in range(jobs)))


Runner = Callable[[FakeMagicHour, int, Path], Awaitable[None]]


async def measure(name: str, runner: Runner, duration: float, jobs: int) -> Row:
    async with FakeMagicHour(token=TOKEN, job_duration=duration) as fake:
        with tempfile.TemporaryDirectory() as workdir:
            started = time.monotonic()
            await runner(fake, jobs, Path(workdir))
            wall = time.monotonic() - started
        if fake.violations:
            raise SystemExit(f"{name}: contract violations: {fake.violations[:3]}")
        finished = [job for job in fake.jobs.values() if job.downloaded_at is not None]
        return Row(
            client=name,
            duration=duration,
            jobs=len(finished),
            polls=[job.polls for job in finished],
            delays=[job.downloaded_at - job.completed_at for job in finished],  # type: ignore[operator]
            wall=wall,
        )


def table(rows: list[Row]) -> str:
    lines = [
        "| client | job | jobs | polls/job (median) | polls/job (max) | completion→download median | p95 | wall |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.client} | {row.duration:g} s | {row.jobs} | {median(row.polls):g} | {max(row.polls)} "
            f"| {median(row.delays) * 1000:.0f} ms | {p95(row.delays) * 1000:.0f} ms | {row.wall:.1f} s |"
        )
    return "\n".join(lines)


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20, help="concurrent jobs per duration and client")
    parser.add_argument("--durations", default="2,4,10", help="job durations in seconds, comma-separated")
    args = parser.parse_args(argv)
    durations = [float(d) for d in args.durations.split(",")]
    clients: list[tuple[str, Runner]] = [
        ("this client: wait()+download()", ours),
        ("official SDK 0.90.0 generate() (0.5 s loop)", official_sdk),
    ]
    rows: list[Row] = []
    for duration in durations:
        for name, runner in clients:
            print(f"running {args.jobs} × {duration:g} s jobs with {name} …", file=sys.stderr)
            rows.append(await measure(name, runner, duration, args.jobs))
    print(table(rows))
    by = {(r.client, r.duration): r for r in rows}
    four_ours, four_sdk = by.get((clients[0][0], 4.0)), by.get((clients[1][0], 4.0))
    if four_ours and four_sdk:
        ratio = median(four_ours.polls) / median(four_sdk.polls)
        ok = ratio <= 0.5 and median(four_ours.delays) < 0.3
        print(
            f"\n4 s job: {ratio:.0%} of the SDK's polls, median completion→download "
            f"{median(four_ours.delays) * 1000:.0f} ms; goal (≤ 50 %, < 300 ms) {'met' if ok else 'NOT met'}."
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
