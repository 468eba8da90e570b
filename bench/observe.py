"""The benchmark's own view of a run: canaryd's informers (list+watch, relist on 410) on Canaries,
Deployments and Events of one namespace, each change stamped with the monotonic time of its receipt.
Event timestamps have one-second resolution, so receipt times are what the figures use."""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry

from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, DEPLOYMENT, EVENT


@dataclass
class Timelines:
    """Per canary name: (receipt time, phase, canaryWeight) on each change of either; (time, message) of
    each Event on it; (time, spec.replicas) of its target Deployment on each change of replicas."""

    status: dict[str, list[tuple[float, str, int]]] = field(default_factory=lambda: defaultdict(list))
    events: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    replicas: dict[str, list[tuple[float, int]]] = field(default_factory=lambda: defaultdict(list))

    def phase(self, name: str) -> str:
        rows = self.status.get(name)
        return rows[-1][1] if rows else ""

    def first_status(self, name: str, since: float, *, phase: str | None = None,
                     weight: int | None = None) -> float | None:
        for t, ph, w in self.status.get(name, ()):
            if t >= since and (phase is None or ph == phase) and (weight is None or w == weight):
                return t
        return None

    def first_event(self, name: str, since: float, prefix: str) -> float | None:
        for t, msg in self.events.get(name, ()):
            if t >= since and msg.startswith(prefix):
                return t
        return None

    def first_scale_up(self, name: str, since: float) -> float | None:
        for t, n in self.replicas.get(name, ()):
            if t >= since and n > 0:
                return t
        return None


class Observer:
    """Starts the informers for ``namespace`` and fills ``timelines`` until ``stop()``."""

    def __init__(self, client: KubeClient, namespace: str) -> None:
        self.namespace = namespace
        self.store = Store()
        self.timelines = Timelines()
        self._seen_events: dict[str, tuple[str, int]] = {}
        self.informers = Informers(client, self.store, (CANARY, DEPLOYMENT, EVENT), namespace=namespace,
                                   registry=CollectorRegistry(), watch_timeout=600)
        self._unsubscribe = self.store.subscribe(self._changed)

    async def start(self, timeout: float = 60.0) -> None:  # noqa: ASYNC109
        await self.informers.start()
        await self.informers.wait_synced(timeout)

    async def stop(self) -> None:
        self._unsubscribe()
        await self.informers.stop()

    def canaries(self) -> list[dict[str, object]]:
        return list(self.store.items("Canary", self.namespace))

    def _changed(self, kind: str, namespace: str, name: str) -> None:
        now = time.monotonic()
        obj = self.store.get(kind, namespace, name)
        if obj is None:
            return
        if kind == "Canary":
            st = obj.get("status") or {}
            row = (now, str(st.get("phase") or ""), int(st.get("canaryWeight") or 0))
            rows = self.timelines.status[name]
            if not rows or rows[-1][1:] != row[1:]:
                rows.append(row)
        elif kind == "Deployment":
            n = int((obj.get("spec") or {}).get("replicas") or 0)
            rows2 = self.timelines.replicas[name]
            if not rows2 or rows2[-1][1] != n:
                rows2.append((now, n))
        elif kind == "Event":
            inv = obj.get("involvedObject") or {}
            if inv.get("kind") != "Canary":
                return
            key = (str(obj.get("message") or ""), int(obj.get("count") or 1))
            if self._seen_events.get(name) == key:
                return
            self._seen_events[name] = key
            self.timelines.events[str(inv.get("name"))].append((now, key[0]))
