"""Admission of requests to the API server's connection pool, by priority.

A thousand canaries can take a step in the same second; their writes then queue for the client's pooled
connections (bench/results: at 1,000 × 60 s the latest steps waited seconds for a connection while the API
server answered in a third of a second). aiohttp's pool serves its queue first come, first served, so a
step's status write waited behind Events that only record it. Here a freed connection goes to the most
urgent waiter: the leader lease first (a lease renewal stuck in a queue loses the lease and fences every
write), then the writes and reads that make a step, then Events. Within a lane, first come first served."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from enum import IntEnum


class Lane(IntEnum):
    """Lower is served first."""

    LEASE = 0
    STEP = 1
    EVENT = 2


def lane_of(resource: str) -> Lane:
    """The lane of a request by its resource's plural (``leases``, ``events``, anything else)."""
    if resource == "leases":
        return Lane.LEASE
    if resource == "events":
        return Lane.EVENT
    return Lane.STEP


class Slots:
    """At most ``size`` requests in flight; the rest wait and are admitted by lane, then arrival."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be at least 1, not {size}")
        self._free = size
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @property
    def waiting(self) -> int:
        """Requests queued (cancelled ones not yet skipped included: an upper bound)."""
        return len(self._waiting)

    @asynccontextmanager
    async def hold(self, lane: Lane) -> AsyncIterator[None]:
        """One slot for the body of the ``async with``; waits for it when all are taken."""
        if self._free and not self._waiting:
            self._free -= 1
        else:
            granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (int(lane), next(self._arrivals), granted))
            try:
                await granted
            except asyncio.CancelledError:
                if granted.done() and not granted.cancelled():
                    self._release()  # handed a slot in the same turn it was cancelled: pass it on
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        """Hand the slot to the most urgent live waiter, or put it back."""
        while self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():  # a cancelled waiter's future is done: skipped
                granted.set_result(None)
                return
        self._free += 1
