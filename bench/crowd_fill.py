"""What the crowded-cluster benchmark puts on its bed before the canaries (issue 16): namespaces,
Deployments at ``replicas: 0`` (the controller-manager adds their ReplicaSets), ConfigMaps and Secrets of
which some are Helm-release-sized — what a real cluster holds and no Canary uses."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from bench import workload
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import Conflict
from canaryd.kube.resources import CONFIGMAP, DEPLOYMENT, SECRET, Resource


@dataclass(frozen=True)
class Crowd:
    """What the fill puts on the bed (the issue's figures at scale 1)."""

    namespaces: int = 200
    deployments: int = 5000
    configmaps: int = 20000
    secrets: int = 5000
    helm_secrets: int = 1000  # of ``secrets``, 100-300 KB each

    def scaled(self, factor: float) -> Crowd:
        def s(n: int) -> int:
            return max(1, round(n * factor))
        return Crowd(s(self.namespaces), s(self.deployments), s(self.configmaps), s(self.secrets),
                     s(self.helm_secrets))


async def bounded(makers: Iterable[Callable[[], Awaitable[Any]]], limit: int = 24) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(make: Callable[[], Awaitable[Any]]) -> None:
        async with sem:
            for attempt in range(5):
                try:
                    await make()
                    return
                except Conflict:
                    return  # already there (a re-run)
                except Exception:
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.5 * (attempt + 1))

    await asyncio.gather(*(one(m) for m in makers))


def helm_secret(ns: str, i: int, size: int) -> dict[str, Any]:
    """A Helm release Secret: gzip'd protobuf-ish payload, base64 twice as Helm stores it (incompressible)."""
    payload = base64.b64encode(random.randbytes(size * 3 // 4 // 4 * 3)).decode()
    name = f"rel-{i:04d}"
    return {"apiVersion": "v1", "kind": "Secret", "type": "helm.sh/release.v1",
            "metadata": {"name": f"sh.helm.release.v1.{name}.v1", "namespace": ns,
                         "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"}},
            "data": {"release": base64.b64encode(payload.encode()).decode()}}


def filler_deployment(ns: str, i: int) -> dict[str, Any]:
    obj = workload.deployment(ns, f"filler-{i:04d}")
    obj["spec"]["replicas"] = 0
    obj["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": f"SETTING_{k}", "value": f"value-{k}-{i}"} for k in range(10)]
    return obj


async def fill(client: KubeClient, crowd: Crowd, log: Callable[[str], None]) -> dict[str, float]:
    """Namespaces, then Deployments, ConfigMaps and Secrets spread over them; returns seconds per part."""
    t0 = time.monotonic()
    spaces = [f"crowd-{i:03d}" for i in range(crowd.namespaces)]
    await bounded(lambda ns=ns: workload.create_namespace(client, ns) for ns in spaces)
    times = {"namespaces": time.monotonic() - t0}

    def configmap(ns: str, i: int) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}", "namespace": ns},
                "data": {f"key{k}": f"value {k} of configmap {i} " * 8 for k in range(6)}}

    def secret(ns: str, i: int) -> dict[str, Any]:
        if i < crowd.helm_secrets:
            return helm_secret(ns, i, random.randint(100_000, 300_000))
        return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": f"secret-{i:05d}", "namespace": ns},
                "data": {"password": base64.b64encode(random.randbytes(24)).decode()}}

    parts: list[tuple[str, Resource, Callable[[str, int], dict[str, Any]], int, int]] = [
        ("deployments", DEPLOYMENT, filler_deployment, crowd.deployments, 24),
        ("configmaps", CONFIGMAP, configmap, crowd.configmaps, 24),
        ("secrets", SECRET, secret, crowd.secrets, 8),  # the Helm-sized ones: fewer at once
    ]
    def creator(res: Resource, make: Callable[[str, int], dict[str, Any]],
                i: int) -> Callable[[], Awaitable[Any]]:
        ns = spaces[i % len(spaces)]
        return lambda: client.create(res, ns, make(ns, i))

    for label, res, make, count, limit in parts:
        t = time.monotonic()
        await bounded((creator(res, make, i) for i in range(count)), limit=limit)
        times[label] = time.monotonic() - t
        log(f"{label} done in {times[label]:.0f}s")
    times["total"] = time.monotonic() - t0
    return times
