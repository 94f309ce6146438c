"""Webhooks against plain polling, through the whole bot: polls per job and completion→reply delay.

Run: python -m bench.webhooks [--jobs 10] [--durations 2,4,10] [--stagger 0]
     python -m bench.webhooks --stalled 1000 [--jobs 10] [--durations 2] [--stagger 0.2]

`--stalled N` is another benchmark on the same world: members' commands while N connections stall on
the bot's HTTP port, against the same without them (see `bench/stalled.py`).

`--stagger S` starts the commands S seconds apart instead of all at once (all at once, every job of a row
completes in the same millisecond, and the bot and both fakes share one event loop).

For each job length, the same burst of /remove-background commands runs twice in this process: once
with plain polling (the production PollPolicy), once with webhooks on (the fake Magic Hour POSTs signed
events to the bot's own HTTP server on 127.0.0.1, and polling drops to the production 20 s fallback).
Everything is real except the network: the bot, discord.py's dispatch, the fakes of Discord and Magic
Hour on loopback, a fresh SQLite ledger per run. Delays are measured by the fakes on one monotonic
clock: from the moment a job completed at Magic Hour to the first request for its output (download)
and to the Discord edit that carried the PNG (reply).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bot.adapter.bot import BackgroundBot
from bot.resources import open_resources, serve_http
from bot.settings import parse_settings
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.interactions import Member, make_attachment, make_user
from tests.fakes.magic_hour import FakeMagicHour

MH_TOKEN = "mhk_bench_webhooks"
DISCORD_TOKEN = "discord.bench.webhooks-token"
SECRET = "whsec_bench_secret"


@dataclass
class Row:
    mode: str
    duration: float
    jobs: int
    polls: list[int]
    to_download: list[float]
    to_reply: list[float]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def p95(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=20, method="inclusive")[18]


@contextlib.asynccontextmanager
async def world(tmp: Path, mh: FakeMagicHour, *, webhooks: bool) -> AsyncIterator[DiscordHarness]:
    env = {
        "DISCORD_TOKEN": DISCORD_TOKEN,
        "MAGIC_HOUR_API_KEY": MH_TOKEN,
        "MAGIC_HOUR_BASE_URL": mh.base_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
        "MAX_JOBS_PER_MEMBER": "100",
        "MAX_CONCURRENT_JOBS": "64",
        "DEFAULT_GUILD_CREDIT_LIMIT": "100000",
    }
    if webhooks:
        env |= {"PORT": "0", "HOST": "127.0.0.1", "MAGIC_HOUR_WEBHOOK_SECRET": SECRET}
    settings = parse_settings(env)
    async with open_resources(settings) as resources:  # production poll schedules, both of them
        bot = BackgroundBot(settings, resources)
        async with (
            DiscordHarness(bot, token=DISCORD_TOKEN, ready=True) as harness,
            serve_http(settings, resources, gateway_connected=bot.gateway_connected) as port,
        ):
            if port is not None:
                mh.send_webhooks(f"http://127.0.0.1:{port}/webhooks/magic-hour", SECRET)
            yield harness


async def run(mode: str, duration: float, jobs: int, stagger: float) -> Row:
    async with FakeMagicHour(token=MH_TOKEN, job_duration=duration) as mh:
        with tempfile.TemporaryDirectory() as tmp:
            async with world(Path(tmp), mh, webhooks=mode == "webhooks") as harness:
                payloads = [
                    harness.slash_command(
                        "remove-background",
                        {"image": make_attachment(f"p{i}.png")},
                        user=Member(user=make_user(f"m{i}")),
                    )
                    for i in range(jobs)
                ]
                ids = []
                for payload in payloads:
                    ids.append(harness.dispatch(payload))
                    if stagger:
                        await asyncio.sleep(stagger)
                await asyncio.gather(*(harness.finished(i, timeout=duration + 60) for i in ids))
                replies: list[float] = []
                by_name = {job.name: job for job in mh.jobs.values()}
                for interaction_id, payload in zip(ids, payloads, strict=True):
                    job = next(j for name, j in by_name.items() if name and name.endswith(f"#{interaction_id}"))
                    carried = [e.at for e in harness.original_edits(payload["token"]) if e.files]
                    if carried:
                        replies.append(carried[0] - job.completed_at)
        return Row(
            mode=mode,
            duration=duration,
            jobs=jobs,
            polls=[job.polls for job in mh.jobs.values()],
            to_download=mh.completion_to_download(),
            to_reply=replies,
        )


def ms(value: float) -> str:
    return f"{value * 1000:.0f} ms"


def table(rows: list[Row]) -> str:
    lines = [
        "| mode | job | jobs | polls/job (median / max) | completion→download median / p95 "
        "| completion→reply median / p95 |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row.mode} | {row.duration:g} s | {row.jobs} | {median(row.polls):g} / {max(row.polls)} "
            f"| {ms(median(row.to_download))} / {ms(p95(row.to_download))} "
            f"| {ms(median(row.to_reply))} / {ms(p95(row.to_reply))} |"
        )
    return "\n".join(lines)


async def main_async(jobs: int, durations: list[float], stagger: float) -> list[Row]:
    rows = []
    for duration in durations:
        for mode in ("polling", "webhooks"):
            rows.append(await run(mode, duration, jobs, stagger))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--durations", default="2,4,10")
    parser.add_argument("--stagger", type=float, default=None, help="seconds between commands (default: all at once)")
    parser.add_argument("--stalled", type=int, default=0, help="N stalled connections while members run commands")
    parser.add_argument("--linger", type=float, default=12.0, help="with --stalled: seconds to go on sampling")
    args = parser.parse_args()
    if args.stalled:
        from bench.stalled import run_stalled  # imports this module: not at the top

        duration = float(args.durations.split(",")[0])  # one job length: the first
        run_stalled(args.stalled, args.jobs, duration, 0.2 if args.stagger is None else args.stagger, args.linger)
        return
    args.stagger = args.stagger or 0.0
    durations = [float(d) for d in args.durations.split(",")]
    print(table(asyncio.run(main_async(args.jobs, durations, args.stagger))))
    print("\ngoal with webhooks: ≤ 1 poll per job, completion→reply median under 50 ms")


if __name__ == "__main__":
    main()
