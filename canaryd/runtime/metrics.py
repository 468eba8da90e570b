"""The Prometheus metrics canaryd exports: Flagger's names and labels (so existing dashboards and alerts
keep working) plus canaryd's own. All live in one registry object owned by the process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENESS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    """Every metric of the process, registered in ``registry`` (never the global default registry)."""

    def __init__(self, registry: CollectorRegistry | None = None, *, version: str = "0.1.0") -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.info = Gauge("flagger_info", "canaryd build info", ["version", "mesh_provider"], registry=r)
        self.info.labels(version=version, mesh_provider="istio").set(1)
        self.canary_total = Gauge("flagger_canary_total", "Canaries per namespace", ["namespace"], registry=r)
        self.status = Gauge(
            "flagger_canary_status", "0 Progressing, 1 other, 2 Failed", ["name", "namespace"], registry=r
        )
        self.weight = Gauge("flagger_canary_weight", "Route weights", ["workload", "namespace"], registry=r)
        self.duration = Histogram(
            "flagger_canary_duration_seconds",
            "Wall time of analysis steps",
            ["name", "namespace"],
            registry=r,
        )
        self.metric_analysis = Gauge(
            "flagger_canary_metric_analysis", "Last metric value", ["name", "namespace", "metric"], registry=r
        )
        labels = ["name", "namespace", "deployment_strategy", "analysis_status"]
        self.successes = Counter("flagger_canary_successes_total", "Promotions", labels, registry=r)
        self.failures = Counter("flagger_canary_failures_total", "Rollbacks", labels, registry=r)
        # canaryd's own
        self.wakeups = Counter(
            "canaryd_task_wakeups_total", "Canary task wake-ups by cause", ["cause"], registry=r
        )
        self.check_latency = Histogram(
            "canaryd_check_duration_seconds", "Latency of one analysis check", ["check"], registry=r
        )
        self.leader = Gauge("canaryd_leader", "1 when this replica holds the lease", registry=r)
        self.cache_objects = Gauge(
            "canaryd_cache_objects", "Objects in the watch cache", ["kind"], registry=r
        )
        self.tasks = Gauge("canaryd_canary_tasks", "Running canary tasks", registry=r)
        # how late a due step began, as the task saw it (its wake-up, or the end of its previous writes):
        # with the API server's own latency (audit log) it tells the operator's share of late steps
        self.step_lateness = Histogram(
            "canaryd_step_lateness_seconds",
            "Seconds between a step's due time and the start of the pass that took it",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )

    def set_status(self, name: str, namespace: str, phase: str) -> None:
        value = 0 if phase == "Progressing" else 2 if phase == "Failed" else 1
        self.status.labels(name=name, namespace=namespace).set(value)

    def set_weights(self, target: str, namespace: str, primary: int, canary: int) -> None:
        self.weight.labels(workload=f"{target}-primary", namespace=namespace).set(primary)
        self.weight.labels(workload=target, namespace=namespace).set(canary)

    def forget(self, name: str, target: str, namespace: str) -> None:
        """Drop a deleted canary's series so label cardinality stays bounded by live canaries."""
        for gauge, labels in (
            (self.status, (name, namespace)),
            (self.weight, (f"{target}-primary", namespace)),
            (self.weight, (target, namespace)),
        ):
            try:
                gauge.remove(*labels)
            except KeyError:
                pass
