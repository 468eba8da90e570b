"""What the tutorial scenarios (e2e/test_tutorial.py) share: the 2019 tutorial's objects with only their
intervals shortened, a recorder of every VirtualService weight and Promoted status the API server shows,
fault-injection traffic, and small readers of Events, status and the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.kube.resources import CANARY, DEPLOYMENT, EVENT, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.operator import IDENTITY

HOST = "app.istio.example.com"
IMAGE = "ghcr.io/stefanprodan/podinfo"


def tutorial_canary(ns: str, *, name: str = "podinfo", target: str = "podinfo", threshold: int = 10,
                    deadline: int = 60, step_weight: int = 5, hosts: tuple[str, ...] = (HOST,),
                    autoscaler: bool = True, interval: str = "1s") -> dict[str, Any]:
    """The tutorial's Canary (flagger.app/v1alpha3, canaryAnalysis, legacy metric names); intervals
    shortened (30s → 1s or 2s steps over 10s metric windows) and the load tester's namespace adapted."""
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "progressDeadlineSeconds": deadline,
        "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                    "hosts": list(hosts)},
        "canaryAnalysis": {
            "interval": interval,
            "threshold": threshold,
            "maxWeight": 50,
            "stepWeight": step_weight,
            "metrics": [
                {"name": "istio_requests_total", "threshold": 99, "interval": "10s"},
                {"name": "istio_request_duration_seconds_bucket", "threshold": 500, "interval": "10s"},
            ],
            "webhooks": [{"name": "load-test", "url": f"http://flagger-loadtester.{ns}/", "timeout": "5s",
                          "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 http://{target}.{ns}:9898/"}}],
        },
    }
    if autoscaler:
        spec["autoscalerRef"] = {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                                 "name": target}
    return {"apiVersion": "flagger.app/v1alpha3", "kind": "Canary",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def hpa(ns: str, name: str = "podinfo") -> dict[str, Any]:
    """The tutorial's HPA, in autoscaling/v2 (the API server no longer serves v2beta1)."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 2, "maxReplicas": 4,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}


def with_config_volume(deployment: dict[str, Any], configmap: str) -> dict[str, Any]:
    """The Deployment with ``configmap`` mounted at /etc/podinfo (a tracked config,
    flagger-reference.md §3.3)."""
    d = copy.deepcopy(deployment)
    pod = d["spec"]["template"]["spec"]
    pod["volumes"] = [{"name": "config", "configMap": {"name": configmap}}]
    pod["containers"][0]["volumeMounts"] = [{"name": "config", "mountPath": "/etc/podinfo"}]
    return d


def canary_weights(vs: dict[str, Any]) -> tuple[int, ...]:
    return tuple(int(d.get("weight", 0)) for route in vs["spec"].get("http", [])
                 for d in route.get("route", []) if d["destination"]["host"].endswith("-canary"))


def canary_weight(vs: dict[str, Any]) -> int:
    weights = canary_weights(vs)
    return weights[0] if weights else 0


class Recorder:
    """Watches the VirtualService and the Canary, recording every distinct canary weight and Promoted
    status in the order the API server shows them (a list+watch of our own, as an observer would)."""

    def __init__(self, client: KubeClient, ns: str, name: str = "podinfo") -> None:
        self.client, self.ns, self.name = client, ns, name
        self.weights: list[int] = []
        self.promoted: list[str] = []
        self.status_weight: int | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def _watch(self, res: Any, on: Callable[[dict[str, Any]], None]) -> None:
        items, rv = await self.client.list(res, self.ns)
        for obj in items:
            on(obj)
        while True:
            async for kind, obj in self.client.watch(res, self.ns, rv, timeout_seconds=60):
                rv = obj["metadata"]["resourceVersion"]
                if kind not in ("BOOKMARK", "DELETED"):
                    on(obj)

    def _vs(self, vs: dict[str, Any]) -> None:
        if vs["metadata"]["name"] != self.name:
            return
        w = canary_weight(vs)
        if not self.weights or self.weights[-1] != w:
            self.weights.append(w)

    def _canary(self, c: dict[str, Any]) -> None:
        if c["metadata"]["name"] != self.name:
            return
        st = c.get("status") or {}
        self.status_weight = int(st.get("canaryWeight") or 0)
        cond = next((x for x in st.get("conditions") or [] if x.get("type") == "Promoted"), None)
        s = str(cond.get("status")) if cond else "none"
        if not self.promoted or self.promoted[-1] != s:
            self.promoted.append(s)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._watch(VIRTUAL_SERVICE, self._vs)),
                       asyncio.create_task(self._watch(CANARY, self._canary))]

    async def stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t


@contextlib.asynccontextmanager
async def recording(client: KubeClient, ns: str, name: str = "podinfo") -> AsyncIterator[Recorder]:
    """A started :class:`Recorder`, primed (it has seen the VirtualService and the Canary)."""
    rec = Recorder(client, ns, name)
    rec.start()
    try:
        await wait_for(lambda: bool(rec.weights) and bool(rec.promoted), 20, "recorder primed")
        yield rec
    finally:
        await rec.stop()


@contextlib.asynccontextmanager
async def canary_traffic(mesh_url: str, ns: str, path: str, rps: float = 10.0) -> AsyncIterator[None]:
    """The tutorial's fault injection: ``curl http://podinfo-canary:9898<path>`` in a loop (bounded:
    at most ``rps`` requests a second per loop, for as long as the block runs, through the mesh on
    loopback)."""

    async def loop() -> None:
        async with aiohttp.ClientSession() as s:
            while True:
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with s.get(f"{mesh_url}{path}", headers={"Host": f"podinfo-canary.{ns}:9898"},
                                     timeout=aiohttp.ClientTimeout(total=5)):
                        pass
                await asyncio.sleep(1 / rps)

    tasks = [asyncio.create_task(loop()) for _ in range(3)]
    try:
        yield
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


async def canary_status(client: KubeClient, ns: str, name: str = "podinfo") -> dict[str, Any]:
    try:
        obj = await client.get(CANARY, ns, name)
    except NotFound:
        return {}
    return dict(obj.get("status") or {})


async def wait_status(client: KubeClient, ns: str, name: str, what: str,
                      pred: Callable[[dict[str, Any]], bool], seconds: float = 90.0) -> dict[str, Any]:
    """Wait until ``pred(status)`` holds for Canary ``name``; returns that status."""
    async def reached() -> dict[str, Any] | None:
        st = await canary_status(client, ns, name)
        return st if pred(st) else None

    got: dict[str, Any] = await wait_for(reached, seconds, f"canary {ns}/{name}: {what}", interval=0.2)
    return got


async def primary_image(client: KubeClient, ns: str, name: str = "podinfo-primary") -> str:
    d = await client.get(DEPLOYMENT, ns, name)
    return str(d["spec"]["template"]["spec"]["containers"][0]["image"])


async def canary_events(client: KubeClient, ns: str, name: str = "podinfo") -> list[dict[str, Any]]:
    """Events of Canary ``name`` in the order they were created (first timestamp, then resourceVersion)."""
    items, _ = await client.list(EVENT, ns)
    items = [e for e in items if (e.get("involvedObject") or {}).get("kind") == "Canary"
             and (e.get("involvedObject") or {}).get("name") == name]

    def order(e: dict[str, Any]) -> tuple[str, int]:
        return (str(e.get("firstTimestamp") or ""), int(e["metadata"].get("resourceVersion") or 0))

    return sorted(items, key=order)


def counts(events: list[dict[str, Any]]) -> dict[str, int]:
    """How often each message was recorded (aggregated Events carry a ``count``)."""
    out: dict[str, int] = {}
    for e in events:
        msg = str(e.get("message", ""))
        out[msg] = out.get(msg, 0) + int(e.get("count") or 1)
    return out


async def counts_once(client: KubeClient, ns: str, last: str, within: float = 15.0) -> dict[str, int]:
    """Event counts once ``last`` is among them: Events follow the status they report, so the final one
    may land a moment after the phase a test waited for."""
    async def ready() -> dict[str, int] | None:
        c = counts(await canary_events(client, ns))
        return c if last in c else None

    got: dict[str, int] = await wait_for(ready, within, f"the Event {last!r}")
    return got


def halts(events: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The Halt Events of canary ``key`` (Flagger's "no values" text names the target, not the canary)."""
    prefixes = (f"Halt {key} advancement", "Halt advancement no values")
    return [e for e in events if str(e.get("message", "")).startswith(prefixes)]


def is_subsequence(expected: list[str], got: list[str]) -> bool:
    it = iter(got)
    return all(any(g == e for g in it) for e in expected)


def forbidden(bed: Any, ns: str) -> list[str]:
    """Requests of canaryd's identity for ``ns`` that the API server refused with 403 (audit log);
    raises when the log holds none of its requests at all (then the filter, not canaryd, is wrong)."""
    events = bed.audit_events(username=IDENTITY, user_agent_prefix=f"canaryd/e2e-{ns}")
    assert events, f"no request of {IDENTITY} with user agent canaryd/e2e-{ns} in the audit log"
    return [f"{e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}" for e in events if e.code == 403]
