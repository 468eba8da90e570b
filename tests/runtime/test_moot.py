"""A pending check is cancelled when its answer stops mattering (issue 10, "suspend, a new revision or
deletion cancels a pending check"): a Canary mid-run whose metric query hangs on a loopback Prometheus;
suspending it, deleting it or a new revision of its target ends the pass at once, the query's connection
is dropped and no status is written from the abandoned step."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from canaryd.engine.revision import pod_template_hash
from canaryd.kube.resources import CANARY, VIRTUAL_SERVICE
from canaryd.model.parse import parse_canary
from canaryd.model.spec import SpecError
from canaryd.runtime.snapshot import build_snapshot
from canaryd.runtime.task import CanaryTask

from .conftest import Rig

NS = "team-a"
LABELS = {"app": "podinfo"}


@dataclass
class HangingProm:
    """A Prometheus that receives queries and never answers them (until the test ends)."""

    url: str = ""
    started: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, _: web.Request) -> web.Response:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.dropped.set()  # aiohttp cancels the handler when the client goes away
            raise
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": []}})


@pytest.fixture
async def prom() -> AsyncIterator[HangingProm]:
    p = HangingProm()
    app = web.Application(handler_args={"handler_cancellation": True})
    app.router.add_route("*", "/{tail:.*}", p.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    p.url = f"http://{host}:{port}"
    yield p
    p.release.set()
    await runner.cleanup()


def template(image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "podinfo", "image": image}]}}


def deployment(name: str, image: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "generation": 1, "resourceVersion": "1"},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template(image, labels)},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                   "readyReplicas": 1,
                   "conditions": [{"type": "Available", "status": "True"},
                                  {"type": "Progressing", "status": "True",
                                   "reason": "NewReplicaSetAvailable"}]},
    }


def virtual_service(primary: int, canary: int) -> dict[str, Any]:
    return {
        "apiVersion": "networking.istio.io/v1beta1", "kind": "VirtualService",
        "metadata": {"name": "podinfo", "namespace": NS, "resourceVersion": "1"},
        "spec": {"hosts": ["podinfo"], "http": [{"route": [
            {"destination": {"host": "podinfo-primary"}, "weight": primary},
            {"destination": {"host": "podinfo-canary"}, "weight": canary}]}]},
    }


def mid_run(prom_url: str) -> dict[str, Any]:
    """A Canary at weight 10 whose next step (with a metric check) is due."""
    target = deployment("podinfo", "podinfo:6.0.1", LABELS)
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": NS, "uid": "u-1", "generation": 1},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "service": {"port": 9898},
                 "analysis": {"interval": "1m", "threshold": 5, "stepWeight": 10, "maxWeight": 50,
                              "metrics": [{"name": "slow", "query": "up", "interval": "1m",
                                           "thresholdRange": {"min": 1}}]},
                 "metricsServer": prom_url},
        "status": {"phase": "Progressing", "canaryWeight": 10, "failedChecks": 0, "iterations": 0,
                   "lastAppliedSpec": pod_template_hash(target["spec"]["template"]), "trackedConfigs": {},
                   "nextStepAt": "2020-01-01T00:00:00Z",
                   "conditions": [{"type": "Promoted", "status": "Unknown", "reason": "Progressing",
                                   "message": "New revision detected, progressing canary analysis."}]},
    }


async def started_pass(rig: Rig, prom: HangingProm) -> tuple[CanaryTask, asyncio.Task[float | None]]:
    canary = rig.api.put_object(CANARY, mid_run(prom.url))
    rig.store.upsert("Canary", canary)
    rig.store.upsert("Deployment", deployment("podinfo", "podinfo:6.0.1", LABELS))
    rig.store.upsert("Deployment", deployment("podinfo-primary", "podinfo:6.0.0", {"app": "podinfo-primary"}))
    rig.store.upsert("VirtualService", rig.api.put_object(VIRTUAL_SERVICE, virtual_service(90, 10)))
    task = CanaryTask(rig.ctx, NS, "podinfo")
    running = asyncio.ensure_future(task.reconcile())
    await asyncio.wait_for(prom.started.wait(), 10)  # the step's metric query is pending
    return task, running


def _next_rv(obj: dict[str, Any]) -> str:
    return str(int(obj["metadata"]["resourceVersion"]) + 1)


def suspend(rig: Rig) -> str:
    canary = copy.deepcopy(rig.store.get("Canary", NS, "podinfo"))
    assert canary is not None
    canary["spec"]["suspend"] = True
    canary["metadata"].update(generation=2, resourceVersion=_next_rv(canary))
    rig.store.upsert("Canary", canary)
    return "Canary"


def delete(rig: Rig) -> str:
    canary = copy.deepcopy(rig.store.get("Canary", NS, "podinfo"))
    assert canary is not None
    canary["metadata"].update(deletionTimestamp="2026-01-01T00:00:00Z", finalizers=["finalizer.flagger.app"],
                              resourceVersion=_next_rv(canary))
    rig.store.upsert("Canary", canary)
    return "Canary"


def new_revision(rig: Rig) -> str:
    target = deployment("podinfo", "podinfo:6.0.2", LABELS)
    target["metadata"].update(generation=2, resourceVersion="2")
    rig.store.upsert("Deployment", target)
    return "Deployment"


def canary_status_only(rig: Rig) -> str:
    """A change that does not make the check moot (another status field): the check goes on."""
    canary = copy.deepcopy(rig.store.get("Canary", NS, "podinfo"))
    assert canary is not None
    canary["metadata"]["resourceVersion"] = _next_rv(canary)
    rig.store.upsert("Canary", canary)
    return "Canary"


@pytest.mark.parametrize("change", [suspend, delete, new_revision],
                         ids=["suspend", "deletion", "new revision"])
async def test_a_change_that_makes_the_check_moot_cancels_it(rig: Rig, prom: HangingProm,
                                                             change: Callable[[Rig], str]) -> None:
    task, running = await started_pass(rig, prom)
    task.wake(change(rig))
    wake_at = await asyncio.wait_for(running, 5)  # the query would hang for the interval (1m)
    assert wake_at is not None  # look again at once, at the changed Canary
    await asyncio.wait_for(prom.dropped.wait(), 5)  # the pending query's connection was closed
    assert rig.api.writes("PUT", "/status") == []  # nothing written from the abandoned step


async def test_an_unrelated_change_lets_the_check_finish(rig: Rig, prom: HangingProm) -> None:
    task, running = await started_pass(rig, prom)
    task.wake(canary_status_only(rig))
    await asyncio.sleep(0)
    done, _ = await asyncio.wait({running}, timeout=0.3)
    assert not done and not prom.dropped.is_set()  # still waiting for the answer
    prom.release.set()
    await asyncio.wait_for(running, 10)
    assert not prom.dropped.is_set()
    puts = rig.api.writes("PUT", "/status")
    assert puts and puts[-1].body is not None
    assert puts[-1].body["status"]["failedChecks"] == 1  # the step ran with the (empty) answer



async def test_a_task_cancelled_while_a_moot_check_unwinds_ends(rig: Rig) -> None:
    """The Canary is deleted (the supervisor cancels its task) while an abandoned check is still being
    cancelled: the task must end, not go on with a swallowed cancellation beside the re-created Canary's
    new task (issue 17: the soak's asyncio tasks grew with every delete and re-create)."""
    canary = rig.api.put_object(CANARY, mid_run("http://127.0.0.1:9"))
    rig.store.upsert("Canary", canary)
    rig.store.upsert("Deployment", deployment("podinfo", "podinfo:6.0.1", LABELS))
    spec = parse_canary(canary, selector_labels=rig.ctx.settings.selector_labels)
    assert not isinstance(spec, SpecError)
    started, unwinding, release = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_to_cancel() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            unwinding.set()
            await release.wait()
            raise

    task = CanaryTask(rig.ctx, NS, "podinfo")
    running = asyncio.ensure_future(task._unless_moot(slow_to_cancel(), spec, build_snapshot(rig.ctx, spec)))
    await asyncio.wait_for(started.wait(), 5)  # the check runs: _unless_moot is waiting on it
    task.wake(delete(rig))
    await asyncio.wait_for(unwinding.wait(), 5)  # moot: the check is being cancelled
    running.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(running, 5)
