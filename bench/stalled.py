"""Members' commands while many connections stall on the bot's HTTP port: the bot's memory, descriptors, latency.

Run: python -m bench.webhooks --stalled 1000 [--jobs 10] [--durations 2] [--stagger 0.2]

Three rows in one run, each in a fresh child process that holds the bot, both fakes (in process, as in
`bench.webhooks`) and the bot's HTTP server with webhooks on: first without stalled connections, then
with `--stalled N`, then the same again with the fake Magic Hour opening a new connection for every
event (in the first two it keeps one alive, opened by the warm-up job before the attack, as a pooling
sender would; a sender behind a proxy that does not pool connects anew each time). This process is
the attacker, so its sockets and buffers are not in the measured process. Once the child has warmed
up (one job end to end) and started sampling, the attacker opens N connections to the webhook port,
alternating two kinds, and holds each until the server closes it:

- "partial": a webhook POST with present, fresh (but unsigned-for-real) headers, a Content-Length of
  the largest body the server accepts (`bot.webhooks.MAX_BODY_BYTES`), all of it but the last byte, then
  nothing;
- "silent": connects and sends nothing.

Then the members' commands run (one per member, `--stagger` apart), and the child reports its peak RSS
growth over the baseline taken just before the attack (sampled every 10 ms from a thread, and the
kernel's VmHWM after resetting it), its peak count of open file descriptors, the members'
acknowledgement delay and completion→reply delay, polls per job, and the bot's webhook counters.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.process_memory import PeakSampler
from bench.webhooks import MH_TOKEN, median, ms, p95, world
from bot.webhooks import MAX_BODY_BYTES
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.interactions import Member, make_attachment, make_user
from tests.fakes.magic_hour import FakeMagicHour

WEBHOOK_PATH = "/webhooks/magic-hour"
CONNECT_AT_ONCE = 200


# --------------------------------------------------------------------------- the measured child


def counters(registry: Any, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Every sample of the bot's own metrics whose name starts with one of `prefixes`."""
    found: dict[str, float] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.name.startswith(prefixes) and not sample.name.endswith("_created"):
                labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
                found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found


async def read_line() -> str:
    return await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)


def say(message: dict[str, Any]) -> None:
    print(json.dumps(message), flush=True)


async def member_commands(
    harness: DiscordHarness, mh: FakeMagicHour, jobs: int, duration: float, stagger: float, tag: str
) -> tuple[list[float], list[float], list[int]]:
    """One /remove-background per member; their acknowledgement delays, completion→reply delays, polls."""
    payloads = [
        harness.slash_command(
            "remove-background", {"image": make_attachment(f"{tag}{i}.png")}, user=Member(user=make_user(f"{tag}{i}"))
        )
        for i in range(jobs)
    ]
    ids = []
    for payload in payloads:
        ids.append(harness.dispatch(payload))
        if stagger:
            await asyncio.sleep(stagger)
    await asyncio.gather(*(harness.finished(i, timeout=duration + 90) for i in ids))
    acks = [harness.ack_delay(i) for i in ids]
    replies: list[float] = []
    polls: list[int] = []
    for interaction_id, payload in zip(ids, payloads, strict=True):
        job = next(j for j in mh.jobs.values() if j.name and j.name.endswith(f"#{interaction_id}"))
        polls.append(job.polls)
        carried = [e.at for e in harness.original_edits(payload["token"]) if e.files]
        if carried:
            replies.append(carried[0] - job.completed_at)
    return [a for a in acks if a is not None], replies, polls


