"""Watches that follow the canaries, on a real API server: canaryd watching every namespace lists and
watches Deployments, Services, ConfigMaps and Secrets only in the namespaces holding Canaries (the
audit log shows every request it sent), drives a Canary present at start and one created later in a new
namespace, and forgets a namespace's objects when its last Canary goes (docs/architecture.md, "What is
watched"; the figures: bench/results/2026-12-06-crowd.md). In a namespace holding a Canary, Secrets come as
metadata alone: Helm-release-sized Secrets there never cross the wire to canaryd (a byte-counting proxy
between it and the API server), and the one Secret its target uses is the only one it reads.

It needs a bed of its own: canaryd here drives the Canaries of every namespace, which on the shared
bed would be other tests' Canaries."""

from __future__ import annotations

import asyncio
import base64
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, CONFIGMAP, DEPLOYMENT, PER_NAMESPACE, SECRET
from e2e.bed import Bed
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, wait_phase
from e2e.operator import IDENTITY, Operator, install_rbac, wait_ready
from e2e.tcp_proxy import TcpProxy

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
    # beside the first Canary: 4 Helm release Secrets of 900 KB of incompressible data that no Canary uses,
    # and the one Secret its target reads (envFrom)
    helm = [f"sh.helm.release.v1.app.v{i}" for i in range(1, 5)]
    for name in helm:
        payload = base64.b64encode(os.urandom(900_000)).decode()
        await admin.create(SECRET, first, {"metadata": {"name": name}, "type": "helm.sh/release.v1",
                                           "data": {"release": payload}})
    await admin.create(SECRET, first, {"metadata": {"name": "app-secret"}, "stringData": {"TOKEN": "t"}})
    target = podinfo(first)
    target["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"secretRef": {"name": "app-secret"}}]
    await create(admin, first, target, canary(first))  # present when canaryd starts

    api = urlsplit(str(bed.api_url))
    wire = TcpProxy(str(api.hostname), int(api.port or 443))  # counts what the API server sends canaryd
    await wire.start()
    agent_ns = f"scoped-{run}"
    op = Operator(kubeconfig=install_rbac(bed), namespace="", prometheus_url=str(bed.prometheus_url),
                  proxy=None, log_dir=tmp_path, name=agent_ns,
                  extra_args=["--master", f"https://127.0.0.1:{wire.listen_port}"])
    try:
        op.start()
        await asyncio.to_thread(wait_ready, op)
        await wait_phase(admin, first, "Initialized")
        # 3.6 MB of Helm data in the namespace; what came is everything else (lists, watches, answers)
        assert wire.down_bytes < 1_500_000, f"{wire.down_bytes} bytes received from the API server"
        assert await asyncio.to_thread(cached, op, "Secret") == 6  # names known: 4 Helm, app-secret(-primary)
        await create(admin, second, podinfo(second), canary(second))  # a new namespace, after the start
        await wait_phase(admin, second, "Initialized")
        assert await asyncio.to_thread(cached, op, "Deployment") == 4  # podinfo(-primary) of the two
        received = wire.down_bytes

        await admin.delete(CANARY, second, "podinfo")  # its last Canary gone: the namespace forgotten

        async def forgotten() -> bool:
            return await asyncio.to_thread(cached, op, "Deployment") == 2

        await wait_for(forgotten, 30, "the second namespace's Deployments dropped from the cache")
        assert await asyncio.to_thread(cached, op, "Secret") == 6  # the first namespace's
    finally:
        op.stop()
        await admin.close()
        await wire.close()
    print(f"bytes from the API server until both Canaries were Initialized: {received}")

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
    # Secrets: listed and watched (metadata alone), and read one by one only when a Canary uses them
    read = sorted({e.name for e in events if e.resource == "secrets" and e.verb == "get"})
    assert read == ["app-secret"], read
    for ns in (first, second, crowd):
        bed.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
