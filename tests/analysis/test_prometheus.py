"""Builtin and inline checks against a real Prometheus scraping known Istio metrics, and the failure
modes users meet: no traffic, Prometheus down, Prometheus hanging, bad queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.checks import run_checks
from canaryd.analysis.prometheus import NoValuesFound, PrometheusClient
from canaryd.engine.types import CheckResult
from canaryd.model.spec import MetricSpec

from .promserver import free_port
from .specs import canary, metric


async def check(prometheus: str, session: aiohttp.ClientSession, *metrics: MetricSpec,
                target: str = "podinfo", step_timeout: float = 5) -> tuple[CheckResult, ...]:
    spec = canary(*metrics, target=target)
    return await run_checks(spec, session=session, metrics_server=prometheus, timeout=step_timeout)


async def test_success_rate_fails_below_min(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("request-success-rate", lo=99, interval="10s"))
    assert r.verdict == "fail"
    assert r.value == pytest.approx(90.0, abs=0.01)
    assert r.message == "success rate 90.00% < 99%"
    assert r.threshold == ">= 99%"


async def test_success_rate_passes_and_ignores_primary(
    prometheus: str, session: aiohttp.ClientSession
) -> None:
    # the anchored regex matches "podinfo" only, so podinfo-primary's 100 % does not leak in
    (r,) = await check(prometheus, session, metric("request-success-rate", lo=85, interval="10s"))
    assert (r.verdict, r.message) == ("pass", "")
    assert r.value == pytest.approx(90.0, abs=0.01)


async def test_duration_fails_above_max(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("request-duration", hi=400, interval="10s"))
    assert r.verdict == "fail"
    assert r.value == pytest.approx(497.5, abs=0.01)
    assert r.message == "request duration 497ms > 400ms"


async def test_duration_passes(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("request-duration", hi=500, interval="10s"), target="fast")
    assert r.verdict == "pass"
    assert r.value == pytest.approx(99.5, abs=0.01)


async def test_tutorial_legacy_names(prometheus: str, session: aiohttp.ClientSession) -> None:
    sr, dur = await check(prometheus, session,
                          metric("istio_requests_total", threshold=99, interval="10s"),
                          metric("istio_request_duration_seconds_bucket", threshold=500, interval="10s"))
    assert (sr.name, sr.verdict, sr.message) == ("istio_requests_total", "fail", "success rate 90.00% < 99%")
    assert (dur.name, dur.verdict) == ("istio_request_duration_seconds_bucket", "pass")
    assert dur.value == pytest.approx(497.5, abs=0.01)


@pytest.mark.parametrize("target", ["idle", "ghost"])  # counters that never move / no series at all
async def test_no_traffic_is_nodata(prometheus: str, session: aiohttp.ClientSession, target: str) -> None:
    sr, dur = await check(prometheus, session, metric("request-success-rate", lo=99, interval="10s"),
                          metric("request-duration", hi=500, interval="10s"), target=target)
    assert sr.verdict == dur.verdict == "nodata"
    assert sr.message == (f"Halt advancement no values found for istio metric request-success-rate probably "
                          f"{target}.test is not receiving traffic: running query failed: no values found")
    assert dur.message == (f"Halt advancement no values found for istio metric request-duration probably "
                           f"{target}.test is not receiving traffic")


async def test_inline_query_renders_template(prometheus: str, session: aiohttp.ClientSession) -> None:
    q = ('sum(rate(istio_requests_total{destination_workload_namespace="{{ namespace }}",'
         'destination_workload="{{ target }}",response_code="{{ variables.code }}"}[{{ interval }}]))')
    (r,) = await check(prometheus, session,
                       metric("errors", hi=0.5, interval="10s", query=q, variables={"code": "500"}))
    assert r.verdict == "fail", r
    assert r.value == pytest.approx(1.0, rel=0.2)
    assert r.message.startswith("errors 1.") and r.message.endswith(" > 0.5")


async def test_inline_query_no_values(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("nothing", hi=1, query="absent_metric_xyz"))
    assert (r.verdict, r.message) == ("nodata", "Halt advancement no values found for metric: nothing")


async def test_matrix_result_is_an_error(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("m", hi=1, query="istio_requests_total[10s]"))
    assert r.verdict == "error"
    assert r.message == "Prometheus query failed for m: query returned multiple values"


async def test_bad_query_is_an_http_error(prometheus: str, session: aiohttp.ClientSession) -> None:
    (r,) = await check(prometheus, session, metric("broken", hi=1, query="sum(rate(x[1m]"))
    assert r.verdict == "error"
    prefix = "Prometheus query failed for broken: error response: Status 400 Bad Request: "
    assert r.message.startswith(prefix)
    assert "parse error" in r.message


async def test_is_online(prometheus: str, session: aiohttp.ClientSession) -> None:
    assert await PrometheusClient(prometheus, session).is_online()
    assert not await PrometheusClient(f"http://127.0.0.1:{free_port()}", session).is_online()


async def test_prometheus_down_names_the_server(session: aiohttp.ClientSession) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    (r,) = await check(down, session, metric("request-success-rate", lo=99))
    assert r.verdict == "error"
    assert r.message == f"Prometheus query failed: Prometheus {down} unreachable: connection refused"
    with pytest.raises(Exception, match=f"Prometheus {down} unreachable: connection refused"):
        await PrometheusClient(down, session).query("vector(1)")


@pytest.fixture
async def hanging_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A loopback HTTP server that accepts requests and never answers; records the paths asked."""
    never = asyncio.Event()
    seen: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        seen.append(request.path_qs)
        await never.wait()
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    never.set()
    await runner.cleanup()


