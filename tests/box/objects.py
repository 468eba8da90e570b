"""The tutorial's objects for the box: podinfo, its HPA and the 2019 tutorial's Canary (flagger.app/v1alpha3,
``canaryAnalysis``, legacy metric names), with the load tester's URL pointing at the box's receiver."""

from __future__ import annotations

from typing import Any

IMAGE = "ghcr.io/stefanprodan/podinfo"
STEPS = (5, 10, 15, 20, 25, 30, 35, 40, 45, 50)


def podinfo(ns: str, tag: str = "6.0.0", *, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": ns, "labels": {"app": "podinfo"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "podinfo"}},
                 "template": {"metadata": {"labels": {"app": "podinfo", **(labels or {})}},
                              "spec": {"containers": [{"name": "podinfod", "image": f"{IMAGE}:{tag}",
                                                       "ports": [{"containerPort": 9898}]}]}}},
    }


def hpa(ns: str, name: str = "podinfo") -> dict[str, Any]:
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": ns},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                     "minReplicas": 2, "maxReplicas": 4}}


def tutorial_canary(ns: str, hooks_url: str, *, name: str = "podinfo", target: str = "podinfo",
                    threshold: int = 10, interval: str = "30s", revert_on_deletion: bool = False,
                    autoscaler: bool = True) -> dict[str, Any]:
    """The tutorial's Canary as written in 2019 (30 s steps; the box's clock makes them short)."""
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
        "progressDeadlineSeconds": 3600,
        "service": {"port": 9898, "gateways": ["public-gateway.istio-system.svc.cluster.local"],
                    "hosts": ["app.istio.example.com"]},
        "canaryAnalysis": {
            "interval": interval, "threshold": threshold, "maxWeight": 50, "stepWeight": 5,
            "metrics": [
                {"name": "istio_requests_total", "threshold": 99, "interval": "1m"},
                {"name": "istio_request_duration_seconds_bucket", "threshold": 500, "interval": "30s"},
            ],
            "webhooks": [{"name": "load-test", "url": f"{hooks_url}/load", "timeout": "5s",
                          "metadata": {"cmd": f"hey -z 1m -q 10 -c 2 http://podinfo.{ns}:9898/"}}],
        },
    }
    if autoscaler:
        spec["autoscalerRef"] = {"apiVersion": "autoscaling/v2beta1", "kind": "HorizontalPodAutoscaler",
                                 "name": target}
    if revert_on_deletion:
        spec["revertOnDeletion"] = True
    return {"apiVersion": "flagger.app/v1alpha3", "kind": "Canary",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


def expected_events(ns: str) -> list[str]:
    """Flagger's Event sequence for a promotion (readiness waits left out: they depend on timing)."""
    key = f"podinfo.{ns}"
    return [f"Initialization done! {key}", f"New revision detected! Scaling up {key}",
            f"Starting canary analysis for {key}", *[f"Advance {key} canary weight {w}" for w in STEPS],
            f"Copying {key} template spec to podinfo-primary.{ns}", "Routing all traffic to primary",
            f"Promotion completed! Scaling down {key}"]
