"""The judge as a step's check, against a loopback server that answers Prometheus range queries with
given series per side (which side a query is for: its rendered ``destination_workload``), and once
against the session's real Prometheus: queries rendered per side, samples counted, errors per side,
the report and the check's message."""

from __future__ import annotations

import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.checks import run_checks
from canaryd.analysis.judge_check import JudgeCheck, window_start
from canaryd.analysis.prometheus import PrometheusClient
from canaryd.analysis.prometheus_range import parse_matrix
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec

from .promserver import free_port

_TARGET = re.compile(r'destination_workload=~"([^"]*)"')


def _text(v: float) -> str:
    """A sample value as Prometheus writes it (``NaN``, ``+Inf``)."""
    return repr(v) if math.isfinite(v) else str(v).replace("inf", "Inf")


@dataclass
class RangeServer:
    """``/api/v1/query_range``: the series for the query's workload (a list of values), an HTTP status
    for it, or several series; every query asked is kept."""

    series: dict[str, Any] = field(default_factory=dict)
    asked: list[dict[str, str]] = field(default_factory=list)
    runner: web.AppRunner | None = None
    port: int = 0

    async def start(self) -> RangeServer:
        async def handle(req: web.Request) -> web.Response:
            params = dict(req.query)
            self.asked.append(params)
            m = _TARGET.search(params.get("query", ""))
            answer = self.series.get(m.group(1) if m else "", [])
            if isinstance(answer, int):
                return web.Response(status=answer, text="overloaded")
            start, step = float(params["start"]), float(params["step"].rstrip("s"))
            many = answer if answer and isinstance(answer[0], list) else [answer] if answer else []
            result = [{"metric": {"i": str(i)},
                       "values": [[start + k * step, _text(v)] for k, v in enumerate(values)]}
                      for i, values in enumerate(many)]
            data = {"resultType": "matrix", "result": result}
            return web.json_response({"status": "success", "data": data})

        app = web.Application()
        app.router.add_get("/api/v1/query_range", handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def server() -> AsyncIterator[RangeServer]:
    s = await RangeServer().start()
    yield s
    await s.stop()


def canary_with(judge: dict[str, Any], namespace: str = "test", target: str = "podinfo") -> CanarySpec:
    obj = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
           "metadata": {"name": "podinfo", "namespace": namespace, "uid": "u", "generation": 1},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
                    "service": {"port": 9898},
                    "analysis": {"interval": "10s", "threshold": 1, "stepWeight": 10, "judge": judge}}}
    spec = parse_canary(obj)
    assert isinstance(spec, CanarySpec), spec
    return spec


def lognormal(n: int, median: float, seed: int, factor: float = 1.0) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(median), 0.2) * factor for _ in range(n)]


LATENCY = {"step": "30s", "minSamples": 20,
           "metrics": [{"name": "latency-p99", "preset": "request-latency-p99"}]}


def check(spec: CanarySpec, url: str, session: aiohttp.ClientSession,
          clock: Callable[[], float] = lambda: 1_000_000.0) -> JudgeCheck:
    assert spec.analysis.judge is not None
    return JudgeCheck(spec, spec.analysis.judge, PrometheusClient(url, session, timeout=5), clock=clock)


async def test_a_shifted_canary_is_high_and_fails_with_the_report(
        server: RangeServer, session: aiohttp.ClientSession) -> None:
    server.series = {"podinfo": lognormal(21, 100, 1, 1.3), "podinfo-primary": lognormal(21, 100, 2)}
    r = await check(canary_with(LATENCY), server.url, session).run()
    assert (r.verdict, r.kind, r.value) == ("fail", "judge", 0.0)
    assert r.message.startswith("judge: score 0 (fail < 75): latency-p99 High (canary/primary 1.")
    assert r.report is not None
    m = r.report["metrics"][0]
    assert (m["classification"], m["samples"]) == ("High", {"canary": 21, "primary": 21})
    assert 1.2 < m["ratio"] < 1.45 and m["pValue"] < 0.001 and m["canaryMedian"] > m["primaryMedian"]
    assert {"u", "interval", "estimate", "primaryMedian"} <= set(m)
    # each side's query: the preset rendered with its own workload, the step as rate window, the lookback
    queries = sorted(a["query"] for a in server.asked)
    assert [_TARGET.search(q).group(1) for q in queries] == ["podinfo", "podinfo-primary"]  # type: ignore[union-attr]
    assert all('destination_workload_namespace="test"' in q and "[30s]" in q for q in queries)
    assert {(a["start"], a["end"], a["step"]) for a in server.asked} == {("999400.000", "1000000.000", "30s")}


