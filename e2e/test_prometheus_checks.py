"""The builtin checks against the bed's own Prometheus: what reaches Prometheus is byte for byte the query
Flagger sends (read from Prometheus's query log, not from canaryd), and a workload without traffic gives
Flagger's "no values found" texts.

Known-rate traffic, the down and hanging cases are in tests/analysis/ (own exporter and Prometheus).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from canaryd.analysis.checks import run_checks
from canaryd.analysis.prometheus import PrometheusClient
from canaryd.model.spec import AnalysisSpec, CanarySpec, MetricSpec, ServiceSpec, TargetRef, ThresholdRange

# flagger-reference.md §5.1's strings for namespace "test", window 1m (leading space included)
SUCCESS_RATE = (
    ' sum( rate( istio_requests_total{ reporter="destination", destination_workload_namespace="test",'
    ' destination_workload=~"podinfo", response_code!~"5.*" }[1m] ) ) / sum( rate( istio_requests_total{'
    ' reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo" }[1m]'
    ' ) ) * 100'
)
DURATION = (
    ' histogram_quantile( 0.99, sum( rate( istio_request_duration_milliseconds_bucket{'
    ' reporter="destination", destination_workload_namespace="test", destination_workload=~"podinfo" }[1m]'
    ' ) ) by (le) )'
)


def tutorial_spec(namespace: str, metrics_server: str | None = None) -> CanarySpec:
    """The tutorial's checks, as the model holds them (2019 names, 30s windows)."""
    return CanarySpec(
        name="podinfo", namespace=namespace, uid="u", generation=1,
        target=TargetRef("apps/v1", "Deployment", "podinfo"),
        service=ServiceSpec(name="podinfo", port=9898),
        analysis=AnalysisSpec(interval_seconds=2, threshold=10, max_weight=50, step_weight=5, metrics=(
            MetricSpec(name="istio_requests_total", interval="30s", threshold=99),
            MetricSpec(name="istio_request_duration_seconds_bucket", interval="30s", threshold=500),
            MetricSpec(name="request-success-rate", interval="1m", threshold_range=ThresholdRange(min=99)),
        )),
        metrics_server=metrics_server,
    )


def logged_queries(bed: Any) -> list[str]:
    try:
        lines = bed.prometheus_query_log.read_text().splitlines()
    except FileNotFoundError:
        return []
    return [json.loads(line)["params"]["query"] for line in lines if line.strip()]


async def test_builtin_queries_reach_prometheus_verbatim(bed: Any, namespace: str, wait_for: Any) -> None:
    assert bed.prometheus_url, "the bed runs Prometheus"
    async with aiohttp.ClientSession() as session:
        assert await PrometheusClient(bed.prometheus_url, session).is_online()
        results = await run_checks(tutorial_spec(namespace), session=session,
                                   metrics_server=bed.prometheus_url, timeout=5)
    ns = namespace
    def at(q: str, window: str) -> str:
        return q.replace('"test"', f'"{ns}"').replace("[1m]", f"[{window}]")

    expected = [at(SUCCESS_RATE, "30s"), at(DURATION, "30s"), at(SUCCESS_RATE, "1m")]

    def all_logged() -> bool:
        seen = [q for q in logged_queries(bed) if ns in q]
        return sorted(seen) == sorted(expected)

    await wait_for(all_logged, 10, "the three builtin queries in Prometheus's query log")

    # nobody sends traffic to this fresh namespace: Flagger's "no values" texts, verdict nodata
    assert [r.verdict for r in results] == ["nodata", "nodata", "nodata"]
    assert results[0].message == (
        "Halt advancement no values found for istio metric istio_requests_total probably podinfo." + ns
        + " is not receiving traffic: running query failed: no values found")
    assert results[1].message == (
        "Halt advancement no values found for istio metric istio_request_duration_seconds_bucket probably "
        "podinfo." + ns + " is not receiving traffic")
