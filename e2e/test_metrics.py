"""Flagger's metrics as Prometheus sees them: two canaryd replicas with leader election, each scraped by
the bed's real Prometheus (file_sd), through a promotion, a rollback (with alerts sent), a leader
failover and a deleted Canary. Counters with Flagger's labels on the leader only, per-canary gauges only
on the leader (the new leader exports them from its cache without a write), a deleted Canary's gauge
series gone, no ``*_created`` series, process and Python collectors on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from typing import Any

import pytest

from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, wait_phase
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.promql import query, scraped
from e2e.receivers import Receiver

pytestmark = pytest.mark.e2e


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-metrics")
    yield client
    await client.close()


@pytest.fixture
async def receiver(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """A Slack-compatible receiver behind ``http://slack.<namespace>/`` for the global alerts."""
    rcv = await Receiver().start()
    await MeshControl(bed.mesh_url).register(namespace, "slack", f"127.0.0.1:{rcv.port}")
    yield rcv
    await rcv.stop()


class Scraped:
    """Queries restricted to this test's canaryd processes (the ``e2e_namespace`` scrape label)."""

    def __init__(self, url: str, ns: str) -> None:
        self.url, self.ns = url, ns

    async def values(self, metric: str, /, **labels: str) -> dict[str, float]:
        """``replica`` → value of the series of ``metric`` with ``labels`` (one per replica)."""
        matchers = ",".join(f'{k}="{v}"' for k, v in {"e2e_namespace": self.ns, **labels}.items())
        return {s["replica"]: v for s, v in await query(self.url, f"{metric}{{{matchers}}}")}

    async def until(self, metric: str, want: dict[str, float], /, seconds: float = 20.0,
                    **labels: str) -> None:
        """Wait until the series of ``metric`` are exactly ``want`` (replica → value; {} = no series)."""
        last: list[dict[str, float]] = []

        async def reached() -> bool:
            got = await self.values(metric, **labels)
            last[:] = [got]
            return got == want

        try:
            await wait_for(reached, seconds, f"{metric}{labels} == {want}", interval=0.5)
        except AssertionError as err:
            raise AssertionError(f"{err}; last seen {last}") from None