async def test_an_identical_canary_passes(server: RangeServer, session: aiohttp.ClientSession) -> None:
    server.series = {"podinfo": lognormal(21, 100, 3), "podinfo-primary": lognormal(21, 100, 4)}
    r = await check(canary_with(LATENCY), server.url, session).run()
    assert (r.verdict, r.value, r.message) == ("pass", 100.0, "judge: score 100 (pass ≥ 95)")


async def test_too_few_samples_is_nodata_with_the_counts(server: RangeServer,
                                                         session: aiohttp.ClientSession) -> None:
    server.series = {"podinfo": lognormal(7, 100, 5), "podinfo-primary": lognormal(21, 100, 6)}
    r = await check(canary_with(LATENCY), server.url, session).run()
    assert r.verdict == "nodata"
    assert "too few samples for latency-p99: canary 7, primary 21, need 20" in r.message
    # NaN (a point without requests) and +Inf (histogram_quantile with everything in +Inf) are not samples
    server.series["podinfo"] = [*lognormal(19, 100, 5), math.nan, math.inf]
    r = await check(canary_with(LATENCY), server.url, session).run()
    assert r.verdict == "nodata" and "canary 19, primary 21" in r.message


async def test_a_failed_query_for_one_side_is_an_error_never_a_pass(
        server: RangeServer, session: aiohttp.ClientSession) -> None:
    server.series = {"podinfo": lognormal(21, 100, 7), "podinfo-primary": 503}
    r = await check(canary_with(LATENCY), server.url, session).run()
    assert r.verdict == "error"
    assert r.message.startswith("judge: could not measure: latency-p99 Error (primary query failed: error "
                                "response: Status 503")
    assert r.report is not None and r.report["metrics"][0]["classification"] == "Error"


async def test_several_series_per_side_is_an_error(server: RangeServer,
                                                   session: aiohttp.ClientSession) -> None:
    query = 'rate(x{destination_workload=~"{{ target }}"}[30s])'
    spec = canary_with({"step": "30s", "metrics": [{"name": "cpu", "query": query, "direction": "increase"}]})
    server.series = {"podinfo": [lognormal(21, 1, 8), lognormal(21, 1, 9)],
                     "podinfo-primary": lognormal(21, 1, 1)}
    r = await check(spec, server.url, session).run()
    assert r.verdict == "error" and "canary query failed: query returned 2 series" in r.message


async def test_marginal_score_is_inconclusive(server: RangeServer, session: aiohttp.ClientSession) -> None:
    # four equally weighted metrics, one High: 75, between marginal 75 and pass 95
    metrics = [{"name": f"m{i}", "query": f'q{i}{{destination_workload=~"{{{{ target }}}}"}}',
                "direction": "increase"} for i in range(4)]
    spec = canary_with({"step": "30s", "metrics": metrics})
    server.series = {"podinfo": lognormal(21, 100, 10), "podinfo-primary": lognormal(21, 100, 10)}
    base = check(spec, server.url, session)
    assert (await base.run()).verdict == "pass"
    judge = spec.analysis.judge
    assert judge is not None
    first = replace(judge.metrics[0], query='q{destination_workload=~"{{ target }}x"}')
    shifted = replace(judge, metrics=(first, *judge.metrics[1:]))
    server.series["podinfox"] = lognormal(21, 100, 11, 1.5)
    server.series["podinfo-primaryx"] = lognormal(21, 100, 12)
    r = await JudgeCheck(spec, shifted, base.client, clock=base.clock).run()
    assert (r.verdict, r.value) == ("inconclusive", 75.0)
    assert r.message.startswith("judge: score 75 (marginal < 95): m0 High")


