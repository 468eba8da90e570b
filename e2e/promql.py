"""Asking the bed's real Prometheus: instant queries, and a test's canaryd registered as a scrape target
(``e2e/bed/scrape.py``) for as long as the test runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp

from e2e.bed import scrape
from e2e.operator import Operator

Sample = tuple[dict[str, str], float]


async def query(prometheus_url: str, expr: str) -> list[Sample]:
    """The instant vector (or scalar) ``expr`` evaluates to now; an error answer fails the test."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{prometheus_url}/api/v1/query", data={"query": expr}) as resp:
            body = await resp.json()
    assert resp.status == 200 and body.get("status") == "success", (expr, body)
    data = body["data"]
    if data["resultType"] == "scalar":
        return [({}, float(data["result"][1]))]
    if data["resultType"] == "matrix":
        return [(s["metric"], float(s["values"][-1][1])) for s in data["result"] if s["values"]]
    return [(s["metric"], float(s["value"][1])) for s in data["result"]]


@contextmanager
def scraped(bed: Any, op: Operator, **labels: str) -> Iterator[None]:
    """Prometheus scrapes ``op`` (at its current port) every second, its series carrying ``labels``."""
    path = scrape.register(bed, f"{op.user_agent.rsplit('/', 1)[-1]}-{op.port}", op.port, labels)
    try:
        yield
    finally:
        scrape.unregister(path)
