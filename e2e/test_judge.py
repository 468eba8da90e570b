"""The statistical judge on the bed: a canary whose latency distribution is the primary's shifted by
+30 %, still far under the tutorial's 500 ms, against the bed's real Prometheus.

* the tutorial's threshold checks alone promote it;
* with the judge (the Istio presets) it is rolled back, the report naming a latency metric High;
* an identical canary (a new image, the same latency profile) passes the judge and is promoted;
* a judge metric in dry run reports the slower canary's latency High, and the run still promotes;
* a score in the marginal band (one of two equally weighted metrics High: 50, pass 95, marginal 40)
  holds the run (no advance, no rollback, a Warning Event, status says it waits) until a
  ``canaryd.io/request`` promote promotes it.

Each test runs a mesh simulator of its own (``python -m e2e.mesh`` on the bed's API server, no background
traffic but to its namespace's apex host, scraped by the bed's Prometheus as a ``canaryd``-job target),
and stops the shared mesh's background traffic to that host: the latency profiles
(``BED_LATENCY_MEDIAN_MS``, ``BED_LATENCY_FACTOR``) are then measured whatever version of the simulator
the shared bed was started with, and at a known rate.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import EVENT
from canaryd.model.fields import parse_time
from e2e.bed import scrape
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image
from e2e.mesh.control import MeshControl
from e2e.operator import Operator

REPO = Path(__file__).resolve().parent.parent
RPS = 40.0  # to the apex host: the canary gets 4-20 requests/s over the run
PROFILE = {"BED_LATENCY_MEDIAN_MS": "40", "BED_LATENCY_SIGMA": "0.3"}  # p99 ≈ 80 ms
SHIFTED = {**PROFILE, "BED_LATENCY_FACTOR": "1.3"}  # +30 %: p99 ≈ 105 ms, far under 500 ms
# 3 s points (rate windows of 3 s: two or three 1 s scrapes each), 10 per side over the last 30 s; the
# first steps of a run, before the canary has 10 points, are "nodata" and not counted
JUDGE: dict[str, Any] = {"preset": "istio", "step": "3s", "minSamples": 10, "nodata": "ignore"}
RUN = {"interval": "10s", "threshold": 1, "stepWeight": 10, "maxWeight": 50}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def own_mesh(bed: Any, namespace: str, tmp_path: Path) -> Iterator[str]:
    """A mesh simulator of this checkout for the test's namespace, scraped every second; its URL."""
    if not bed.prometheus_url or not bed.mesh_url:
        pytest.skip("needs the local bed's Prometheus and mesh (not an external cluster)")
    port = _free_port()
    log = (tmp_path / "mesh.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "e2e.mesh", "--kubeconfig", str(bed.kubeconfig),
                             "--port", str(port), "--background-rps", "0"],
                            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    target = scrape.register(bed, f"judge-mesh-{namespace}", port, {"judge_mesh": namespace})
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        scrape.unregister(target)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


async def _traffic(bed: Any, mesh: str, namespace: str) -> None:
    """Background traffic to ``podinfo`` only from the test's own mesh."""
    await wait_for(MeshControl(mesh).healthy, 60, "the test's mesh simulator healthy", interval=0.5)
    await MeshControl(str(bed.mesh_url)).background(namespace, "podinfo", 0)
    await MeshControl(mesh).background(namespace, "podinfo", RPS)


async def _start(bed: Any, admin: KubeClient, namespace: str, mesh: str, spec: dict[str, Any],
                 new_env: dict[str, str], tag: str = "6.0.1") -> None:
    """Start the Canary on the profiled podinfo and roll out ``new_env``."""
    await create(admin, namespace, podinfo(namespace, env=PROFILE), spec)
    await _traffic(bed, mesh, namespace)
    await wait_phase(admin, namespace, "Initialized", seconds=120)
    await set_image(admin, namespace, tag, new_env)
    await wait_phase(admin, namespace, "Progressing", seconds=120)


