"""MetricTemplate checks: the template read through a lookup (the watch cache in canaryd), rendered with
Flagger's functions and run against a real Prometheus; the failure texts of flagger-reference.md §5.3."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.checks import default_registry, run_checks
from canaryd.engine.types import CheckResult
from canaryd.model.spec import MetricSpec

from .promserver import free_port
from .specs import canary, metric

# P99 latency of the canary workload (497.5 ms in the exporter), with a template variable
LATENCY = (
    "histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{"
    'reporter="{{ variables.reporter }}",destination_workload_namespace="{{ namespace }}",'
    'destination_workload=~"{{ target }}"}[{{ interval }}])) by (le))'
)


def template(ns: str, name: str, query: str, provider: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"provider": provider, "query": query},
    }


class World:
    """What the cache and the API server would answer."""

    def __init__(self, prometheus: str) -> None:
        self.templates = {
            ("istio-system", "latency"): template(
                "istio-system", "latency", LATENCY, {"type": "prometheus", "address": prometheus}
            ),
            ("test", "local"): template(
                "test", "local", LATENCY, {"type": "prometheus", "address": prometheus}
            ),
            ("test", "nothing"): template(
                "test", "nothing", "absent_metric_xyz", {"type": "prometheus", "address": prometheus}
            ),
            ("test", "typo"): template(
                "test",
                "typo",
                'x{a="{{ variables.missing }}"}',
                {"type": "prometheus", "address": prometheus},
            ),
        }
        self.secrets: dict[tuple[str, str], dict[str, str]] = {}

    def template(self, ns: str, name: str) -> Mapping[str, Any] | None:
        return self.templates.get((ns, name))

    async def secret(self, ns: str, name: str) -> Mapping[str, str] | None:
        return self.secrets.get((ns, name))


async def run(world: World, session: aiohttp.ClientSession, *metrics: MetricSpec) -> tuple[CheckResult, ...]:
    reg = default_registry(world.template, world.secret)
    return await run_checks(
        canary(*metrics), session=session, metrics_server="http://unused.invalid", timeout=5, registry=reg
    )


def tref(name: str, *, ns: str | None = None, **kw: Any) -> MetricSpec:
    m = metric(name, **kw)
    ref = {"name": name} if ns is None else {"name": name, "namespace": ns}
    return MetricSpec(**{**m.__dict__, "template_ref": ref})


async def test_template_renders_and_compares(prometheus: str, session: aiohttp.ClientSession) -> None:
    world = World(prometheus)
    fail, ok = await run(
        world,
        session,
        tref("latency", ns="istio-system", hi=400, interval="10s", variables={"reporter": "destination"}),
        tref("local", lo=100, hi=500, interval="10s", variables={"reporter": "destination"}),
    )
    assert (fail.verdict, ok.verdict) == ("fail", "pass")
    assert fail.value == pytest.approx(497.5, abs=0.01)
    assert fail.message == "latency 497.50 > 400"
    assert ok.threshold == ">= 100 and <= 500"


@pytest.mark.parametrize(
    ("m", "verdict", "message"),
    [
        (
            tref("missing"),
            "error",
            'Metric template missing.test error: metrictemplate.flagger.app "missing" not found',
        ),
        (
            tref("latency"),
            "error",  # namespace defaults to the canary's
            'Metric template latency.test error: metrictemplate.flagger.app "latency" not found',
        ),
        (
            tref("typo", hi=1),
            "error",
            'Metric template typo.test query render error: map has no entry for key "missing"',
        ),
        (
            tref("nothing", hi=1),
            "nodata",
            "Halt advancement no values found for custom metric: nothing: no values found",
        ),
    ],
)
async def test_template_failures(
    prometheus: str, session: aiohttp.ClientSession, m: MetricSpec, verdict: str, message: str
) -> None:
    (r,) = await run(World(prometheus), session, m)
    assert (r.verdict, r.message) == (verdict, message)


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[web.Request]]]:
    async for served in _recording_prometheus():
        yield served


@pytest.fixture
async def tenant_server() -> AsyncIterator[tuple[str, list[web.Request]]]:
    """A server a Canary author chose (``spec.metricsServer``): it must never see a template's query."""
    async for served in _recording_prometheus():
        yield served


