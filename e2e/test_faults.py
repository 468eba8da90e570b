"""Fault tolerance (issue 5 §5) on a bed of this module's own — these tests stop the API server and
Prometheus, which would disturb every other scenario on the shared bed. canaryd runs as in the rest of the
suite: a separate process under its ServiceAccount and the RBAC rules of ``manifests/``.

* kube-apiserver stopped for 20 s in the middle of a run and started again: canaryd notices, reconnects,
  relists, and the run completes Succeeded with every weight seen once and in order (the observer watches
  through the outage too), no step repeated, the process never restarted;
* Prometheus stopped for 3 steps of a run with ``threshold: 5``: exactly 3 failed checks, each Halt naming
  the unreachable server, and the run still Succeeds; stopped for longer: Failed after 5 of them.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from canaryd.kube.client import KubeClient
from e2e.bed import AuditEvent, Bed
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, status, wait_phase
from e2e.faults import Observer, observing
from e2e.no403 import received, refused
from e2e.operator import Operator, install_rbac, mesh_proxy, wait_ready
from e2e.tutorial import canary_events, counts, counts_once

pytestmark = pytest.mark.e2e

OUTAGE_S = 20.0
STEPS = [10, 20, 30, 40, 50]


@pytest.fixture(scope="module")
def fault_bed() -> Iterator[Bed]:
    """A bed for this module alone (its components get stopped); ended after the module."""
    b = Bed.temporary(mesh=True, prometheus=True)
    try:
        yield b
    finally:
        Bed(b.dir).down(keep_logs=False)  # re-read from disk: a test restarted components


@pytest.fixture(scope="module")
def fault_kubeconfig(fault_bed: Bed) -> str:
    return install_rbac(fault_bed)


@dataclass
class Scene:
    bed: Bed
    ns: str
    op: Operator
    admin: KubeClient

    @property
    def key(self) -> str:
        return f"podinfo.{self.ns}"


@pytest.fixture
async def scene(fault_bed: Bed, fault_kubeconfig: str, tmp_path: Path) -> AsyncIterator[Scene]:
    """A namespace on the module's bed with canaryd running for it; the bed whole again first (a failed
    test may have left a component stopped)."""
    for component in ("apiserver", "prometheus"):
        await asyncio.to_thread(fault_bed.start, component)
    await scraping(str(fault_bed.prometheus_url))
    ns = f"faults-{uuid.uuid4().hex[:6]}"
    fault_bed.kubectl("create", "namespace", ns)
    op = Operator(kubeconfig=fault_kubeconfig, namespace=ns, prometheus_url=str(fault_bed.prometheus_url),
                  proxy=mesh_proxy(fault_bed.mesh_url, ns), log_dir=tmp_path)
    op.start()
    admin = await fault_bed.admin_client(user_agent="e2e-faults")
    try:
        await asyncio.to_thread(wait_ready, op)
        yield Scene(fault_bed, ns, op, admin)
    finally:
        op.stop()
        await admin.close()
        fault_bed.kubectl("delete", "namespace", ns, "--wait=false", "--ignore-not-found", check=False)


async def scraping(prometheus: str) -> None:
    """Until Prometheus has two fresh samples of the mesh: a restarted one applies its scrape targets only
    at its first 5 s discovery tick, and a check before that would fail with "no values"."""
    query = 'count_over_time(up{job="mesh"}[3s]) >= 2'
    async with aiohttp.ClientSession() as session:
        async def fresh() -> bool:
            async with session.get(f"{prometheus}/api/v1/query", params={"query": query}) as resp:
                return bool((await resp.json())["data"]["result"])

        await wait_for(fresh, 60, "Prometheus scraping the mesh", ignore=(aiohttp.ClientError,))


def counter(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def halts(s: Scene) -> list[tuple[str, int]]:
    """(message, count) of the Canary's Warning Events that halted a step (not the rollback, nor a wait
    for a Deployment's rollout)."""
    return [(str(e.get("message")), int(e.get("count") or 1)) for e in await canary_events(s.admin, s.ns)
            if e.get("type") == "Warning" and " not ready: " not in str(e.get("message"))
            and not str(e.get("message", "")).startswith(("Rolling back", "Canary failed"))]


def assert_in_order(obs: Observer) -> None:
    assert obs.weights == [0, *STEPS, 0], f"VirtualService weights seen: {obs.weights}"
    assert obs.progressing_weights() == STEPS, f"status seen: {obs.states}"


