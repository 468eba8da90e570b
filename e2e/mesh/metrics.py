"""Istio's standard request metrics, with Istio's names, labels and duration buckets, in a registry owned
by the simulator object (no module-level state).

Prometheus scrapes the simulator every second for the whole test session on a shared 2-core machine, and
prometheus_client's generic exposition costs ~1 ms per histogram series per scrape. So the samples are
kept in plain slots with their label text rendered once, ``render()`` writes the exposition directly
(≈10× cheaper), and the same data is also exposed to the registry as a collector, whose
``generate_latest`` output is the reference ``render()`` is tested against."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

# Istio's default buckets for istio_request_duration_milliseconds
BUCKETS = (
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000,
    300000, 600000, 1800000, 3600000,
)  # fmt: skip
LABELS = (
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service",
    "destination_service_name",
    "destination_app",
    "destination_version",
    "response_code",
)
REQUESTS = "istio_requests_total"
DURATION = "istio_request_duration_milliseconds"
REQUESTS_HELP = "Requests (simulated Istio telemetry)"
DURATION_HELP = "Request duration in milliseconds (simulated Istio telemetry)"


def _go(value: float) -> str:
    """Floats as Prometheus' Go code writes them (``1.0``, ``3.6e+06``): le values match prometheus_client."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]


LE = (*(_go(b) for b in BUCKETS), "+Inf")


@dataclass(frozen=True)
class RequestLabels:
    reporter: str
    source_workload: str
    source_workload_namespace: str
    destination_workload: str
    destination_workload_namespace: str
    destination_service: str
    destination_service_name: str
    destination_app: str
    destination_version: str
    response_code: str

    def values(self) -> tuple[str, ...]:
        return tuple(getattr(self, name) for name in LABELS)


def _escape(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


class Series:
    """One label set: request count, per-bucket (non-cumulative) counts, sum of milliseconds."""

    __slots__ = ("buckets", "count", "labels", "sum", "text")

    def __init__(self, values: tuple[str, ...]) -> None:
        self.labels = values
        self.text = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(LABELS, values, strict=True))
        self.count = 0
        self.sum = 0.0
        self.buckets = [0] * len(LE)

    def cumulative(self) -> list[int]:
        out, acc = [], 0
        for n in self.buckets:
            acc += n
            out.append(acc)
        return out


class IstioMetrics:
    """``istio_requests_total`` and ``istio_request_duration_milliseconds``; ``registry`` holds them as a
    collector, ``render()`` is the fast exposition served at ``/metrics``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.series: dict[tuple[str, ...], Series] = {}
        # (namespace, workload) -> its label sets, so the series of deleted workloads can go
        self.by_workload: dict[tuple[str, str], set[tuple[str, ...]]] = {}
        self.registry.register(self)

    def record(self, labels: RequestLabels, milliseconds: float) -> None:
        values = labels.values()
        series = self.series.get(values)
        if series is None:
            series = self.series[values] = Series(values)
            key = (labels.destination_workload_namespace, labels.destination_workload)
            self.by_workload.setdefault(key, set()).add(values)
        series.count += 1
        series.sum += milliseconds
        series.buckets[bisect_left(BUCKETS, milliseconds)] += 1

    def prune(self, exists: Callable[[str, str], bool]) -> int:
        """Drop the series of workloads that no longer exist (as Istio's do when their pods go), so that
        deleted test namespaces do not make every scrape bigger; returns how many label sets went."""
        gone = 0
        for key in [k for k in self.by_workload if not exists(*k)]:
            for values in self.by_workload.pop(key):
                del self.series[values]
                gone += 1
        return gone

    def render(self) -> bytes:
        """The text exposition (format 0.0.4) of both metrics."""
        lines = [f"# HELP {REQUESTS} {REQUESTS_HELP}", f"# TYPE {REQUESTS} counter"]
        lines += [f"{REQUESTS}{{{s.text}}} {float(s.count)}" for s in self.series.values()]
        lines += [f"# HELP {DURATION} {DURATION_HELP}", f"# TYPE {DURATION} histogram"]
        for s in self.series.values():
            lines += [
                f'{DURATION}_bucket{{{s.text},le="{le}"}} {float(n)}'
                for le, n in zip(LE, s.cumulative(), strict=True)
            ]
            lines.append(f"{DURATION}_count{{{s.text}}} {float(s.count)}")
            lines.append(f"{DURATION}_sum{{{s.text}}} {_go(s.sum)}")
        lines.append("")
        return "\n".join(lines).encode()

    def collect(self) -> Iterator[Metric]:
        """The prometheus_client view of the same samples (``generate_latest(self.registry)``)."""
        requests = CounterMetricFamily(REQUESTS.removesuffix("_total"), REQUESTS_HELP, labels=LABELS)
        duration = HistogramMetricFamily(DURATION, DURATION_HELP, labels=LABELS)
        for s in self.series.values():
            requests.add_metric(list(s.labels), s.count)
            duration.add_metric(
                list(s.labels), [(le, float(n)) for le, n in zip(LE, s.cumulative(), strict=True)], s.sum
            )
        yield requests
        yield duration