async def test_hanging_prometheus_is_cut_by_the_timeout(
    hanging_server: tuple[str, list[str]], session: aiohttp.ClientSession
) -> None:
    url, seen = hanging_server
    started = time.monotonic()
    sr, dur, inline = await check(url, session, metric("request-success-rate", lo=99),
                                  metric("request-duration", hi=500), metric("q", hi=1, query="up"),
                                  step_timeout=1.0)
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 1.8, elapsed  # concurrent: three 1 s timeouts take 1 s, not 3
    assert len(seen) == 3  # the three queries did reach the server
    assert sr.verdict == dur.verdict == inline.verdict == "error"
    assert sr.message == f"Prometheus query failed: Prometheus {url} timed out after 1s"
    assert inline.message == f"Prometheus query failed for q: Prometheus {url} timed out after 1s"


async def test_client_timeout_names_the_server(
    hanging_server: tuple[str, list[str]], session: aiohttp.ClientSession
) -> None:
    url, _ = hanging_server
    with pytest.raises(Exception, match=f"^Prometheus {url} timed out after 0.5s$"):
        await PrometheusClient(url, session, timeout=0.5).query("vector(1)")


async def test_results_in_list_order_and_unsupported_metrics(
    prometheus: str, session: aiohttp.ClientSession
) -> None:
    results = await check(prometheus, session, metric("request-duration", hi=500, interval="10s"),
                          metric("latency", hi=1, template="latency"),
                          metric("request-success-rate", lo=99, interval="10s"))
    assert [r.name for r in results] == ["request-duration", "latency", "request-success-rate"]
    assert [r.verdict for r in results] == ["pass", "error", "fail"]
    assert results[1].message == "MetricTemplate checks are not supported yet (no template lookup)"


async def test_canary_metrics_server_overrides_global(
    prometheus: str, session: aiohttp.ClientSession
) -> None:
    spec = canary(metric("request-success-rate", lo=99, interval="10s"), metrics_server=prometheus)
    down = f"http://127.0.0.1:{free_port()}"
    (r,) = await run_checks(spec, session=session, metrics_server=down, timeout=5)
    assert r.verdict == "fail" and r.value == pytest.approx(90.0, abs=0.01)


async def test_no_values_error_type(prometheus: str, session: aiohttp.ClientSession) -> None:
    with pytest.raises(NoValuesFound):
        await PrometheusClient(prometheus, session).query("absent_metric_xyz")
