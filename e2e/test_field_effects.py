"""Fields that were accepted and then ignored, now with their effect on the cluster (issue 11):

* ``service.trafficDistribution`` is copied onto the three generated Services, and the label/annotation
  keys of ``service.unmanagedMetadata`` on them are never added, changed or removed by canaryd (another
  controller's edits survive canaryd's own updates of the same Service);
* ``autoscalerRef.primaryScalerReplicas`` sets the primary HPA's min/max;
* ``canaryReadyThreshold: 0``: a revision whose pods never become ready is analysed;
* a Canary without ``analysis`` is promoted as skip-analysis; its Events carry ``source.component:
  flagger`` (selected with ``kubectl get events --field-selector source=flagger``);
* a MetricTemplate of a provider canaryd does not implement (e.g. ``keptn``) is refused before any run
  (``Valid=False``, status message, Warning Event), and the Canary recovers when the template is fixed
  (a template change wakes the Canaries that reference it);
* MetricTemplate ``provider.insecureSkipVerify`` against a self-signed HTTPS proxy in front of the bed's
  Prometheus: off, the check fails naming the certificate error; on, the run is promoted.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, DEPLOYMENT, HPA, METRIC_TEMPLATE, SECRET, SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image
from e2e.loopback import serve, server_context
from e2e.operator import Operator

RUN = 90.0


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


async def _service(admin: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    items, _ = await admin.list(SERVICE, namespace)
    return next((s for s in items if s["metadata"]["name"] == name), None)


# ---- Services: trafficDistribution, unmanagedMetadata ----


async def test_services_carry_traffic_distribution_and_keep_unmanaged_metadata(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, metrics=[])
    spec["spec"]["service"].update(
        trafficDistribution="PreferClose",
        canary={"labels": {"team": "from-canary-spec", "tier": "web"}},
        unmanagedMetadata={"labels": ["team"], "annotations": ["owner.example.com/sync"]})
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")

    for name in ("podinfo", "podinfo-primary", "podinfo-canary"):
        svc = await _service(admin, namespace, name)
        assert svc is not None and svc["spec"].get("trafficDistribution") == "PreferClose", svc
    svc = await _service(admin, namespace, "podinfo-canary")
    assert svc is not None
    labels = svc["metadata"]["labels"]
    assert labels["tier"] == "web" and "team" not in labels  # an unmanaged key is never added

    # another controller owns these keys
    theirs = {"labels": {"team": "payments"}, "annotations": {"owner.example.com/sync": "yes"}}
    await admin.patch(SERVICE, namespace, "podinfo-canary", {"metadata": theirs}, patch_type="merge")
    # a spec change makes canaryd rewrite the Service's metadata (tier changes), and only its own keys
    await admin.patch(CANARY, namespace, "podinfo", {"spec": {"service": {
        "canary": {"labels": {"team": "from-canary-spec", "tier": "api"}}}}}, patch_type="merge")

    async def rewritten() -> dict[str, Any] | None:
        got = await _service(admin, namespace, "podinfo-canary")
        return got if got is not None and got["metadata"]["labels"].get("tier") == "api" else None

    svc = await wait_for(rewritten, 30, "canaryd to update podinfo-canary's labels")
    assert svc["metadata"]["labels"]["team"] == "payments"
    assert svc["metadata"]["annotations"]["owner.example.com/sync"] == "yes"


# ---- primary HPA: primaryScalerReplicas ----


def _hpa(namespace: str) -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "podinfo", "namespace": namespace},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                     "minReplicas": 1, "maxReplicas": 3,
                     "metrics": [{"type": "Resource", "resource": {
                         "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}


async def test_primary_hpa_takes_min_max_from_primary_scaler_replicas(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    await admin.create(HPA, namespace, _hpa(namespace))
    spec = canary(namespace, metrics=[])
    spec["spec"]["autoscalerRef"] = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                                     "name": "podinfo",
                                     "primaryScalerReplicas": {"minReplicas": 2, "maxReplicas": 5}}
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    primary = await admin.get(HPA, namespace, "podinfo-primary")
    assert (primary["spec"]["minReplicas"], primary["spec"]["maxReplicas"]) == (2, 5)
    assert primary["spec"]["scaleTargetRef"]["name"] == "podinfo-primary"
    target = await admin.get(HPA, namespace, "podinfo")
    assert (target["spec"]["minReplicas"], target["spec"]["maxReplicas"]) == (1, 3)


# ---- no analysis: skip-analysis; Events' source.component ----


async def test_canary_without_analysis_is_promoted_and_its_events_are_flaggers(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        kubectl: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    operator_factory(namespace)
    spec = canary(namespace)
    del spec["spec"]["analysis"]
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    done = f"Promotion completed! Canary analysis was skipped for podinfo.{namespace}"

    async def completed() -> bool:  # Events follow the status they report
        return done in await event_messages(admin, namespace)

    await wait_for(completed, 30, "the promotion's Event")
    # skip-analysis promotes in the pass that writes Succeeded, after the status: its Event follows the copy
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"

    def selected(component: str) -> list[str]:
        out = kubectl("get", "events", "-n", namespace, "--field-selector",
                      f"source={component},involvedObject.kind=Canary", "-o", "json").stdout
        return [str(e.get("message")) for e in json.loads(out)["items"]]

    assert done in selected("flagger")
    assert selected("canaryd") == []


# ---- ready thresholds of 0 ----


async def test_canary_ready_threshold_of_zero_does_not_wait_for_available_replicas(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    """A revision whose pods never become ready is analysed (its weight advances) with
    ``canaryReadyThreshold: 0``; with the default 100 % the same revision never gets a weight and is rolled
    back at the deadline (e2e/test_tutorial.py). The wait for updated replicas stays: the run starts once
    the new pod exists. (Promoting it would still wait for the primary's old pod to go, which a
    never-ready pod never lets happen: Flagger's old-replica wait, kept.)"""
    operator_factory(namespace)
    spec = canary(namespace, metrics=[], canaryReadyThreshold=0)
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    await set_image(admin, namespace, "6.0.1", never_ready=True)
    advanced = f"Advance podinfo.{namespace} canary weight 20"

    async def analysed() -> bool:
        return advanced in await event_messages(admin, namespace)

    await wait_for(analysed, RUN, "the never-ready canary to be analysed")
    evs = await event_messages(admin, namespace)
    # the primary keeps its own (default 100 %) threshold while it initializes; only the canary's wait is off
    canary_waits = [e for e in evs if e.startswith(f"canary deployment podinfo.{namespace} not ready")]
    assert not any("updated replicas are available" in e for e in canary_waits), evs
    target = await admin.get(DEPLOYMENT, namespace, "podinfo")
    assert int((target.get("status") or {}).get("availableReplicas") or 0) == 0  # it really is not ready


# ---- MetricTemplate providers canaryd does not implement: refused up front ----


def _template(namespace: str, name: str, provider: dict[str, Any],
              query: str = "vector(1)") -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"provider": provider, "query": query}}