async def test_flagger_metrics_through_prometheus(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    ns = namespace
    election = ["--leader-elect", f"--leader-election-namespace={ns}", "--lease-duration=4s",
                "--renew-deadline=3s", "--retry-period=1s"]
    env = {"SLACK_URL": f"http://slack.{ns}/hook"}
    prom = Scraped(str(bed.prometheus_url), ns)
    target = {"name": "podinfo", "namespace": ns}
    outcome = {**target, "deployment_strategy": "canary", "analysis_status": "completed"}
    with ExitStack() as stack:
        a = operator_factory(ns, args=[*election, "--leader-election-id=a"], env=env, name="a")
        stack.enter_context(scraped(bed, a, e2e_namespace=ns, replica="a"))
        await prom.until("canaryd_leader", {"a": 1})
        b = operator_factory(ns, args=[*election, "--leader-election-id=b"], env=env, name="b")
        stack.enter_context(scraped(bed, b, e2e_namespace=ns, replica="b"))
        await prom.until("canaryd_leader", {"a": 1, "b": 0})
        assert await prom.values("flagger_info", mesh_provider="istio") == {"a": 1, "b": 1}
        assert await prom.values("flagger_canary_status") == {}  # no Canary yet

        # a promotion
        await create(admin, ns, podinfo(ns), canary(ns))
        await wait_phase(admin, ns, "Initialized")
        await prom.until("flagger_canary_status", {"a": 1}, **target)  # Initialized; nothing from b
        await prom.until("canaryd_cache_objects", {"a": 1, "b": 1}, kind="Canary")  # both caches warm
        await set_image(admin, ns, "6.0.1")
        await prom.until("flagger_canary_status", {"a": 0}, **target)  # Progressing
        await wait_phase(admin, ns, "Succeeded")
        await prom.until("flagger_canary_successes_total", {"a": 1}, **outcome)
        await prom.until("flagger_canary_status", {"a": 1}, **target)
        await prom.until("flagger_canary_weight", {"a": 100}, workload="podinfo-primary", namespace=ns)
        await prom.until("flagger_canary_weight", {"a": 0}, workload="podinfo", namespace=ns)
        await prom.until("flagger_canary_total", {"a": 1}, namespace=ns)
        assert await prom.values("flagger_canary_failures_total", **outcome) == {}  # none before the first
        rate = await prom.values("flagger_canary_metric_analysis", metric="request-success-rate", **target)
        assert set(rate) == {"a"} and rate["a"] >= 99, rate
        steps = await prom.values("flagger_canary_duration_seconds_count", **target)
        assert set(steps) == {"a"} and steps["a"] >= 5, steps  # one analysis per step, 10 → 50
        assert (await prom.values("canaryd_canary_tasks")) == {"a": 1, "b": 0}
        assert (await prom.values("canaryd_task_wakeups_total", cause="deadline"))["a"] >= 5
        assert set(await prom.values("canaryd_step_lateness_seconds_count")) == {"a", "b"}
        sent = await prom.values("canaryd_notifications_total", kind="alert", result="sent")
        await prom.until("canaryd_notifications_total", {"a": 3}, kind="alert", result="sent")
        assert sent.get("b") is None

        # a rollback
        await set_image(admin, ns, "6.0.2", env={"BED_ERROR_PERCENT": "100"})
        await wait_phase(admin, ns, "Failed")
        await prom.until("flagger_canary_failures_total", {"a": 1}, **outcome)
        await prom.until("flagger_canary_successes_total", {"a": 1}, **outcome)
        await prom.until("flagger_canary_status", {"a": 2}, **target)
        await prom.until("flagger_canary_weight", {"a": 100}, workload="podinfo-primary", namespace=ns)
        assert (await prom.values("flagger_canary_metric_analysis", metric="request-success-rate",
                                  **target))["a"] < 99
        await prom.until("canaryd_notifications_total", {"a": 5}, kind="alert", result="sent")

        # nothing of the counters and histograms doubled as *_created; the standard collectors are on
        created = await query(prom.url, f'{{__name__=~".+_created", e2e_namespace="{ns}"}}')
        assert created == [], created
        assert set(await prom.values("process_cpu_seconds_total")) == {"a", "b"}
        assert set(await prom.values("process_resident_memory_bytes")) == {"a", "b"}
        assert set(await prom.values("python_info")) == {"a", "b"}

        # a leader failover: b exports the settled canary at once from its cache, without a write
        before = (await admin.get(r.CANARY, ns, "podinfo"))["metadata"]["resourceVersion"]
        a.stop()
        await prom.until("canaryd_leader", {"b": 1})
        await prom.until("flagger_canary_status", {"b": 2}, **target)
        await prom.until("flagger_canary_weight", {"b": 100}, workload="podinfo-primary", namespace=ns)
        await prom.until("flagger_canary_total", {"b": 1}, namespace=ns)
        assert (await admin.get(r.CANARY, ns, "podinfo"))["metadata"]["resourceVersion"] == before
        # counters are each process's own: b promoted and rolled back nothing
        assert await prom.values("flagger_canary_failures_total", **outcome) == {}

        # a deleted Canary: its gauge series disappear
        await admin.delete(r.CANARY, ns, "podinfo")
        await prom.until("canaryd_cache_objects", {"b": 0}, kind="Canary")
        for metric in ("flagger_canary_status", "flagger_canary_metric_analysis"):
            await prom.until(metric, {}, **target)
        await prom.until("flagger_canary_weight", {}, namespace=ns)
        await prom.until("flagger_canary_total", {}, namespace=ns)
        await prom.until("canaryd_canary_tasks", {"b": 0})
