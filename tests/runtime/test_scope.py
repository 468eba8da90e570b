"""Watches that follow the canaries (runtime/scope.py), on a real Runtime in the box: Deployments,
Services, ConfigMaps and Secrets are listed and watched only in namespaces holding Canaries (Secrets also
where MetricTemplates are), a Canary in a new namespace starts once that namespace is listed, the last
Canary's departure drops the namespace from the cache, and past the namespace limit a kind goes
cluster-wide without losing an object."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaryd.kube import resources as r
from tests.box.harness import Box, Instance, eventually
from tests.box.objects import hpa, podinfo, tutorial_canary
from tests.box.scenario import NS, initialized, succeeded

SCOPED = ("secrets", "configmaps", "deployments", "services")


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    b = Box()
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


def helm_secret(ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": "sh.helm.release.v1.app.v1", "namespace": ns, "labels": {"owner": "helm"}},
            "data": {"release": "SDRzSUFBQUFBQUFBLw=="}}


def crowd(box: Box, ns: str) -> None:
    """What a namespace without Canaries holds: a Helm release Secret, a ConfigMap, a Deployment."""
    box.api.put(r.SECRET, helm_secret(ns))
    box.api.put(r.CONFIGMAP, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "settings", "namespace": ns}, "data": {"a": "b"}})
    box.api.put(r.DEPLOYMENT, podinfo(ns))


def add_canary(box: Box, ns: str) -> None:
    box.api.put(r.DEPLOYMENT, podinfo(ns))
    box.api.put(r.HPA, hpa(ns))
    box.api.put(r.CANARY, tutorial_canary(ns, box.hooks.url))


def paths(box: Box) -> list[str]:
    return [s.path for s in box.api.requests if s.method == "GET"]


def cached(inst: Instance, kind: str, ns: str) -> list[str]:
    return sorted(o["metadata"]["name"] for o in inst.runtime.store.items(kind, ns))


async def test_only_namespaces_holding_canaries_are_listed_and_watched(box: Box) -> None:
    crowd(box, "crowd")
    inst = await box.run()
    await initialized(box)  # the Canary arrives after the start: its namespace is watched from then on
    requested = paths(box)
    for plural in SCOPED:
        res = next(x for x in r.PER_NAMESPACE if x.plural == plural)
        assert res.path() not in requested, f"{plural} listed or watched cluster-wide"
        assert res.path(NS) in requested
        assert res.path("crowd") not in requested
    for kind in ("Secret", "ConfigMap", "Deployment"):
        assert cached(inst, kind, "crowd") == []
    assert cached(inst, "Deployment", NS) == ["podinfo", "podinfo-primary"]
    assert r.CANARY.path() in requested  # the kinds few clusters hold many of stay cluster-wide


async def test_a_canary_present_at_start_is_ready_with_its_namespace(box: Box) -> None:
    add_canary(box, NS)
    crowd(box, "crowd")
    inst = await box.run()  # returns once the caches synced
    scope = inst.runtime.scope
    assert scope is not None and scope.ready(NS) and inst.runtime.ready()[0]
    assert cached(inst, "Deployment", NS) == ["podinfo"] and cached(inst, "Secret", "crowd") == []
    await eventually(lambda: box.phase(NS) == "Initialized", 10, "Initialized")


async def test_the_last_canary_gone_drops_its_namespace(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    scope = inst.runtime.scope
    assert scope is not None and scope.namespaces("Secret") == [NS]
    box.api.remove(r.CANARY, NS, "podinfo")
    await eventually(lambda: cached(inst, "Deployment", NS) == [], 5, "the namespace's Deployments dropped")
    assert scope.namespaces("Deployment") == [] and scope.namespaces("Secret") == []
    assert not scope.ready(NS)
    # the target is still there, only no longer watched: a new Canary brings it back
    add_canary(box, NS)
    await eventually(lambda: "podinfo" in cached(inst, "Deployment", NS), 5, "watched again")


async def test_secrets_are_watched_where_metric_templates_are(box: Box) -> None:
    inst = await box.run()
    box.api.put(r.METRIC_TEMPLATE, {
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency", "namespace": "shared"},
        "spec": {"provider": {"type": "prometheus", "address": box.prometheus.url,
                              "secretRef": {"name": "prom-auth"}}, "query": "vector(1)"}})
    box.api.put(r.SECRET, {"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": "prom-auth", "namespace": "shared"},
                           "data": {"username": "dQ==", "password": "cA=="}})
    await eventually(lambda: cached(inst, "Secret", "shared") == ["prom-auth"], 5, "the template's Secret")
    scope = inst.runtime.scope
    assert scope is not None
    assert scope.namespaces("Secret") == ["shared"] and scope.namespaces("Deployment") == []


async def test_past_the_namespace_limit_a_kind_goes_cluster_wide(box: Box) -> None:
    crowd(box, "crowd")
    inst = await box.run()
    scope = inst.runtime.scope
    assert scope is not None
    scope.max_namespaces = 1
    await initialized(box)
    add_canary(box, "second")
    await eventually(lambda: box.phase("second") == "Initialized", 10, "the second Canary Initialized")
    assert all(scope.namespaces(res.kind) == ["*"] for res in r.PER_NAMESPACE)
    await eventually(lambda: len(scope.informers) == len(r.PER_NAMESPACE), 5, "per-namespace watches ended")
    assert cached(inst, "Secret", "crowd") == ["sh.helm.release.v1.app.v1"]  # the cost of the cluster again
    assert cached(inst, "Deployment", NS) == ["podinfo", "podinfo-primary"]
    box.set_image(NS, "6.0.1")  # still followed: a new revision starts a run
    await eventually(lambda: box.phase(NS) == "Progressing", 10, "Progressing")


async def test_a_release_reads_nothing_from_the_api_server(box: Box) -> None:
    """Narrowed watches keep the steady state's promise: every step reads the cache, no GET or list."""
    inst = await box.run()
    await initialized(box)
    assert inst.runtime.scope is not None and inst.runtime.scope.ready(NS)
    before = len(box.api.requests)
    box.set_image(NS, "6.0.1")
    await succeeded(box)
    reads = [f"{s.path}?{s.query}" for s in box.api.requests[before:]
             if s.method == "GET" and s.query.get("watch") != "1"]
    assert reads == []