def _template_metric(name: str) -> dict[str, Any]:
    return {"name": "latency", "templateRef": {"name": name}, "thresholdRange": {"max": 5}, "interval": "10s"}


def _valid(st: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in st.get("conditions") or [] if c.get("type") == "Valid"), None)


async def test_a_refused_template_once_fixed_wakes_the_canary_which_runs(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, bed: Any) -> None:
    """A template refused up front (a Datadog template whose Secret lacks a required key) keeps the
    Canary ``Valid=False`` with nothing started; the template's own change (to Prometheus) wakes the
    Canary, which initializes and runs."""
    operator_factory(namespace)
    await admin.create(SECRET, namespace, {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": "half", "namespace": namespace},
                                           "stringData": {"datadog_api_key": "k"}})
    await admin.create(METRIC_TEMPLATE, namespace, _template(
        namespace, "dd", {"type": "datadog", "secretRef": {"name": "half"}}, "avg:errors{*}"))
    await create(admin, namespace, podinfo(namespace), canary(namespace, metrics=[_template_metric("dd")]))

    async def invalid() -> dict[str, Any] | None:
        st = await status(admin, namespace)
        valid = _valid(st)
        return st if valid is not None and valid.get("status") == "False" else None

    st = await wait_for(invalid, 30, "Valid=False on the Canary")
    refused = str(st.get("message"))
    assert refused == (f"metric latency: MetricTemplate {namespace}/dd (provider datadog): secret half does "
                       "not contain datadog_application_key"), st
    assert st.get("phase") in (None, "")  # nothing started

    async def reported() -> bool:  # the Warning Event follows the status it reports
        return refused in await event_messages(admin, namespace)

    await wait_for(reported, 15, "the refusal's Warning Event")

    # the template is fixed: the Canary is woken by the template's change, initializes and runs
    await admin.patch(METRIC_TEMPLATE, namespace, "dd", {"spec": {"query": "vector(1)", "provider": {
        "type": "prometheus", "address": str(bed.prometheus_url), "secretRef": None}}}, patch_type="merge")
    st = await wait_phase(admin, namespace, "Initialized", seconds=20)
    assert _valid(st) is None and st.get("message", "") == ""
    await set_image(admin, namespace, "6.0.1")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)


