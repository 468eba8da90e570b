"""The clocks the runtime reads time from: the real one, and the box's scaled one."""

from __future__ import annotations

import asyncio
import time

import pytest

from canaryd.runtime.clock import REAL_CLOCK, ScaledClock, wait_event


def test_the_real_clock_is_the_process_clock() -> None:
    assert abs(REAL_CLOCK.now() - time.time()) < 1
    assert abs(REAL_CLOCK.monotonic() - time.monotonic()) < 1


def test_a_scaled_clock_starts_where_told_and_runs_faster() -> None:
    clock = ScaledClock(1000, start=1_000_000.0)
    assert 1_000_000.0 <= clock.now() < 1_000_000.0 + 500
    assert clock.monotonic() >= 0
    with pytest.raises(ValueError):
        ScaledClock(0)


async def test_a_scaled_sleep_takes_a_fraction_of_the_time() -> None:
    clock = ScaledClock(1000)
    before, real = clock.monotonic(), time.monotonic()
    await clock.sleep(50)  # 50 virtual seconds
    assert clock.monotonic() - before >= 50
    assert time.monotonic() - real < 5


@pytest.mark.parametrize("clock", [REAL_CLOCK, ScaledClock(1000)])
async def test_wait_event(clock: object) -> None:
    event = asyncio.Event()
    assert await wait_event(clock, event, 0.01 if clock is REAL_CLOCK else 10) is False  # type: ignore[arg-type]
    asyncio.get_running_loop().call_soon(event.set)
    assert await wait_event(clock, event, 60) is True  # type: ignore[arg-type]
    assert await wait_event(clock, event, 60) is True  # type: ignore[arg-type]  # already set


@pytest.mark.parametrize("clock", [REAL_CLOCK, ScaledClock(1000)])
async def test_a_cancellation_arriving_with_the_event_is_not_swallowed(clock: object) -> None:
    """A task woken and cancelled in the same loop iteration (its Canary changed, then deleted) must end:
    asyncio.wait_for on 3.11 returned the event's result instead, and the task lived on (issue 17)."""
    event = asyncio.Event()
    waiting = asyncio.ensure_future(wait_event(clock, event, 60))  # type: ignore[arg-type]
    await asyncio.sleep(0.01)
    assert not waiting.done()
    event.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
