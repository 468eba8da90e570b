"""A 300 MB answer does not grow canaryd: a fresh canaryd process (tests/analysis/rss_probe.py) runs a
real Prometheus check, webhook and alert against a loopback server streaming 300 MB, and reports its
peak RSS. Before answers were capped, one such answer took canaryd from 45 to 861 MB."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from .hostile import Hostile

ROOT = Path(__file__).resolve().parents[2]
SIZE = 300 * 1024 * 1024
GROWTH_LIMIT_MIB = 60  # generous: a 10 MiB cap adds a few times that; before the caps, 300 MB grew it by 800


@pytest.fixture
async def server() -> AsyncIterator[Hostile]:
    s = await Hostile().start()
    yield s
    await s.stop()


async def probe(kind: str, url: str, *flags: str) -> dict[str, Any]:
    """Run the probe in its own process while this loop keeps serving the answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.analysis.rss_probe", kind, url, *flags, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with asyncio.timeout(120):
            out, err = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode()
    result: dict[str, Any] = orjson.loads(out.splitlines()[-1])
    print(f"\n{kind} {url.split('/')[3]}: peak RSS {result['before_mib']} -> {result['peak_mib']} MiB")
    return result


@pytest.mark.parametrize("mode", ["big", "gzip"])
async def test_300_mb_prometheus_answer_keeps_memory_flat(server: Hostile, mode: str) -> None:
    result = await probe("prometheus", f"{server.url}/{mode}/{SIZE}")
    host = server.url.split("://")[1]
    want = f"Prometheus query failed for q: answer from {host} larger than 10485760 bytes"
    assert result["message"] == want
    assert result["peak_mib"] - result["before_mib"] < GROWTH_LIMIT_MIB, result
    assert server.sent < SIZE // 2  # the answer was cut off, not drained


async def test_300_mb_answers_to_webhooks_and_alerts_keep_memory_flat(server: Hostile) -> None:
    host = server.url.split("://")[1]
    result = await probe("webhook", f"{server.url}/big/{SIZE}")
    assert result["message"] == f"answer from {host} larger than 65536 bytes"
    assert result["peak_mib"] - result["before_mib"] < GROWTH_LIMIT_MIB, result
    result = await probe("notify", f"{server.url}/big/{SIZE}/500")
    want = f"sending notification bad response: answer from {host} larger than 65536 bytes"
    assert result["message"] == want
    assert result["peak_mib"] - result["before_mib"] < GROWTH_LIMIT_MIB, result


async def test_the_cap_is_a_flag(server: Hostile) -> None:
    host = server.url.split("://")[1]
    result = await probe("prometheus", f"{server.url}/big/{SIZE}", "--max-metrics-answer-bytes", "1Mi")
    assert result["message"] == f"Prometheus query failed for q: answer from {host} larger than 1048576 bytes"


async def test_the_measurement_sees_an_uncapped_answer(server: Hostile) -> None:
    """The probe can fail: with the cap lifted above the answer, the same read grows the process."""
    size = 120 * 1024 * 1024
    result = await probe("prometheus", f"{server.url}/big/{size}", "--max-metrics-answer-bytes", "200Mi")
    assert result["peak_mib"] - result["before_mib"] > GROWTH_LIMIT_MIB, result