async def run_row(config: dict[str, Any]) -> None:
    """The child: bot + fakes + HTTP server; waits for the attacker between its phases (stdin/stdout lines)."""
    async with FakeMagicHour(token=MH_TOKEN, job_duration=config["duration"]) as mh:
        mh.webhook_keepalive = not config["fresh_connections"]
        with tempfile.TemporaryDirectory(prefix="bench-stalled-") as tmp:
            async with world(Path(tmp), mh, webhooks=True) as harness:
                bot = harness.bot
                await member_commands(harness, mh, 1, config["duration"], 0.0, "warmup")
                assert mh.webhook_url is not None
                sampler = PeakSampler(fds=True)
                sampler.start()
                say({"port": urlsplit(mh.webhook_url).port, "body_cap": MAX_BODY_BYTES})
                await read_line()  # the attacker's connections are open
                before = len(mh.jobs)
                acks, replies, polls = await member_commands(
                    harness, mh, config["jobs"], config["duration"], config["stagger"], "member"
                )
                await asyncio.sleep(config.get("linger", 0.0))
                memory = asdict(sampler.stop())
                webhook_statuses: dict[str, int] = {}
                for delivery in mh.webhook_deliveries[2:]:  # the warm-up job's two events excluded
                    key = str(delivery.status)
                    webhook_statuses[key] = webhook_statuses.get(key, 0) + 1
                say(
                    {
                        "memory": memory,
                        "acks": acks,
                        "replies": replies,
                        "polls": polls,
                        "jobs": len(mh.jobs) - before,
                        "webhook_statuses": webhook_statuses,
                        "counters": counters(
                            bot.resources.metrics.registry, ("bot_webhook_events", "bot_http_connections")
                        ),
                    }
                )
                await read_line()  # the attacker has let go


# --------------------------------------------------------------------------- the attacker (this process)


@dataclass
class Held:
    kind: str
    connected: bool = False
    sent: bool = False  # all of this kind's bytes handed to the kernel
    answer: int | None = None  # the HTTP status the server answered with, if any
    closed_after: float | None = None  # seconds from connecting to the server closing the connection
    error: str | None = None


def partial_request(host: str, port: int, body_cap: int) -> bytes:
    head = (
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"magic-hour-event-timestamp: {int(time.time())}\r\n"
        f"magic-hour-event-signature: {'0' * 64}\r\n"
        f"Content-Length: {body_cap}\r\n\r\n"
    )
    return head.encode() + b" " * (body_cap - 1)


async def hold(held: Held, host: str, port: int, body_cap: int, gate: asyncio.Semaphore) -> None:
    """Connect, send this kind's bytes, then read until the server closes the connection."""
    try:
        async with gate:
            reader, writer = await asyncio.open_connection(host, port)
        held.connected = True
        started = time.monotonic()
    except OSError as error:
        held.error = type(error).__name__
        return
    try:
        if held.kind == "partial":
            writer.write(partial_request(host, port, body_cap))
            await writer.drain()
        held.sent = True
        received = b""
        while chunk := await reader.read(65536):
            received += chunk[: 64 - len(received)] if len(received) < 64 else b""
        if received.startswith(b"HTTP/1."):
            held.answer = int(received.split()[1])
        held.closed_after = time.monotonic() - started
    except OSError:
        held.closed_after = time.monotonic() - started
    finally:
        writer.close()


