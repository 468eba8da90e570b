"""Manual gates (``/gate/open``, ``/rollback/open`` …) kept in a ConfigMap, so an opened gate survives a
restart of the load tester and every replica sees the same state (Flagger keeps them in memory).

Data key = the gate (``podinfo.test``, ``rollback.podinfo.test``), value ``open until <RFC 3339 UTC>``; a
closed gate has no key. Gates expire (``--gate-ttl``, 24 h by default) and at most ``--max-gates`` are open
at once, so the ConfigMap stays far below its 1 MiB whatever callers do (an open beyond the cap answers
507). Every write removes the expired keys. A gate is not closed when a run ends: Flagger calls a
confirm-rollout gate with the previous run's phase (``Succeeded``) while it waits for the next one, so a
terminal phase does not mean the gate is spent; the expiry is the bound.

A write is one JSON merge patch of the keys it changes (the gate, expired keys), which the API server
applies atomically, so writers on any number of replicas lose nothing and never conflict; within one
process writes are serialised so the cap holds (each replica may add up to its cap, see docs/operations.md).
The ConfigMap is created on the first open (a lost create race falls back to the patch). A value written
before expiries existed (``open``) is kept, and given an expiry at the next write.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CONFIGMAP

CONFIGMAP_NAME = "canaryd-loadtester-gates"
OPEN = "open"
_UNTIL = "open until "
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
DEFAULT_TTL = 24 * 3600.0
DEFAULT_MAX_GATES = 1000
MAX_GATES_CEILING = 2000  # x (253-byte key + 30-byte value + JSON quoting) stays under 600 KiB
Patch = dict[str, str | None]


class GateFull(Exception):
    """``max_gates`` gates are open already."""


def open_value(until: float) -> str:
    """The data value of a gate open until ``until`` (epoch seconds), to the second."""
    return _UNTIL + datetime.fromtimestamp(math.ceil(until), UTC).strftime(_STAMP)


def expiry(value: str) -> float:
    """When a data value stops meaning open: ``inf`` for a plain ``open``, 0 for anything unreadable."""
    if value == OPEN:
        return math.inf
    if not value.startswith(_UNTIL):
        return 0.0
    try:
        stamp = datetime.fromisoformat(value[len(_UNTIL):])
    except ValueError:
        return 0.0
    return stamp.timestamp() if stamp.tzinfo is not None else 0.0


@dataclass(frozen=True)
class GateBook:
    """The rules every store applies to its data: expiry after ``ttl`` seconds, at most ``max_gates``."""

    ttl: float = DEFAULT_TTL
    max_gates: int = DEFAULT_MAX_GATES

    @staticmethod
    def is_open(data: Mapping[str, str], gate: str, now: float) -> bool:
        value = data.get(gate)
        return value is not None and expiry(value) > now

    def plan(self, data: Mapping[str, str], gate: str, is_open: bool, now: float) -> Patch:
        """The merge patch of ``data`` that opens (with a fresh expiry) or closes ``gate`` and removes the
        expired keys. Raises :class:`GateFull` when opening a new gate would pass ``max_gates``."""
        patch: Patch = {}
        for key, value in data.items():
            at = expiry(value)
            if at <= now:
                patch[key] = None
            elif at == math.inf:
                patch[key] = open_value(now + self.ttl)
        if not is_open:
            patch[gate] = None
            return patch
        others = sum(1 for key in data if key != gate and patch.get(key, "") is not None)
        if others >= self.max_gates:
            raise GateFull(f"{others} gates are open, the most allowed (--max-gates); close some or let them "
                           f"expire")
        patch[gate] = open_value(now + self.ttl)
        return patch


def apply(data: dict[str, str], patch: Patch) -> None:
    """``patch`` merged into ``data`` in place, as the API server merges it."""
    for key, value in patch.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value


class GateStore(Protocol):
    """Where gate state lives."""

    async def is_open(self, gate: str) -> bool: ...

    async def set(self, gate: str, is_open: bool) -> None: ...


class MemoryGates:
    """Flagger's behaviour (lost on restart), for running outside a cluster (``--gate-state memory``);
    same expiry and cap as the ConfigMap."""

    def __init__(self, book: GateBook | None = None, clock: Callable[[], float] = time.time) -> None:
        self.book = book or GateBook()
        self.clock = clock
        self.data: dict[str, str] = {}

    async def is_open(self, gate: str) -> bool:
        return self.book.is_open(self.data, gate, self.clock())

    async def set(self, gate: str, is_open: bool) -> None:
        apply(self.data, self.book.plan(self.data, gate, is_open, self.clock()))


class ConfigMapGates:
    """Gates in ConfigMap ``name`` of ``namespace``, through canaryd's API client (created on first open)."""

    def __init__(self, client: KubeClient, namespace: str, name: str = CONFIGMAP_NAME, *,
                 book: GateBook | None = None, clock: Callable[[], float] = time.time) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name
        self.book = book or GateBook()
        self.clock = clock
        self._writing = asyncio.Lock()

    async def _data(self) -> dict[str, str] | None:
        try:
            obj = await self.client.get(CONFIGMAP, self.namespace, self.name)
        except NotFound:
            return None
        return dict(obj.get("data") or {})

    async def is_open(self, gate: str) -> bool:
        return self.book.is_open(await self._data() or {}, gate, self.clock())

    async def set(self, gate: str, is_open: bool) -> None:
        async with self._writing:
            data = await self._data()
            patch = self.book.plan(data or {}, gate, is_open, self.clock())
            if data is not None:
                await self._patch(patch)
                return
            if not is_open:
                return  # no ConfigMap: every gate is already closed
            try:
                await self.client.create(CONFIGMAP, self.namespace,
                                         self._new({k: v for k, v in patch.items() if v is not None}))
            except Conflict:  # another writer created it first (AlreadyExists): add our key to theirs
                await self._patch(patch)

    async def _patch(self, patch: Patch) -> None:
        try:
            await self.client.patch(CONFIGMAP, self.namespace, self.name, {"data": patch})
        except NotFound:  # deleted meanwhile: the next open creates it again
            if any(v is not None for v in patch.values()):
                raise

    def _new(self, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/name": "flagger-loadtester",
                           "app.kubernetes.io/managed-by": "canaryd"},
            },
            "data": data,
        }
