"""The runtime in a box: canaryd's real :class:`~canaryd.runtime.app.Runtime` (informers, cache,
supervisor, tasks, writers, leadership) against the in-process API server, a scripted Prometheus and a
webhook receiver, all on loopback, with virtual time running ``SPEED`` times faster (``ScaledClock``).

A "process" is an :class:`Instance`; a crash point stops it as SIGKILL would (no further write leaves
it), and a new Instance on the same API server plays the restarted process."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.runtime.app import Runtime
from canaryd.runtime.clock import ScaledClock
from canaryd.runtime.crash import CrashPoints
from canaryd.runtime.metrics import Metrics
from canaryd.settings import Settings

from .apiserver import ApiServer
from .peers import ScriptedPrometheus, Webhooks

SPEED = 100.0  # virtual seconds per real second: a 30 s step takes 0.3 s


class Crashed(asyncio.CancelledError):
    """Raised at an armed crash point: a cancellation, so no ``except Exception`` of the runtime catches
    it (as nothing catches SIGKILL) and the task ends as a cancelled one would."""


class CrashAt(CrashPoints):
    """Crash points that, instead of ``os._exit``, fence off every further write of the instance and
    raise :class:`Crashed`; ``crashed`` is set so the test can stop what is left of the "process"."""

    def __init__(self, armed: dict[str, int], fence: Callable[[], None]) -> None:
        super().__init__(armed)
        self._fence = fence
        self.crashed = asyncio.Event()
        self.where = ""

    def hit(self, name: str) -> None:
        left = self._remaining.get(name)
        if left is None or self.crashed.is_set():
            return
        if left > 1:
            self._remaining[name] = left - 1
            return
        self.where = name
        self._fence()
        self.crashed.set()
        raise Crashed(name)


@dataclass
class Instance:
    """One canaryd "process" in the box."""

    runtime: Runtime
    client: KubeClient
    http: aiohttp.ClientSession
    metrics: Metrics
    crash: CrashAt
    stopped: bool = False

    def kill(self) -> None:
        """From now on nothing this instance sends reaches the API server (as after SIGKILL)."""
        self.client.write_guard = lambda _res: False

    async def stop(self) -> None:
        """Graceful stop (SIGTERM); after ``kill`` it only ends the leftover asyncio tasks."""
        if self.stopped:
            return
        self.stopped = True
        await self.runtime.stop()
        await self.http.close()
        await self.client.close()


@dataclass
class Box:
    api: ApiServer = field(default_factory=ApiServer)
    prometheus: ScriptedPrometheus = field(default_factory=ScriptedPrometheus)
    hooks: Webhooks = field(default_factory=Webhooks)
    clock: ScaledClock = field(default_factory=lambda: ScaledClock(SPEED))
    instances: list[Instance] = field(default_factory=list)
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("canaryd.box"))

    async def start(self) -> None:
        self.api.install_crds()
        await self.api.start()
        await self.prometheus.start()
        await self.hooks.start()

    async def stop(self) -> None:
        for inst in self.instances:
            await inst.stop()
        await self.hooks.stop()
        await self.prometheus.stop()
        await self.api.stop()

    def settings(self, **overrides: Any) -> Settings:
        base = Settings(kubeconfig=None, metrics_server=self.prometheus.url, user_agent="canaryd-box",
                        leader_election_namespace="canaryd-system")
        return replace(base, **overrides)

    async def run(self, *, crash_at: dict[str, int] | None = None, sync_timeout: float = 10.0,
                  **settings: Any) -> Instance:
        """Start a canaryd instance (as ``canaryd run`` wires it) and wait until its caches synced."""
        config = ClusterConfig(base_url=self.api.url, ssl_context=None, token=TokenSource(token="box"))
        metrics = Metrics()
        # the client's own retries wait in real time (I/O, not a deadline): kept short, since a real 0.3 s
        # is 30 virtual seconds, a whole analysis step
        client = KubeClient(config, user_agent="canaryd-box", registry=metrics.registry, max_attempts=3,
                            max_retry_wait=0.01)
        http = aiohttp.ClientSession()
        holder: list[Instance] = []
        crash = CrashAt(crash_at or {}, fence=lambda: holder[0].kill())
        runtime = Runtime(self.settings(**settings), client, metrics, self.logger, http, clock=self.clock,
                          crash=crash)
        inst = Instance(runtime, client, http, metrics, crash)
        holder.append(inst)
        self.instances.append(inst)
        await runtime.start(sync_timeout=sync_timeout)
        return inst

    # ---- the world, as seen by the API server ----

    def canary(self, ns: str, name: str = "podinfo") -> dict[str, Any]:
        return self.api.get(r.CANARY, ns, name) or {}

    def status(self, ns: str, name: str = "podinfo") -> dict[str, Any]:
        return dict(self.canary(ns, name).get("status") or {})

    def phase(self, ns: str, name: str = "podinfo") -> str:
        return str(self.status(ns, name).get("phase") or "")

    def messages(self, ns: str, name: str = "podinfo") -> list[str]:
        return [str(e.get("message")) for e in self.creation_order(ns, name)]

    def event_counts(self, ns: str, name: str = "podinfo") -> dict[str, int]:
        """How often each message was recorded (repeats are one Event with a growing ``count``)."""
        out: dict[str, int] = {}
        for e in self.api.items(r.EVENT, ns):
            if (e.get("involvedObject") or {}).get("name") == name:
                out[str(e.get("message"))] = out.get(str(e.get("message")), 0) + int(e.get("count") or 1)
        return out

    def creation_order(self, ns: str, name: str = "podinfo") -> list[dict[str, Any]]:
        """Events in the order they were created (the history's ADDED records)."""
        seen = [obj for _, key, kind, obj in self.api.history
                if key == ("", "events") and kind == "ADDED" and obj["metadata"].get("namespace") == ns
                and (obj.get("involvedObject") or {}).get("name") == name]
        return seen

    def weights(self, ns: str, name: str = "podinfo") -> list[int]:
        """Every distinct canary weight the VirtualService showed, in order (from the history)."""
        out: list[int] = []
        for _, key, kind, obj in self.api.history:
            if key != ("networking.istio.io", "virtualservices") or kind == "DELETED":
                continue
            meta = obj["metadata"]
            if meta.get("namespace") != ns or meta.get("name") != name:
                continue
            w = next((int(d.get("weight", 0)) for route in obj["spec"].get("http", [])
                      for d in route.get("route", []) if d["destination"]["host"].endswith("-canary")), 0)
            if not out or out[-1] != w:
                out.append(w)
        return out

    def phases_seen(self, ns: str, name: str = "podinfo") -> list[str]:
        """Every distinct phase the Canary's status showed, in order (from the history)."""
        out: list[str] = []
        for _, key, _kind, obj in self.api.history:
            meta = obj["metadata"]
            if key == ("flagger.app", "canaries") and meta.get("namespace") == ns and meta["name"] == name:
                phase = str((obj.get("status") or {}).get("phase") or "")
                if phase and (not out or out[-1] != phase):
                    out.append(phase)
        return out

    def primary_image(self, ns: str) -> str:
        d = self.api.get(r.DEPLOYMENT, ns, "podinfo-primary") or {}
        return str(d["spec"]["template"]["spec"]["containers"][0]["image"]) if d else ""

    def set_image(self, ns: str, tag: str) -> None:
        def change(d: dict[str, Any]) -> None:
            d["spec"]["template"]["spec"]["containers"][0]["image"] = f"ghcr.io/stefanprodan/podinfo:{tag}"
        self.api.edit(r.DEPLOYMENT, ns, "podinfo", change)


async def eventually(check: Callable[[], Any], within: float, what: str, every: float = 0.02) -> Any:
    """The first truthy value of ``check`` (sync or async); fails naming ``what`` after ``within`` s."""
    deadline = time.monotonic() + within
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(every)


def is_subsequence(expected: list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == e for s in it) for e in expected)
