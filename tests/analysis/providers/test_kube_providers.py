"""The providers that read Kubernetes APIs: ``keptn`` (KeptnMetric values, Analyses created and waited
for) against the in-process API server of tests/box, and ``externalmetrics`` (external.metrics.k8s.io)
against a loopback server standing in for the API server or an ``address``. Facts: Flagger v1.44's
pkg/metrics/providers/keptn.go and externalmetrics.go (docs/providers.md)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from canaryd.analysis.checks import default_registry, run_checks
from canaryd.analysis.providers import PROVIDERS, ProviderError, ProviderNoValues, ProviderSettings
from canaryd.analysis.providers.externalmetrics import canonical_selector, parse_query, quantity
from canaryd.analysis.providers.keptn import KeptnProvider, KeptnQuery, analysis_result, metric_value
from canaryd.analysis.providers.keptn import parse_query as keptn_query
from canaryd.analysis.providers.protocol import check_namespace
from canaryd.kube.client import KubeClient
from canaryd.kube.config import ClusterConfig, TokenSource
from canaryd.kube.resources import KEPTN_ANALYSIS, KEPTN_METRIC
from canaryd.model.providers import parse_metric_template
from tests.box.apiserver import ApiServer

from ..specs import canary, metric
from .loopback import Loopback

NS = "apps"


def template(provider: dict[str, Any], query: str = "q") -> Any:
    return parse_metric_template({"spec": {"provider": provider, "query": query}})


@pytest.mark.parametrize(("query", "want"), [
    ("keptnmetric/apps/error-rate", KeptnQuery("keptnmetric", "apps", "error-rate")),
    ("KeptnMetrics/Apps/Error-Rate/2m/a=b\n", KeptnQuery("keptnmetric", "apps", "error-rate")),
    ("analysis/apps/slo", KeptnQuery("analysis", "apps", "slo", "1m", {})),
    ("analyses/apps/slo/5m", KeptnQuery("analysis", "apps", "slo", "5m", {})),
    ("  analysis/apps/slo/30s/Foo=Bar;x=1;broken;a=b=c  ", KeptnQuery("analysis", "apps", "slo", "30s",
                                                                      {"foo": "bar", "x": "1"})),
])
def test_keptn_query_is_read_as_flagger_reads_it(query: str, want: KeptnQuery) -> None:
    assert keptn_query(query) == want


@pytest.mark.parametrize(("query", "error"), [
    ("keptnmetric/apps", "unexpected query format. query must be in the format "
                         "<keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>"),
    ("metric/apps/x", "unexpected resource kind provided in the query. must be one of: "
                      "['keptnmetric', 'analysis']"),
])
def test_keptn_query_errors(query: str, error: str) -> None:
    with pytest.raises(ProviderError) as e:
        keptn_query(query)
    assert str(e.value) == error


@pytest.mark.parametrize(("status", "want"), [
    ({"value": "12.5"}, 12.5), ({"value": "-3e2"}, -300.0), ({"value": "0x1p-2"}, 0.25),
    ({"value": "NaN"}, "nan"), ({}, "could not retrieve KeptnMetric - no value found in resource apps/m"),
    (None, "could not retrieve KeptnMetric - no value found in resource apps/m"),
    ({"value": 12}, "could not retrieve KeptnMetric - no value found in resource apps/m"),
    ({"value": "1_000"}, "could not parse value of KeptnMetric apps/m to float"),
    ({"value": " 1"}, "could not parse value of KeptnMetric apps/m to float"),
])
def test_keptn_metric_value(status: dict[str, Any] | None, want: float | str) -> None:
    obj = {"status": status} if status is not None else {}
    if isinstance(want, float):
        assert metric_value(obj, "apps/m") == want
    elif want == "nan":
        assert metric_value(obj, "apps/m") != metric_value(obj, "apps/m")
    else:
        with pytest.raises(ProviderError) as e:
            metric_value(obj, "apps/m")
        assert str(e.value).startswith(want)


@pytest.mark.parametrize(("status", "want"), [
    (None, None), ({"state": "Progressing"}, None), ({"state": "Completed"}, None),
    ({"state": "Completed", "pass": True}, 1.0), ({"state": "Completed", "pass": False}, 0.0),
    ({"state": "Pending", "pass": True}, None),
    ({"state": 3}, "could not check status of created Keptn Analysis apps/slo"),
    ({"state": "Completed", "pass": "yes"}, "could not check status of created Keptn Analysis apps/slo"),
])
def test_keptn_analysis_result(status: dict[str, Any] | None, want: float | str | None) -> None:
    obj = {"status": status} if status is not None else {}
    if isinstance(want, str):
        with pytest.raises(ProviderError) as e:
            analysis_result(obj, "apps/slo")
        assert str(e.value).startswith(want)
    else:
        assert analysis_result(obj, "apps/slo") == want


@pytest.fixture
async def api() -> AsyncIterator[ApiServer]:
    server = ApiServer()
    await server.start()
    server.rollouts = False
    yield server
    await server.stop()


@pytest.fixture
async def kube(api: ApiServer) -> AsyncIterator[KubeClient]:
    client = KubeClient(ClusterConfig(base_url=api.url, ssl_context=None, token=TokenSource(token="sa")),
                        max_attempts=1)
    yield client
    await client.close()


def kube_settings(kube: KubeClient, **kw: Any) -> ProviderSettings:
    return ProviderSettings(timeout=5.0, kube=kube, **kw)


async def keptn_controller(api: ApiServer, passed: bool, timeout: float = 5.0) -> dict[str, Any]:  # noqa: ASYNC109
    """Keptn's part: the first Analysis created in NS is completed with ``passed``; returns it as created."""
    deadline = time.monotonic() + timeout
    while not api.items(KEPTN_ANALYSIS, NS):
        assert time.monotonic() < deadline, "no Analysis was created"
        await asyncio.sleep(0.01)
    (created,) = api.items(KEPTN_ANALYSIS, NS)
    current = api.objects[(KEPTN_ANALYSIS.group, KEPTN_ANALYSIS.plural)][(NS, created["metadata"]["name"])]
    current["status"] = {"state": "Completed", "pass": passed}
    return created