@dataclass
class Attack:
    held: list[Held] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def open(self, count: int, host: str, port: int, body_cap: int) -> None:
        gate = asyncio.Semaphore(CONNECT_AT_ONCE)
        self.held = [Held("partial" if i % 2 == 0 else "silent") for i in range(count)]
        self.tasks = [asyncio.create_task(hold(h, host, port, body_cap, gate)) for h in self.held]
        async with asyncio.timeout(60):  # each connected and its bytes sent, or already closed or refused
            while any(not (h.sent or h.error or h.closed_after is not None) for h in self.held):
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)

    async def release(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def summary(self, kind: str) -> str:
        mine = [h for h in self.held if h.kind == kind]
        answers: dict[str, int] = {}
        for h in mine:
            if h.answer is not None:
                answers[str(h.answer)] = answers.get(str(h.answer), 0) + 1
        closed = sorted(h.closed_after for h in mine if h.closed_after is not None)
        at_once = sum(1 for c in closed if c < 0.5)
        still_open = sum(1 for h in mine if h.connected and h.closed_after is None)
        failed = sum(1 for h in mine if h.error)
        sent = sum(1 for h in mine if h.sent)
        answered = ", ".join(f"{n}× {status}" for status, n in sorted(answers.items())) or "none"
        slowest = f"{closed[-1]:.1f} s" if closed else "-"
        return (
            f"{kind}: {len(mine)} opened, {failed} failed to connect, {sent} sent all their bytes, "
            f"closed by the server {len(closed)} "
            f"({at_once} within 0.5 s, the last after {slowest}), still open at the end {still_open}; "
            f"answers: {answered}"
        )


# --------------------------------------------------------------------------- orchestration


@dataclass
class RowResult:
    label: str
    data: dict[str, Any]
    attack: list[str]


async def one_row(label: str, stalled: int, config: dict[str, Any]) -> RowResult:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.stalled",
        "--row",
        json.dumps(config),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    attack = Attack()
    try:
        hello = json.loads(await asyncio.wait_for(child.stdout.readline(), timeout=60))
        if stalled:
            await attack.open(stalled, "127.0.0.1", hello["port"], hello["body_cap"])
        child.stdin.write(b"go\n")
        await child.stdin.drain()
        line = await asyncio.wait_for(child.stdout.readline(), timeout=config["duration"] + 180)
        data = json.loads(line)
        summary = [attack.summary("partial"), attack.summary("silent")] if stalled else []
        await attack.release()
        child.stdin.write(b"done\n")
        await child.stdin.drain()
        await asyncio.wait_for(child.wait(), timeout=30)
        return RowResult(label, data, summary)
    finally:
        await attack.release()
        if child.returncode is None:
            child.terminate()
            await child.wait()


def fmt_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} MB"


def table(rows: list[RowResult]) -> str:
    lines = [
        "| connections | peak RSS growth (VmHWM / sampled) | peak open fds | ack median / p99 "
        "| completion→reply median / p95 | polls/job max | webhook deliveries (status×n) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        d = row.data
        memory = d["memory"]
        acks = sorted(d["acks"])
        p99 = acks[min(len(acks) - 1, int(len(acks) * 0.99))] if acks else float("nan")
        statuses = ", ".join(f"{s}×{n}" for s, n in sorted(d["webhook_statuses"].items()))
        lines.append(
            f"| {row.label} | {fmt_mb(memory['hwm_growth_mb'])} / {fmt_mb(memory['sampled_growth_mb'])} "
            f"| {memory['peak_fds']} (from {memory['baseline_fds']}) | {ms(median(acks))} / {ms(p99)} "
            f"| {ms(median(d['replies']))} / {ms(p95(d['replies']))} ({len(d['replies'])}/{d['jobs']}) "
            f"| {max(d['polls'], default=0)} | {statuses} |"
        )
    return "\n".join(lines)


async def main_async(stalled: int, jobs: int, duration: float, stagger: float, linger: float) -> list[RowResult]:
    config = {"jobs": jobs, "duration": duration, "stagger": stagger, "linger": linger, "fresh_connections": False}
    rows = [await one_row("none", 0, config)]
    label = f"{stalled} stalled ({stalled - stalled // 2} partial, {stalled // 2} silent)"
    rows.append(await one_row(label, stalled, config))
    fresh = {**config, "fresh_connections": True}
    rows.append(await one_row(f"{label}, a new connection per event", stalled, fresh))
    return rows


def run_stalled(stalled: int, jobs: int, duration: float, stagger: float, linger: float) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    rows = asyncio.run(main_async(stalled, jobs, duration, stagger, linger))
    print(table(rows))
    print(f"\nulimit -n (soft/hard): {soft}/{hard}; body cap {MAX_BODY_BYTES} bytes")
    for row in rows:
        for line in row.attack:
            print(f"- {line}")
        if row.data["counters"]:
            shown = ", ".join(f"{k} {v:g}" for k, v in sorted(row.data["counters"].items()) if v)
            print(f"- {row.label}, the bot's counters: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--row", help="(internal) run one row as the measured child")
    args = parser.parse_args()
    if args.row:
        asyncio.run(run_row(json.loads(args.row)))
        return
    parser.error("run it as: python -m bench.webhooks --stalled N")


if __name__ == "__main__":
    main()
