"""The dashboard's one watch of the Canaries: current objects, each Canary's weight over time since the
dashboard started (bounded), and the pages listening (server-sent events). Pages never poll; every
change they see comes from this watch."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from canaryd.console import render
from canaryd.console.judge_view import judge_report
from canaryd.console.kube import follow, list_canaries
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY

Key = tuple[str, str]  # (namespace, name)
HISTORY = 720  # points kept per Canary (a point per change of weight or phase)
QUEUE = 256  # a page this far behind is dropped (its EventSource reconnects and gets a snapshot)


def key_of(obj: Mapping[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def summary(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a page shows of a Canary (render.row plus the weight's scale and the next step)."""
    status = obj.get("status") or {}
    out = render.row(obj)
    p = render.progress_of(obj)
    promoted = next((c for c in status.get("conditions") or []
                     if isinstance(c, dict) and c.get("type") == "Promoted"), {})
    out.update(maxWeight=p.max_weight, nextStepAt=status.get("nextStepAt"),
               condition=str(promoted.get("message") or ""), gate=render.GATES.get(p.phase, ""),
               lastTransitionTime=status.get("lastTransitionTime"),
               # the contract of canaryd/console/actions.py: canaryd's answer to the last request, the
               # run history and the current run's per-step weights (the chart after a reload)
               lastRequest=status.get("lastRequest") if isinstance(status.get("lastRequest"), dict) else None,
               runs=[r for r in status.get("history") or [] if isinstance(r, dict)][:10],
               weights=[w for w in status.get("weights") or [] if isinstance(w, dict)][-100:],
               # each analysis step's check values (status.stepChecks): the per-step table
               steps=[s for s in status.get("stepChecks") or [] if isinstance(s, dict)][-20:],
               # the judge's report of the last step, per metric (docs/judge.md)
               judge=judge_report(status) if isinstance(status, Mapping) else None)
    return out


@dataclass(eq=False)  # each listener is itself (a set member)
class Listener:
    key: Key | None  # None: every Canary
    queue: asyncio.Queue[dict[str, Any] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))


class Hub:
    def __init__(self, client: KubeClient, namespace: str | None) -> None:
        self.client, self.namespace = client, namespace
        self.objects: dict[Key, dict[str, Any]] = {}
        self.history: dict[Key, deque[tuple[float, int, str]]] = {}
        self.listeners: set[Listener] = set()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """List (a missing CRD raises ``ConsoleError`` here, before serving), then follow by watch."""
        items, rv = await list_canaries(self.client, self.namespace)
        for obj in items:
            self._apply("ADDED", obj)
        self._task = asyncio.create_task(self._follow(rv))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        for listener in list(self.listeners):
            with contextlib.suppress(asyncio.QueueFull):
                listener.queue.put_nowait(None)

    async def _follow(self, rv: str) -> None:
        async for kind, obj in follow(self.client, CANARY, self.namespace, rv):
            self._apply(kind, obj)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        key = key_of(obj)
        if kind == "DELETED":
            self.objects.pop(key, None)
            self.history.pop(key, None)
            self._send(key, {"type": "deleted", "namespace": key[0], "name": key[1]})
            return
        self.objects[key] = obj
        points = self.history.setdefault(key, deque(maxlen=HISTORY))
        p = render.progress_of(obj)
        point = (round(time.time(), 3), p.weight, p.phase)
        fresh = not points or points[-1][1:] != point[1:]
        if fresh:
            points.append(point)
        self._send(key, {"type": "canary", "canary": summary(obj), "point": list(point) if fresh else None})

    def _send(self, key: Key, message: dict[str, Any]) -> None:
        for listener in list(self.listeners):
            if listener.key is not None and listener.key != key:
                continue
            try:
                listener.queue.put_nowait(message)
            except asyncio.QueueFull:
                self.listeners.discard(listener)
                with contextlib.suppress(asyncio.QueueEmpty):
                    listener.queue.get_nowait()
                listener.queue.put_nowait(None)  # ends that page's stream; it reconnects

    def listen(self, key: Key | None) -> Listener:
        listener = Listener(key)
        self.listeners.add(listener)
        return listener

    def leave(self, listener: Listener) -> None:
        self.listeners.discard(listener)

    def snapshot(self) -> list[dict[str, Any]]:
        return [summary(self.objects[k]) for k in sorted(self.objects)]

    def one(self, key: Key) -> dict[str, Any] | None:
        obj = self.objects.get(key)
        if obj is None:
            return None
        return {"canary": summary(obj), "history": [list(p) for p in self.history.get(key, ())]}
