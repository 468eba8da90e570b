"""The task's retry policy in the real loop (issue 9, "Failures back off"): an action that keeps failing
is retried after growing waits (runtime/backoff.py), reported as one Warning Event (not one per retry),
the Canary's own status writes do not cut the wait short, a change to one of the canary's objects does,
and a success resets the count. Time is a ScaledClock (runtime/clock.py) running 20× faster."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import itertools
import logging
from collections.abc import Callable

from canaryd.kube.resources import CANARY, VIRTUAL_SERVICE
from canaryd.runtime.clock import ScaledClock
from canaryd.runtime.task import CanaryTask

from .conftest import Rig
from .test_moot import LABELS, NS, deployment, mid_run, virtual_service

FACTOR = 20.0


class Attempts(logging.Handler):
    """The task's "reconcile failed (attempt n), retrying in …" lines, stamped with the clock's time."""

    def __init__(self, clock: ScaledClock) -> None:
        super().__init__()
        self.clock = clock
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if msg.startswith("reconcile failed (attempt "):
            self.lines.append((self.clock.now(), msg))


async def until(cond: Callable[[], bool], seconds: float, what: str) -> None:
    async with asyncio.timeout(seconds):
        while not cond():  # noqa: ASYNC110 (a condition on the task's state, polled)
            await asyncio.sleep(0.01)
    assert cond(), what


async def test_a_failing_action_backs_off_warns_once_and_recovers_on_a_cache_event(rig: Rig) -> None:
    clock = ScaledClock(FACTOR)
    ctx = dataclasses.replace(rig.ctx, clock=clock)
    spec = mid_run("http://127.0.0.1:9")
    del spec["spec"]["analysis"]["metrics"]  # a step with no checks: weight 20, then the routes
    spec["status"]["nextStepAt"] = "2020-01-01T00:00:00Z"
    rig.store.upsert("Canary", rig.api.put_object(CANARY, spec))
    rig.store.upsert("Deployment", deployment("podinfo", "podinfo:6.0.1", LABELS))
    rig.store.upsert("Deployment", deployment("podinfo-primary", "podinfo:6.0.0", {"app": "podinfo-primary"}))
    rig.store.upsert("VirtualService", virtual_service(90, 10))  # cached, but not on the server: 404
    attempts = Attempts(clock)
    rig.ctx.logger.addHandler(attempts)
    rig.ctx.logger.setLevel(logging.INFO)
    task = CanaryTask(ctx, NS, "podinfo")
    running = asyncio.ensure_future(task.run())
    try:
        await until(lambda: len(attempts.lines) >= 2, 5, "a first retry")
        # the Canary's own status write (same generation) while backing off: no early retry
        rig.store.upsert("Canary", copy.deepcopy(rig.api.get_object(CANARY, NS, "podinfo")))
        task.wake("Canary")
        await until(lambda: len(attempts.lines) >= 4, 10, "two more retries")

        times = [t for t, _ in attempts.lines]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert 0.85 * 5 <= gaps[0] <= 5 + 3, gaps  # 5 s, 10 s, 20 s (≤ 10 % shorter; loop time ≈ 1 s)
        assert 0.85 * 10 <= gaps[1] <= 10 + 3, gaps
        assert 0.85 * 20 <= gaps[2] <= 20 + 3, gaps
        assert "(attempt 4), retrying in" in attempts.lines[3][1]

        warnings = [r for r in rig.api.requests if r.method == "POST" and r.path.endswith("/events")
                    and r.body is not None and r.body.get("type") == "Warning"]
        assert len(warnings) == 1, [w.body for w in warnings]  # once, not per retry
        assert warnings[0].body is not None
        assert warnings[0].body["message"].startswith("VirtualService podinfo.team-a update error: 404")
        assert not [r for r in rig.api.requests if r.method == "PATCH" and "/events/" in r.path]

        # the VirtualService appears: a cache event for the canary's own object ends the 40 s wait
        rig.store.upsert("VirtualService", rig.api.put_object(VIRTUAL_SERVICE, virtual_service(90, 10)))
        woken = clock.now()
        task.wake("VirtualService")
        await until(lambda: task._state.failures.count == 0, 1.0, "the retry at once, and success")
        assert clock.now() - woken < 0.5 * 40
        assert len(attempts.lines) == 4
    finally:
        rig.ctx.logger.removeHandler(attempts)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
