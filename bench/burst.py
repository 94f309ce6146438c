"""Acknowledgement latency under a burst of interactions, and peak memory with large results in flight.

Run: python -m bench.burst [--burst 100] [--inflight 50] [--result-mib 8] [--job-seconds 4]
     [--batch-requests 20] [--batch-images 5] [--batches-only]
     [--options-burst 50] [--options-side 1536] [--options-slots 1] [--options-only]

The bot is the real `BackgroundBot` (discord.py, cogs, job runner, SQLite ledger in a temp directory,
the production poll schedule), logged in through `DiscordHarness`. The fakes (Discord's REST API and
Magic Hour) run in a child process: the fake Discord records every uploaded file's bytes (it has no
option not to), so 50 results of 8 MiB would put 400 MiB of the harness's own memory in the process we
measure, and the fakes' request handling would compete with the bot for the event loop during the
burst. In a separate process the bot process is measured alone; the child's peak is reported too.

The options row sends `/remove-background color:#ffffff trim:True` at once, with results that are real
cutouts (a photo-like subject of random pixels on transparency, so PNG cannot compress it away): each result
is decoded, trimmed, composited and encoded in the bot's `ImageWorker`, IMAGE_PROCESSING_SLOTS at a time.

`Route.BASE` is patched in the bot's process (the harness does it); interactions are registered with
the child over a small control server before they are dispatched, and the child's callback arrival
times are compared with the dispatch times on the same system-wide monotonic clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image, ImageDraw

from bench.process_memory import PeakSampler, status_kib
from bot.adapter.bot import BackgroundBot
from bot.resources import open_resources
from bot.settings import parse_settings
from tests.fakes.discord_api import FakeDiscordAPI, RecordedRequest
from tests.fakes.discord_harness import DiscordHarness
from tests.fakes.interactions import Member, User, make_attachment, make_user
from tests.fakes.magic_hour import PNG_BYTES, FakeMagicHour

DISCORD_TOKEN = "discord.bench.fake-token"
MH_TOKEN = "mhk_bench_fake_key"
MIB = 1024 * 1024
ACK_GOAL_MS = 300.0
MEMORY_GOAL_MB = 250.0


# --------------------------------------------------------------------------- the child: both fakes


def result_bytes(size: int) -> bytes:
    """PNG-ish: a real 1x1 header (so the fake Discord reads dimensions), then incompressible filler."""
    header = PNG_BYTES[:33]  # signature + IHDR
    return header + os.urandom(max(0, size - len(header)))


def photo_cutout(side: int) -> bytes:
    """A background removal as Magic Hour returns it: an RGBA PNG, a round subject of random (incompressible)
    pixels covering about half of the square, transparent around it."""
    subject = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    mask = Image.new("L", (side, side), 0)
    inset = side // 10
    ImageDraw.Draw(mask).ellipse((inset, inset, side - inset - 1, side - inset - 1), fill=255)
    subject.putalpha(mask)
    out = io.BytesIO()
    subject.save(out, "PNG")
    return out.getvalue()


def is_delivery(record: RecordedRequest, size: int) -> bool:
    """The reply edited with the whole result attached, and accepted."""
    return (
        record.method == "PATCH"
        and record.path.endswith("/@original")
        and record.status == 200
        and any(len(upload.data) == size for upload in record.files)
    )


def is_result_upload(record: RecordedRequest) -> bool:
    """An accepted edit of the reply or followup (POST /webhooks/<app>/<token>) that carried files."""
    on_webhook = record.path.startswith("/webhooks/")
    return on_webhook and record.method in ("PATCH", "POST") and record.status == 200 and bool(record.files)


async def serve_fakes(config: dict[str, Any]) -> None:
    """Both fakes plus a control server; prints their addresses as one JSON line, runs until told to stop."""
    mh = FakeMagicHour(token=MH_TOKEN, job_duration=config["job_seconds"])
    cutout_side = config.get("cutout_side")
    mh.output_bytes = photo_cutout(cutout_side) if cutout_side else result_bytes(config["result_bytes"])
    discord_api = FakeDiscordAPI(
        token=DISCORD_TOKEN,
        application_id=config["application_id"],
        bot_user=User(id=config["application_id"], username="background-bot", bot=True),
        owner=User(id=config["owner_id"], username="owner"),
        validate=False,  # the tests check the contract; here the fake's CPU would count as the bot's latency
    )
    stop = asyncio.Event()

    async def register(request: web.Request) -> web.Response:
        for payload in await request.json():
            discord_api.register_interaction(payload)
        return web.json_response({"ok": True})

    async def report(request: web.Request) -> web.Response:
        acks: dict[str, float] = {}
        delivered: dict[str, float] = {}
        files: dict[str, int] = {}  # result files that reached each interaction's reply and followups
        processed = 0  # of those, files that are not Magic Hour's bytes as they came (options applied)
        by_token = {record.token: str(record.id) for record in discord_api.interactions.values()}
        for record in discord_api.requests:
            parts = record.path.split("/")
            if record.method == "POST" and record.path.endswith("/callback"):
                acks.setdefault(parts[2], record.at)
            elif is_delivery(record, config["result_bytes"]):
                delivered[by_token.get(parts[3], "?")] = record.at
            if is_result_upload(record) and len(parts) > 3:
                if cutout_side:  # processed results have sizes of their own: every file counts
                    carried = len(record.files)
                    processed += sum(upload.data != mh.output_bytes for upload in record.files)
                else:
                    carried = sum(len(upload.data) == config["result_bytes"] for upload in record.files)
                key = by_token.get(parts[3], "?")
                files[key] = files.get(key, 0) + carried
                delivered[key] = max(delivered.get(key, 0.0), record.at)
        return web.json_response(
            {
                "acks": acks,
                "delivered": delivered,
                "files": files,
                "processed": processed,
                "violations": mh.violations,
                "mh_creates": mh.creates,
                "vm_hwm_kib": status_kib("VmHWM"),
            }
        )

    async def shutdown(request: web.Request) -> web.Response:
        stop.set()
        return web.json_response({"ok": True})

    control = web.Application()
    control.router.add_post("/register", register)
    control.router.add_get("/report", report)
    control.router.add_post("/shutdown", shutdown)
    runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    async with mh:
        await discord_api.start()
        try:
            addresses = {"discord": discord_api.base_url, "mh": mh.base_url, "control": f"http://{host}:{port}"}
            print(json.dumps(addresses), flush=True)
            await stop.wait()
        finally:
            await discord_api.close()
            await runner.cleanup()


# --------------------------------------------------------------------------- the bot's side


class RemoteDiscordAPI(FakeDiscordAPI):
    """The harness's view of a fake Discord that runs in the child: same identity, no server here."""

    def __init__(self, remote: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.remote = remote

    async def start(self) -> None:
        return None

    async def close(self, check: bool = False) -> None:
        return None  # the child's fakes are closed with the child

    @property
    def base_url(self) -> str:
        return self.remote


@dataclass
class Fakes:
    process: asyncio.subprocess.Process
    discord: str
    mh: str
    control: str
    session: aiohttp.ClientSession

    async def register(self, payloads: list[dict[str, Any]]) -> None:
        async with self.session.post(f"{self.control}/register", json=payloads) as response:
            response.raise_for_status()

    async def report(self) -> dict[str, Any]:
        async with self.session.get(f"{self.control}/report") as response:
            response.raise_for_status()
            return await response.json()


@contextlib.asynccontextmanager
async def child_fakes(config: dict[str, Any]) -> AsyncIterator[Fakes]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.burst", "--serve-fakes", json.dumps(config), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        line = await asyncio.wait_for(process.stdout.readline(), timeout=20)
        if not line:
            raise RuntimeError("the fakes' process exited before it started serving")
        addresses = json.loads(line)
        async with aiohttp.ClientSession() as session:
            yield Fakes(process, addresses["discord"], addresses["mh"], addresses["control"], session)
            with contextlib.suppress(aiohttp.ClientError):
                async with session.post(f"{addresses['control']}/shutdown"):
                    pass
        await asyncio.wait_for(process.wait(), timeout=10)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


@dataclass
class World:
    harness: DiscordHarness
    fakes: Fakes


@contextlib.asynccontextmanager
async def bot_world(
    tmp: Path, *, job_seconds: float, result_size: int, cutout_side: int | None = None, **overrides: str
) -> AsyncIterator[World]:
    """A real bot logged in against the child's fakes, with a fresh SQLite ledger in `tmp`; with `cutout_side`,
    Magic Hour's results are real cutouts of that size instead of `result_size` bytes of filler."""
    application_id, owner_id = 900_000_000_000_000_001, 900_000_000_000_000_002
    config = {
        "application_id": application_id,
        "owner_id": owner_id,
        "job_seconds": job_seconds,
        "result_bytes": result_size,
        "cutout_side": cutout_side,
    }
    async with child_fakes(config) as fakes:
        settings = parse_settings(
            {
                "DISCORD_TOKEN": DISCORD_TOKEN,
                "MAGIC_HOUR_API_KEY": MH_TOKEN,
                "MAGIC_HOUR_BASE_URL": fakes.mh,
                "DATABASE_URL": f"sqlite:///{tmp / 'bot.db'}",
                "SHUTDOWN_GRACE_SECONDS": "5",
                **overrides,
            }
        )
        async with open_resources(settings) as resources:
            bot = BackgroundBot(settings, resources)  # the production poll schedule: the delivery times are realistic
            harness = DiscordHarness(bot, token=DISCORD_TOKEN, application_id=application_id, owner_id=owner_id)
            harness.api = RemoteDiscordAPI(
                fakes.discord,
                token=DISCORD_TOKEN,
                application_id=application_id,
                bot_user=harness.bot_user,
                owner=harness.owner,
            )
            async with harness:
                yield World(harness, fakes)


def burst_payloads(harness: DiscordHarness, count: int) -> list[dict[str, Any]]:
    """One /remove-background per member, so the per-member limit refuses none of them."""
    return [
        harness.slash_command(
            "remove-background",
            {"image": make_attachment(f"photo{i}.png")},
            user=Member(user=make_user(f"member{i}")),
        )
        for i in range(count)
    ]


@dataclass
class RunResult:
    dispatched_at: dict[int, float]
    report: dict[str, Any]
    elapsed: float
    handler_errors: int
    dispatch_loop_ms: float

    def ack_ms(self) -> list[float]:
        acks = self.report["acks"]
        return sorted((acks[str(i)] - t) * 1000 for i, t in self.dispatched_at.items() if str(i) in acks)

    def delivered(self) -> int:
        return sum(str(i) in self.report["delivered"] for i in self.dispatched_at)

    def files_delivered(self) -> int:
        return sum(self.report["files"].get(str(i), 0) for i in self.dispatched_at)

    def all_delivered_s(self) -> float:
        first = min(self.dispatched_at.values())
        return max(self.report["delivered"].values(), default=first) - first


def options_payloads(harness: DiscordHarness, count: int) -> list[dict[str, Any]]:
    """One `/remove-background color:#ffffff trim:True` per member."""
    return [
        harness.slash_command(
            "remove-background",
            {"image": make_attachment(f"portrait{i}.png"), "color": "#ffffff", "trim": True},
            user=Member(user=make_user(f"artist{i}")),
        )
        for i in range(count)
    ]


def batch_payloads(harness: DiscordHarness, count: int, images: int) -> list[dict[str, Any]]:
    """One "Remove background" menu per member, on a message of `images` photos."""
    payloads = []
    for i in range(count):
        attachments = [make_attachment(f"shop{i}-item{n}.png") for n in range(images)]
        message = harness.add_message(content="new stock", attachments=attachments)
        payloads.append(
            harness.message_context_menu("Remove background", message, user=Member(user=make_user(f"shop{i}")))
        )
    return payloads


async def run_burst(
    world: World, count: int, timeout: float, payloads: list[dict[str, Any]] | None = None
) -> RunResult:
    """Register every interaction with the child first, then dispatch them all in one go."""
    harness = world.harness
    payloads = payloads if payloads is not None else burst_payloads(harness, count)
    await world.fakes.register(payloads)
    dispatched: dict[int, float] = {}
    started = time.monotonic()
    for payload in payloads:
        dispatched[int(payload["id"])] = time.monotonic()
        harness.dispatch(payload)
    loop_ms = (time.monotonic() - started) * 1000  # no handler runs before this loop yields
    await harness.finished(timeout=timeout)
    elapsed = time.monotonic() - started
    return RunResult(dispatched, await world.fakes.report(), elapsed, len(harness.errors), loop_ms)


# --------------------------------------------------------------------------- the two scenarios


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile: p99 of 100 values is the 99th smallest, not an interpolation."""
    rank = max(1, -(-len(values) * q // 100))
    return values[int(rank) - 1]


@dataclass
class Rows:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)
    verdicts: list[str] = field(default_factory=list)

    def add(self, scenario: str, metric: str, value: str, goal: str = "") -> None:
        self.rows.append((scenario, metric, value, goal))


async def burst_scenario(args: argparse.Namespace, out: Rows) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp:
        async with bot_world(
            Path(tmp),
            job_seconds=args.job_seconds,
            result_size=64 * 1024,
            DEFAULT_GUILD_CREDIT_LIMIT=str(args.burst * 5 * 10),
            MAX_CONCURRENT_JOBS="16",
        ) as world:
            result = await run_burst(world, args.burst, timeout=120)
    acks = result.ack_ms()
    name = f"burst of {args.burst}, 16 concurrent"
    out.add(name, "interactions acknowledged", f"{len(acks)}/{args.burst}")
    out.add(name, "dispatching all (harness, synchronous)", f"{result.dispatch_loop_ms:.1f} ms")
    out.add(name, "ack latency min", f"{acks[0]:.1f} ms")
    out.add(name, "ack latency p50", f"{percentile(acks, 50):.1f} ms")
    out.add(name, "ack latency p99", f"{percentile(acks, 99):.1f} ms", f"< {ACK_GOAL_MS:.0f} ms")
    out.add(name, "ack latency max", f"{acks[-1]:.1f} ms")
    out.add(name, "results delivered", f"{result.delivered()}/{args.burst}", f"{args.burst}/{args.burst}")
    out.add(name, "all delivered after", f"{result.all_delivered_s():.1f} s")
    p99 = percentile(acks, 99)
    ok = len(acks) == args.burst and p99 < ACK_GOAL_MS
    out.verdicts.append(
        f"- Acknowledgement: {'PASS' if ok else 'FAIL'}: p99 {p99:.1f} ms (goal < {ACK_GOAL_MS:.0f} ms), "
        f"{len(acks)}/{args.burst} acknowledged, {result.delivered()}/{args.burst} results delivered "
        f"in {result.all_delivered_s():.1f} s, {result.handler_errors} handler errors, "
        f"Magic Hour contract violations: {len(result.report['violations'])}."
    )


async def batch_scenario(args: argparse.Namespace, out: Rows) -> None:
    requests, images = args.batch_requests, args.batch_images
    total = requests * images
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        async with bot_world(
            Path(tmp),
            job_seconds=args.job_seconds,
            result_size=64 * 1024,
            DEFAULT_GUILD_CREDIT_LIMIT=str(total * 5 * 10),
            MAX_CONCURRENT_JOBS="16",
        ) as world:
            payloads = batch_payloads(world.harness, requests, images)
            sampler = PeakSampler()
            sampler.start()
            result = await run_burst(world, requests, timeout=300, payloads=payloads)
            peak = sampler.stop().growth_mb
    acks = result.ack_ms()
    name = f"{requests} requests of {images} images, 16 concurrent"
    p99 = percentile(acks, 99)
    out.add(name, "interactions acknowledged", f"{len(acks)}/{requests}")
    out.add(name, "ack latency p99", f"{p99:.1f} ms", f"< {ACK_GOAL_MS:.0f} ms")
    out.add(name, "images delivered", f"{result.files_delivered()}/{total}", f"{total}/{total}")
    out.add(name, "all delivered after", f"{result.all_delivered_s():.1f} s")
    out.add(name, "peak RSS growth (kernel VmHWM)", f"{peak:.1f} MB", f"< {MEMORY_GOAL_MB:.0f} MB")
    ok = len(acks) == requests and p99 < ACK_GOAL_MS and result.files_delivered() == total and peak < MEMORY_GOAL_MB
    out.verdicts.append(
        f"- Batches: {'PASS' if ok else 'FAIL'}: {requests} requests of {images} images, ack p99 {p99:.1f} ms, "
        f"{result.files_delivered()}/{total} images delivered in {result.all_delivered_s():.1f} s, peak RSS growth "
        f"{peak:.1f} MB, {result.handler_errors} handler errors, "
        f"Magic Hour contract violations: {len(result.report['violations'])}."
    )


async def options_scenario(args: argparse.Namespace, out: Rows) -> None:
    count, side = args.options_burst, args.options_side
    with tempfile.TemporaryDirectory(prefix="bench-options-") as tmp:
        async with bot_world(
            Path(tmp),
            job_seconds=args.job_seconds,
            result_size=0,
            cutout_side=side,
            DEFAULT_GUILD_CREDIT_LIMIT=str(count * 5 * 10),
            MAX_CONCURRENT_JOBS="16",
            IMAGE_PROCESSING_SLOTS=str(args.options_slots),
        ) as world:
            slots = args.options_slots
            payloads = options_payloads(world.harness, count)
            sampler = PeakSampler()
            sampler.start()
            result = await run_burst(world, count, timeout=600, payloads=payloads)
            peak = sampler.stop().growth_mb
    acks = result.ack_ms()
    p99 = percentile(acks, 99)
    files, processed = result.files_delivered(), result.report["processed"]
    name = f"{count} with color:#ffffff trim:True, {side}x{side} cutouts, {slots} image slot(s)"
    out.add(name, "interactions acknowledged", f"{len(acks)}/{count}")
    out.add(
        name,
        "ack latency p50 / p99 / max",
        f"{percentile(acks, 50):.1f} / {p99:.1f} / {acks[-1]:.1f} ms",
        f"p99 < {ACK_GOAL_MS:.0f} ms",
    )
    out.add(name, "results delivered (processed)", f"{files}/{count} ({processed})", f"{count}/{count}")
    out.add(name, "all delivered after", f"{result.all_delivered_s():.1f} s")
    out.add(name, "peak RSS growth (kernel VmHWM)", f"{peak:.1f} MB", f"< {MEMORY_GOAL_MB:.0f} MB")
    ok = len(acks) == count and p99 < ACK_GOAL_MS and processed == count and peak < MEMORY_GOAL_MB
    out.verdicts.append(
        f"- Options: {'PASS' if ok else 'FAIL'}: {count} coloured and trimmed results of {side}x{side}, ack p99 "
        f"{p99:.1f} ms, {processed}/{count} processed and delivered in {result.all_delivered_s():.1f} s, peak RSS "
        f"growth {peak:.1f} MB, {result.handler_errors} handler errors, "
        f"Magic Hour contract violations: {len(result.report['violations'])}."
    )


async def memory_pass(args: argparse.Namespace, *, trace: bool) -> tuple[RunResult, dict[str, float]]:
    """One run of `inflight` jobs with results of `result_mib`; with `trace`, tracemalloc instead of RSS."""
    size = int(args.result_mib * MIB)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        async with bot_world(
            Path(tmp),
            job_seconds=args.job_seconds,
            result_size=size,
            DEFAULT_GUILD_CREDIT_LIMIT=str(args.inflight * 5 * 10),
            MAX_CONCURRENT_JOBS=str(args.inflight),
        ) as world:
            figures: dict[str, float] = {}
            if trace:
                tracemalloc.start()
                tracemalloc.reset_peak()
                result = await run_burst(world, args.inflight, timeout=120)
                figures["traced_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
                tracemalloc.stop()
            else:
                sampler = PeakSampler()
                sampler.start()
                result = await run_burst(world, args.inflight, timeout=120)
                peaks = sampler.stop()
                figures["rss_peak_mb"] = peaks.sampled_growth_mb
                hwm = peaks.hwm_growth_mb
                figures["hwm_peak_mb"] = hwm if hwm is not None else peaks.sampled_growth_mb
                figures["baseline_mb"] = peaks.baseline_mb
                figures["samples"] = peaks.samples
            figures["child_hwm_mb"] = result.report["vm_hwm_kib"] * 1024 / 1e6
    return result, figures


async def memory_scenario(args: argparse.Namespace, out: Rows) -> None:
    result, rss = await memory_pass(args, trace=False)
    traced_result, traced = await memory_pass(args, trace=True)
    name = f"{args.inflight} in flight, {args.result_mib:g} MiB results"
    peak = max(rss["rss_peak_mb"], rss["hwm_peak_mb"])
    out.add(name, "bot process RSS at baseline", f"{rss['baseline_mb']:.0f} MB")
    out.add(name, "peak RSS growth (10 ms samples)", f"{rss['rss_peak_mb']:.1f} MB")
    out.add(name, "peak RSS growth (kernel VmHWM)", f"{rss['hwm_peak_mb']:.1f} MB", f"< {MEMORY_GOAL_MB:.0f} MB")
    out.add(name, "peak Python allocations (tracemalloc, 2nd run)", f"{traced['traced_peak_mb']:.1f} MB")
    out.add(
        name,
        "results delivered",
        f"{result.delivered()}/{args.inflight} (+{traced_result.delivered()} in the 2nd run)",
        f"{args.inflight}/{args.inflight}",
    )
    out.add(name, "all delivered after", f"{result.all_delivered_s():.1f} s")
    out.add(name, "fakes' process peak RSS (not counted)", f"{rss['child_hwm_mb']:.0f} MB")
    ok = peak < MEMORY_GOAL_MB and result.delivered() == args.inflight
    out.verdicts.append(
        f"- Memory: {'PASS' if ok else 'FAIL'}: peak RSS growth {peak:.1f} MB (goal < {MEMORY_GOAL_MB:.0f} MB) "
        f"with {args.inflight} jobs of {args.result_mib:g} MiB ({args.inflight * args.result_mib:g} MiB of "
        f"results), {result.delivered()}/{args.inflight} delivered; the fakes ran in their own process "
        f"(peak {rss['child_hwm_mb']:.0f} MB, holding every uploaded file) and are not counted."
    )


def markdown(out: Rows) -> str:
    lines = ["| scenario | metric | measured | goal |", "| --- | --- | --- | --- |"]
    lines += [f"| {s} | {m} | {v} | {g} |" for s, m, v, g in out.rows]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    out = Rows()
    started = time.monotonic()
    if args.options_only:
        await options_scenario(args, out)
    else:
        if not args.batches_only:
            await burst_scenario(args, out)
        await batch_scenario(args, out)
        if not args.batches_only:
            await options_scenario(args, out)
            await memory_scenario(args, out)
    print(markdown(out))
    print()
    print("\n".join(out.verdicts))
    print(
        f"\nBot process measured alone; fakes (Discord REST + Magic Hour, {args.job_seconds:g} s jobs) in a "
        f"child process on 127.0.0.1; production poll schedule; SQLite ledger in a temp dir. "
        f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs; whole run {time.monotonic() - started:.0f} s."
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", type=int, default=100, help="interactions dispatched at once")
    parser.add_argument("--inflight", type=int, default=50, help="jobs in flight for the memory run")
    parser.add_argument("--result-mib", type=float, default=8.0, help="size of each result in MiB")
    parser.add_argument("--job-seconds", type=float, default=4.0, help="fake Magic Hour job duration")
    parser.add_argument("--batch-requests", type=int, default=20, help="requests in the batch scenario")
    parser.add_argument("--batch-images", type=int, default=5, help="images per request in the batch scenario")
    parser.add_argument("--batches-only", action="store_true", help="run only the batch scenario")
    parser.add_argument("--options-burst", type=int, default=50, help="coloured and trimmed requests at once")
    parser.add_argument("--options-side", type=int, default=1536, help="side of each cutout result in pixels")
    parser.add_argument("--options-slots", type=int, default=1, help="IMAGE_PROCESSING_SLOTS for the options run")
    parser.add_argument("--options-only", action="store_true", help="run only the options scenario")
    parser.add_argument("--serve-fakes", metavar="JSON", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.serve_fakes:
        asyncio.run(serve_fakes(json.loads(arguments.serve_fakes)))
    else:
        asyncio.run(main(arguments))
