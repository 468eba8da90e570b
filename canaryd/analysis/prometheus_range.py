"""Prometheus range queries for the judge: one series of values per query, over [start, end] at a step.

The judge compares the canary's series with the primary's, so each side's query must give at most one
series (aggregate it, e.g. ``sum(...)``); an empty result is no points (the side had no traffic), not an
error. Transport, HTTP and size errors are those of :class:`canaryd.analysis.prometheus.PrometheusClient`.
"""

from __future__ import annotations

from typing import Any

import orjson

from canaryd.analysis.bounded import excerpt
from canaryd.analysis.prometheus import PrometheusBadResponse, PrometheusClient


async def query_range(client: PrometheusClient, promql: str, start: float, end: float,
                      step_seconds: float) -> list[float]:
    """The values of ``promql``'s one series from ``start`` to ``end`` (epoch seconds) every step; NaN
    and ±Inf kept (the judge's classifier removes them)."""
    url = client.query_url("query_range").with_query(
        {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_seconds:g}s"})
    body = await client.get(url)
    return parse_matrix(body, client.shown, *client.secrets)


def parse_matrix(body: bytes, address: str = "Prometheus", *secrets: str | None) -> list[float]:
    """The values of a range-query answer with at most one series."""
    try:
        doc: Any = orjson.loads(body)
        data = doc["data"]
        kind, result = data["resultType"], data["result"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unreadable answer: "
                                    f"{excerpt(body, '', *secrets)}") from None
    if kind != "matrix" or not isinstance(result, list):
        raise PrometheusBadResponse(f"Prometheus {address} sent a {kind} where a range query gives a matrix")
    if len(result) > 1:
        raise PrometheusBadResponse(f"query returned {len(result)} series; the judge compares one series per "
                                    "side: aggregate the query (e.g. sum(...) or sum(...) by ())")
    if not result:
        return []
    try:
        return [float(v[1]) for v in result[0]["values"]]
    except (KeyError, IndexError, TypeError, ValueError):
        raise PrometheusBadResponse(f"Prometheus {address} sent an unparsable series: "
                                    f"{excerpt(repr(result[0])[:200], '', *secrets)}") from None
