"""Taking over from the real Flagger (issue 6 §6): Flagger v1.44.0 (built into the bed's cache on first use)
initializes three Canaries and runs one of them to weight 20; Flagger stops; canaryd starts under its own
ServiceAccount. The two unchanged canaries get no spurious run (no ``New revision detected`` Event, phase
kept, target still at 0 replicas); the one mid-run is restarted at weight 0 with an Event and ends Succeeded.

Both operators watch only the test's namespace, so the test shares the bed with the others. The canaries
use Flagger's minimum 10 s interval and one cheap check (a MetricTemplate on ``vector(1)``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bench import workload
from bench.observe import Observer
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, DEPLOYMENT
from e2e.bed.waiting import wait_for
from e2e.canaries import event_messages
from e2e.flagger_process import Flagger
from e2e.operator import Operator

SHAPE = workload.Shape(interval=10, step_weight=10, steps=3)  # weights 10, 20, 30, then promotion
MOVING = "app-0000"
STEADY = ("app-0001", "app-0002")


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="canaryd-e2e-takeover")
    yield client
    await client.close()


async def _canary(client: KubeClient, ns: str, name: str) -> dict[str, Any]:
    return dict(await client.get(CANARY, ns, name))


async def test_canaryd_takes_over_from_flagger_mid_run(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator],
        tmp_path: Path) -> None:
    ns = namespace
    observer = Observer(admin, ns)
    await observer.start()
    try:
        flagger = Flagger(kubeconfig=bed.kubeconfig, prometheus_url=str(bed.prometheus_url), log_dir=tmp_path,
                          namespace=ns)
        try:
            flagger.start()
            flagger.wait_ready(timeout=120)
            names = await workload.create_workload(admin, ns, 3, SHAPE, str(bed.prometheus_url),
                                                   create_namespace_too=False)
            assert names == [MOVING, *STEADY]
            tl = observer.timelines
            await wait_for(lambda: all(tl.phase(x) == "Initialized" for x in names), 180,
                           "Flagger initializes the three canaries")
            await workload.trigger(admin, ns, MOVING, "flagger-run")
            await wait_for(lambda: any(w >= 20 for _, ph, w in tl.status[MOVING] if ph == "Progressing"), 120,
                           f"Flagger runs {MOVING} to weight 20")
            assert flagger.stop() is not None
        finally:
            flagger.stop()
        handed = await _canary(admin, ns, MOVING)
        st0 = handed["status"]
        assert st0["phase"] == "Progressing" and st0["canaryWeight"] >= 20, st0
        steady_before = {x: (await _canary(admin, ns, x))["status"] for x in STEADY}
        assert all(st["phase"] == "Initialized" for st in steady_before.values()), steady_before
        flagger_events = len(await event_messages(admin, ns))

        op = operator_factory(ns)  # canaryd under its ServiceAccount, ready (caches synced) when it returns
        takeover_at = len(tl.status[MOVING])
        await wait_for(lambda: tl.phase(MOVING) in ("Succeeded", "Failed"), 180,
                       f"canaryd finishes {MOVING}'s run")
        after = tl.status[MOVING][takeover_at:]
        assert tl.phase(MOVING) == "Succeeded", (after, op.messages()[-20:])
        # restarted at weight 0: the first status canaryd writes is Progressing at 0, then 10, 20, 30
        weights = [w for _, ph, w in after if ph == "Progressing"]
        assert weights and weights[0] == 0, after
        assert [w for w in weights if w > 0][:3] == [10, 20, 30], after

        messages = (await event_messages(admin, ns))[flagger_events:]
        assert f"Run taken over from Flagger! Restarting analysis for {MOVING}.{ns}" in messages, messages
        assert not any(m.startswith("New revision detected") for m in messages), messages
        # no spurious run for the unchanged canaries: phase kept, never Progressing, targets still at zero
        for x in STEADY:
            st = (await _canary(admin, ns, x))["status"]
            assert st["phase"] == "Initialized", (x, st)
            assert all(ph != "Progressing" for _, ph, _ in tl.status[x]), (x, tl.status[x])
            dep = await admin.get(DEPLOYMENT, ns, x)
            assert dep["spec"]["replicas"] == 0, (x, dep["spec"])
            assert not any(x in m for m in messages), (x, messages)
    finally:
        await observer.stop()
