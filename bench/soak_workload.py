"""What the soak benchmark (bench/soak.py) puts on its bed and how each canary's cycle goes. Every canary
has one role for the whole soak, so each outcome recurs all along:

* ``promote``: a new revision (pod-template annotation) each period, promoted;
* ``fail``: the same, but its check reads a template on ``vector(5)`` (above ``thresholdRange.max`` 2), so
  every run is rolled back;
* ``supersede``: a new revision, then another one mid-run (a slower analysis, so the run is still going);
* ``configmap``: the revision is a change to a tracked ConfigMap (``envFrom``), not to the pod template;
* ``recreate``: every other period the Canary is deleted and created again (initialization again), a new
  revision in between.

Besides, each period an invalid Canary (its target Deployment does not exist) appears and the previous
period's one disappears, under a new name every time."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bench import workload
from bench.workload import Shape
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, METRIC_TEMPLATE

ROLES = ("promote", "fail", "recreate", "supersede", "configmap")
FAILING = "bench-failing"


def role(index: int) -> str:
    return ROLES[index % len(ROLES)]


@dataclass
class Counters:
    """What the benchmark did (the operator's outcomes are counted from its watch, bench/soak.py)."""

    revisions: int = 0
    superseding: int = 0
    config_changes: int = 0
    recreated: int = 0
    invalid_created: int = 0
    invalid_deleted: int = 0
    errors: list[str] = field(default_factory=list)


def shape_for(role_name: str, interval: int) -> Shape:
    """A superseded run needs time to be superseded in: three times the interval (at least 3 s)."""
    return Shape(interval=max(3, 3 * interval) if role_name == "supersede" else interval)


def canary(namespace: str, name: str, role_name: str, interval: int) -> dict[str, Any]:
    body = workload.canary(namespace, name, shape_for(role_name, interval))
    if role_name == "fail":
        body["spec"]["analysis"]["metrics"][0]["templateRef"]["name"] = FAILING
    return body


def invalid_canary(namespace: str, name: str, interval: int) -> dict[str, Any]:
    body = workload.canary(namespace, name, Shape(interval=interval))
    body["spec"]["targetRef"]["name"] = f"{name}-missing"
    return body


def deployment(namespace: str, name: str, role_name: str) -> dict[str, Any]:
    body = workload.deployment(namespace, name)
    if role_name == "configmap":
        container = body["spec"]["template"]["spec"]["containers"][0]
        container["envFrom"] = [{"configMapRef": {"name": f"{name}-config"}}]
    return body


def config_map(namespace: str, name: str, revision: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name}-config", "namespace": namespace},
            "data": {"REVISION": revision}}


async def setup(client: KubeClient, namespace: str, n: int, interval: int, prometheus_url: str) -> list[str]:
    """The two MetricTemplates, then per canary its ConfigMap (configmap role), Deployment and Canary."""
    await client.create(METRIC_TEMPLATE, namespace, workload.metric_template(namespace, prometheus_url))
    failing = workload.metric_template(namespace, prometheus_url)
    failing["metadata"]["name"] = FAILING
    failing["spec"]["query"] = "vector(5)"
    await client.create(METRIC_TEMPLATE, namespace, failing)
    names = workload.names(n)

    def one(i: int, name: str) -> Any:
        async def make() -> None:
            if role(i) == "configmap":
                await client.create(CONFIGMAP, namespace, config_map(namespace, name, "r0"))
            await client.create(DEPLOYMENT, namespace, deployment(namespace, name, role(i)))
            await client.create(CANARY, namespace, canary(namespace, name, role(i), interval))
        return make

    await workload.bounded(one(i, x) for i, x in enumerate(names))
    return names


async def _gone(client: KubeClient, namespace: str, name: str, timeout: float) -> bool:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            await client.get(CANARY, namespace, name)
        except NotFound:
            return True
        await asyncio.sleep(0.2)
    return False


async def cycle(client: KubeClient, namespace: str, index: int, name: str, k: int, interval: int,
                counters: Counters) -> None:
    """Canary ``index``'s k-th period (started by the caller at its own offset in the period)."""
    what = role(index)
    rev = f"c{k}"
    if what == "recreate" and k % 2 == 1:
        try:
            await client.delete(CANARY, namespace, name)
        except NotFound:
            pass
        if not await _gone(client, namespace, name, timeout=30):
            counters.errors.append(f"{name}: Canary still there 30 s after its deletion")
            return
        await client.create(CANARY, namespace, canary(namespace, name, what, interval))
        counters.recreated += 1
        return
    if what == "configmap":
        await client.patch(CONFIGMAP, namespace, f"{name}-config", {"data": {"REVISION": rev}})
        counters.config_changes += 1
        counters.revisions += 1
        return
    await workload.trigger(client, namespace, name, rev)
    counters.revisions += 1
    if what == "supersede":
        await asyncio.sleep(shape_for(what, interval).interval * 1.3)
        await workload.trigger(client, namespace, name, rev + "b")
        counters.superseding += 1
        counters.revisions += 1


async def invalid(client: KubeClient, namespace: str, k: int, interval: int, counters: Counters) -> None:
    """Period k's invalid Canary appears, period k-1's disappears."""
    try:
        await client.create(CANARY, namespace, invalid_canary(namespace, f"invalid-{k:04d}", interval))
        counters.invalid_created += 1
    except Conflict:
        pass
    if k > 0:
        try:
            await client.delete(CANARY, namespace, f"invalid-{k - 1:04d}")
            counters.invalid_deleted += 1
        except NotFound:
            pass
