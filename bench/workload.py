"""The objects a benchmark run puts on the bed: N podinfo-like Deployments, one Canary each, and a
MetricTemplate on a constant query (``vector(1)``) so that neither Prometheus nor the mesh simulator
dominates the two cores; the same manifests serve canaryd and Flagger."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CANARY, DEPLOYMENT, METRIC_TEMPLATE, NAMESPACE
from e2e.bed.files import READY_AFTER

TEMPLATE = "bench-constant"
REVISION_ANNOTATION = "bench.canaryd.io/revision"
IMAGE = "ghcr.io/stefanprodan/podinfo:6.0.0"


@dataclass(frozen=True)
class Shape:
    """The analysis every canary of a run gets: ``steps`` weight steps of ``step_weight``, each observed
    for one ``interval`` before the next step or the promotion."""

    interval: int  # seconds
    step_weight: int = 25
    steps: int = 2
    threshold: int = 2
    deadline: int = 600
    ready_after: int = 0  # seconds the bed takes to make each new pod Ready (a slow rollout); 0: at once

    @property
    def max_weight(self) -> int:
        return self.step_weight * self.steps


def names(count: int) -> list[str]:
    return [f"app-{i:04d}" for i in range(count)]


def deployment(namespace: str, name: str, ready_after: int = 0) -> dict[str, Any]:
    """``ready_after``: the bed's kwok makes each of its pods Ready that many seconds after seeing it (the pod
    template's annotation, which both operators copy to the primary's pods)."""
    template_meta: dict[str, Any] = {"labels": {"app": name}}
    if ready_after:
        template_meta["annotations"] = {READY_AFTER: f"{ready_after}s"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": template_meta,
                              "spec": {"containers": [{"name": "podinfod", "image": IMAGE,
                                                       "ports": [{"name": "http", "containerPort": 9898,
                                                                  "protocol": "TCP"}]}]}}},
    }


def metric_template(namespace: str, prometheus_url: str) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": TEMPLATE, "namespace": namespace},
        "spec": {"provider": {"type": "prometheus", "address": prometheus_url}, "query": "vector(1)"},
    }


def canary(namespace: str, name: str, shape: Shape) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "progressDeadlineSeconds": shape.deadline,
            "service": {"port": 9898},
            "analysis": {
                "interval": f"{shape.interval}s", "threshold": shape.threshold,
                "stepWeight": shape.step_weight, "maxWeight": shape.max_weight,
                "metrics": [{"name": "constant", "templateRef": {"name": TEMPLATE},
                             "thresholdRange": {"max": 2}, "interval": "1m"}],
            },
        },
    }


async def bounded(calls: Iterable[Callable[[], Awaitable[Any]]], limit: int = 16) -> None:
    """Runs the calls with at most ``limit`` in flight."""
    sem = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> None:
        async with sem:
            await call()

    await asyncio.gather(*(one(c) for c in calls))


async def create_namespace(client: KubeClient, namespace: str) -> None:
    try:
        await client.create(NAMESPACE, None, {"apiVersion": "v1", "kind": "Namespace",
                                              "metadata": {"name": namespace,
                                                           "labels": {"bench.canaryd.io/run": "true"}}})
    except Conflict:
        pass


async def delete_namespace(client: KubeClient, namespace: str) -> None:
    try:
        await client.delete(NAMESPACE, None, namespace)
    except NotFound:
        pass


async def namespace_gone(client: KubeClient, namespace: str) -> bool:
    try:
        await client.get(NAMESPACE, None, namespace)
    except NotFound:
        return True
    return False


async def create_workload(client: KubeClient, namespace: str, count: int, shape: Shape,
                          prometheus_url: str, *, create_namespace_too: bool = True) -> list[str]:
    """Namespace (unless given), MetricTemplate, then each Deployment with its Canary; returns the names."""
    if create_namespace_too:
        await create_namespace(client, namespace)
    await client.create(METRIC_TEMPLATE, namespace, metric_template(namespace, prometheus_url))
    apps = names(count)

    def pair(name: str) -> Callable[[], Awaitable[Any]]:
        async def make() -> None:
            await client.create(DEPLOYMENT, namespace, deployment(namespace, name, shape.ready_after))
            await client.create(CANARY, namespace, canary(namespace, name, shape))
        return make

    await bounded(pair(n) for n in apps)
    return apps


async def trigger(client: KubeClient, namespace: str, name: str, revision: str) -> None:
    """A new revision: only the pod template changes (an annotation), as a `kubectl set env` would."""
    patch = {"spec": {"template": {"metadata": {"annotations": {REVISION_ANNOTATION: revision}}}}}
    await client.patch(DEPLOYMENT, namespace, name, patch, patch_type="merge")