async def _run(bed: Any, admin: KubeClient, namespace: str, mesh: str, spec: dict[str, Any],
               new_env: dict[str, str], tag: str = "6.0.1") -> dict[str, Any]:
    """:func:`_start`, then the final status."""
    await _start(bed, admin, namespace, mesh, spec, new_env, tag)
    return await wait_phase(admin, namespace, "Succeeded", "Failed", seconds=300)


def _judged(st: dict[str, Any]) -> dict[str, Any]:
    """The judge's report of the run that ended (status.history[0].judge)."""
    history = st.get("history") or []
    assert history and history[0].get("judge"), st
    report: dict[str, Any] = history[0]["judge"]
    return report


async def test_threshold_checks_alone_promote_a_30_percent_slower_canary(
        bed: Any, namespace: str, own_mesh: str, operator_factory: Callable[..., Operator],
        admin: KubeClient) -> None:
    operator_factory(namespace)
    st = await _run(bed, admin, namespace, own_mesh, canary(namespace, **RUN), SHIFTED)
    assert st["phase"] == "Succeeded", st
    assert not any(m.startswith("Halt") for m in await event_messages(admin, namespace))


async def test_the_judge_rolls_back_a_30_percent_slower_canary(
        bed: Any, namespace: str, own_mesh: str, operator_factory: Callable[..., Operator],
        admin: KubeClient) -> None:
    operator_factory(namespace)
    st = await _run(bed, admin, namespace, own_mesh, canary(namespace, judge=JUDGE, **RUN), SHIFTED)
    assert st["phase"] == "Failed", st
    report = _judged(st)
    assert report["verdict"] == "fail", report
    high = {m["name"] for m in report["metrics"] if m["classification"] == "High"}
    assert high & {"request-latency-p50", "request-latency-p99"}, report
    assert "request-success-rate" not in high
    latency = next(m for m in report["metrics"] if m["name"] in high)
    assert latency["ratio"] > 1.15 and min(latency["samples"].values()) >= 10, latency

    async def halts() -> list[str]:  # the rollback's Halt follows the Failed status it reports
        texts = await event_messages(admin, namespace)
        return [m for m in texts if m.startswith(f"Halt podinfo.{namespace}")]

    got = await wait_for(halts, 30, "the judge's Halt Event", interval=0.2)
    assert "judge: score" in got[-1] and " High (canary/primary 1." in got[-1], got


async def test_an_identical_canary_passes_the_judge(
        bed: Any, namespace: str, own_mesh: str, operator_factory: Callable[..., Operator],
        admin: KubeClient) -> None:
    operator_factory(namespace)
    st = await _run(bed, admin, namespace, own_mesh, canary(namespace, judge=JUDGE, **RUN), PROFILE)
    assert st["phase"] == "Succeeded", st
    report = _judged(st)
    assert report["verdict"] == "pass", report  # judged with data, not only skipped as nodata
    assert all(min(m["samples"].values()) >= 10 for m in report["metrics"]), report
    assert (await status(admin, namespace)).get("phase") == "Succeeded"


async def test_a_judge_metric_in_dry_run_reports_high_and_the_run_promotes(
        bed: Any, namespace: str, own_mesh: str, operator_factory: Callable[..., Operator],
        admin: KubeClient) -> None:
    operator_factory(namespace)
    judge = {k: v for k, v in JUDGE.items() if k != "preset"} | {"metrics": [
        {"name": "success-rate", "preset": "request-success-rate"},
        {"name": "latency-p50", "preset": "request-latency-p50", "dryRun": True}]}
    await _start(bed, admin, namespace, own_mesh, canary(namespace, judge=judge, **RUN), SHIFTED)

    async def dry_run_high() -> dict[str, Any] | None:
        st = await status(admin, namespace)
        for c in st.get("checks") or []:
            for m in (c.get("judge") or {}).get("metrics") or []:
                if m["name"] == "latency-p50" and m["classification"] == "High":
                    return c if m.get("dryRun") else None
        return None

    check = await wait_for(dry_run_high, 240, "the dry-run latency-p50 reported High in status.checks")
    assert check["verdict"] == "pass" and check["value"] == 100.0, check  # not scored
    assert "latency-p50 [dry run] High (canary/primary 1." in check["message"], check
    st = await wait_phase(admin, namespace, "Succeeded", "Failed", seconds=300)
    assert st["phase"] == "Succeeded", st


