"""The verdict algebra (docs/verdicts.md) on the bed against a real canaryd, one namespace per scenario,
with MetricTemplates queried from the bed's Prometheus (``vector(N)``: a known value every step) and a
loopback webhook this test switches between error and success:

* a dry-run metric that fails every step: the run still promotes; status shows it failed as a dry run;
* a failing metric with an ``initialDelay`` longer than the run's first steps: the run advances while the
  delay lasts, then the failure counts and the run is rolled back;
* a metric inside its ``inconclusiveRange``: the run holds (no advance, no rollback, status says what it
  waits for) until a ``canaryd.io/request`` promote, which promotes it;
* a rollout webhook answering 500 (could not answer) for several steps with ``consecutiveErrorLimit``
  above that: no failed check is counted and the run succeeds once it answers again; the same for a
  MetricTemplate whose Prometheus address refuses connections until the template is fixed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import METRIC_TEMPLATE
from canaryd.model.fields import parse_time
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-verdicts")
    yield client
    await client.close()


def template(namespace: str, name: str, value: float) -> dict[str, Any]:
    """A MetricTemplate on canaryd's --metrics-server (the bed's Prometheus) answering ``value``."""
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": {"type": "prometheus"}, "query": f"vector({value:g})"}}


def metric(name: str, **options: Any) -> dict[str, Any]:
    return {"name": "errors", "templateRef": {"name": name}, "thresholdRange": {"max": 5}, "interval": "10s",
            **options}


async def passing(admin: KubeClient, ns: str) -> list[dict[str, Any]]:
    """A counted check that passes every step (the builtins need traffic the namespace may not have yet)."""
    await admin.create(METRIC_TEMPLATE, ns, template(ns, "half", 0.5))
    return [{"name": "healthy", "templateRef": {"name": "half"}, "thresholdRange": {"max": 1},
             "interval": "10s"}]


def check(st: dict[str, Any], name: str = "errors") -> dict[str, Any] | None:
    return next((c for c in st.get("checks") or [] if c.get("name") == name), None)


async def halts(admin: KubeClient, ns: str) -> list[str]:
    return [m for m in await event_messages(admin, ns) if m.startswith("Halt")]


async def test_dry_run_metric_failing_every_step_still_promotes(
        namespace: str, operator: Operator, admin: KubeClient) -> None:
    ns = namespace
    await admin.create(METRIC_TEMPLATE, ns, template(ns, "seven", 7))
    await create(admin, ns, podinfo(ns), canary(ns, threshold=1, metrics=[
        *await passing(admin, ns), metric("seven", dryRun=True)]))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")

    async def failed_as_dry_run() -> dict[str, Any] | None:
        c = check(await status(admin, ns))
        return c if c is not None and c["verdict"] == "fail" else None

    c = await wait_for(failed_as_dry_run, 60, "the dry-run check recorded as failed", interval=0.2)
    assert (c.get("dryRun"), c.get("counted"), c.get("note"), c["value"]) == (
        True, False, "dry run: not counted", 7), c
    st = await wait_phase(admin, ns, "Succeeded", "Failed", seconds=90)
    assert st["phase"] == "Succeeded", st
    assert st["history"][0]["outcome"] == "promoted" and st["failedChecks"] == 0, st
    assert await halts(admin, ns) == []
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"


async def test_initial_delay_does_not_count_the_first_steps(
        namespace: str, operator: Operator, admin: KubeClient) -> None:
    ns = namespace
    delay = 6.0
    await admin.create(METRIC_TEMPLATE, ns, template(ns, "seven", 7))
    await create(admin, ns, podinfo(ns), canary(ns, threshold=1, stepWeight=5, maxWeight=50, metrics=[
        *await passing(admin, ns), metric("seven", initialDelay="6s")]))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")

    async def delayed() -> dict[str, Any] | None:
        c = check(await status(admin, ns))
        return c if c is not None and c.get("note") == "initial delay 6s: not counted" else None

    c = await wait_for(delayed, 60, "the failing check measured but not counted", interval=0.2)
    assert c["verdict"] == "fail" and c.get("counted") is False, c
    st = await wait_phase(admin, ns, "Failed", "Succeeded", seconds=90)
    assert st["phase"] == "Failed", st  # the failing check counts once the delay is over
    start = parse_time(st["history"][0]["startedAt"])
    assert start is not None
    early = [w for w in st.get("weights") or [] if w["weight"] > 0 and
             (parse_time(w["at"]) or 0) < start + delay]
    assert early, st.get("weights")  # it advanced during the delay although the check failed every step
    # the threshold-th Halt is emitted with the rollback, after the Failed status: wait for it
    events = await wait_for(lambda: halts(admin, ns), 30, "the Halt Event of the rollback", interval=0.2)
    assert all("errors 7.00 > 5" in m for m in events), events
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"


async def test_inconclusive_holds_until_a_promote_request(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient) -> None:
    ns = namespace
    await admin.create(METRIC_TEMPLATE, ns, template(ns, "three", 3))
    await create(admin, ns, podinfo(ns), canary(ns, threshold=1, metrics=[
        *await passing(admin, ns), metric("three", inconclusiveRange={"min": 2, "max": 4})]))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")

    async def held() -> dict[str, Any] | None:
        st = await status(admin, ns)
        return st if st.get("inconclusiveSince") else None

    st = await wait_for(held, 60, "the run held on the inconclusive check", interval=0.2)
    weight = st["canaryWeight"]
    assert st["phase"] == "Progressing" and st["failedChecks"] == 0, st
    assert "advancement inconclusive: errors errors 3.00 within inconclusive range" in st["message"], st
    assert "waiting for a promote or abort request" in st["message"], st
    c = check(st)
    assert c is not None and c["verdict"] == "inconclusive", c
    # a hold is a gate: its end (progressDeadlineSeconds, 60 s here) is the next thing due, not a step
    since, until = parse_time(st["inconclusiveSince"]), parse_time(st["nextStepAt"])
    assert since is not None and until is not None and until - since == pytest.approx(60.0, abs=0.01), st

    async def alerted() -> list[str]:
        return [m for m in await halts(admin, ns) if "advancement inconclusive" in m]

    assert len(await wait_for(alerted, 10, "the inconclusive Event", interval=0.2)) == 1
    later = await status(admin, ns)
    assert (later["canaryWeight"], later["inconclusiveSince"]) == (weight, st["inconclusiveSince"]), later
    run = st["lastAppliedSpec"]
    body = json.dumps({"id": "decide-1", "action": "promote", "revision": run})
    bed.kubectl("-n", ns, "annotate", "--overwrite", "canaries.flagger.app/podinfo",
                f"canaryd.io/request={body}")
    st = await wait_phase(admin, ns, "Succeeded", "Failed", seconds=60)
    assert st["phase"] == "Succeeded", st
    assert st["lastRequest"]["id"] == "decide-1" and st["lastRequest"]["result"] == "done", st
    assert "inconclusiveSince" not in st, st
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    assert len(await alerted()) == 1  # one Event for the hold, not one per interval


@pytest.fixture
async def flaky(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """A rollout webhook behind ``http://flaky.<namespace>/check`` that answers 500 with garbage."""
    r = await Receiver().start()
    r.answer("/check", 500, "<html>garbage")
    await MeshControl(bed.mesh_url).register(namespace, "flaky", f"127.0.0.1:{r.port}")
    yield r
    await r.stop()


