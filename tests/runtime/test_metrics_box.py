"""Metrics of a real Runtime in the box (tests/box: API server fake, scaled clock): counters on a
promotion and a rollback with Flagger's labels, gauges from the cache only on the leader (a standby
none, a new leader all at once without a write, a replica that lost the lease none), a deleted
Canary's series gone, and each ``canaryd_*`` metric of the runtime moving with what it measures."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import generate_latest

from canaryd.kube import resources as r
from tests.box.harness import Box, Instance, eventually
from tests.box.peers import failing_success_rate
from tests.box.scenario import NS, final_phase, initialized, succeeded

ELECTION: dict[str, Any] = {"leader_elect": True, "lease_duration": 150.0, "renew_deadline": 100.0,
                            "retry_period": 10.0}
OUTCOME = {"name": "podinfo", "namespace": NS, "deployment_strategy": "canary",
           "analysis_status": "completed"}


@pytest.fixture
async def box() -> AsyncIterator[Box]:
    b = Box()
    await b.start()
    try:
        yield b
    finally:
        await b.stop()


def value(inst: Instance, metric: str, /, **labels: str) -> float | None:
    return inst.metrics.registry.get_sample_value(metric, labels)


def status_of(inst: Instance) -> float | None:
    return value(inst, "flagger_canary_status", name="podinfo", namespace=NS)


def per_canary(inst: Instance) -> list[str]:
    """The exported lines of Flagger's per-canary gauges."""
    text = generate_latest(inst.metrics.registry).decode()
    names = ("flagger_canary_status{", "flagger_canary_weight{", "flagger_canary_total{",
             "flagger_canary_metric_analysis{")
    return [line for line in text.splitlines() if line.startswith(names)]


async def test_a_promotion_counts_a_success_and_moves_the_gauges(box: Box) -> None:
    inst = await box.run()
    assert value(inst, "canaryd_cache_objects", kind="Canary") == 0
    assert value(inst, "canaryd_canary_tasks") == 0
    await initialized(box)
    assert value(inst, "canaryd_cache_objects", kind="Canary") == 1
    assert value(inst, "canaryd_canary_tasks") == 1
    assert value(inst, "flagger_canary_successes_total", **OUTCOME) is None  # no series before the first
    assert status_of(inst) == 1  # Initialized
    assert value(inst, "flagger_canary_total", namespace=NS) == 1
    wakeups = value(inst, "canaryd_task_wakeups_total", cause="wake") or 0
    assert wakeups >= 1
    box.set_image(NS, "6.0.1")
    await eventually(lambda: status_of(inst) == 0, 10, "status gauge 0 while Progressing")
    await eventually(lambda: (value(inst, "flagger_canary_weight", workload="podinfo", namespace=NS) or 0)
                     >= 10, 10, "canary weight 10")
    canary_w = value(inst, "flagger_canary_weight", workload="podinfo", namespace=NS) or 0
    assert value(inst, "flagger_canary_weight", workload="podinfo-primary", namespace=NS) == 100 - canary_w
    rate = value(inst, "flagger_canary_metric_analysis", name="podinfo", namespace=NS,
                 metric="istio_requests_total")
    assert rate == 100.0  # the box's Prometheus answers 100 %
    await succeeded(box)
    assert value(inst, "flagger_canary_successes_total", **OUTCOME) == 1
    assert value(inst, "flagger_canary_failures_total", **OUTCOME) is None
    assert status_of(inst) == 1
    assert value(inst, "flagger_canary_weight", workload="podinfo", namespace=NS) == 0
    assert value(inst, "flagger_canary_weight", workload="podinfo-primary", namespace=NS) == 100
    steps = value(inst, "flagger_canary_duration_seconds_count", name="podinfo", namespace=NS) or 0
    assert steps >= 10  # one analysis per step
    assert (value(inst, "canaryd_check_duration_seconds_count", check="step") or 0) >= steps
    assert (value(inst, "canaryd_step_lateness_seconds_count") or 0) >= 10  # every due step taken
    assert (value(inst, "canaryd_task_wakeups_total", cause="wake") or 0) > wakeups
    assert (value(inst, "canaryd_task_wakeups_total", cause="deadline") or 0) >= 1  # steps are deadlines