async def test_api_server_outage_mid_run_reconnects_relists_and_completes_in_order(scene: Scene) -> None:
    s = scene
    pid = s.op.proc.pid if s.op.proc else None
    # progress deadline 300 s: after the outage the bed's controller-manager and kwok reconnect with their
    # own backoff, and the primary's rollout at promotion once took over 60 s (the default here) to finish
    await create(s.admin, s.ns, podinfo(s.ns), canary(s.ns, interval="2s", threshold=5, deadline=300))
    await wait_phase(s.admin, s.ns, "Initialized")
    async with observing(s.admin, s.ns) as obs:
        await set_image(s.admin, s.ns, "6.0.1")
        await wait_for(lambda: 10 in obs.weights, 60, "the run at weight 10", interval=0.05)

        await asyncio.to_thread(s.bed.stop, "apiserver")
        stopped = time.monotonic()
        await wait_for(lambda: any(m.startswith("watch of ") and "failed" in m for m in s.op.messages()),
                       OUTAGE_S, "canaryd noticing the API server is gone")
        # etcd compacts meanwhile (the API server asks for it every 5 min): every resourceVersion canaryd
        # holds is gone, so each informer must list again (410), not merely resume its watch
        await asyncio.to_thread(s.bed.compact_etcd)
        # the outage itself (its length is the scenario, not a wait for a condition)
        await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - stopped)))
        weight_during = obs.weights[-1]
        restarting = time.time()
        await asyncio.to_thread(s.bed.start, "apiserver")
        back = time.time()
        outage = time.monotonic() - stopped

        await wait_phase(s.admin, s.ns, "Succeeded", seconds=180)
        await wait_for(lambda: obs.weights[-1:] == [0], 20, "the final weights seen")

    assert s.op.running() and s.op.proc is not None and s.op.proc.pid == pid, "canaryd restarted or died"
    assert weight_during < 50, f"the outage did not fall in the middle of the run ({obs.weights})"
    assert_in_order(obs)

    # one run, no step repeated (an Event whose write fell into the outage may be lost; status carries on)
    c = counts(await canary_events(s.admin, s.ns))
    advances = {w: c.get(f"Advance {s.key} canary weight {w}", 0) for w in STEPS}
    assert all(n <= 1 for n in advances.values()), advances
    assert sum(advances.values()) >= len(STEPS) - 1, advances
    assert c.get(f"New revision detected! Scaling up {s.key}") == 1, c
    assert not [m for m in c if m.startswith(("Rolling back", "New revision detected! Restarting"))], c

    # canaryd reconnected and listed again (the restarted API server's watch cache starts at etcd's
    # current revision, so a watch from before the outage is answered 410 and the informer relists)
    def requests() -> list[AuditEvent]:
        return [e for e in s.bed.audit_events(user_agent_prefix=s.op.user_agent, stage=None)
                if e.user_agent == s.op.user_agent]

    informed = {e.resource for e in requests() if e.verb == "list" and received(e) < back - OUTAGE_S}
    assert {"canaries", "deployments", "virtualservices"} <= informed, informed

    def relisted() -> dict[str, float] | None:
        got: dict[str, float] = {}
        for e in requests():
            if e.verb == "list" and received(e) >= restarting:  # it answers before its /readyz passes
                got.setdefault(e.resource, received(e))
        return got if informed <= set(got) else None

    # each informer waits out its own backoff, grown during the outage (jittered, capped at 30 s), and a
    # watch answered 410 waits once more before its list: some kinds are back only after the run ended
    lists = await wait_for(relisted, 120, f"canaryd listing {sorted(informed)} again")
    first, last = min(lists.values()), max(lists.values())
    metrics = s.op.metrics_text()
    assert counter(metrics, "canaryd_watch_restarts_total", reason="error") > 0, metrics
    assert counter(metrics, "canaryd_api_requests_total", code="error") > 0
    # least privilege holds throughout: no 403 once the API server is ready. While it starts (before its
    # /readyz), its RBAC authorizer has not loaded the roles yet and refuses everyone; canaryd treats
    # that as any other failed request and tries again
    starting = [r for r in refused(s.bed, user_agent_prefix=s.op.user_agent) if r[0] < back]
    assert [r for r in refused(s.bed, user_agent_prefix=s.op.user_agent) if r[0] >= back] == []
    print(f"\nAPI server down {outage:.1f}s (restart took {back - restarting:.1f}s to /readyz); canaryd "
          f"relisted its {len(lists)} kinds {first - restarting:.1f}-{last - restarting:.1f}s after the "
          "restart; "
          f"{len(starting)} requests refused while it started; weights seen {obs.weights}")


def three_steps_canary(ns: str, threshold: int) -> dict[str, Any]:
    """3 s steps; 30 s metric windows, so samples from before a Prometheus restart keep rate() defined
    the moment it is back (a 10 s window would need two fresh scrapes and fail with "no values")."""
    return canary(ns, interval="3s", threshold=threshold, metrics=[
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "30s"},
        {"name": "request-duration", "thresholdRange": {"max": 500}, "interval": "30s"},
    ])


