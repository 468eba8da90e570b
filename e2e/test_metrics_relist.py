"""A forced relist, as Prometheus sees it. canaryd's counter of re-opened watches
(``canaryd_watch_restarts_total``) has no ``reason="gone"`` series until a watch is answered 410 and the
informer lists again; this makes that happen for real and reads the counter through a real Prometheus
scrape, then checks the per-canary gauges are still right after the relist.

It needs a bed of its own: on the shared bed every resource canaryd watches is served from the API
server's watch cache, which answers an old resourceVersion without 410 however etcd is compacted. Here
ConfigMaps have no watch cache (``Bed(uncached=("configmaps",))``), canaryd reaches the API server through
a TCP proxy the test cuts, etcd is compacted during the cut, and the resumed watch reaches etcd: 410."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CONFIGMAP
from e2e.bed import Bed
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, wait_phase
from e2e.operator import Operator, install_rbac, mesh_proxy, wait_ready
from e2e.promql import query, scraped
from e2e.tcp_proxy import TcpProxy

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def relist_bed() -> Iterator[Bed]:
    """A bed for this module alone, without a watch cache for ConfigMaps (one of canaryd's kinds)."""
    b = Bed.temporary(mesh=True, prometheus=True, uncached=("configmaps",))
    try:
        yield b
    finally:
        b.down(keep_logs=False)


@pytest.fixture
async def proxied_kubeconfig(relist_bed: Bed, tmp_path: Path) -> AsyncIterator[tuple[str, TcpProxy]]:
    """canaryd's ServiceAccount kubeconfig, its server replaced by a TCP proxy to the API server."""
    api = urlsplit(str(relist_bed.api_url))
    proxy = TcpProxy(str(api.hostname), int(api.port or 443))
    await proxy.start()
    path = await asyncio.to_thread(_proxied, relist_bed, proxy.listen_port, tmp_path)
    try:
        yield path, proxy
    finally:
        await proxy.close()


def _proxied(bed: Bed, port: int, where: Path) -> str:
    config = yaml.safe_load(Path(install_rbac(bed)).read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path = where / "canaryd-proxied.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return str(path)


async def series(prometheus: str, metric: str, ns: str, **labels: str) -> list[float]:
    """The values of ``metric``'s series scraped from this test's canaryd with ``labels``."""
    matchers = ",".join(f'{k}="{v}"' for k, v in {"e2e_namespace": ns, **labels}.items())
    return [v for _, v in await query(prometheus, f"{metric}{{{matchers}}}")]


async def test_forced_relist_counts_gone_and_keeps_the_canary_gauges(
        relist_bed: Bed, proxied_kubeconfig: tuple[str, TcpProxy], tmp_path: Path) -> None:
    bed, (kubeconfig, proxy) = relist_bed, proxied_kubeconfig
    prom = str(bed.prometheus_url)
    ns = f"relist-{uuid.uuid4().hex[:6]}"
    bed.kubectl("create", "namespace", ns)
    op = Operator(kubeconfig=kubeconfig, namespace=ns, prometheus_url=prom,
                  proxy=mesh_proxy(bed.mesh_url, ns), log_dir=tmp_path)
    admin: KubeClient = await bed.admin_client(user_agent="e2e-metrics-relist")
    try:
        op.start()
        await asyncio.to_thread(wait_ready, op)  # off the loop: the proxy serves from it
        with scraped(bed, op, e2e_namespace=ns):
            await create(admin, ns, podinfo(ns), canary(ns))
            await wait_phase(admin, ns, "Initialized")

            async def values(metric: str, **labels: str) -> list[float]:
                return await series(prom, metric, ns, **labels)

            gauges: dict[str, tuple[str, dict[str, str], list[float]]] = {
                "status": ("flagger_canary_status", {"name": "podinfo", "namespace": ns}, [1]),
                "primary": ("flagger_canary_weight", {"workload": "podinfo-primary", "namespace": ns}, [100]),
                "canary": ("flagger_canary_weight", {"workload": "podinfo", "namespace": ns}, [0]),
                "total": ("flagger_canary_total", {"namespace": ns}, [1]),
                "cached": ("canaryd_cache_objects", {"kind": "Canary"}, [1]),
            }

            async def gauges_right() -> bool:
                return all([await values(m, **lab) == want for m, lab, want in gauges.values()])

            await wait_for(gauges_right, 20, "the Initialized canary's gauges in Prometheus", interval=0.5)
            gone = {"resource": "configmaps", "reason": "gone"}
            assert await values("canaryd_watch_restarts_total", **gone) == []  # no 410 yet, no series
            (configmaps,) = await values("canaryd_cache_objects", kind="ConfigMap")

            # the outage: canaryd's connections cut; meanwhile a ConfigMap is created and etcd compacted
            # past every resourceVersion canaryd holds, so its resumed ConfigMap watch is answered 410
            # (two writes: a watch from the revision just before a compaction would still be served)
            proxy.cut()
            made = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "made-during-the-cut"}}
            await admin.create(CONFIGMAP, ns, made)
            await admin.patch(CONFIGMAP, ns, "made-during-the-cut", {"data": {"a": "b"}}, patch_type="merge")
            await asyncio.to_thread(bed.compact_etcd)
            proxy.resume()

            async def relisted() -> list[float] | None:
                got = await values("canaryd_watch_restarts_total", **gone)
                return got if got and got[0] >= 1 else None

            await wait_for(relisted, 30, "a 410 and a relist counted in Prometheus", interval=0.5)

            # the list (it follows the count) brings the ConfigMap made while canaryd was cut off
            async def listed() -> bool:
                return await values("canaryd_cache_objects", kind="ConfigMap") == [configmaps + 1]

            await wait_for(listed, 20, "the relisted ConfigMap counted in Prometheus", interval=0.5)
            # the cached kinds were resumed from the watch cache, not listed again
            assert await values("canaryd_watch_restarts_total", resource="canaries", reason="gone") == []
            # the per-canary gauges, scraped after the relist, are what they were
            seen = {k: await values(m, **lab) for k, (m, lab, _) in gauges.items()}
            assert seen == {k: want for k, (_, _, want) in gauges.items()}, seen
    finally:
        op.stop()
        await admin.close()
        bed.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)