async def test_webhook_errors_below_the_limit_count_nothing(
        namespace: str, operator: Operator, admin: KubeClient, flaky: Receiver) -> None:
    ns = namespace
    hook = {"name": "flaky", "type": "rollout", "url": f"http://flaky.{ns}/check", "timeout": "1s",
            "consecutiveErrorLimit": 8}
    await create(admin, ns, podinfo(ns), canary(ns, threshold=1, stepWeight=5, maxWeight=50, webhooks=[hook],
                                                metrics=await passing(admin, ns)))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")

    async def three_errors() -> dict[str, Any] | None:
        st = await status(admin, ns)
        return st if (st.get("errorStreaks") or {}).get("webhook/flaky", 0) >= 3 else None

    st = await wait_for(three_errors, 60, "three webhook errors in a row", interval=0.1)
    flaky.answer("/check", 200, "ok")
    c = check(st, "flaky")
    assert c is not None and c["verdict"] == "error" and c.get("counted") is False, c
    assert c.get("kind") == "webhook" and "in a row: not counted" in c.get("note", ""), c
    assert st["failedChecks"] == 0 and st["phase"] == "Progressing", st
    st = await wait_phase(admin, ns, "Succeeded", "Failed", seconds=90)
    assert st["phase"] == "Succeeded", st
    assert st["failedChecks"] == 0 and await halts(admin, ns) == []
    assert "errorStreaks" not in st, st  # the first answer ended the streak
    assert len(flaky.bodies("/check")) > 3


async def test_metric_provider_unreachable_below_the_limit_counts_nothing(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient) -> None:
    """A MetricTemplate whose Prometheus address refuses connections (port 1 on loopback) errors every
    step; with consecutiveErrorLimit above the streak nothing counts, and once the template points at
    the bed's Prometheus the streak ends and the run is promoted."""
    ns = namespace
    down = template(ns, "away", 0.5)
    down["spec"]["provider"]["address"] = "http://127.0.0.1:1"
    await admin.create(METRIC_TEMPLATE, ns, down)
    await create(admin, ns, podinfo(ns), canary(ns, threshold=1, stepWeight=5, maxWeight=50, metrics=[
        {"name": "away", "templateRef": {"name": "away"}, "thresholdRange": {"max": 1}, "interval": "10s",
         "consecutiveErrorLimit": 8}]))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")

    async def three_errors() -> dict[str, Any] | None:
        st = await status(admin, ns)
        return st if (st.get("errorStreaks") or {}).get("metric/away", 0) >= 3 else None

    st = await wait_for(three_errors, 60, "three metric errors in a row", interval=0.1)
    back = {"spec": {"provider": {"address": str(bed.prometheus_url)}}}
    await admin.patch(METRIC_TEMPLATE, ns, "away", back, patch_type="merge")
    c = check(st, "away")
    assert c is not None and c["verdict"] == "error" and c.get("counted") is False, c
    assert "Metric query failed for away" in c["message"], c
    assert st["failedChecks"] == 0 and st["phase"] == "Progressing", st
    st = await wait_phase(admin, ns, "Succeeded", "Failed", seconds=90)
    assert st["phase"] == "Succeeded", st
    assert st["failedChecks"] == 0 and await halts(admin, ns) == []
    assert "errorStreaks" not in st, st