async def keptn_metric(kube: KubeClient, ns: str, name: str, value: str) -> None:
    """A KeptnMetric as Keptn's controller leaves it: ``status.value`` written through the subresource."""
    await kube.create(KEPTN_METRIC, ns, {"apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric",
                                         "metadata": {"name": name, "namespace": ns}})
    await kube.patch(KEPTN_METRIC, ns, name, {"status": {"value": value}}, subresource="status")


async def test_keptn_metric_read_through_the_api_server(api: ApiServer, kube: KubeClient) -> None:
    await keptn_metric(kube, NS, "error-rate", "2.75")
    async with aiohttp.ClientSession() as session:
        provider = PROVIDERS["keptn"]
        got = await provider.query(session, template({"type": "keptn"}), "keptnmetric/apps/error-rate", {},
                                   kube_settings(kube))
        assert got == 2.75
        with pytest.raises(ProviderError) as e:
            await provider.query(session, template({"type": "keptn"}), "keptnmetric/apps/missing", {},
                                 kube_settings(kube))
    assert str(e.value).startswith("could not retrieve KeptnMetric apps/missing: "
                                   "keptnmetrics.metrics.keptn.sh")
    assert api.count("GET", "/apis/metrics.keptn.sh/v1beta1/namespaces/apps/keptnmetrics/error-rate") == 1


@pytest.mark.parametrize(("passed", "want"), [(True, 1.0), (False, 0.0)])
async def test_keptn_analysis_created_waited_for_and_deleted(api: ApiServer, kube: KubeClient, passed: bool,
                                                             want: float) -> None:
    provider = KeptnProvider(poll_every=0.05)
    async with aiohttp.ClientSession() as session:
        query = provider.query(session, template({"type": "keptn"}), "analysis/apps/SLO/2m/Team=Web", {},
                               kube_settings(kube))
        got, created = await asyncio.gather(query, keptn_controller(api, passed))
    assert got == want
    assert created["metadata"]["name"].startswith("slo-") and len(created["metadata"]["name"]) == 10
    assert created["spec"] == {"analysisDefinition": {"name": "slo"}, "timeframe": {"recent": "2m"},
                               "args": {"team": "web"}}
    assert api.items(KEPTN_ANALYSIS, NS) == []  # deleted once read


async def test_keptn_analysis_timeout_and_refusal(api: ApiServer, kube: KubeClient) -> None:
    """No controller: Flagger's timeout text after the wait, and the Analysis is deleted all the same; a
    refused create names the API server's answer."""
    provider = KeptnProvider(analysis_timeout=0.3, poll_every=0.05)
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ProviderError) as e:
            await provider.query(session, template({"type": "keptn"}), "analysis/apps/slo", {},
                                 kube_settings(kube))
        assert str(e.value) == "encountered timeout while waiting for Keptn Analysis apps/slo to be finished"
        assert api.items(KEPTN_ANALYSIS, NS) == []
        api.fail("POST", "/analyses$", 403, "Forbidden")
        with pytest.raises(ProviderError) as e:
            await provider.query(session, template({"type": "keptn"}), "analysis/apps/slo", {},
                                 kube_settings(kube))
    assert str(e.value) == "could not create Keptn Analysis apps/slo: injected 403"


