"""Flagger's own Istio e2e suite (flagger-reference.md §11), scenario by scenario, on the test bed: canaryd
under its ServiceAccount drives each Canary, and every webhook goes to the real load tester.

* test-canary: progressive canary with a MetricTemplate and a rollout load test → Succeeded
* test-canary, Blue/Green: pre-rollout hooks, iterations → Succeeded, traffic switched 0/100 only
* test-canary, A/B: cookie match, confirm-promotion gate → WaitingPromotion, opened → Succeeded
* gates through the load tester: confirm-rollout closed → Waiting, opened → Progressing; rollback gate
  opened mid-run → Failed
* test-skip-analysis: skipAnalysis → Succeeded; a never-ready image → Failed

Common substitutions are listed in e2e/flagger_suite.py; each test names its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

pytest.register_assert_rewrite("e2e.flagger_suite")  # before its import: it is also a fixture plugin

from canaryd.kube.client import KubeClient  # noqa: E402
from canaryd.kube.resources import METRIC_TEMPLATE, SERVICE  # noqa: E402
from e2e.bed.waiting import wait_for  # noqa: E402
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase  # noqa: E402
from e2e.flagger_suite import (  # noqa: E402
    Clock,
    LoadTesterFactory,
    client_requests,
    events_with,
    get,
    hook,
    initialized,
    primary_image,
    switch,
    vs_spec,
)
from e2e.operator import Operator, mesh_proxy  # noqa: E402

pytest_plugins = ["e2e.flagger_suite"]  # fixtures: admin, loadtester_factory, clock

RUN = 120.0  # generous bound of one release on a busy 2-core machine


def latency_template(namespace: str, prometheus_url: str) -> dict[str, Any]:
    """Flagger's ``latency`` MetricTemplate of test-canary.sh (P99 with ``{{ variables.reporter }}``).
    Substitution: in the test namespace with the bed's Prometheus (Flagger: istio-system,
    http://prometheus.istio-system:9090)."""
    return {
        "apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
        "metadata": {"name": "latency", "namespace": namespace},
        "spec": {
            "provider": {"type": "prometheus", "address": prometheus_url},
            "query": (
                "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
                'reporter="{{ variables.reporter }}", destination_workload_namespace="{{ namespace }}", '
                'destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))'
            ),
        },
    }


def metrics(template: bool = True) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"name": "request-success-rate", "thresholdRange": {"min": 99}, "interval": "10s"}]
    if template:
        out.append({"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 500},
                    "interval": "10s", "templateVariables": {"reporter": "destination"}})
    return out


async def begin(admin: KubeClient, namespace: str, operator_factory: Callable[..., Operator],
                spec: dict[str, Any], *extra: dict[str, Any]) -> None:
    operator_factory(namespace)
    for obj in extra:
        await admin.create(METRIC_TEMPLATE, namespace, obj)
    await create(admin, namespace, podinfo(namespace), spec)
    await initialized(admin, namespace)


