"""The Prometheus metrics canaryd exports: Flagger's names, types and labels (so existing dashboards and
alerts keep working) plus canaryd's own and the process/Python collectors. All live in one registry
object owned by the process; docs/operations.md lists them."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections import Counter as Counter_
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from canaryd.runtime.canary_gauges import CanaryGauges, canary_series
from canaryd.runtime.plain_histogram import PlainHistogram
from canaryd.version import version as canaryd_version

# 1-2-5 steps from 1 ms to 10 s (p99 of canaryd's own share readable at every size the bench runs), then
# the coarse tail up to two minutes (a starved process)
LATENESS_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0,
                    120.0)
_WITH_CREATED = ("counter", "histogram", "summary")


class Registry(CollectorRegistry):
    """A registry whose exposition has no ``*_created`` series: Flagger's Go client exports none, and
    they would double the series of every counter and histogram (without touching prometheus_client's
    module-wide switch)."""

    def collect(self) -> Iterator[Metric]:
        for family in super().collect():
            if family.type in _WITH_CREATED:
                created = family.name + "_created"
                family.samples = [s for s in family.samples if s.name != created]
            yield family


class CacheObjects(Collector):
    """``canaryd_cache_objects``: objects per kind in the watch cache, counted at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self._counts = counts

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("canaryd_cache_objects", "Objects in the watch cache", labels=["kind"])
        for kind, count in sorted(self._counts().items()):
            family.add_metric([kind], count)
        return [family]


def _coroutine(task: asyncio.Task[Any]) -> str:
    coro = task.get_coro()
    return str(getattr(coro, "__qualname__", None) or type(coro).__name__)


class RuntimeSizes(Collector):
    """Sizes a soak run watches for growth (bench/soak.py), read at scrape time: Python heap blocks
    (``sys.getallocatedblocks``), asyncio tasks of the scraping loop, and, once given, the Event
    aggregation map's entries."""

    def __init__(self) -> None:
        self.event_entries: Callable[[], int] | None = None

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        out = [GaugeMetricFamily("canaryd_python_heap_blocks", "Memory blocks allocated by Python",
                                 value=sys.getallocatedblocks())]
        with contextlib.suppress(RuntimeError):  # scraped outside a running loop (a test): no task count
            tasks = GaugeMetricFamily("canaryd_asyncio_tasks", "Unfinished asyncio tasks by coroutine",
                                      labels=["coroutine"])
            for name, count in sorted(Counter_(_coroutine(t) for t in asyncio.all_tasks()).items()):
                tasks.add_metric([name], count)  # label values: code sites, a bounded set
            out.append(tasks)
        if self.event_entries is not None:
            out.append(GaugeMetricFamily("canaryd_event_aggregation_entries",
                                         "Messages remembered for Event aggregation",
                                         value=self.event_entries()))
        return out


class GoneTargets(Collector):
    """Drops, before an exposition, the duration and outcome series of targets no cached Canary has pointed
    at for ``keep`` seconds (a deleted Canary's): they stay long enough for ``increase(...[1h])`` alerts on
    a Canary deleted right after failing, and per-canary series stay bounded by the Canaries live or
    deleted within the hour, not by every Canary ever seen. Registered before those metrics; exports
    nothing itself; idle until ``canaries`` is given (:meth:`Metrics.watch`)."""

    def __init__(self, keep: float = 3600.0, now: Callable[[], float] = time.monotonic) -> None:
        self.canaries: Callable[[], list[dict[str, Any]]] | None = None
        self.vectors: list[tuple[Counter | PlainHistogram, tuple[str, ...]]] = []
        self.keep = keep
        self.now = now  # the clock (a test sets its own)
        self._gone_since: dict[tuple[str, str], float] = {}  # (target, namespace) → first seen gone

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily]:
        if self.canaries is None:
            return []
        live = {(row[0], row[1]) for c in self.canaries() if (row := canary_series(c)) is not None}
        now = self.now()
        children: dict[tuple[str, str], list[tuple[Counter | PlainHistogram, tuple[str, ...]]]] = {}
        for vector, names in self.vectors:
            for family in vector.collect():
                for s in family.samples:
                    key = (s.labels.get("name", ""), s.labels.get("namespace", ""))
                    if key not in live:
                        children.setdefault(key, []).append((vector, tuple(s.labels[n] for n in names)))
        self._gone_since = {k: self._gone_since.get(k, now) for k in children}
        for key, since in list(self._gone_since.items()):
            if now - since < self.keep:
                continue
            for vector, values in set(children[key]):
                with contextlib.suppress(KeyError):
                    vector.remove(*values)
            del self._gone_since[key]
        return []


