"""What the fault-tolerance scenarios share: an observer that keeps watching through an API-server outage
(canaryd's own informers, with a fast reconnect) and a TCP server that accepts connections and never
answers (a hung Prometheus or webhook)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry

from canaryd.cache.backoff import Backoff
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.tutorial import canary_weight


@dataclass(frozen=True)
class Seen:
    """One state of the Canary's status, as an observer saw it."""

    phase: str
    weight: int
    failed_checks: int


class Observer:
    """Records every distinct canary weight of the VirtualService and every distinct (phase, weight,
    failedChecks) of the Canary, in the order the API server shows them. It uses canaryd's informers
    (list + watch, relist on 410, reconnect after errors) with a short backoff, so it follows the objects
    across an API-server restart."""

    def __init__(self, client: KubeClient, namespace: str, name: str = "podinfo") -> None:
        self.name = name
        self.store = Store()
        quiet = logging.getLogger("e2e.faults.observer")
        quiet.propagate = False  # its reconnect warnings would drown a test's output during an outage
        if not quiet.handlers:
            quiet.addHandler(logging.NullHandler())
        self.informers = Informers(client, self.store, (VIRTUAL_SERVICE, CANARY), namespace,
                                   registry=CollectorRegistry(), healthy_after=1.0,
                                   backoff=lambda: Backoff(initial=0.05, cap=0.5), logger=quiet)
        self.weights: list[int] = []
        self.states: list[Seen] = []
        self.store.subscribe(self._changed)

    def _changed(self, kind: str, namespace: str, name: str) -> None:
        if name != self.name:
            return
        obj = self.store.get(kind, namespace, name)
        if obj is None:
            return
        if kind == VIRTUAL_SERVICE.kind:
            w = canary_weight(obj)
            if not self.weights or self.weights[-1] != w:
                self.weights.append(w)
        elif kind == CANARY.kind:
            st = obj.get("status") or {}
            seen = Seen(str(st.get("phase", "")), int(st.get("canaryWeight") or 0),
                        int(st.get("failedChecks") or 0))
            if not self.states or self.states[-1] != seen:
                self.states.append(seen)

    def progressing_weights(self) -> list[int]:
        """Distinct canary weights of status while Progressing, in order."""
        out: list[int] = []
        for s in self.states:
            if s.phase == "Progressing" and s.weight > 0 and (not out or out[-1] != s.weight):
                out.append(s.weight)
        return out

    def max_failed_checks(self) -> int:
        return max((s.failed_checks for s in self.states), default=0)


@contextlib.asynccontextmanager
async def observing(client: KubeClient, namespace: str, name: str = "podinfo") -> AsyncIterator[Observer]:
    """A started :class:`Observer` that has seen the VirtualService and the Canary."""
    obs = Observer(client, namespace, name)
    await obs.informers.start()
    try:
        await obs.informers.wait_synced(30)
        await wait_for(lambda: bool(obs.weights) and bool(obs.states), 20, "observer primed")
        yield obs
    finally:
        await obs.informers.stop()


class Silent:
    """A TCP server on loopback that accepts every connection, reads what is sent and never answers: a
    hung Prometheus or webhook (the client's own timeout is the only way out)."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.base_events.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._open.add(writer)
        try:
            while await reader.read(65536):
                pass  # swallow the request, answer nothing
        finally:
            self._open.discard(writer)
            writer.close()

    async def start(self) -> Silent:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        for w in tuple(self._open):
            w.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
