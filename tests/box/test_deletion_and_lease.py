"""Deletion and leadership in the box: a Canary deleted mid-run, ``revertOnDeletion`` (also with a crash
between giving the routing back and removing the finalizer), a lost lease, and a graceful hand-over."""

from __future__ import annotations

import copy

import pytest

from canaryd.engine.finalize import FINALIZER
from canaryd.kube import resources as r

from .harness import Box, eventually
from .scenario import NS, initialized, succeeded, weight_at_least


async def test_a_canary_deleted_mid_run_stops_its_task(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    box.api.remove(r.CANARY, NS, "podinfo")

    def tasks() -> float | None:
        return inst.metrics.registry.get_sample_value("canaryd_canary_tasks")

    await eventually(lambda: tasks() == 0, 5, "the canary's task gone")
    # the garbage collector took what the Canary owned; the target stays
    assert box.api.get(r.DEPLOYMENT, NS, "podinfo-primary") is None
    assert box.api.get(r.VIRTUAL_SERVICE, NS, "podinfo") is None
    assert box.api.get(r.DEPLOYMENT, NS, "podinfo") is not None
    assert box.api.get(r.CANARY, NS, "podinfo") is None  # no finalizer held it (no revertOnDeletion)


async def test_a_lost_lease_stops_canary_work_until_it_is_won_again(box: Box) -> None:
    inst = await box.run(leader_elect=True, leader_identity="box-a", lease_duration=150.0,
                         renew_deadline=100.0, retry_period=10.0)
    await initialized(box)
    lease = box.api.get(r.LEASE, "canaryd-system", "canaryd-leader")
    assert lease is not None and lease["spec"]["holderIdentity"] == "box-a"

    def intrude(obj: dict[str, object]) -> None:
        spec = copy.deepcopy(obj["spec"])
        assert isinstance(spec, dict)
        spec["holderIdentity"] = "intruder"
        obj["spec"] = spec

    taken = box.api.edit(r.LEASE, "canaryd-system", "canaryd-leader", intrude)
    await eventually(lambda: not inst.runtime.leadership.may_act(), 5, "leadership lost")
    assert inst.runtime.leadership.state == "standby"
    assert inst.metrics.registry.get_sample_value("canaryd_leader") == 0
    box.set_image(NS, "6.0.1")  # a new revision while nobody may act
    # the intruder never renews: after the lease duration box-a takes the lease back and runs the release
    await eventually(lambda: inst.runtime.leadership.may_act(), 10, "leadership won back")
    lost = int(taken["metadata"]["resourceVersion"])
    regained = min(rv for rv, key, _, obj in box.api.history if key == ("coordination.k8s.io", "leases")
                   and rv > lost and obj["spec"].get("holderIdentity") == "box-a")
    await succeeded(box)
    canary_writes = [rv for rv, key, _, _ in box.api.history
                     if key == ("flagger.app", "canaries") and lost < rv < regained]
    assert canary_writes == [], "the Canary was written while another replica held the lease"


@pytest.mark.parametrize("crash", [None, "after-revert-routing"])
async def test_revert_on_deletion_gives_the_routing_back(box: Box, crash: str | None) -> None:
    inst = await box.run(crash_at={crash: 1} if crash else None)
    await initialized(box, revert_on_deletion=True)
    assert FINALIZER in (box.canary(NS)["metadata"].get("finalizers") or [])
    box.api.remove(r.CANARY, NS, "podinfo")
    if crash:
        await eventually(inst.crash.crashed.wait, 10, f"crash point {crash}")
        await inst.stop()
        assert box.api.get(r.CANARY, NS, "podinfo") is not None  # the finalizer still holds it
        await box.run()
    await eventually(lambda: box.api.get(r.CANARY, NS, "podinfo") is None, 10, "the Canary gone")
    svc = box.api.get(r.SERVICE, NS, "podinfo")
    assert svc is not None and svc["spec"]["selector"] == {"app": "podinfo"}
    target = box.api.get(r.DEPLOYMENT, NS, "podinfo")
    assert target is not None and target["spec"]["replicas"] >= 1
