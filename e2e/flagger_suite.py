"""Shared pieces of the Flagger Istio suite scenarios (e2e/test_flagger_suite*.py): the real load tester
per test namespace, webhooks aimed at it, gate switches, requests through the mesh and their counts.

Substitutions the bed forces, common to every scenario: the load tester is ``canaryd loadtester`` run as a
local process under its own ServiceAccount and registered with the mesh simulator as
``flagger-loadtester.<ns>`` (Flagger's suite deploys the flagger-loadtester image); podinfo is answered by
the simulator (``/token``, ``/healthz`` included); analysis intervals are 1-3 s instead of 10-15 s and
metric windows 10 s instead of 1 m; each scenario runs in its own namespace instead of re-applying the
Canary in ``test``."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, SERVICE, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import event_messages, wait_phase
from e2e.loadtester import LoadTester, install, webhook_url
from e2e.operator import mesh_proxy

LoadTesterFactory = Callable[..., Any]


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


@pytest.fixture
async def loadtester_factory(bed: Any, namespace: str, tmp_path: Path) -> AsyncIterator[LoadTesterFactory]:
    """``await loadtester_factory(*args)``: ``canaryd loadtester`` installed in the test namespace
    (manifests/loadtester), under its ServiceAccount, behind ``http://flagger-loadtester.<ns>/``."""
    started: list[LoadTester] = []
    kubeconfig = install(bed, namespace)

    async def make(*args: str) -> LoadTester:
        tester = LoadTester(kubeconfig=kubeconfig, namespace=namespace, log_path=tmp_path / "loadtester.log",
                            proxy=mesh_proxy(str(bed.mesh_url), namespace), args=args)
        started.append(tester)
        await tester.start()
        await tester.register(str(bed.mesh_url))
        return tester

    yield make
    for tester in started:
        tester.stop()


def hook(namespace: str, name: str, kind: str, path: str = "/", timeout: str = "5s",
         **metadata: str) -> dict[str, Any]:
    """A webhook on the load tester, as Flagger's suite writes them (``http://flagger-loadtester.test/…``),
    with the load tester's token in the URL's user info (docs/operations.md)."""
    out: dict[str, Any] = {"name": name, "type": kind, "url": webhook_url(namespace, path),
                           "timeout": timeout}
    if metadata:
        out["metadata"] = metadata
    return out


async def switch(tester: LoadTester, path: str, namespace: str, name: str = "podinfo") -> None:
    """``/gate/open`` & co. as an operator would call them (curl -d '{"name": …, "namespace": …}')."""
    code, text = await tester.post(path, {"name": name, "namespace": namespace})
    assert code == 202, (path, code, text)


def client_requests(mesh_url: str, namespace: str, workload: str) -> float:
    """``istio_requests_total{reporter="destination", source_workload="bed-client"}`` of one workload: the
    requests sent through the mesh's proxies (the load tester's, the test's), not the background traffic."""
    with urllib.request.urlopen(f"{mesh_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("istio_requests_total{") and 'reporter="destination"' in line
                and 'source_workload="bed-client"' in line
                and f'destination_workload="{workload}"' in line
                and f'destination_workload_namespace="{namespace}"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def get(session: aiohttp.ClientSession, proxy: str, url: str,
              headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], Any]:
    """GET through the mesh proxy; (status, response headers, JSON body or text)."""
    async with session.get(url, proxy=proxy, headers=headers or {}) as resp:
        text = await resp.text()
        try:
            body: Any = await resp.json(content_type=None)
        except ValueError:
            body = text
        return resp.status, dict(resp.headers), body


async def initialized(client: KubeClient, namespace: str, seconds: float = 120.0) -> dict[str, Any]:
    """Phase Initialized, with the apex Service and the VirtualService already there, read at once as
    Flagger's scripts do (canaryd writes the phase only once its cache shows the VirtualService)."""
    st = await wait_phase(client, namespace, "Initialized", seconds=seconds)
    await client.get(SERVICE, namespace, "podinfo")
    await client.get(VIRTUAL_SERVICE, namespace, "podinfo")
    return st


async def events_with(client: KubeClient, namespace: str, *messages: str, seconds: float = 20.0) -> list[str]:
    """The Canary's Event messages once all of ``messages`` are among them (Events follow the status
    write that a phase wait sees)."""
    async def present() -> list[str] | None:
        got = await event_messages(client, namespace)
        return got if all(m in got for m in messages) else None

    found: list[str] = await wait_for(present, seconds, f"Events {messages}")
    return found


async def primary_image(client: KubeClient, namespace: str) -> str:
    dep = await client.get(DEPLOYMENT, namespace, "podinfo-primary")
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


async def vs_spec(client: KubeClient, namespace: str, name: str = "podinfo") -> dict[str, Any]:
    return dict((await client.get(VIRTUAL_SERVICE, namespace, name)).get("spec") or {})


class Clock:
    """Wall time of a scenario's phases, printed as one line at the end (run pytest with ``-s``)."""

    def __init__(self, scenario: str) -> None:
        self.scenario = scenario
        self.start = time.monotonic()
        self.marks: list[tuple[str, float]] = []

    def mark(self, what: str) -> None:
        self.marks.append((what, time.monotonic() - self.start))

    def report(self) -> str:
        parts = ", ".join(f"{w} {t:.1f}s" for w, t in self.marks)
        line = f"[{self.scenario}] {parts}"
        print("\n" + line)
        return line


@pytest.fixture
def clock(request: pytest.FixtureRequest) -> Iterator[Clock]:
    c = Clock(request.node.name)
    yield c
    c.report()
