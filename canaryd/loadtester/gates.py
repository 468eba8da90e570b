"""Manual gates (``/gate/open``, ``/rollback/open`` …) kept in a ConfigMap, so an opened gate survives a
restart of the load tester and every replica sees the same state (Flagger keeps them in memory).

Data key = the gate (``podinfo.test``, ``rollback.podinfo.test``), value ``open``; a closed gate has no
key. Writes are read-modify-replace with the object's resourceVersion, retried on 409.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any, Protocol

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CONFIGMAP

CONFIGMAP_NAME = "canaryd-loadtester-gates"
OPEN = "open"
_TRIES = 10


class GateStore(Protocol):
    """Where gate state lives."""

    async def is_open(self, gate: str) -> bool: ...

    async def set(self, gate: str, is_open: bool) -> None: ...


class MemoryGates:
    """Flagger's behaviour (lost on restart), for running outside a cluster (``--gate-state memory``)."""

    def __init__(self) -> None:
        self._open: set[str] = set()

    async def is_open(self, gate: str) -> bool:
        return gate in self._open

    async def set(self, gate: str, is_open: bool) -> None:
        if is_open:
            self._open.add(gate)
        else:
            self._open.discard(gate)


class ConfigMapGates:
    """Gates in ConfigMap ``name`` of ``namespace``, through canaryd's API client (created on first open)."""

    def __init__(self, client: KubeClient, namespace: str, name: str = CONFIGMAP_NAME) -> None:
        self.client = client
        self.namespace = namespace
        self.name = name

    async def is_open(self, gate: str) -> bool:
        try:
            obj = await self.client.get(CONFIGMAP, self.namespace, self.name)
        except NotFound:
            return False
        return bool((obj.get("data") or {}).get(gate) == OPEN)

    async def set(self, gate: str, is_open: bool) -> None:
        for attempt in range(_TRIES):
            try:
                await self._set_once(gate, is_open)
                return
            except Conflict:
                if attempt == _TRIES - 1:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))

    async def _set_once(self, gate: str, is_open: bool) -> None:
        try:
            current = await self.client.get(CONFIGMAP, self.namespace, self.name)
        except NotFound:
            if is_open:
                await self.client.create(CONFIGMAP, self.namespace, self._new({gate: OPEN}))
            return
        data: dict[str, Any] = dict(current.get("data") or {})
        if (data.get(gate) == OPEN) == is_open:
            return
        if is_open:
            data[gate] = OPEN
        else:
            data.pop(gate, None)
        body = copy.deepcopy(current)
        body["data"] = data
        await self.client.replace(CONFIGMAP, self.namespace, self.name, body)  # 409 when stale

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
