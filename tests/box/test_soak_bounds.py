"""Bounds the soak benchmark (bench/soak.py) watches, in the box: a deleted Canary's Event aggregation
entries and its task go with it, as read through canaryd's own metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from canaryd.kube import resources as r
from canaryd.runtime.clock import REAL_CLOCK

from .harness import Box, eventually
from .scenario import NS, initialized, weight_at_least


async def test_a_deleted_canary_leaves_no_aggregation_entries(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")

    def value(name: str) -> float | None:
        return inst.metrics.registry.get_sample_value(name)

    assert (value("canaryd_event_aggregation_entries") or 0) > 0  # its Events so far are remembered
    box.api.remove(r.CANARY, NS, "podinfo")
    await eventually(lambda: value("canaryd_canary_tasks") == 0, 5, "the canary's task gone")
    await eventually(lambda: value("canaryd_event_aggregation_entries") == 0, 5, "its entries gone")


@pytest.fixture
async def real_time_box() -> AsyncIterator[Box]:
    """The box on the process's own clock, as in production (the task's waits take their other path)."""
    b = Box(clock=REAL_CLOCK)  # type: ignore[arg-type]
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


async def test_canary_tasks_stay_one_per_live_canary_over_delete_and_recreate_cycles(
    real_time_box: Box,
) -> None:
    """The soak's asyncio tasks grew with its delete-and-re-create Canaries (a task woken just before
    its cancellation lost it and lived on beside its successor: the exact interleaving is pinned in
    tests/box/test_clock.py and tests/runtime/test_moot.py). On the real clock, as in production: after
    many cycles, one task per live Canary."""
    box = real_time_box
    inst = await box.run()
    await initialized(box)

    def tasks() -> float | None:
        labels = {"coroutine": "CanaryTask.run"}
        return inst.metrics.registry.get_sample_value("canaryd_asyncio_tasks", labels)

    await eventually(lambda: tasks() == 1, 5, "one canary task")
    canary = box.canary(NS)
    for i in range(20):
        box.set_image(NS, f"6.0.{i + 1}")  # a new revision and a change of the Canary wake the task,
        box.api.edit(r.CANARY, NS, "podinfo",
                     lambda c, n=600 + i: c["spec"].update(progressDeadlineSeconds=n))
        box.api.remove(r.CANARY, NS, "podinfo")  # then its deletion cancels it
        await eventually(lambda: box.api.get(r.CANARY, NS, "podinfo") is None, 5, "the Canary gone")
        box.api.put(r.CANARY, {k: v for k, v in canary.items() if k in ("apiVersion", "kind", "spec")}
                    | {"metadata": {"name": "podinfo", "namespace": NS}})
        await eventually(lambda: box.phase(NS) != "", 10, "the re-created Canary picked up")
    await eventually(lambda: tasks() == 1, 10, "one task for the one live Canary")
