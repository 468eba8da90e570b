"""Leadership cannot die silently (issue 10 §9): an unexpected error inside the elector's loop (here an
API server answering garbage on loopback, tests/kube/scripted.py) steps down and campaigns again after a
backoff, and the elector recovers once the answers make sense; only an elector that keeps failing gives
up, and then ``/healthz`` answers 503 so the kubelet restarts the pod."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.runtime.http import build_app
from canaryd.runtime.leader import LeaderElector
from canaryd.runtime.lease import ElectionConfig
from tests.kube.scripted import Scripted, ok, start, status, text

CONFIG = ElectionConfig(namespace="canaryd-system", identity="me", lease_duration=3.0, renew_deadline=2.0,
                        retry_period=0.05)
LEASE: dict[str, Any] = {
    "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
    "metadata": {"name": "canaryd-leader", "namespace": "canaryd-system", "resourceVersion": "7"},
    "spec": {"holderIdentity": "me", "leaseDurationSeconds": 3, "renewTime": "2026-01-01T00:00:00.000000Z"},
}


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    runner = await start(scripted)
    yield scripted
    await runner.cleanup()


@pytest.fixture
async def client(server: Scripted) -> AsyncIterator[KubeClient]:
    config = ClusterConfig(base_url=server.url, ssl_context=None, token=TokenSource(token="t0ken"))
    c = KubeClient(config, user_agent="canaryd-test/9", max_attempts=1, max_retry_wait=0.1)
    yield c
    await c.close()


async def healthz(elector: LeaderElector) -> int:
    app = build_app(CollectorRegistry(), lambda: (True, ""), elector.healthy)
    async with TestClient(TestServer(app)) as http:
        resp = await http.get("/healthz")
        return resp.status


def elector(client: KubeClient, started: asyncio.Event, max_crashes: int = 10) -> LeaderElector:
    async def on_stop(_: float) -> None:
        return None

    return LeaderElector(client, CONFIG, logging.getLogger("canaryd.test"), on_start=started.set,
                         on_stop=on_stop, max_crashes=max_crashes)


async def test_garbage_from_the_api_server_is_survived_and_the_lease_won(server: Scripted,
                                                                         client: KubeClient) -> None:
    server.reply(text(200, "<html>not json</html>"), text(200, "{truncated"),
                 ok({**LEASE, "spec": {"holderIdentity": "x", "leaseTransitions": "many"}}),  # a bad shape
                 status(404, "NotFound"), ok(LEASE, 201), *[ok(LEASE)] * 200)
    started = asyncio.Event()
    e = elector(client, started)
    e.start()
    try:
        await asyncio.wait_for(started.wait(), 10)  # three unexpected errors, then the lease won
        assert e.state == "leader" and e.leading
        assert await healthz(e) == 200
        methods = [s.method for s in server.seen[:5]]
        assert methods == ["GET", "GET", "GET", "GET", "POST"], methods
    finally:
        await e.stop(grace=0)


async def test_an_elector_that_keeps_failing_gives_up_and_fails_healthz(server: Scripted,
                                                                      client: KubeClient) -> None:
    server.reply(*[text(200, "garbage")] * 50)
    e = elector(client, asyncio.Event(), max_crashes=3)
    assert await healthz(e) == 200  # not started yet: healthy
    e.start()
    async with asyncio.timeout(10):
        while e.state != "failed":  # noqa: ASYNC110 (the elector's own state, polled)
            await asyncio.sleep(0.01)
    assert len(server.seen) == 3  # three attempts, spaced by the backoff, then no more
    assert await healthz(e) == 503
    assert e.healthy() == (False, "leader election failed")
    await e.stop(grace=0)