class Metrics:
    """Every metric of the process, registered in ``registry`` (never the global default registry).
    The per-canary gauges and the cache sizes are read from the cache at scrape time once
    :meth:`watch` was given it."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        r = self.registry
        self.gone = GoneTargets()  # first: it prunes the vectors below before they are collected
        r.register(self.gone)
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.info = Gauge("flagger_info", "Flagger version and mesh provider information",
                          ["version", "mesh_provider"], registry=r)
        self.info.labels(version=version or canaryd_version(), mesh_provider="istio").set(1)
        # per canary: plain lists, not a value object and a lock per bucket (plain_histogram.py)
        self.duration = PlainHistogram(
            "flagger_canary_duration_seconds", "Seconds spent performing canary analysis.",
            ["name", "namespace"], registry=r,
        )
        # set by the task after each check; exported through CanaryGauges (leader only, live canaries)
        self.metric_analysis = Gauge(
            "flagger_canary_metric_analysis", "Last canary analysis result per metric",
            ["name", "namespace", "metric"], registry=None,
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self.successes = Counter("flagger_canary_successes_total", "Total number of canary successes",
                                 labels, registry=r)
        self.failures = Counter("flagger_canary_failures_total", "Total number of canary failures",
                                labels, registry=r)
        # canaryd's own
        self.wakeups = Counter(
            "canaryd_task_wakeups_total", "Canary task wake-ups by cause", ["cause"], registry=r
        )
        self.check_latency = Histogram(
            "canaryd_check_duration_seconds", "Latency of one analysis check", ["check"], registry=r
        )
        self.leader = Gauge("canaryd_leader", "1 when this replica holds the lease", registry=r)
        self.tasks = Gauge("canaryd_canary_tasks", "Running canary tasks", registry=r)
        # how late a due step began, as the task saw it (its wake-up, or the end of its previous writes):
        # with the API server's own latency (audit log) it tells the operator's share of late steps
        self.step_lateness = Histogram(
            "canaryd_step_lateness_seconds",
            "Seconds between a step's due time and the start of the pass that took it",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self._watched: list[Collector] = []
        self.gone.vectors = [(self.duration, ("name", "namespace")), (self.successes, tuple(labels)),
                             (self.failures, tuple(labels))]
        self.sizes = RuntimeSizes()
        r.register(self.sizes)

    def watch(self, canaries: Callable[[], list[dict[str, Any]]], counts: Callable[[], dict[str, int]],
              leading: Callable[[], bool]) -> None:
        """Export ``flagger_canary_status``/``_weight``/``_total``/``_metric_analysis`` from the cached
        Canaries while ``leading()``, and ``canaryd_cache_objects`` from ``counts()`` (every replica);
        duration and outcome series of targets no cached Canary has pointed at for an hour are dropped.
        Called once per runtime; a second call replaces the first."""
        for collector in self._watched:
            self.registry.unregister(collector)
        self.gone.canaries = canaries
        self._watched = [CanaryGauges(canaries, leading, self.metric_analysis), CacheObjects(counts)]
        for collector in self._watched:
            self.registry.register(collector)

    def set_analysis(self, target: str, namespace: str, metric: str, value: float | None) -> None:
        """The last value of an analysis metric; None (not computed this time: no data, an error)
        removes it, so the gauge never shows a stale value."""
        if value is not None:
            self.metric_analysis.labels(name=target, namespace=namespace, metric=metric).set(value)
        else:
            with contextlib.suppress(KeyError):
                self.metric_analysis.remove(target, namespace, metric)

    def record_outcome(self, target: str, namespace: str, strategy: str, skipped: bool,
                       before: str, after: str) -> None:
        """Count a run's end as Flagger does: a status write that moved the phase to Succeeded counts a
        success (``analysis_status`` skipped when the analysis was skipped), one to Failed a failure
        (a rollback, or a promotion whose primary never became ready)."""
        if before == after or after not in ("Succeeded", "Failed"):
            return
        counter = self.successes if after == "Succeeded" else self.failures
        status = "skipped" if skipped and after == "Succeeded" else "completed"
        counter.labels(name=target, namespace=namespace, deployment_strategy=strategy,
                       analysis_status=status).inc()