async def test_keptn_template_check_goes_through_canaryds_client(api: ApiServer, kube: KubeClient) -> None:
    """The check of a Canary's metric: the registry hands canaryd's API-server client to the provider."""
    await keptn_metric(kube, "test", "errors", "7")
    tpl = {"spec": {"provider": {"type": "keptn"}, "query": "keptnmetric/{{ namespace }}/errors"}}
    reg = default_registry(lambda ns, name: tpl, kube=kube)
    m = metric("errors", template="errors", hi=5.0)
    async with aiohttp.ClientSession() as session:
        (res,) = await run_checks(canary(m), session=session, metrics_server="", timeout=5, registry=reg)
    assert (res.verdict, res.value, res.message) == ("fail", 7.0, "errors 7.00 > 5")


async def test_keptn_template_cannot_reach_another_tenant(api: ApiServer, kube: KubeClient) -> None:
    """canaryd's RBAC reaches every namespace; a template reaches only the Canary's and its own. A query
    naming another (here by a variable) is refused before any request, and nothing is created there."""
    await keptn_metric(kube, "other", "errors", "0")
    tpl = {"spec": {"provider": {"type": "keptn"}, "query": "{{ variables.kind }}/other/errors"}}
    reg = default_registry(lambda ns, name: tpl, kube=kube)
    results = []
    for kind in ("keptnmetric", "analysis"):
        m = metric("errors", template="errors", hi=5.0, variables={"kind": kind})
        async with aiohttp.ClientSession() as session:
            (res,) = await run_checks(canary(m), session=session, metrics_server="", timeout=5, registry=reg)
        results.append(res)
    for res in results:
        assert res.verdict == "error"
        assert "keptn query names namespace 'other'; a template may only reach test" in (res.message or "")
    assert api.count("GET", "/apis/metrics.keptn.sh/v1beta1/namespaces/other/keptnmetrics/errors") == 0
    assert api.items(KEPTN_ANALYSIS, "other") == []
    assert api.count("POST", "/apis/metrics.keptn.sh/v1beta1/namespaces/other/analyses") == 0


def test_namespace_rule_table() -> None:
    """Empty means any (a provider used outside a Canary's check); otherwise only the named ones."""
    open_settings, closed = ProviderSettings(), ProviderSettings(namespaces=frozenset({"a", "b"}))
    check_namespace("keptn", "z", open_settings)
    check_namespace("keptn", "b", closed)
    with pytest.raises(ProviderError, match=r"^externalmetrics query names namespace 'z'; a template may "
                                            r"only reach a or b \(the Canary's and the template's"):
        check_namespace("externalmetrics", "z", closed)


# --- externalmetrics ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "want"), [
    ("default/myMetric?labelSelector=label1%3Dvalue1", ("default", "myMetric", "label1=value1")),
    ("default/myMetric", ("default", "myMetric", "")),
    ("/metric_only", ("default", "metric_only", "")),
    ("metric_only", ("default", "metric_only", "")),
    ("ns/datadogmetric@ns:requests?labelSelector=b%3D2%2C%20a%20in%20(y%2Cx)%2C!c",
     ("ns", "datadogmetric@ns:requests", "a in (x,y),b=2,!c")),
])
def test_external_metrics_query(query: str, want: tuple[str, str, str]) -> None:
    q = parse_query(query)
    assert (q.namespace, q.metric, q.selector) == want


@pytest.mark.parametrize(("query", "error"), [
    ("namespaceonly/", "error parsing metric query: metric name cannot be empty"),
    ("/", "error parsing metric query: metric name cannot be empty"),
    ("", "error parsing metric query: metric name cannot be empty"),
    ("a/b/c", "error parsing metric query: malformed query string, too many slashes"),
    ("a/b?labelSelector=%3D%3D", "error parsing metric query: error parsing label selector from string =="),
])
def test_external_metrics_query_errors(query: str, error: str) -> None:
    with pytest.raises(ProviderError) as e:
        parse_query(query)
    assert str(e.value).startswith(error)


@pytest.mark.parametrize(("text", "want"), [
    ("1.1111", 1.1111), ("1500m", 1.5), ("2Ki", 2048.0), ("3e2", 300.0), ("-1.5k", -1500.0), ("7", 7.0),
    ("250u", 250e-6), ("1M", 1e6),
])
def test_quantity(text: str, want: float) -> None:
    assert quantity(text) == pytest.approx(want)


