"""Starts one task per Canary in the cache, stops it when the Canary goes, and wakes the tasks whose
dependencies changed (cache subscription → dependency index → ``task.wake()``)."""

from __future__ import annotations

import asyncio
import contextlib

from canaryd.cache.index import (
    canaries_for_alert_provider,
    canaries_for_secret,
    canaries_for_template,
    dependents,
)
from canaryd.runtime.context import Context
from canaryd.runtime.task import CanaryTask


class Supervisor:
    """Owns the per-canary tasks. ``on_change`` is the cache subscriber: synchronous and cheap."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._tasks: dict[tuple[str, str], tuple[CanaryTask, asyncio.Task[None]]] = {}
        self._running = False

    def start(self) -> None:
        self._running = True
        self.ctx.metrics.metric_analysis.clear()  # values from an earlier leadership are stale
        for canary in self.ctx.store.items("Canary"):
            meta = canary["metadata"]
            if self.ctx.scope_ready(meta["namespace"]):  # the others start once it is (on_namespace_synced)
                self._ensure(meta["namespace"], meta["name"])
        self._update_gauges()

    async def stop(self, grace: float = 0.0) -> None:
        """Stop every task and wait for them. ``grace`` > 0 (SIGTERM): each task first finishes the pass it
        is in, so a step is never cut between its status write and its actions (Events included), for up
        to ``grace`` seconds; then, or at once (leadership lost), the rest are cancelled."""
        self._running = False
        entries = list(self._tasks.values())
        self._tasks.clear()
        tasks = [t for _, t in entries]
        if grace > 0 and tasks:
            for canary_task, _ in entries:
                canary_task.finish()
            await asyncio.wait(tasks, timeout=grace)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._update_gauges()

    def on_change(self, kind: str, namespace: str, name: str) -> None:
        if not self._running:
            return
        if kind == "Canary":
            if self.ctx.store.get("Canary", namespace, name) is None:
                self._drop(namespace, name)
            elif self.ctx.scope_ready(namespace):  # else on_namespace_synced starts it
                self._ensure(namespace, name).wake("Canary")
            self._update_gauges()
            return
        keys = [(namespace, c) for c in dependents(self.ctx.index, kind, namespace, name)]
        if kind == "MetricTemplate":  # referenced from any namespace (refused providers)
            keys = canaries_for_template(self.ctx.store, namespace, name)
        elif kind == "AlertProvider":
            keys = canaries_for_alert_provider(self.ctx.store, namespace, name)
        elif kind == "Secret":  # a template's or provider's credentials (a missing key refuses a Canary)
            keys = list(dict.fromkeys([*keys, *canaries_for_secret(self.ctx.store, namespace, name)]))
        for key in keys:
            entry = self._tasks.get(key)
            if entry is not None:
                entry[0].wake(kind)

    def on_namespace_synced(self, namespace: str) -> None:
        """The namespace's objects are in the cache now (runtime/scope.py): its Canaries' tasks start."""
        if not self._running:
            return
        for canary in self.ctx.store.items("Canary", namespace):
            self._ensure(namespace, canary["metadata"]["name"]).wake("Canary")
        self._update_gauges()

    def on_relist(self, kind: str) -> None:
        """An informer listed again (after an outage, say): the API server answers, so every task backing
        off after a failure tries again now instead of at the end of its wait."""
        if not self._running:
            return
        for canary_task, _ in self._tasks.values():
            if canary_task.backing_off:
                canary_task.wake(f"relist of {kind}")

    def _ensure(self, namespace: str, name: str) -> CanaryTask:
        entry = self._tasks.get((namespace, name))
        if entry is not None and not entry[1].done():
            return entry[0]
        task = CanaryTask(self.ctx, namespace, name)
        handle = asyncio.get_running_loop().create_task(task.run(), name=f"canary {name}.{namespace}")
        self._tasks[(namespace, name)] = (task, handle)
        return task

    def _drop(self, namespace: str, name: str) -> None:
        entry = self._tasks.pop((namespace, name), None)
        if entry is not None:
            entry[1].cancel()
        self.ctx.events.forget(namespace, name)  # its Events are never bumped again

    def _update_gauges(self) -> None:
        self.ctx.metrics.tasks.set(len(self._tasks))  # flagger_canary_total: runtime/canary_gauges.py
