"""The line for job slots: first come, first served, with positions, and cancellation frees a place."""

from __future__ import annotations

import asyncio

from bot.slots import SlotQueue


async def test_waiters_are_served_in_order_and_told_their_position() -> None:
    slots = SlotQueue(1)
    await slots.acquire()
    positions: dict[str, list[int]] = {"a": [], "b": []}
    order: list[str] = []

    async def waiter(name: str) -> None:
        async def report(position: int) -> None:
            positions[name].append(position)

        await slots.acquire(report)
        order.append(name)
        slots.release()

    a = asyncio.create_task(waiter("a"))
    await asyncio.sleep(0)
    b = asyncio.create_task(waiter("b"))
    await asyncio.sleep(0)
    assert slots.waiting == 2
    slots.release()
    await asyncio.gather(a, b)
    assert order == ["a", "b"]
    assert positions["a"] == [1]
    assert positions["b"][:2] == [2, 1]
    assert slots.in_use == 0


async def test_a_cancelled_waiter_leaves_the_line_and_others_move_up() -> None:
    slots = SlotQueue(1)
    await slots.acquire()
    seen: list[int] = []

    async def report(position: int) -> None:
        seen.append(position)

    first = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    second = asyncio.create_task(slots.acquire(report))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert slots.waiting == 1
    assert seen == [2, 1]
    slots.release()
    await second
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0


async def test_capacity_is_never_exceeded() -> None:
    slots = SlotQueue(3)
    running = 0
    peak = 0

    async def job() -> None:
        nonlocal running, peak
        await slots.acquire()
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1
        slots.release()

    await asyncio.gather(*(job() for _ in range(30)))
    assert peak == 3
    assert slots.in_use == 0
