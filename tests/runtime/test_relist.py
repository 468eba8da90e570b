"""After an outage the API server answers again before any of the canary's objects changes: an informer's
relist (not its first list) tells the runtime (``Informers(on_relist=...)``), and the supervisor retries
every task that is backing off at once, so recovery does not wait out a backoff grown during the outage."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import orjson
import pytest
from prometheus_client import CollectorRegistry

from canaryd.cache.backoff import Backoff
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.kube.resources import CANARY, VIRTUAL_SERVICE
from canaryd.runtime.clock import ScaledClock
from canaryd.runtime.supervisor import Supervisor
from tests.kube.scripted import Scripted, ok, start, stream

from .conftest import Rig
from .test_moot import LABELS, deployment, mid_run, virtual_service
from .test_task_backoff import Attempts, until


@pytest.fixture
async def server() -> AsyncIterator[Scripted]:
    scripted = Scripted()
    runner = await start(scripted)
    yield scripted
    await runner.cleanup()


async def test_informer_reports_relists_but_not_its_first_list(server: Scripted) -> None:
    gone = orjson.dumps({"type": "ERROR", "object": {"kind": "Status", "code": 410, "reason": "Expired"}})
    empty = {"kind": "CanaryList", "items": [], "metadata": {"resourceVersion": "5"}}
    server.reply(ok(empty), stream([gone + b"\n"]), ok(empty), stream([]))
    config = ClusterConfig(base_url=server.url, ssl_context=None, token=TokenSource(token="t0ken"))
    client = KubeClient(config, user_agent="canaryd-test/9", max_attempts=1, max_retry_wait=0.1)
    relisted: list[str] = []
    informers = Informers(client, Store(), (CANARY,), "team-a", registry=CollectorRegistry(),
                          backoff=lambda: Backoff(initial=0.05, cap=0.1), on_relist=relisted.append)
    try:
        await informers.start()
        await until(lambda: len([s for s in server.seen if "watch" not in s.query]) >= 2, 5, "a relist")
        await until(lambda: bool(relisted), 2, "the relist reported")
        assert relisted == ["Canary"]  # once: the first list is not a relist
    finally:
        await informers.stop()
        await client.close()


async def test_a_relist_retries_backing_off_tasks_at_once(rig: Rig) -> None:
    clock = ScaledClock(20.0)
    ctx = dataclasses.replace(rig.ctx, clock=clock)
    spec = mid_run("http://127.0.0.1:9")
    del spec["spec"]["analysis"]["metrics"]
    rig.store.upsert("Canary", rig.api.put_object(CANARY, spec))
    rig.store.upsert("Deployment", deployment("podinfo", "podinfo:6.0.1", LABELS))
    rig.store.upsert("Deployment", deployment("podinfo-primary", "podinfo:6.0.0", {"app": "podinfo-primary"}))
    rig.store.upsert("VirtualService", virtual_service(90, 10))  # cached, not on the server: writes fail
    attempts = Attempts(clock)
    rig.ctx.logger.addHandler(attempts)
    supervisor = Supervisor(ctx)
    supervisor.start()
    try:
        await until(lambda: len(attempts.lines) >= 2, 5, "two failed passes")  # next try in 9-10 s
        rig.api.put_object(VIRTUAL_SERVICE, virtual_service(90, 10))  # the outage ends: nothing in the cache
        supervisor.on_relist("VirtualService")
        relisted = clock.now()
        ((task, _),) = supervisor._tasks.values()
        await until(lambda: not task.backing_off, 2, "the retry, and success")
        assert clock.now() - relisted < 5.0  # not the 9-10 s the backoff had left
        assert len(attempts.lines) == 2
    finally:
        rig.ctx.logger.removeHandler(attempts)
        await supervisor.stop()
