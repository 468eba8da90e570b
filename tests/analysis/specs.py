"""Canary specs for analysis tests, built directly from the model dataclasses."""

from __future__ import annotations

from canaryd.model.spec import AnalysisSpec, CanarySpec, MetricSpec, ServiceSpec, TargetRef, ThresholdRange


def metric(name: str, *, threshold: float | None = None, lo: float | None = None, hi: float | None = None,
           interval: str = "1m", query: str | None = None, variables: dict[str, str] | None = None,
           template: str | None = None) -> MetricSpec:
    rng = ThresholdRange(min=lo, max=hi) if (lo is not None or hi is not None) else None
    return MetricSpec(name=name, interval=interval, threshold=threshold, threshold_range=rng, query=query,
                      template_ref={"name": template} if template else None,
                      template_variables=dict(variables or {}))


def canary(*metrics: MetricSpec, name: str = "podinfo", namespace: str = "test", target: str = "podinfo",
           service: str | None = None, metrics_server: str | None = None) -> CanarySpec:
    return CanarySpec(
        name=name, namespace=namespace, uid="uid-1", generation=1,
        target=TargetRef(api_version="apps/v1", kind="Deployment", name=target),
        service=ServiceSpec(name=service or target, port=9898),
        analysis=AnalysisSpec(interval_seconds=1.0, threshold=5, max_weight=50, step_weight=10,
                              metrics=tuple(metrics)),
        metrics_server=metrics_server,
    )
