"""MetricTemplates of type ``externalmetrics`` on the bed, canaryd under its own ServiceAccount.

* Through the API server: an ``APIService`` for ``external.metrics.k8s.io/v1beta1`` backed by a loopback
  HTTPS server of the test (an ExternalName Service ``localhost``; the bed's kube-apiserver has API
  aggregation configured with a front-proxy CA of its PKI): the server sees canaryd's identity in the
  aggregator's ``X-Remote-User`` header, over the front-proxy client certificate.
* At ``address``: the same kind of server reached directly, checking the secret's bearer token.
* Without ``address`` and without an APIService: the API server authorizes canaryd's request (no 403)
  and answers 404, which the check reports."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, SECRET
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, podinfo, set_image
from e2e.loopback import serve, server_context
from e2e.operator import IDENTITY
from e2e.tutorial import IMAGE, canary_events, forbidden, primary_image, wait_status

TOKEN = "e2e-external-token"
PATH = "/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/queue-depth"


class ExternalMetricsServer:
    """``GET …/namespaces/<ns>/queue-depth``: one item whose value is ``value``, for the right token —
    or, behind the aggregator (``front_proxy_ca``), for a caller with the front-proxy client certificate,
    recording the user it names."""

    def __init__(self, workdir: Path, value: str, front_proxy_ca: Path | None = None,
                 namespace: str = "") -> None:
        self.workdir, self.value, self.front_proxy_ca = workdir, value, front_proxy_ca
        self.namespace = namespace  # set: other namespaces' metrics are not found (the APIService is shared)
        self.asked: list[tuple[str, str]] = []  # (path, labelSelector)
        self.users: list[str] = []  # X-Remote-User of aggregated requests
        self.port = 0
        self._runner: web.AppRunner | None = None

    def _allowed(self, request: web.Request) -> bool:
        if self.front_proxy_ca is None:
            return request.headers.get("Authorization") == f"Bearer {TOKEN}"
        self.users.append(request.headers.get("X-Remote-User", ""))
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport is not None else None
        return bool(cert)  # verified against the front-proxy CA by the TLS handshake

    async def start(self) -> ExternalMetricsServer:
        context = await asyncio.to_thread(server_context, self.workdir)
        if self.front_proxy_ca is not None:  # the aggregator's client certificate, when it sends one
            context.load_verify_locations(cafile=str(self.front_proxy_ca))
            context.verify_mode = ssl.CERT_OPTIONAL

        async def discovery(_: web.Request) -> web.Response:  # the aggregator's availability check
            return web.json_response({"kind": "APIResourceList", "apiVersion": "v1",
                                      "groupVersion": "external.metrics.k8s.io/v1beta1", "resources": []})

        async def values(request: web.Request) -> web.Response:
            if self.namespace and request.match_info["ns"] != self.namespace:
                return web.json_response({"kind": "Status", "code": 404, "reason": "NotFound",
                                          "message": "the server could not find the requested resource"},
                                         status=404)
            self.asked.append((request.path, request.query.get("labelSelector", "")))
            if not self._allowed(request):
                refused = {"kind": "Status", "code": 401, "message": "Unauthorized"}
                return web.json_response(refused, status=401)
            return web.json_response({
                "kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
                "metadata": {}, "items": [{"metricName": "queue-depth", "metricLabels": {"app": "podinfo"},
                                           "timestamp": "2024-01-01T00:00:00Z", "value": self.value}]})

        app = web.Application()
        app.router.add_get("/apis/external.metrics.k8s.io/v1beta1", discovery)
        app.router.add_get("/apis/external.metrics.k8s.io/v1beta1/namespaces/{ns}/{metric}", values)
        self._runner, self.port = await serve(app, context)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-externalmetrics")
    yield client
    await client.close()


def template(ns: str, name: str, provider: dict[str, Any], query: str) -> dict[str, Any]:
    return {"apiVersion": "flagger.app/v1beta1", "kind": "MetricTemplate",
            "metadata": {"name": name, "namespace": ns}, "spec": {"provider": provider, "query": query}}


async def final_texts(admin: KubeClient, ns: str, final: str) -> list[str]:
    async def events() -> list[str] | None:
        got = [str(e.get("message")) for e in await canary_events(admin, ns)]
        return got if any(m.startswith(f"{final} Scaling down podinfo.{ns}") for m in got) else None

    texts: list[str] = await wait_for(events, 20, "the final Events")
    return texts


@pytest.mark.parametrize(("value", "outcome"), [("1500m", "promoted"), ("12", "rolled back")])
async def test_external_metrics_at_an_address_drive_the_run(bed: Any, namespace: str, admin: KubeClient,
                                                            operator: Any, tmp_path: Path, value: str,
                                                            outcome: str) -> None:
    ns = namespace
    server = await ExternalMetricsServer(tmp_path, value).start()
    try:
        await admin.create(SECRET, ns, {"apiVersion": "v1", "kind": "Secret",
                                        "metadata": {"name": "ext-token", "namespace": ns},
                                        "stringData": {"token": TOKEN}})
        provider = {"type": "externalmetrics", "address": f"https://127.0.0.1:{server.port}",
                    "insecureSkipVerify": True, "secretRef": {"name": "ext-token"}}
        bed.apply(template(ns, "queue", provider,
                           "{{ namespace }}/Queue-Depth?labelSelector=app%3D{{ target }}"), ns)
        await admin.create(DEPLOYMENT, ns, podinfo(ns))
        metrics = [{"name": "queue", "templateRef": {"name": "queue"}, "thresholdRange": {"max": 5}}]
        bed.apply(canary(ns, metrics=metrics, interval="2s", threshold=2, stepWeight=25), ns)
        await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
        await set_image(admin, ns, "6.0.1")
        st = await wait_status(admin, ns, "podinfo", "a final phase",
                               lambda s: s.get("phase") in ("Succeeded", "Failed"), 120)
    finally:
        await server.stop()
    texts = await final_texts(admin, ns, "Promotion completed!" if st.get("phase") == "Succeeded"
                              else "Canary failed!")
    assert forbidden(bed, ns) == []
    assert server.asked and set(server.asked) == {(PATH.format(ns=ns), "app=podinfo")}
    assert not [m for m in texts if m.startswith("Metric query failed")], texts
    if outcome == "promoted":
        assert st.get("phase") == "Succeeded", (st.get("message"), texts)
        assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    else:
        assert st.get("phase") == "Failed", (st.get("message"), texts)
        assert f"Halt podinfo.{ns} advancement queue 12.00 > 5" in texts, texts
        assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"


async def test_external_metrics_without_address_ask_the_api_server_as_canaryd(
        bed: Any, namespace: str, admin: KubeClient, operator: Any) -> None:
    """RBAC lets canaryd's identity list external metrics (no 403); nothing serves this metric (no
    APIService, or the one of the test above, for its own namespace only), so the check reports the
    404 text and the run rolls back."""
    ns = namespace
    bed.apply(template(ns, "queue", {"type": "externalmetrics"}, "{{ namespace }}/queue-depth"), ns)
    await admin.create(DEPLOYMENT, ns, podinfo(ns))
    metrics = [{"name": "queue", "templateRef": {"name": "queue"}, "thresholdRange": {"max": 5}}]
    bed.apply(canary(ns, metrics=metrics, interval="2s", threshold=1, stepWeight=25), ns)
    await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
    await set_image(admin, ns, "6.0.1")
    st = await wait_status(admin, ns, "podinfo", "Failed", lambda s: s.get("phase") == "Failed", 120)
    texts = await final_texts(admin, ns, "Canary failed!")
    assert forbidden(bed, ns) == []
    failed = [m for m in texts if m.startswith("Metric query failed for queue: error querying external "
                                               "metrics API: ")]
    assert failed and "the server could not find the requested resource" in failed[0], (st, texts)


APISERVICE = "v1beta1.external.metrics.k8s.io"


def api_service(ns: str, port: int) -> dict[str, Any]:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": APISERVICE},
            "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100,
                     "versionPriority": 100, "insecureSkipTLSVerify": True,
                     "service": {"namespace": ns, "name": "external-metrics", "port": port}}}


async def test_external_metrics_through_an_api_service(bed: Any, namespace: str, admin: KubeClient,
                                                       operator: Any, tmp_path: Path) -> None:
    """No ``address``: canaryd asks the API server, which proxies to the APIService's server; a value
    above the threshold rolls the run back, and the server saw canaryd's ServiceAccount."""
    pki = getattr(bed, "pki", None)  # the local bed's PKI (an external cluster has none of ours)
    if pki is None or not pki.proxy_client_crt.exists():  # never skipped: CI's bed is always fresh
        pytest.fail("this bed has no API aggregation (started before it was configured): restart it with "
                    "`python3 -m e2e down` and `python3 -m e2e up`")
    ns = namespace
    server = await ExternalMetricsServer(tmp_path, "12", front_proxy_ca=pki.front_proxy_ca_crt,
                                         namespace=ns).start()
    try:
        bed.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "external-metrics",
                                                                      "namespace": ns},
                   "spec": {"type": "ExternalName", "externalName": "localhost"}}, ns)
        bed.apply(api_service(ns, server.port))

        def available() -> bool:
            got = bed.kubectl("get", "apiservice", APISERVICE, "-o", "json", check=False)
            return got.returncode == 0 and any(
                c.get("type") == "Available" and c.get("status") == "True"
                for c in json.loads(got.stdout).get("status", {}).get("conditions", []))

        await wait_for(available, 60, f"APIService {APISERVICE} Available", interval=0.5)
        bed.apply(template(ns, "queue", {"type": "externalmetrics"},
                           "{{ namespace }}/queue-depth?labelSelector=app%3D{{ target }}"), ns)
        await admin.create(DEPLOYMENT, ns, podinfo(ns))
        metrics = [{"name": "queue", "templateRef": {"name": "queue"}, "thresholdRange": {"max": 5}}]
        bed.apply(canary(ns, metrics=metrics, interval="2s", threshold=2, stepWeight=25), ns)
        await wait_status(admin, ns, "podinfo", "Initialized", lambda s: s.get("phase") == "Initialized")
        await set_image(admin, ns, "6.0.1")
        st = await wait_status(admin, ns, "podinfo", "Failed", lambda s: s.get("phase") == "Failed", 120)
    finally:
        bed.kubectl("delete", "apiservice", APISERVICE, "--ignore-not-found", check=False)
        await server.stop()
    texts = await final_texts(admin, ns, "Canary failed!")
    assert forbidden(bed, ns) == []
    assert f"Halt podinfo.{ns} advancement queue 12.00 > 5" in texts, (st, texts)
    assert (PATH.format(ns=ns), "app=podinfo") in server.asked
    assert IDENTITY in server.users, server.users  # canaryd's ServiceAccount, named by the aggregator
