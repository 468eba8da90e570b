"""Quantile bounds from canaryd's histograms, as the benchmark reads them (bench/ownview.py): plain tables,
on the text prometheus_client itself writes."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from bench.ownview import quantile_bound, summary


@pytest.mark.parametrize(("cumulative", "q", "want"), [
    ([], 0.99, None),
    ([(0.1, 0.0), (math.inf, 0.0)], 0.5, None),
    ([(0.1, 50.0), (1.0, 99.0), (math.inf, 100.0)], 0.5, 0.1),
    ([(0.1, 50.0), (1.0, 99.0), (math.inf, 100.0)], 0.99, 1.0),
    ([(0.1, 50.0), (1.0, 98.0), (math.inf, 100.0)], 0.99, math.inf),
    ([(0.1, 1.0), (1.0, 1.0), (math.inf, 1.0)], 0.99, 0.1),
])
def test_quantile_bound(cumulative: list[tuple[float, float]], q: float, want: float | None) -> None:
    assert quantile_bound(cumulative, q) == want


def test_summary_reads_canaryd_metrics_text() -> None:
    r = CollectorRegistry()
    late = Histogram("canaryd_step_lateness_seconds", "x", buckets=(0.1, 1.0, 30.0), registry=r)
    api = Histogram("canaryd_api_request_duration_seconds", "x", ["verb", "resource"],
                    buckets=(0.05, 0.5, 5.0), registry=r)
    for v in [0.05] * 98 + [0.5, 20.0]:
        late.observe(v)
    for _ in range(9):
        api.labels(verb="patch", resource="virtualservices").observe(0.01)
    api.labels(verb="update", resource="canaries/status").observe(3.0)  # a write across resources
    api.labels(verb="get", resource="configmaps").observe(0.3)
    waits = Histogram("canaryd_api_connection_wait_seconds", "x", ["lane"], buckets=(0.01, 1.0, 10.0),
                      registry=r)
    for v in [0.001] * 95 + [2.0] * 5:
        waits.labels(lane="step").observe(v)
    for _ in range(100):
        waits.labels(lane="event").observe(20.0)  # Events queue last: not a step's wait
    gc = Histogram("canaryd_gc_pause_seconds", "x", ["generation"], buckets=(0.01, 0.1, 1.0), registry=r)
    for v in (0.005, 0.05, 0.3):
        gc.labels(generation="2").observe(v)
    gc.labels(generation="0").observe(5.0)  # young collections are not the full ones
    got = summary(generate_latest(r).decode())
    assert got == {"steps": 100.0, "lateness_p50_le": 0.1, "lateness_p99_le": 1.0,
                   "write_p50_le": 0.05, "write_p99_le": 5.0, "writes": 10.0, "read_p99_le": 0.5,
                   "pool_wait_p99_le": 10.0, "gc2_pauses": 3.0, "gc2_pause_max_le": 1.0,
                   "late_over_100ms": 2.0, "gc2_over_100ms": 1.0}
