"""Watches that follow the canaries, on a real API server: canaryd watching every namespace lists and
watches Deployments, Services, ConfigMaps and Secrets only in the namespaces holding Canaries (the
audit log shows every request it sent), drives a Canary present at start and one created later in a new
namespace, and forgets a namespace's objects when its last Canary goes (docs/architecture.md, "What is
watched"; the figures: bench/results/2026-12-06-crowd.md).

It needs a bed of its own: canaryd here drives the Canaries of every namespace, which on the shared
bed would be other tests' Canaries."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, PER_NAMESPACE, SECRET
from e2e.bed import Bed
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, wait_phase
from e2e.operator import IDENTITY, Operator, install_rbac, wait_ready

pytestmark = pytest.mark.e2e
SCOPED = {res.plural for res in PER_NAMESPACE}


@pytest.fixture(scope="module")
def own_bed() -> Iterator[Bed]:
    b = Bed.temporary(mesh=False, prometheus=True)
    try:
        yield b
    finally:
        b.down(keep_logs=False)


def cached(op: Operator, kind: str) -> float:
    """canaryd_cache_objects for ``kind`` from canaryd's /metrics."""
    for line in op.metrics_text().splitlines():
        if line.startswith(f'canaryd_cache_objects{{kind="{kind}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_only_namespaces_holding_canaries_are_watched(own_bed: Bed, tmp_path: Path) -> None:
    bed = own_bed
    run = uuid.uuid4().hex[:6]
    first, second, crowd = f"scoped-a-{run}", f"scoped-b-{run}", f"scoped-crowd-{run}"
    admin: KubeClient = await bed.admin_client(user_agent="e2e-scoped-watches")
    for ns in (first, second, crowd):
        bed.kubectl("create", "namespace", ns)
    # a namespace without Canaries: a Helm release Secret, a ConfigMap, a Deployment at replicas 0
    payload = base64.b64encode(b"x" * 50_000).decode()
    await admin.create(SECRET, crowd, {"metadata": {"name": "sh.helm.release.v1.app.v1"},
                                       "type": "helm.sh/release.v1", "data": {"release": payload}})
    await admin.create(CONFIGMAP, crowd, {"metadata": {"name": "settings"}, "data": {"a": "b"}})
    idle = podinfo(crowd)
    idle["spec"]["replicas"] = 0
    await admin.create(DEPLOYMENT, crowd, idle)
    await create(admin, first, podinfo(first), canary(first))  # present when canaryd starts

    agent_ns = f"scoped-{run}"
    op = Operator(kubeconfig=install_rbac(bed), namespace="", prometheus_url=str(bed.prometheus_url),
                  proxy=None, log_dir=tmp_path, name=agent_ns)
    try:
        op.start()
        await asyncio.to_thread(wait_ready, op)
        await wait_phase(admin, first, "Initialized")
        await create(admin, second, podinfo(second), canary(second))  # a new namespace, after the start
        await wait_phase(admin, second, "Initialized")
        assert await asyncio.to_thread(cached, op, "Deployment") == 4  # podinfo(-primary) of the two

        await admin.delete(CANARY, second, "podinfo")  # its last Canary gone: the namespace forgotten

        async def forgotten() -> bool:
            return await asyncio.to_thread(cached, op, "Deployment") == 2

        await wait_for(forgotten, 30, "the second namespace's Deployments dropped from the cache")
        assert await asyncio.to_thread(cached, op, "Secret") == 0  # none in the canary namespaces
    finally:
        op.stop()
        await admin.close()

    events = bed.audit_events(username=IDENTITY, user_agent_prefix=op.user_agent)
    assert events, f"no request of {IDENTITY} with user agent {op.user_agent} in the audit log"
    wide = sorted({f"{e.verb} {e.resource}" for e in events
                   if e.resource in SCOPED and e.verb in ("list", "watch") and not e.namespace})
    assert wide == [], f"listed or watched cluster-wide: {wide}"
    assert [e.uri for e in events if e.namespace == crowd] == []
    for ns in (first, second):
        seen = {e.resource for e in events if e.namespace == ns and e.verb in ("list", "watch")}
        assert SCOPED <= seen, (ns, seen)
    assert [e.uri for e in events if e.code == 403] == []
    for ns in (first, second, crowd):
        bed.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