async def test_run_checks_adds_the_judge_after_the_metrics(server: RangeServer,
                                                           session: aiohttp.ClientSession) -> None:
    server.series = {"podinfo": lognormal(21, 100, 13), "podinfo-primary": lognormal(21, 100, 14)}
    spec = canary_with(LATENCY)
    results = await run_checks(spec, session=session, metrics_server=server.url, timeout=5)
    assert [(r.name, r.kind, r.verdict) for r in results] == [("judge", "judge", "pass")]
    # a timeout is the judge's error, not a metric's
    hung = replace(check(spec, server.url, session), clock=lambda: 1.0)
    assert hung.timed_out(2).kind == "judge" and "timed out after 2s" in hung.timed_out(2).message


async def test_the_range_never_starts_before_the_run(server: RangeServer,
                                                     session: aiohttp.ClientSession) -> None:
    """The lookback (600 s) reaches before the run's start (``status.runStartedAt``, handed to
    run_checks by the runtime): the range starts at the run's start, so the previous revision's points
    are not judged; fewer points than minSamples are then nodata."""
    server.series = {"podinfo": lognormal(5, 100, 15), "podinfo-primary": lognormal(21, 100, 16)}
    began = time.time() - 150
    results = await run_checks(canary_with(LATENCY), session=session, metrics_server=server.url, timeout=5,
                               run_started_at=began)
    assert {a["start"] for a in server.asked} == {f"{began:.3f}"}
    assert all(began < float(a["end"]) <= time.time() for a in server.asked)
    assert results[0].verdict == "nodata" and "canary 5, primary 21" in results[0].message
    # a run older than the lookback: the whole lookback; no run start known: the whole lookback
    for run_start in (999_000.0, None):
        server.asked.clear()
        await replace(check(canary_with(LATENCY), server.url, session), not_before=run_start).run()
        assert {(a["start"], a["end"]) for a in server.asked} == {("999400.000", "1000000.000")}
    # a run start on another clock (after now) is no bound
    assert window_start(1000.0, 600.0, 1200.0) == 400.0 and window_start(1000.0, 600.0, 700.0) == 700.0


def test_parse_matrix_answers() -> None:
    assert parse_matrix(b'{"status":"success","data":{"resultType":"matrix","result":[]}}') == []
    body = (b'{"status":"success","data":{"resultType":"matrix",'
            b'"result":[{"metric":{},"values":[[1,"2.5"],[2,"NaN"]]}]}}')
    values = parse_matrix(body)
    assert values[0] == 2.5 and math.isnan(values[1])
    for bad in (b"<html>", b'{"data":{"resultType":"vector","result":[]}}',
                b'{"data":{"resultType":"matrix","result":[{"values":[["x"]]}]}}'):
        with pytest.raises(Exception, match="Prometheus"):
            parse_matrix(bad)


async def test_against_a_real_prometheus(prometheus: str, session: aiohttp.ClientSession) -> None:
    """The exporter's podinfo answers in the 500 ms bucket, its primary in the 10 ms one: constant series
    at different values, so the canary's p99 is High."""
    spec = canary_with({"step": "2s", "minSamples": 3, "lookback": "8s",
                        "metrics": [{"name": "p99", "preset": "request-latency-p99"}]})
    assert spec.analysis.judge is not None
    r = await JudgeCheck(spec, spec.analysis.judge, PrometheusClient(prometheus, session, timeout=5)).run()
    assert r.verdict == "fail", r.message
    assert r.report is not None and r.report["metrics"][0]["classification"] == "High"
    assert r.report["metrics"][0]["primaryMedian"] == pytest.approx(9.95, rel=0.05)