async def test_canary_with_metric_template_and_load_test(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-canary.sh steps 1-4. Substitutions: hey -z 1m instead of 10m; interval 2s (Flagger 15s)."""
    await loadtester_factory()
    spec = canary(namespace, interval="2s", threshold=15, maxWeight=30, stepWeight=10, metrics=metrics(),
                  webhooks=[hook(namespace, "load-test", "rollout", type="cmd",
                                 cmd=f"hey -z 1m -q 10 -c 2 http://podinfo.{namespace}:9898/")])
    spec["spec"]["service"] = {
        "port": 9898, "portDiscovery": True,
        "apex": {"annotations": {"test": "annotations-test"}, "labels": {"test": "labels-test"}},
        "headers": {"request": {"add": {"x-envoy-upstream-rq-timeout-ms": "15000",
                                        "x-envoy-max-retries": "10",
                                        "x-envoy-retry-on": "gateway-error,connect-failure,refused-stream"}}},
    }
    await begin(admin, namespace, operator_factory, spec,
                latency_template(namespace, str(bed.prometheus_url)))
    clock.mark("Initialized")
    apex = await admin.get(SERVICE, namespace, "podinfo")
    assert apex["metadata"]["annotations"]["test"] == "annotations-test"
    assert apex["metadata"]["labels"]["test"] == "labels-test"
    assert apex["spec"]["selector"] == {"app": "podinfo-primary"}
    http = (await vs_spec(admin, namespace))["http"]
    assert http[0]["headers"]["request"]["add"]["x-envoy-max-retries"] == "10"

    before = client_requests(str(bed.mesh_url), namespace, "podinfo")
    await set_image(admin, namespace, "6.0.1")

    async def promoted() -> bool:
        return await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"

    await wait_for(promoted, RUN, "podinfo-primary running 6.0.1")
    clock.mark("primary 6.0.1")
    st = await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    clock.mark("Succeeded")
    # both checks measured in the last step, the template's value a latency well under 500 ms
    checks = {c["name"]: c for c in st["checks"]}
    assert checks["latency"]["verdict"] == "pass" and checks["latency"]["value"] < 500, checks
    assert checks["request-success-rate"]["verdict"] == "pass", checks
    # the rollout hook's hey reached the canary through the apex host while it had a share of traffic
    reached = client_requests(str(bed.mesh_url), namespace, "podinfo") - before
    assert reached > 0, "no load tester request reached the canary workload"
    events = await event_messages(admin, namespace)
    advances = [e for e in events if e.startswith(f"Advance podinfo.{namespace} canary weight")]
    assert advances == [f"Advance podinfo.{namespace} canary weight {w}" for w in (10, 20, 30)]
    print(f"\nload tester requests that reached the canary: {reached:.0f}")


async def test_blue_green_with_pre_rollout_hooks(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-canary.sh step 5. Substitutions: the load tester runs with --enable-bash (Flagger's image
    serves bash unconditionally); grpc_health_probe -addr=podinfo-canary:9999 replaced by an HTTP health
    check with curl (the simulator serves no gRPC); iterations 5 at 2 s, threshold 10."""
    await loadtester_factory("--enable-bash")
    spec = canary(namespace, interval="2s", threshold=10, stepWeight=None, maxWeight=None, iterations=5,
                  metrics=metrics(), webhooks=[
                      hook(namespace, "smoke-test", "pre-rollout", timeout="15s", type="bash",
                           cmd="curl -sd 'test' http://podinfo-canary/token | grep token"),
                      hook(namespace, "health-check", "pre-rollout", timeout="15s", type="bash",
                           cmd="curl -sf --max-time 1 http://podinfo-canary/healthz"),
                      hook(namespace, "load-test", "rollout", type="cmd",
                           cmd=f"hey -z 1m -q 10 -c 2 http://podinfo-canary.{namespace}/")])
    spec["spec"]["analysis"] = {k: v for k, v in spec["spec"]["analysis"].items() if v is not None}
    spec["spec"]["service"] = {"port": 80, "targetPort": 9898, "portName": "http-podinfo"}
    await begin(admin, namespace, operator_factory, spec,
                latency_template(namespace, str(bed.prometheus_url)))
    clock.mark("Initialized")
    apex = await admin.get(SERVICE, namespace, "podinfo")
    assert apex["spec"]["ports"][0] == {"name": "http-podinfo", "protocol": "TCP", "port": 80,
                                        "targetPort": 9898}

    seen: set[tuple[int, ...]] = set()

    async def finished() -> bool:
        seen.add(tuple(d["weight"] for d in (await vs_spec(admin, namespace))["http"][0]["route"]))
        return (await status(admin, namespace)).get("phase") in ("Succeeded", "Failed")

    await set_image(admin, namespace, "6.0.2")
    await wait_for(finished, RUN, "the Blue/Green run to end", interval=0.1)
    clock.mark("Succeeded")
    st = await status(admin, namespace)
    assert st["phase"] == "Succeeded", (st, await event_messages(admin, namespace))
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.2"
    assert seen == {(100, 0), (0, 100)}, seen  # switched, never split
    events = await event_messages(admin, namespace)
    for name in ("smoke-test", "health-check"):
        assert f"Pre-rollout check {name} passed" in events
    iterations = [e for e in events if e.startswith(f"Advance podinfo.{namespace} canary iteration")]
    assert iterations == [f"Advance podinfo.{namespace} canary iteration {i}/5" for i in range(1, 6)]
    assert "Routing all traffic to canary" in events


async def test_ab_testing_with_confirm_promotion_gate(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-canary.sh step 6. Substitutions: the confirm-promotion webhook is the load tester's
    /gate/check (closed, opened by the test with /gate/open) instead of /gate/approve, to show the wait;
    curl in the post-rollout hook is allowed with --allow-command curl (canaryd's load tester runs only hey
    unless told otherwise); hey -z 2m instead of 10m."""
    tester = await loadtester_factory("--allow-command", "curl")
    cookie_match = [{"headers": {"cookie": {"regex": "^(.*?;)?(type=insider)(;.*)?$"}}}]
    spec = canary(namespace, interval="2s", threshold=10, stepWeight=None, maxWeight=None, iterations=5,
                  match=cookie_match, metrics=metrics(), webhooks=[
                      hook(namespace, "pre", "pre-rollout", type="cmd",
                           cmd=f"hey -z 2m -q 10 -c 2 -H 'Cookie: type=insider' http://podinfo.{namespace}:9898/"),
                      hook(namespace, "promote-gate", "confirm-promotion", "/gate/check"),
                      hook(namespace, "post", "post-rollout", timeout="15s", type="cmd",
                           cmd=f"curl -s http://podinfo.{namespace}:9898/")])
    spec["spec"]["analysis"] = {k: v for k, v in spec["spec"]["analysis"].items() if v is not None}
    spec["spec"]["service"] = {"port": 9898, "targetPort": "http"}
    await begin(admin, namespace, operator_factory, spec,
                latency_template(namespace, str(bed.prometheus_url)))
    clock.mark("Initialized")
    await set_image(admin, namespace, "6.0.3")
    await wait_phase(admin, namespace, "WaitingPromotion", seconds=RUN)
    clock.mark("WaitingPromotion")
    # the two-route shape of §4.4: the match route all to the canary, the rest to the primary
    http = (await vs_spec(admin, namespace))["http"]
    assert [r.get("match") for r in http] == [cookie_match, None]
    assert [(d["destination"]["host"], d["weight"]) for d in http[0]["route"]] == [
        ("podinfo-primary", 0), ("podinfo-canary", 100)]
    # the other route: the primary alone, with the primary's weight (0, as Flagger writes it; a single
    # destination takes all its route's traffic whatever its weight)
    assert [(d["destination"]["host"], d["weight"]) for d in http[1]["route"]] == [("podinfo-primary", 0)]
    proxy = mesh_proxy(str(bed.mesh_url), namespace)
    assert proxy is not None
    async with aiohttp.ClientSession() as s:
        insider = await get(s, proxy, f"http://podinfo.{namespace}:9898/", {"Cookie": "type=insider"})
        outsider = await get(s, proxy, f"http://podinfo.{namespace}:9898/")
    assert (insider[0], insider[2]["version"]) == (200, "6.0.3")
    assert (outsider[0], outsider[2]["version"]) == (200, "6.0.0")
    # still held while the gate is closed
    assert (await status(admin, namespace))["phase"] == "WaitingPromotion"
    await switch(tester, "/gate/open", namespace)
    clock.mark("gate opened")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    clock.mark("Succeeded")
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.3"
    events = await event_messages(admin, namespace)
    assert f"Halt podinfo.{namespace} advancement waiting for promotion approval promote-gate" in events
    assert "Confirm-promotion check promote-gate passed" in events

    await events_with(admin, namespace, "Post-rollout check post passed")


async def test_confirm_rollout_and_rollback_gates_through_the_load_tester(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """Gates of §6.3 through the real load tester (e2e/test_gates.py does them with our own receivers):
    /gate/check closed → Waiting; /gate/open → Progressing; /rollback/open mid-run → Failed. A closed
    confirm-promotion gate (/gate/halt, always closed) keeps the run from finishing before the abort. No
    metrics: the gates are under test, and a canary at 5 % of the background traffic may see no values
    for several steps on a loaded machine."""
    tester = await loadtester_factory()
    spec = canary(namespace, interval="1s", stepWeight=5, metrics=[], webhooks=[
        hook(namespace, "approve", "confirm-rollout", "/gate/check"),
        hook(namespace, "abort", "rollback", "/rollback/check"),
        hook(namespace, "hold", "confirm-promotion", "/gate/halt")])
    await begin(admin, namespace, operator_factory, spec)
    clock.mark("Initialized")
    await set_image(admin, namespace, "6.0.1")
    st = await wait_phase(admin, namespace, "Waiting", seconds=RUN)
    clock.mark("Waiting")
    assert st["message"] == "waiting for approval approve"
    await switch(tester, "/gate/open", namespace)
    await wait_phase(admin, namespace, "Progressing", seconds=RUN)
    clock.mark("Progressing")

    async def mid_run() -> bool:
        st = await status(admin, namespace)
        assert st.get("phase") == "Progressing", (st, await event_messages(admin, namespace))
        return int(st.get("canaryWeight") or 0) >= 10

    await wait_for(mid_run, RUN, "the run at weight 10 or more")
    await switch(tester, "/rollback/open", namespace)
    clock.mark("rollback opened")
    st = await wait_phase(admin, namespace, "Failed", seconds=RUN)
    clock.mark("Failed")
    assert st["canaryWeight"] == 0
    await events_with(admin, namespace, f"Halt podinfo.{namespace} advancement waiting for approval approve",
                      "Confirm-rollout check approve passed",
                      f"Rolling back podinfo.{namespace} manual webhook invoked")
    # the gates live in the load tester's ConfigMap, under its own ServiceAccount
    data = bed.kubectl_json("-n", namespace, "get", "configmap", "canaryd-loadtester-gates")["data"]
    assert set(data) == {f"podinfo.{namespace}", f"rollback.podinfo.{namespace}"}, data
    assert all(value.startswith("open until ") for value in data.values()), data  # they expire (24 h)


async def test_skip_analysis_then_never_ready_image_fails(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        loadtester_factory: LoadTesterFactory, clock: Clock) -> None:
    """test-skip-analysis.sh. Substitutions: stefanprodan/potato:1.0.0 (an image that never pulls) is a
    podinfo revision whose pods never become ready (the bed's never-ready stage); progressDeadlineSeconds
    15 (Flagger 60)."""
    await loadtester_factory()
    spec = canary(namespace, deadline=15, interval="1s", stepWeight=10, maxWeight=30, metrics=metrics(False),
                  webhooks=[hook(namespace, "load-test", "rollout", type="cmd",
                                 cmd=f"hey -z 1m -q 10 -c 2 http://podinfo-canary.{namespace}:9898/")])
    spec["spec"]["skipAnalysis"] = True
    await begin(admin, namespace, operator_factory, spec)
    clock.mark("Initialized")
    await set_image(admin, namespace, "6.0.1")

    async def promoted() -> bool:
        return await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"

    await wait_for(promoted, RUN, "podinfo-primary running 6.0.1")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    clock.mark("Succeeded")
    events = await events_with(admin, namespace,
                               f"Promotion completed! Canary analysis was skipped for podinfo.{namespace}")
    assert not any(e.startswith(f"Advance podinfo.{namespace}") for e in events)  # no analysis steps

    await set_image(admin, namespace, "6.0.2", never_ready=True)
    st = await wait_phase(admin, namespace, "Failed", seconds=RUN)
    clock.mark("Failed (never ready)")
    assert st["canaryWeight"] == 0
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"  # the primary still runs 6.0.1