async def test_a_marginal_score_holds_the_run_until_a_promote_request(
        bed: Any, namespace: str, own_mesh: str, operator_factory: Callable[..., Operator],
        admin: KubeClient) -> None:
    operator_factory(namespace)
    # two non-critical metrics of equal weight: the slower canary's p50 High, the success rate Pass
    # (both sides answer every request): score 50, between marginal 40 and pass 95 -> inconclusive
    judge = {k: v for k, v in JUDGE.items() if k != "preset"} | {"pass": 95, "marginal": 40, "metrics": [
        {"name": "success-rate", "preset": "request-success-rate"},
        {"name": "latency-p50", "preset": "request-latency-p50"}]}
    run = RUN | {"stepWeight": 5, "inconclusiveTimeout": "5m"}  # ten steps: room for a judged one
    await _start(bed, admin, namespace, own_mesh, canary(namespace, judge=judge, **run), SHIFTED)

    async def held() -> dict[str, Any] | None:
        st = await status(admin, namespace)
        assert st.get("phase") == "Progressing", st  # never promoted nor rolled back before the hold
        return st if st.get("inconclusiveSince") else None

    st = await wait_for(held, 240, "the run held on the judge's marginal score", interval=0.5)
    weight, since = st["canaryWeight"], st["inconclusiveSince"]
    assert st["failedChecks"] == 0 and weight <= 50, st
    held_on = "advancement inconclusive: judge judge: score 50 (marginal < 95): latency-p50 High"
    assert held_on in st["message"], st
    assert "waiting for a promote or abort request" in st["message"], st
    check = next(c for c in st["checks"] if c.get("kind") == "judge")
    assert (check["verdict"], check["value"]) == ("inconclusive", 50.0), check
    classes = {m["name"]: m["classification"] for m in check["judge"]["metrics"]}
    assert classes == {"success-rate": "Pass", "latency-p50": "High"}, check

    async def warned() -> list[dict[str, Any]]:
        items, _ = await admin.list(EVENT, namespace)
        return [e for e in items if e.get("type") == "Warning" and "advancement inconclusive" in e["message"]]

    assert len(await wait_for(warned, 30, "the Warning Event of the hold", interval=0.5)) == 1
    held_since = parse_time(since)
    assert held_since is not None

    async def still_held_two_intervals_on() -> bool:  # no advance, no rollback while no one decides
        later = await status(admin, namespace)
        now = (later["phase"], later["canaryWeight"], later["failedChecks"], later.get("inconclusiveSince"))
        assert now == ("Progressing", weight, 0, since), later
        return time.time() > held_since + 25  # two and a half analysis intervals

    await wait_for(still_held_two_intervals_on, 60, "the hold kept for two intervals", interval=1)
    body = json.dumps({"id": "judge-marginal", "action": "promote", "revision": st["lastAppliedSpec"]})
    bed.kubectl("-n", namespace, "annotate", "--overwrite", "canaries.flagger.app/podinfo",
                f"canaryd.io/request={body}")
    st = await wait_phase(admin, namespace, "Succeeded", "Failed", seconds=120)
    assert st["phase"] == "Succeeded", st
    assert (st["lastRequest"]["id"], st["lastRequest"]["result"]) == ("judge-marginal", "done"), st
    assert "inconclusiveSince" not in st, st
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"
    assert len(await warned()) == 1  # one Event for the hold, not one per interval
