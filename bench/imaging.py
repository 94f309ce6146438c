"""Time and peak memory of the local image work (issue #19) on a large cutout, and under a burst.

Run: python -m bench.imaging [--side 4096] [--burst 8] [--quick]

Each scenario runs in a fresh child process, so one scenario's peak cannot hide another's: the child
reads the input bytes, notes its resident memory, runs the scenario, and reports the kernel's
high-water mark (VmHWM) above that. The input is a synthetic cutout: a textured, noisy subject with a
soft-edged alpha matte on transparency, about as hard to compress as a photo.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

from bench.process_memory import status_kib
from bot.imaging import ImageWorker, ResultOptions, make_emoji, make_sticker, process
from bot.imaging.results import WEBP_MAX_PIXELS

WHITE = (255, 255, 255)


def cutout_png(width: int, height: int) -> bytes:
    """A photo-like subject (gradient + noise) on a soft elliptical matte, the rest transparent."""
    noise = Image.effect_noise((width, height), 40)
    vertical = Image.linear_gradient("L")
    red = Image.blend(noise, vertical.resize((width, height)), 0.5)
    green = Image.blend(noise, vertical.transpose(Image.Transpose.ROTATE_90).resize((width, height)), 0.5)
    blue = noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    alpha = Image.new("L", (width, height), 0)
    ImageDraw.Draw(alpha).ellipse((width * 0.2, height * 0.15, width * 0.8, height * 0.9), fill=255)
    alpha = alpha.filter(ImageFilter.BoxBlur(max(2, width // 400)))
    image = Image.merge("RGBA", (red, green, blue, alpha))
    out = io.BytesIO()
    image.save(out, "PNG", compress_level=1)
    return out.getvalue()


# --------------------------------------------------------------------------- the child: one scenario


def single(fn: Callable[[bytes], object]) -> Callable[[bytes, int], object]:
    return lambda data, _burst: fn(data)


def burst(parallel: int) -> Callable[[bytes, int], object]:
    async def run(data: bytes, count: int) -> list[object]:
        """Each result is dropped once made (as the bot does once it is uploaded); the first is kept to report."""
        options = ResultOptions(color=WHITE, trim=True)
        async with ImageWorker(max_parallel=parallel) as worker:

            async def one(index: int) -> object:
                result = await worker.run(process, data, options)
                return result if index == 0 else None

            return await asyncio.gather(*(one(index) for index in range(count)))

    return lambda data, count: asyncio.run(run(data, count))


SCENARIOS: dict[str, Callable[[bytes, int], object]] = {
    "process: default (header only)": single(lambda d: process(d, ResultOptions())),
    "process: trim, png": single(lambda d: process(d, ResultOptions(trim=True))),
    "process: trim + colour, png": single(lambda d: process(d, ResultOptions(color=WHITE, trim=True))),
    "process: webp (lossless)": single(lambda d: process(d, ResultOptions(format="webp"))),
    "process: trim + colour, webp": single(lambda d: process(d, ResultOptions(color=WHITE, trim=True, format="webp"))),
    "make_emoji": single(lambda d: make_emoji(d, "bench.png")),
    "make_sticker": single(lambda d: make_sticker(d, "bench.png")),
    "burst: trim + colour, ImageWorker(2)": burst(2),
    "burst: trim + colour, ImageWorker(8)": burst(8),
}


def child(scenario: str, path: str, count: int) -> None:
    data = Path(path).read_bytes()
    baseline = status_kib("VmRSS")
    started, cpu_started = time.perf_counter(), time.process_time()
    result = SCENARIOS[scenario](data, count)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    first = result[0] if isinstance(result, list) else result
    size = len(getattr(first, "data", b""))
    kind = getattr(first, "extension", "png")
    peak = (status_kib("VmHWM") - baseline) / 1024
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mb": peak, "bytes": size, "format": kind}))


# --------------------------------------------------------------------------- the parent: the table


def measure(scenario: str, path: Path, count: int) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, "-m", "bench.imaging", "--child", scenario, str(path), str(count)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def rows_for(args: argparse.Namespace) -> list[tuple[tuple[int, int], list[str]]]:
    """The large cutout with every scenario; WebP just under its cap; PNG at the pixel limit."""
    plan = [((args.side, args.side), list(SCENARIOS))]
    if not args.quick:
        side = int(WEBP_MAX_PIXELS**0.5)
        plan.append(((side, side), ["process: webp (lossless)", "process: trim + colour, webp"]))
        plan.append(((6400, 6250), ["process: trim, png", "process: trim + colour, png"]))
    return plan


def main(args: argparse.Namespace) -> None:
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as folder:
        for (width, height), scenarios in rows_for(args):
            path = Path(folder, f"{width}x{height}.png")
            path.write_bytes(cutout_png(width, height))
            label = f"{width}×{height} ({width * height / 1e6:.1f} MP, {path.stat().st_size / 1e6:.0f} MB PNG)"
            for scenario in scenarios:
                count = args.burst if scenario.startswith("burst") else 1
                got = measure(scenario, path, count)
                name = scenario.replace("burst:", f"burst of {count}:")
                wall, cpu, peak = f"{got['seconds']:.2f} s", f"{got['cpu']:.2f} s", f"{got['peak_mb']:.0f} MB"
                output = f"{got['format']}, {got['bytes'] / 1e6:.2f} MB"
                rows.append((label, name, wall, cpu, peak, output))
                label = ""
    print("| input | scenario | wall | CPU | peak RSS growth | output (first) |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", type=int, default=4096, help="the large cutout's side, in pixels")
    parser.add_argument("--burst", type=int, default=8, help="images processed in the burst rows")
    parser.add_argument("--quick", action="store_true", help="the large cutout only (no WebP-cap or 40 MP rows)")
    parser.add_argument("--child", nargs=3, metavar=("SCENARIO", "PATH", "COUNT"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.child:
        scenario_name, input_path, burst_count = arguments.child
        child(scenario_name, input_path, int(burst_count))
    else:
        main(arguments)
