"""Istio's standard request metrics, with Istio's names, labels and duration buckets, in a registry owned
by the simulator object (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram

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


class IstioMetrics:
    """``istio_requests_total`` and ``istio_request_duration_milliseconds`` in ``self.registry``."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "istio_requests_total", "Requests (simulated Istio telemetry)", LABELS, registry=self.registry
        )
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration in milliseconds (simulated Istio telemetry)",
            LABELS,
            buckets=BUCKETS,
            registry=self.registry,
        )

    def record(self, labels: RequestLabels, milliseconds: float) -> None:
        values = labels.values()
        self.requests.labels(*values).inc()
        self.duration.labels(*values).observe(milliseconds)
