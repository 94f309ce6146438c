"""Progress edits are coalesced: never more than one per interval, and the newest text wins."""

from __future__ import annotations

import asyncio
import itertools

from bot.adapter.progress import ThrottledEditor


async def test_bursts_of_updates_collapse_to_the_newest() -> None:
    sent: list[str] = []

    async def send(content: str, **_: object) -> None:
        sent.append(content)

    editor = ThrottledEditor(send, interval=0.05)
    await editor.update("step 0")
    await asyncio.sleep(0)  # the first edit goes out at once
    for step in range(1, 10):
        await editor.update(f"step {step}")
    await asyncio.sleep(0.12)
    assert sent == ["step 0", "step 9"]


async def test_edits_are_spaced_by_the_interval() -> None:
    times: list[float] = []
    loop = asyncio.get_running_loop()

    async def send(content: str, **_: object) -> None:
        times.append(loop.time())

    editor = ThrottledEditor(send, interval=0.05, clock=loop.time)
    for step in range(4):
        await editor.update(f"step {step}")
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 2
    assert all(gap >= 0.05 - 1e-3 for gap in gaps)


async def test_settle_drops_what_is_pending_without_waiting_for_the_interval() -> None:
    sent: list[str] = []

    async def send(content: str, **_: object) -> None:
        sent.append(content)

    editor = ThrottledEditor(send, interval=60)
    await editor.update("first")
    await asyncio.sleep(0)
    await editor.update("second")  # would wait a minute
    await asyncio.wait_for(editor.settle(), timeout=1)
    assert sent == ["first"]


async def test_settle_waits_for_an_edit_in_flight() -> None:
    release = asyncio.Event()
    finished: list[str] = []

    async def send(content: str, **_: object) -> None:
        await release.wait()
        finished.append(content)

    editor = ThrottledEditor(send, interval=0.01)
    await editor.update("in flight")
    await asyncio.sleep(0)
    settling = asyncio.create_task(editor.settle())
    await asyncio.sleep(0.01)
    assert not settling.done()
    release.set()
    await settling
    assert finished == ["in flight"]