@pytest.mark.parametrize("text", ["", "1.5x", "m", 5, None, "1 k"])
def test_unreadable_quantity(text: Any) -> None:
    with pytest.raises(ProviderError):
        quantity(text)


def test_canonical_selector() -> None:
    assert canonical_selector("env=prod , app  in (b, a),!legacy,tier!=db") == \
        "app in (a,b),env=prod,!legacy,tier!=db"


def values(*items: str) -> bytes:
    """An ExternalMetricValueList (https://kubernetes.io/docs/reference/external-api/external-metrics.v1beta1/)."""
    return orjson.dumps({"kind": "ExternalMetricValueList", "apiVersion": "external.metrics.k8s.io/v1beta1",
                         "metadata": {}, "items": [
                             {"metricName": "requests", "metricLabels": {"env": "prod"},
                              "timestamp": "2024-01-01T00:00:00Z", "value": v} for v in items]})


@pytest.fixture
async def loopback() -> AsyncIterator[Loopback]:
    server = await Loopback().start()
    yield server
    await server.stop()


async def test_external_metrics_through_the_api_server(loopback: Loopback) -> None:
    """No ``address``: canaryd's own client and identity, the metric name lower-cased, the first item."""
    kube = KubeClient(ClusterConfig(base_url=loopback.url, ssl_context=None, token=TokenSource(token="sa")),
                      max_attempts=1)
    loopback.answer(200, values("1500m", "9"))
    loopback.answer(200, values())
    loopback.answer(404, orjson.dumps({"kind": "Status", "code": 404, "reason": "NotFound",
                                       "message": "the server could not find the requested resource"}))
    loopback.answer(404, b"404 page not found", {"Content-Type": "text/plain"})  # a group not served
    provider, tpl = PROVIDERS["externalmetrics"], template({"type": "externalmetrics"})
    try:
        async with aiohttp.ClientSession() as session:
            got = await provider.query(session, tpl, "web/Requests?labelSelector=env%3Dprod", {"token": "tk"},
                                       kube_settings(kube))
            with pytest.raises(ProviderNoValues) as nodata:
                await provider.query(session, tpl, "web/requests", {}, kube_settings(kube))
            with pytest.raises(ProviderError) as missing:
                await provider.query(session, tpl, "web/requests", {}, kube_settings(kube))
            with pytest.raises(ProviderError) as unserved:
                await provider.query(session, tpl, "web/requests", {}, kube_settings(kube))
    finally:
        await kube.close()
    assert got == 1.5
    assert str(nodata.value) == "no external metrics found: no values found"
    assert str(missing.value) == ("error querying external metrics API: the server could not find the "
                                  "requested resource")
    assert str(unserved.value) == str(missing.value)  # client-go's text for a 404 without a Status
    first = loopback.seen[0]
    assert first.method == "GET"
    assert first.path == "/apis/external.metrics.k8s.io/v1beta1/namespaces/web/requests"
    assert first.query_string == "labelSelector=env%3Dprod"
    assert first.headers["Authorization"] == "Bearer sa"  # canaryd's identity; the token is for address
    assert loopback.seen[1].query_string == ""


async def test_external_metrics_at_an_address(loopback: Loopback) -> None:
    """``address``: the request goes there with the secret's ``token``, never canaryd's credentials; an
    error answer is quoted as client-go words it, the token scrubbed."""
    loopback.answer(200, values("42"))
    refused = {"kind": "Status", "code": 403, "message": "token s3cr3t-token refused"}
    loopback.answer(403, orjson.dumps(refused))
    provider = PROVIDERS["externalmetrics"]
    tpl = template({"type": "externalmetrics", "address": loopback.url + "/prefix",
                    "secretRef": {"name": "x"}})
    async with aiohttp.ClientSession() as session:
        got = await provider.query(session, tpl, "requests", {"token": "s3cr3t-token"}, ProviderSettings())
        with pytest.raises(ProviderError) as e:
            await provider.query(session, tpl, "requests", {"token": "s3cr3t-token"}, ProviderSettings())
    assert got == 42.0
    seen = loopback.seen[0]
    assert seen.path == "/prefix/apis/external.metrics.k8s.io/v1beta1/namespaces/default/requests"
    assert seen.headers["Authorization"] == "Bearer s3cr3t-token"
    assert "s3cr3t-token" not in str(e.value)
    where = loopback.url.removeprefix("http://")
    assert str(e.value) == (f"externalmetrics {where}: error querying external metrics API: "
                            "token <redacted> refused")
