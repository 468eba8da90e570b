"""Manual gates (``/gate/open``, ``/rollback/open`` …) kept in a ConfigMap, so an opened gate survives a
restart of the load tester and every replica sees the same state (Flagger keeps them in memory).

Data key = the gate (``podinfo.test``, ``rollback.podinfo.test``), value ``open``; a closed gate has no
key. A write is one JSON merge patch of that key (``{"data": {gate: "open"}}`` or ``null`` to close), which
the API server applies atomically, so any number of writers on any number of replicas lose nothing and never
conflict; the ConfigMap is created on the first open (a lost create race falls back to the patch).
"""

from __future__ import annotations

from typing import Any, Protocol

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CONFIGMAP

CONFIGMAP_NAME = "canaryd-loadtester-gates"
OPEN = "open"


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
        patch = {"data": {gate: OPEN if is_open else None}}
        try:
            await self.client.patch(CONFIGMAP, self.namespace, self.name, patch)
            return
        except NotFound:
            if not is_open:
                return  # no ConfigMap: every gate is already closed
        try:
            await self.client.create(CONFIGMAP, self.namespace, self._new({gate: OPEN}))
        except Conflict:  # another writer created it first (AlreadyExists): add our key to theirs
            await self.client.patch(CONFIGMAP, self.namespace, self.name, patch)

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