async def test_a_rollback_counts_a_failure(box: Box) -> None:
    box.prometheus.answer = failing_success_rate
    inst = await box.run()
    await initialized(box, threshold=2)
    box.set_image(NS, "6.0.1")
    assert await final_phase(box) == "Failed"
    await eventually(lambda: value(inst, "flagger_canary_failures_total", **OUTCOME) == 1, 5,
                     "failure counted")
    assert value(inst, "flagger_canary_successes_total", **OUTCOME) is None
    assert status_of(inst) == 2
    assert value(inst, "flagger_canary_weight", workload="podinfo", namespace=NS) == 0
    assert value(inst, "flagger_canary_metric_analysis", name="podinfo", namespace=NS,
                 metric="istio_requests_total") == 50.0


async def test_a_deleted_canarys_series_disappear(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: value(inst, "flagger_canary_metric_analysis", name="podinfo", namespace=NS,
                                   metric="istio_requests_total") is not None, 10, "a check's value")
    assert per_canary(inst)
    box.api.remove(r.CANARY, NS, "podinfo")
    await eventually(lambda: value(inst, "canaryd_canary_tasks") == 0, 5, "the canary's task gone")
    assert per_canary(inst) == []
    assert value(inst, "canaryd_cache_objects", kind="Canary") == 0


async def test_only_the_leader_exports_per_canary_gauges(box: Box) -> None:
    first = await box.run(leader_identity="box-a", **ELECTION)
    await eventually(first.runtime.leadership.may_act, 5, "box-a leading")
    second = await box.run(leader_identity="box-b", **ELECTION)
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await succeeded(box)
    await eventually(lambda: second.runtime.leadership.state == "standby", 5, "box-b standing by")
    assert status_of(first) == 1 and value(first, "canaryd_leader") == 1
    assert per_canary(second) == [] and value(second, "canaryd_leader") == 0
    assert value(second, "canaryd_cache_objects", kind="Canary") == 1  # a standby's cache is warm
    assert value(second, "canaryd_canary_tasks") == 0

    rv = box.canary(NS)["metadata"]["resourceVersion"]
    await first.stop()  # the lease is released: box-b leads, the settled canary needs no write
    await eventually(second.runtime.leadership.may_act, 5, "box-b leading")
    assert status_of(second) == 1 and value(second, "canaryd_leader") == 1
    assert value(second, "flagger_canary_weight", workload="podinfo-primary", namespace=NS) == 100
    assert value(second, "flagger_canary_total", namespace=NS) == 1
    assert box.canary(NS)["metadata"]["resourceVersion"] == rv
    # counters are the process's own: box-b promoted nothing
    assert value(second, "flagger_canary_successes_total", **OUTCOME) is None


async def test_a_replica_that_lost_the_lease_clears_its_gauges(box: Box) -> None:
    inst = await box.run(leader_identity="box-a", **ELECTION)
    await initialized(box)
    await eventually(lambda: status_of(inst) == 1, 5, "status exported")

    def intrude(obj: dict[str, Any]) -> None:
        spec = copy.deepcopy(obj["spec"])
        spec["holderIdentity"] = "intruder"
        obj["spec"] = spec

    box.api.edit(r.LEASE, "canaryd-system", "canaryd-leader", intrude)
    await eventually(lambda: not inst.runtime.leadership.may_act(), 5, "leadership lost")
    assert per_canary(inst) == []
    assert value(inst, "canaryd_leader") == 0
    await eventually(lambda: value(inst, "canaryd_canary_tasks") == 0, 5, "tasks stopped")


async def test_a_check_without_data_removes_its_value(box: Box) -> None:
    inst = await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    labels = {"name": "podinfo", "namespace": NS, "metric": "istio_requests_total"}
    await eventually(lambda: value(inst, "flagger_canary_metric_analysis", **labels) == 100.0, 10,
                     "a measured success rate")
    box.prometheus.answer = lambda query: None if "istio_requests_total" in query else 1.0
    await eventually(lambda: value(inst, "flagger_canary_metric_analysis", **labels) is None, 10,
                     "the value gone once the check has no data")
