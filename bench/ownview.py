"""canaryd's own view of a run, read from its /metrics at the end: how late its passes began the steps
that were due (``canaryd_step_lateness_seconds``) and how long its API calls took as its tasks felt them
(``canaryd_api_request_duration_seconds``, connection-pool wait and retries included) and how much of that
was the wait for a pooled connection (``canaryd_api_connection_wait_seconds``, lane ``step``: the requests
that make a step, not its Events). Beside the
benchmark's watch receipts and the audit log's server-side latency, this tells which share of a late
step is the operator's. Histograms give bucket bounds, not exact quantiles: the figures read "≤ x"."""

from __future__ import annotations

import math
from collections.abc import Iterable

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

WRITES = ("create", "update", "patch", "delete")


def buckets(families: list[Metric], name: str,
            keep: dict[str, Iterable[str]] | None = None) -> list[tuple[float, float]]:
    """Cumulative (le, count) of histogram ``name``, summed over the series whose labels are in ``keep``."""
    sums: dict[float, float] = {}
    for family in families:
        if family.name != name:
            continue
        for s in family.samples:
            if s.name != f"{name}_bucket":
                continue
            if keep and any(s.labels.get(k) not in set(v) for k, v in keep.items()):
                continue
            le = float(s.labels["le"])
            sums[le] = sums.get(le, 0.0) + s.value
    return sorted(sums.items())


def quantile_bound(cumulative: list[tuple[float, float]], q: float) -> float | None:
    """The smallest bucket bound holding the q-quantile (inf when it lies past the last finite bound)."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = math.ceil(q * cumulative[-1][1])
    for le, count in cumulative:
        if count >= rank:
            return le
    return math.inf


def above(cumulative: list[tuple[float, float]], bound: float) -> float | None:
    """How many observations lay above ``bound`` (a bucket bound of the histogram)."""
    if not cumulative:
        return None
    within = next((count for le, count in cumulative if le == bound), None)
    return None if within is None else cumulative[-1][1] - within


def summary(text: str) -> dict[str, float | None]:
    """Step-lateness count, median and p99 bounds; API write and read p99 bounds (client side); the p99
    bound of the wait for a pooled connection; how many full collections of the garbage collector ran and
    the bound of the longest."""
    families = list(text_string_to_metric_families(text))  # parsed once for the three histograms
    late = buckets(families, "canaryd_step_lateness_seconds")
    writes = buckets(families, "canaryd_api_request_duration_seconds", {"verb": WRITES})
    reads = buckets(families, "canaryd_api_request_duration_seconds", {"verb": ("get", "list")})
    waits = buckets(families, "canaryd_api_connection_wait_seconds", {"lane": ("step",)})
    gc2 = buckets(families, "canaryd_gc_pause_seconds", {"generation": ("2",)})
    return {
        "steps": late[-1][1] if late else None,
        "lateness_p50_le": quantile_bound(late, 0.5),
        "lateness_p99_le": quantile_bound(late, 0.99),
        "write_p50_le": quantile_bound(writes, 0.5),
        "write_p99_le": quantile_bound(writes, 0.99),
        "writes": writes[-1][1] if writes else None,
        "read_p99_le": quantile_bound(reads, 0.99),
        "pool_wait_p99_le": quantile_bound(waits, 0.99),
        "gc2_pauses": gc2[-1][1] if gc2 else None,
        "gc2_pause_max_le": quantile_bound(gc2, 1.0),
        # against the target: steps begun more than 100 ms late, full collections longer than 100 ms
        "late_over_100ms": above(late, 0.1),
        "gc2_over_100ms": above(gc2, 0.1),
    }
