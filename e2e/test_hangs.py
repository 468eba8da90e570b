"""A webhook or a Prometheus that hangs (accepts the connection, never answers) is cut off by its timeout
and never stalls the canary's task (issue 5 §5): each step fails with a timeout message naming what hung,
and the next step comes on time — a hang costs at most its timeout, never more. Both run on the shared bed
(nothing shared is stopped): the hung servers are loopback servers of the test's own."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import METRIC_TEMPLATE
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.faults import Silent
from e2e.operator import Operator
from e2e.receivers import Receiver
from e2e.tutorial import counts_once

INTERVAL_S = 2.0
THRESHOLD = 3
SLACK_S = 2.0  # scheduling on a busy 2-core machine


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-hangs")
    yield client
    await client.close()


def halt_times(op: Operator, prefix: str) -> list[tuple[float, str]]:
    """(when, message) of canaryd's log lines that halted a step, in order."""
    out: list[tuple[float, str]] = []
    for line in op.logs():
        msg = str(line.get("msg", ""))
        if msg.startswith(prefix):
            ts = datetime.strptime(str(line["ts"]), "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()
            out.append((ts, msg))
    return out


def assert_on_time(halts: list[tuple[float, str]], most: float) -> list[float]:
    """Consecutive failed steps at most ``most`` seconds apart; returns the gaps."""
    gaps = [round(b - a, 2) for (a, _), (b, _) in itertools.pairwise(halts)]
    assert len(halts) == THRESHOLD, halts
    assert all(g <= most for g in gaps), f"steps {gaps} s apart, at most {most} s expected"
    return gaps


async def failed_run(admin: KubeClient, op: Operator, ns: str, prefix: str) -> list[tuple[float, str]]:
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")
    st = await wait_phase(admin, ns, "Failed", "Succeeded", seconds=120)
    assert st.get("phase") == "Failed", st
    assert st.get("message") == f"Rolling back podinfo.{ns} failed checks threshold reached {THRESHOLD}", st
    # the last Halt is emitted (and logged) with the rollback, after the Failed status: wait for the
    # rollback's last Event, which follows it
    events = await counts_once(admin, ns, f"Canary failed! Scaling down podinfo.{ns}")
    halts = halt_times(op, prefix)
    for _, msg in halts:
        assert msg in events, (msg, events)
    return halts


async def test_hung_webhook_is_cut_off_by_its_timeout_and_the_next_step_comes_on_time(
        bed: Any, namespace: str, admin: KubeClient, operator: Operator) -> None:
    ns = namespace
    hung = await Receiver().start()
    hung.hang("/hang")
    try:
        hook = {"name": "hung", "type": "rollout", "url": f"{hung.url}/hang", "timeout": "1s"}
        await create(admin, ns, podinfo(ns),
                     canary(ns, interval=f"{INTERVAL_S:g}s", threshold=THRESHOLD, webhooks=[hook]))
        prefix = f"Halt podinfo.{ns} advancement external check hung failed"
        halts = await failed_run(admin, operator, ns, prefix)
        calls = len(hung.bodies("/hang"))
    finally:
        await hung.stop()
    want = f"{prefix} POST {hung.url}/hang giving up after 1 attempt(s): timed out after 1s"
    assert [m for _, m in halts] == [want] * THRESHOLD, halts
    assert calls == THRESHOLD, calls  # one call per step, each cut off
    # the hook's 1 s fits in the 2 s step: the cadence is kept
    gaps = assert_on_time(halts, INTERVAL_S + SLACK_S)
    print(f"\nhung webhook (1s timeout, {INTERVAL_S:g}s steps): failed steps {gaps} s apart")


async def test_hung_prometheus_of_a_metric_template_is_cut_off_and_the_run_goes_on(
        bed: Any, namespace: str, admin: KubeClient, operator_factory: Callable[..., Operator]) -> None:
    ns = namespace
    silent = await Silent().start()
    try:
        op = operator_factory(ns)
        template = {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
                    "metadata": {"name": "hung", "namespace": ns},
                    "spec": {"provider": {"type": "prometheus", "address": silent.url},
                             "query": "vector(0)"}}
        await admin.create(METRIC_TEMPLATE, ns, template)
        metric = {"name": "hung-metric", "templateRef": {"name": "hung"}, "thresholdRange": {"max": 1},
                  "interval": "10s"}
        await create(admin, ns, podinfo(ns),
                     canary(ns, interval=f"{INTERVAL_S:g}s", threshold=THRESHOLD, metrics=[metric]))
        halts = await failed_run(admin, op, ns, "Metric query failed for hung-metric")
        connections = silent.connections
    finally:
        await silent.stop()
    # the check is bounded by the step interval (2 s here)
    url = re.escape(silent.url)
    pattern = re.compile(rf"^Metric query failed for hung-metric: Prometheus {url} timed out after 2s$")
    assert all(pattern.match(m) for _, m in halts), halts
    assert connections >= THRESHOLD, connections
    # a step whose check hangs for the whole interval ends one timeout late; the next is due one interval
    # after that (no burst of catch-up steps): a hang delays a step by its timeout, it never stalls the run
    gaps = assert_on_time(halts, INTERVAL_S + INTERVAL_S + SLACK_S)
    print(f"\nhung Prometheus ({INTERVAL_S:g}s check timeout, {INTERVAL_S:g}s steps): failed steps {gaps} s "
          "apart")