async def _recording_prometheus() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response(
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "0.5"]}]},
            }
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/prom", seen
    await runner.cleanup()


async def test_template_secret_and_headers(
    recorder: tuple[str, list[web.Request]], session: aiohttp.ClientSession
) -> None:
    url, seen = recorder
    world = World(url)
    world.templates[("test", "auth")] = template(
        "test",
        "auth",
        "up",
        {
            "type": "prometheus",
            "address": url,
            "secretRef": {"name": "prom-auth"},
            "headers": {"X-Scope-OrgID": ["team-a", "team-b"]},
        },
    )
    (missing,) = await run(world, session, tref("auth", hi=1))
    assert (
        missing.message == 'Metric template auth.test secret prom-auth error: secrets "prom-auth" not found'
    )
    world.secrets[("test", "prom-auth")] = {"username": "u"}
    (partial,) = await run(world, session, tref("auth", hi=1))
    assert partial.message.startswith(
        "Metric template auth.test secret prom-auth error: the secret must contain"
    )
    world.secrets[("test", "prom-auth")] = {"token": "s3cret"}
    (ok,) = await run(world, session, tref("auth", hi=1))
    assert (ok.verdict, ok.value) == ("pass", 0.5)
    assert seen[-1].path == "/prom/api/v1/query"
    assert seen[-1].headers["Authorization"] == "Bearer s3cret"
    assert seen[-1].headers["X-Scope-OrgID"] == "team-a, team-b"
    assert "s3cret" not in repr(ok)  # secrets never end up in results (status, Events)