async def prometheus_down_mid_run(s: Scene, obs: Observer) -> tuple[str, int]:
    """Start a run, stop Prometheus once the run is at weight 20 (a check passed on the canary's traffic,
    so Prometheus holds samples of its series); returns Prometheus's URL and the checks failed before the
    stop: at most one, "no values" at the first step (on a loaded machine the canary's brand-new series
    may not have two samples in the window yet), which the tests add to the outage's count.

    A restarted Prometheus applies its scrape targets only after its 5 s discovery tick, so a series that
    began just before the stop would have no two samples in the window for several seconds after the
    restart and the next check would fail with "no values" instead of passing."""
    url = str(s.bed.prometheus_url)
    await set_image(s.admin, s.ns, "6.0.1")
    await wait_for(lambda: 20 in obs.progressing_weights(), 60, "the run at weight 20", interval=0.05)
    before = obs.max_failed_checks()
    assert before <= 1, obs.states
    await asyncio.to_thread(s.bed.stop, "prometheus")
    return url, before


def split_halts(got: list[tuple[str, int]], url: str) -> tuple[int, int]:
    """(halts naming the unreachable server, "no values" halts); any other halt fails the test."""
    down = sum(n for m, n in got if unreachable(url).match(m))
    no_values = sum(n for m, n in got if "no values found" in m)
    assert down + no_values == sum(n for _, n in got), got
    return down, no_values


def unreachable(url: str) -> re.Pattern[str]:
    return re.compile(rf"^Prometheus query failed: Prometheus {re.escape(url)} unreachable: "
                      r"connection refused$")


async def test_prometheus_down_for_three_steps_fails_three_checks_and_still_succeeds(scene: Scene) -> None:
    s = scene
    await create(s.admin, s.ns, podinfo(s.ns), three_steps_canary(s.ns, threshold=5))
    await wait_phase(s.admin, s.ns, "Initialized")
    async with observing(s.admin, s.ns) as obs:
        url, before = await prometheus_down_mid_run(s, obs)
        await wait_for(lambda: obs.max_failed_checks() >= before + 3, 60, "3 failed checks", interval=0.05)
        await asyncio.to_thread(s.bed.start, "prometheus")
        final = await wait_phase(s.admin, s.ns, "Succeeded", "Failed", seconds=120)
        assert final.get("phase") == "Succeeded", final
        await wait_for(lambda: obs.weights[-1:] == [0], 20, "the final weights seen")

    assert obs.max_failed_checks() == before + 3, obs.states
    assert_in_order(obs)
    got = await halts(s)
    assert split_halts(got, url) == (3, before), got


async def test_prometheus_down_under_the_consecutive_error_limit_counts_no_failed_check(scene: Scene) -> None:
    """``consecutiveErrorLimit: 5``: Prometheus stopped for two steps makes each check ``error`` twice in
    a row (the streak is in status) and none of it counts; with ``threshold: 2`` two counted errors
    would roll the run back, so the run Succeeding shows they were not counted."""
    s = scene
    spec = three_steps_canary(s.ns, threshold=2)
    for m in spec["spec"]["analysis"]["metrics"]:
        m["consecutiveErrorLimit"] = 5
    await create(s.admin, s.ns, podinfo(s.ns), spec)
    await wait_phase(s.admin, s.ns, "Initialized")

    async def two_errors_in_a_row() -> bool:
        streaks = (await status(s.admin, s.ns)).get("errorStreaks") or {}
        return any(int(n) >= 2 for n in streaks.values())

    async with observing(s.admin, s.ns) as obs:
        _, before = await prometheus_down_mid_run(s, obs)
        await wait_for(two_errors_in_a_row, 60, "two errors in a row in status.errorStreaks")
        await asyncio.to_thread(s.bed.start, "prometheus")
        final = await wait_phase(s.admin, s.ns, "Succeeded", "Failed", seconds=120)
        assert final.get("phase") == "Succeeded", final
        await wait_for(lambda: obs.weights[-1:] == [0], 20, "the final weights seen")
    assert obs.max_failed_checks() == before, obs.states
    assert_in_order(obs)


async def test_prometheus_down_for_longer_fails_the_run_with_that_reason(scene: Scene) -> None:
    s = scene
    await create(s.admin, s.ns, podinfo(s.ns), three_steps_canary(s.ns, threshold=5))
    await wait_phase(s.admin, s.ns, "Initialized")
    async with observing(s.admin, s.ns) as obs:
        url, before = await prometheus_down_mid_run(s, obs)
        try:
            final = await wait_phase(s.admin, s.ns, "Succeeded", "Failed", seconds=120)
        finally:
            await asyncio.to_thread(s.bed.start, "prometheus")
        # the rollback's route write follows the Failed status it reports
        await wait_for(lambda: obs.weights[-1:] == [0], 20, "all traffic back on the primary")
    assert final.get("phase") == "Failed", final
    assert final.get("message") == f"Rolling back {s.key} failed checks threshold reached 5", final
    checks = final.get("checks") or []
    assert checks and unreachable(url).match(str(checks[0].get("message"))), checks
    # the last Halt is emitted with the rollback, after the status: wait for the rollback's last Event
    await counts_once(s.admin, s.ns, f"Canary failed! Scaling down {s.key}")
    got = await halts(s)
    assert split_halts(got, url) == (5 - before, before), got
    assert (await status(s.admin, s.ns)).get("canaryWeight") == 0