async def test_a_provider_secret_without_a_required_key_is_refused_naming_it(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    """A Datadog template whose Secret (in the watch cache) lacks ``datadog_application_key``: the
    Canary is ``Valid=False`` before any run, the message naming the key and never a key's value."""
    operator_factory(namespace)
    await admin.create(SECRET, namespace, {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": "dd-keys", "namespace": namespace},
                                           "stringData": {"datadog_api_key": "dd-API-value-123"}})
    await admin.create(METRIC_TEMPLATE, namespace, _template(
        namespace, "dd", {"type": "datadog", "secretRef": {"name": "dd-keys"}}, "avg:errors{*}"))
    await create(admin, namespace, podinfo(namespace), canary(namespace, metrics=[_template_metric("dd")]))
    refused = (f"metric latency: MetricTemplate {namespace}/dd (provider datadog): secret dd-keys does not "
               "contain datadog_application_key")

    async def invalid() -> dict[str, Any] | None:
        st = await status(admin, namespace)
        valid = _valid(st)
        return st if valid is not None and valid.get("status") == "False" else None

    st = await wait_for(invalid, 30, "Valid=False on the Canary")
    assert st["message"] == refused and st.get("phase") in (None, "")

    async def reported() -> list[str] | None:  # the Warning Event follows the status it reports
        got = await event_messages(admin, namespace)
        return got if refused in got else None

    messages = await wait_for(reported, 15, "the refusal's Warning Event")
    assert not any("dd-API-value-123" in m for m in messages)

    # the Secret gains the key: its change wakes the Canary (nothing else changes; an idle task sleeps
    # 60 s), which initializes
    await admin.patch(SECRET, namespace, "dd-keys", {"stringData": {"datadog_application_key": "dd-APP-456"}})
    st = await wait_phase(admin, namespace, "Initialized", seconds=20)
    assert _valid(st) is None and st.get("message", "") == ""


# ---- MetricTemplate insecureSkipVerify ----


class SelfSignedPrometheus:
    """An HTTPS proxy on loopback (a self-signed certificate made with openssl) in front of the bed's
    Prometheus: ``/api/v1/query`` is passed through."""

    def __init__(self, upstream: str, workdir: Path) -> None:
        self.upstream = upstream.rstrip("/")
        self.workdir = workdir
        self.queries = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> SelfSignedPrometheus:
        context = await asyncio.to_thread(server_context, self.workdir)
        session = aiohttp.ClientSession()

        async def query(request: web.Request) -> web.Response:
            self.queries += 1
            async with session.get(f"{self.upstream}/api/v1/query", params=request.query) as resp:
                return web.Response(body=await resp.read(), status=resp.status,
                                    content_type="application/json")

        async def close(_: web.Application) -> None:
            await session.close()

        app = web.Application()
        app.router.add_get("/api/v1/query", query)
        app.on_cleanup.append(close)
        self._runner, self.port = await serve(app, context)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_insecure_skip_verify_of_a_metric_template(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, bed: Any,
        tmp_path: Path) -> None:
    proxy = await SelfSignedPrometheus(str(bed.prometheus_url), tmp_path).start()
    try:
        address = f"https://127.0.0.1:{proxy.port}"
        operator_factory(namespace)
        await admin.create(METRIC_TEMPLATE, namespace,
                           _template(namespace, "tls", {"type": "prometheus", "address": address}))
        await create(admin, namespace, podinfo(namespace),
                     canary(namespace, threshold=2, metrics=[_template_metric("tls")]))
        await wait_phase(admin, namespace, "Initialized")

        # verified (the default): every check fails naming the certificate error, the run is rolled back
        await set_image(admin, namespace, "6.0.1")
        await wait_phase(admin, namespace, "Failed", seconds=RUN)
        halts = [e for e in await event_messages(admin, namespace) if e.startswith("Metric query failed for")]
        assert halts, await event_messages(admin, namespace)
        named = f"Prometheus {address} certificate error: certificate verify failed"
        assert all(named in e for e in halts), halts
        assert all("operation not permitted" not in e for e in halts)
        assert proxy.queries == 0

        # insecureSkipVerify: true: the same server is queried and the next release is promoted
        insecure = {"spec": {"provider": {"insecureSkipVerify": True}}}
        await admin.patch(METRIC_TEMPLATE, namespace, "tls", insecure, patch_type="merge")
        await set_image(admin, namespace, "6.0.2")
        await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
        assert proxy.queries > 0
        assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.2"
    finally:
        await proxy.stop()
