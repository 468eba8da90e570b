"""Admission by lane (canaryd/kube/slots.py): who gets a freed slot, and that a cancelled waiter never keeps
one. Plain asyncio, no network."""

from __future__ import annotations

import asyncio

import pytest

from canaryd.kube.slots import Lane, Slots, lane_of


@pytest.mark.parametrize(("resource", "lane"), [
    ("leases", Lane.LEASE), ("events", Lane.EVENT), ("canaries", Lane.STEP), ("virtualservices", Lane.STEP),
    ("deployments", Lane.STEP), ("secrets", Lane.STEP), ("", Lane.STEP),
])
def test_lane_of(resource: str, lane: Lane) -> None:
    assert lane_of(resource) == lane


def test_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        Slots(0)


async def _until(pred: object) -> None:
    async with asyncio.timeout(5):
        while not pred():  # type: ignore[operator]  # noqa: ASYNC110 (the queue's state, polled)
            await asyncio.sleep(0)


class Takers:
    """Tasks that each take a slot, record their name once they hold it, and hold it until ``hold`` is set
    (when given)."""

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.got: list[str] = []

    def start(self, name: str, lane: Lane = Lane.STEP,
              hold: asyncio.Event | None = None) -> asyncio.Task[None]:
        async def take() -> None:
            async with self.slots.hold(lane):
                self.got.append(name)
                if hold is not None:
                    await hold.wait()
        return asyncio.create_task(take())


async def test_freed_slots_go_by_lane_then_arrival() -> None:
    takers = Takers(Slots(1))
    release = asyncio.Event()
    first = takers.start("first", Lane.EVENT, release)
    await _until(lambda: takers.got == ["first"])
    queued = [("event-1", Lane.EVENT), ("step-1", Lane.STEP), ("event-2", Lane.EVENT), ("lease", Lane.LEASE),
              ("step-2", Lane.STEP)]
    tasks = []
    for name, lane in queued:
        tasks.append(takers.start(name, lane))
        n = len(tasks)
        await _until(lambda n=n: takers.slots.waiting == n)
    release.set()
    await asyncio.gather(first, *tasks)
    assert takers.got == ["first", "lease", "step-1", "step-2", "event-1", "event-2"]


async def test_a_cancelled_waiter_never_keeps_a_slot() -> None:
    takers = Takers(Slots(1))
    release = asyncio.Event()
    holder = takers.start("holder", hold=release)
    await _until(lambda: takers.got == ["holder"])
    gone, after = takers.start("gone"), takers.start("after")
    await _until(lambda: takers.slots.waiting == 2)
    gone.cancel()
    release.set()
    await asyncio.gather(holder, after)
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert takers.got == ["holder", "after"]
    async with asyncio.timeout(1), takers.slots.hold(Lane.EVENT):  # the slot came back
        pass


async def test_a_waiter_cancelled_in_the_turn_it_was_handed_the_slot_passes_it_on() -> None:
    takers = Takers(Slots(1))
    release = asyncio.Event()
    holder = takers.start("holder", hold=release)
    await _until(lambda: takers.got == ["holder"])
    unlucky, after = takers.start("unlucky"), takers.start("after")
    await _until(lambda: takers.slots.waiting == 2)
    release.set()
    await _until(lambda: holder.done())  # the slot was handed to ``unlucky``, which has not run since
    unlucky.cancel()
    await asyncio.gather(after)
    with pytest.raises(asyncio.CancelledError):
        await unlucky
    assert takers.got == ["holder", "after"]
