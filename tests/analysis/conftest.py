"""Session fixtures: one exporter and one real Prometheus for all analysis tests, an HTTP session."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from canaryd.analysis.prometheus import PrometheusClient

from .promserver import Exporter, Prometheus, Workload, wait_until

WORKLOADS = [
    Workload("test", "podinfo", ok_rps=9, error_rps=1, latency_bucket="500"),  # 90 %, P99 497.5 ms
    Workload("test", "podinfo-primary", ok_rps=10, error_rps=0, latency_bucket="10"),  # 100 %, 9.95 ms
    Workload("test", "fast", ok_rps=10, error_rps=0, latency_bucket="100"),  # 100 %, P99 99.5 ms
    Workload("test", "idle", ok_rps=0, error_rps=0, latency_bucket="100"),  # counters never move
]


@pytest.fixture(scope="session")
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture(scope="session")
async def prometheus(session: aiohttp.ClientSession) -> AsyncIterator[str]:
    """URL of a real Prometheus that has scraped the exporter long enough for 10s rate windows."""
    exporter = Exporter(WORKLOADS)
    await exporter.start()
    prom = Prometheus(exporter.port)
    prom.start()
    try:
        client = PrometheusClient(prom.url, session, timeout=2)

        async def window_full() -> bool:  # rate() over 10s is only exact once 10s of samples exist
            q = ('count_over_time(istio_requests_total{destination_workload="podinfo",'
                 'response_code="200"}[10s])')
            return await client.query(q) >= 10

        await wait_until(window_full, 60, f"Prometheus {prom.url} to hold 10s of the exporter's samples")
        yield prom.url
    finally:
        prom.stop()
        await exporter.stop()
