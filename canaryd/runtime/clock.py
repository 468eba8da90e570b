"""Where the runtime reads time: a ``Clock`` passed in through the Context (tasks, deadlines, the lease,
finalizers, lateness metrics) instead of ``time.time`` / ``time.monotonic`` / ``asyncio.sleep`` read
directly.

Why: the runtime's waits are long (analysis intervals of minutes, lease durations of seconds), so a test
of the real loop over real sockets would take as long as a release. A test passes a faster clock
(``tests/box``: :class:`ScaledClock`, virtual time running N times faster than the event loop's) and
the same code runs a whole release in seconds, with no fake event loop. Production uses
:data:`REAL_CLOCK`. I/O timeouts of single requests (aiohttp, the API client's retries) stay in real
time: they bound how long a peer may take to answer, not when the next step is due.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock time for deadlines kept in status, monotonic time for local intervals, and sleeping."""

    def now(self) -> float:
        """Seconds since the epoch (the time written to, and compared with, ``status`` deadlines)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals measured inside this process)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class RealClock:
    """The process's own clocks: ``time.time``, ``time.monotonic`` and ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


REAL_CLOCK = RealClock()


class ScaledClock:
    """Virtual time that runs ``factor`` times faster than the event loop's (``factor`` 50: a 30 s
    analysis interval passes in 0.6 s). Starts at ``start`` (default: now) and moves on its own, so real
    I/O and virtual waits mix without any test stepping the clock."""

    def __init__(self, factor: float, start: float | None = None) -> None:
        if factor <= 0:
            raise ValueError("the clock's factor must be positive")
        self.factor = factor
        self._origin = time.monotonic()
        self._wall = time.time() if start is None else start

    def _elapsed(self) -> float:
        return (time.monotonic() - self._origin) * self.factor

    def now(self) -> float:
        return self._wall + self._elapsed()

    def monotonic(self) -> float:
        return self._elapsed()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.factor)


async def wait_event(clock: Clock, event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` of ``clock`` time have passed; True when set."""
    if event.is_set():
        return True
    if isinstance(clock, RealClock):  # the common case needs no second task
        try:
            # not asyncio.wait_for: on Python 3.11 it swallows a cancellation that arrives with the
            # event set, so a deleted Canary's task lived on beside its re-created successor (issue 17)
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            return False
        return True
    waiter = asyncio.ensure_future(event.wait())
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        sleeper.cancel()
    return event.is_set()