@pytest.fixture
async def hanging() -> AsyncIterator[str]:
    """A Prometheus that accepts the query and never answers."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}"
    release.set()
    await runner.cleanup()


async def test_hung_template_provider_is_cut_off_naming_the_server(
    hanging: str, session: aiohttp.ClientSession
) -> None:
    world = World(hanging)
    world.templates[("test", "plain")] = template("test", "plain", "vector(1)",
                                                  {"type": "prometheus", "address": hanging})
    reg = default_registry(world.template, world.secret)
    started = time.monotonic()
    (r,) = await run_checks(canary(tref("plain", hi=1)), session=session,
                            metrics_server="http://unused.invalid", timeout=0.5, registry=reg)
    assert time.monotonic() - started < 2.0
    want = f"Metric query failed for plain: Prometheus {hanging} timed out after 0.5s"
    assert (r.verdict, r.message) == ("error", want)


def templated(world: World, name: str, provider: Any, query: str = "up", ns: str = "test") -> None:
    world.templates[(ns, name)] = template(ns, name, query, provider)


async def run_as_tenant(world: World, session: aiohttp.ClientSession, operator: str, tenant: str,
                        *metrics: MetricSpec) -> tuple[CheckResult, ...]:
    """A step of a Canary whose author set ``spec.metricsServer`` to ``tenant``."""
    reg = default_registry(world.template, world.secret)
    return await run_checks(canary(*metrics, metrics_server=tenant), session=session, metrics_server=operator,
                            timeout=5, registry=reg)


async def test_template_without_address_uses_the_operators_server_never_the_canarys(
    recorder: tuple[str, list[web.Request]], tenant_server: tuple[str, list[web.Request]],
    session: aiohttp.ClientSession,
) -> None:
    operator, operator_seen = recorder
    tenant, tenant_seen = tenant_server
    world = World(operator)
    templated(world, "shared", {"type": "prometheus", "headers": {"X-Scope-OrgID": ["ops"]}},
              ns="monitoring")
    (r,) = await run_as_tenant(world, session, operator, tenant, tref("shared", ns="monitoring", hi=1))
    assert (r.verdict, r.value) == ("pass", 0.5)
    assert [q.path for q in operator_seen] == ["/prom/api/v1/query"]
    assert tenant_seen == []


async def test_template_credentials_go_only_to_the_templates_own_address(
    recorder: tuple[str, list[web.Request]], tenant_server: tuple[str, list[web.Request]],
    session: aiohttp.ClientSession,
) -> None:
    operator, operator_seen = recorder
    tenant, tenant_seen = tenant_server
    world = World(operator)
    world.secrets[("monitoring", "prom-auth")] = {"username": "admin", "password": "hunter22"}
    templated(world, "no-address", {"type": "prometheus", "secretRef": {"name": "prom-auth"}},
              ns="monitoring")
    (r,) = await run_as_tenant(world, session, operator, tenant, tref("no-address", ns="monitoring", hi=1))
    assert (r.verdict, r.message) == (
        "error",
        "Metric template no-address.monitoring secret prom-auth error: spec.provider.address is not set; "
        "the template's credentials are sent only to its own address",
    )
    assert operator_seen == [] and tenant_seen == []  # nothing sent anywhere, least of all the password
    # with its own address, the credentials go there and nowhere else
    templated(world, "own", {"type": "prometheus", "address": operator, "secretRef": {"name": "prom-auth"}},
              ns="monitoring")
    (ok,) = await run_as_tenant(world, session, operator, tenant, tref("own", ns="monitoring", hi=1))
    assert ok.verdict == "pass"
    assert operator_seen[-1].headers["Authorization"].startswith("Basic ")
    assert tenant_seen == []


async def test_values_put_into_another_namespaces_template_are_checked_at_render(
    recorder: tuple[str, list[web.Request]], session: aiohttp.ClientSession
) -> None:
    """The parser refuses such a Canary (tests/model/test_references.py); the check refuses again, in case
    a MetricSpec is built another way, and checks the Canary's own values ({{ service }}…) too."""
    url, seen = recorder
    world = World(url)
    templated(world, "shared", {"type": "prometheus", "address": url},
              query='up{job="{{ variables.job }}",svc="{{ service }}"}', ns="monitoring")
    injected = 'x"} or vector(1) or up{a="'
    (r,) = await run(world, session, tref("shared", ns="monitoring", hi=1, variables={"job": injected}))
    assert (r.verdict, r.message) == (
        "error",
        "Metric template shared.monitoring query render error: the value of {{ variables.job }} is refused "
        "in a template of another namespace: it must match ^[A-Za-z0-9_.:/-]*$",
    )
    assert seen == []
    templated(world, "mine", {"type": "prometheus", "address": url},
              query='up{job="{{ variables.job }}"}', ns="test")
    (free,) = await run(world, session, tref("mine", hi=1, variables={"job": injected}))
    assert free.verdict == "pass"  # a same-namespace template: the author's own query, free
    assert seen[-1].query["query"] == f'up{{job="{injected}"}}'


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("just text", "spec: expected an object, got a string"),
        ({"provider": "prometheus", "query": "up"}, "spec.provider: expected an object, got a string"),
        ({"provider": {"type": 3}, "query": "up"}, "spec.provider.type: expected a string, got a number"),
        ({"provider": {"address": ["http://a"]}, "query": "up"},
         "spec.provider.address: expected a string, got a list"),
        ({"provider": {"headers": ["X-A"]}, "query": "up"},
         "spec.provider.headers: expected an object, got a list"),
        ({"provider": {"headers": {"X-A": 1}}, "query": "up"},
         "spec.provider.headers.X-A: expected a list of strings, got a number"),
        ({"provider": {"headers": {"X-A": ["a\r\nX-Evil: 1"]}}, "query": "up"},
         "spec.provider.headers.X-A: contains a control character"),
        ({"provider": {"headers": {"X A": ["a"]}}, "query": "up"},
         "spec.provider.headers.X A: not a valid HTTP header name"),
        ({"provider": {"secretRef": "prom-auth"}, "query": "up"},
         "spec.provider.secretRef: expected an object, got a string"),
        ({"provider": {"type": "prometheus"}, "query": {"q": 1}},
         "spec.query: expected a string, got an object"),
        ({"provider": {"type": "prometheus"}}, "spec.query: missing; write the PromQL query of the template"),
    ],
)
async def test_malformed_template_names_the_field(
    prometheus: str, session: aiohttp.ClientSession, spec: Any, message: str
) -> None:
    world = World(prometheus)
    world.templates[("test", "bad")] = {"metadata": {"name": "bad", "namespace": "test"}, "spec": spec}
    (r,) = await run(world, session, tref("bad", hi=1))
    assert (r.verdict, r.message) == ("error", f"Metric template bad.test error: {message}")
