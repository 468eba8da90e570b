"""Flagger's per-canary gauges, read from the watch cache at scrape time instead of remembered from the
last status write: so only the replica that drives canaries exports them (a standby, or a replica that
lost the lease, exports none), a new leader has them for every Canary at once (a settled canary
included, no write needed) and a deleted Canary's series are gone with it.

``flagger_canary_status`` and ``flagger_canary_weight`` come from each Canary's ``status`` (phase and
``canaryWeight``; the primary gets the rest of 100, Flagger's total weight), ``flagger_canary_total``
counts Canaries per namespace, and ``flagger_canary_metric_analysis`` exports the last value of each
check (kept in an unregistered gauge the task sets) for Canaries still in the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import Gauge
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from canaryd.model.primary import primary_name

TOTAL_WEIGHT = 100  # Flagger's totalWeight()


def status_value(phase: str) -> int:
    """Flagger's ``SetStatus``: 0 Progressing, 2 Failed, 1 any other phase (none yet included)."""
    return 0 if phase == "Progressing" else 2 if phase == "Failed" else 1


def canary_series(canary: dict[str, Any]) -> tuple[str, str, int, int] | None:
    """(target, namespace, status value, canary weight) of one cached Canary; None without a target."""
    target = ((canary.get("spec") or {}).get("targetRef") or {}).get("name")
    if not isinstance(target, str) or not target:
        return None
    status = canary.get("status") or {}
    weight = status.get("canaryWeight")
    canary_weight = weight if isinstance(weight, int) and 0 <= weight <= TOTAL_WEIGHT else 0
    phase = status.get("phase")
    return target, canary["metadata"]["namespace"], status_value(phase if isinstance(phase, str) else ""), \
        canary_weight


class CanaryGauges(Collector):
    """A collector over the Canaries in ``canaries()``, exporting only while ``leading()``."""

    def __init__(self, canaries: Callable[[], list[dict[str, Any]]], leading: Callable[[], bool],
                 analysis: Gauge) -> None:
        self._canaries = canaries
        self._leading = leading
        self._analysis = analysis

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # collected lazily: registration must not read the cache

    def collect(self) -> Iterator[GaugeMetricFamily]:
        status = GaugeMetricFamily("flagger_canary_status", "Last canary analysis result",
                                   labels=["name", "namespace"])
        weight = GaugeMetricFamily("flagger_canary_weight",
                                   "The virtual service destination weight current value",
                                   labels=["workload", "namespace"])
        total = GaugeMetricFamily("flagger_canary_total", "Total number of canary object",
                                  labels=["namespace"])
        analysis = GaugeMetricFamily("flagger_canary_metric_analysis",
                                     "Last canary analysis result per metric",
                                     labels=["name", "namespace", "metric"])
        if not self._leading():
            self._analysis.clear()  # values measured while leading are stale once another replica leads
            yield from (status, weight, total, analysis)
            return
        per_ns: dict[str, int] = {}
        live: set[tuple[str, str]] = set()
        for canary in self._canaries():
            series = canary_series(canary)
            if series is None:
                continue
            target, ns, value, canary_weight = series
            per_ns[ns] = per_ns.get(ns, 0) + 1
            live.add((target, ns))
            status.add_metric([target, ns], value)
            weight.add_metric([primary_name(target), ns], TOTAL_WEIGHT - canary_weight)
            weight.add_metric([target, ns], canary_weight)
        for ns, count in sorted(per_ns.items()):
            total.add_metric([ns], count)
        for family in self._analysis.collect():
            for sample in family.samples:
                labels = sample.labels
                key = (labels["name"], labels["namespace"])
                if key in live:
                    analysis.add_metric([labels["name"], labels["namespace"], labels["metric"]], sample.value)
                else:  # the Canary was deleted (or renamed its target): drop the value for good
                    self._analysis.remove(labels["name"], labels["namespace"], labels["metric"])
        yield from (status, weight, total, analysis)
