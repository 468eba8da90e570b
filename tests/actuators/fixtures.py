"""The tutorial's objects (seed README): the podinfo Deployment + HPA in ``test`` and its Canary."""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from canaryd.model import defaults
from canaryd.model.spec import AnalysisSpec, AutoscalerRef, CanarySpec, ServiceSpec, TargetRef

UID = "5b1f1c1e-0000-4000-8000-000000000001"


@dataclass(frozen=True)
class Gen:
    """Generation settings (the part of canaryd.settings.Settings the builders read)."""

    selector_labels: tuple[str, ...] = defaults.SELECTOR_LABELS
    include_label_prefix: tuple[str, ...] = ()
    config_tracking: bool = True


def tutorial_spec(namespace: str = "test", **service: Any) -> CanarySpec:
    svc = ServiceSpec(
        name="podinfo",
        port=9898,
        gateways=("public-gateway.istio-system.svc.cluster.local",),
        hosts=("app.istio.example.com",),
    )
    return CanarySpec(
        name="podinfo",
        namespace=namespace,
        uid=UID,
        generation=1,
        target=TargetRef("apps/v1", "Deployment", "podinfo"),
        autoscaler=AutoscalerRef("autoscaling/v2beta1", "HorizontalPodAutoscaler", "podinfo"),
        progress_deadline_seconds=60,
        service=replace(svc, **service),
        analysis=AnalysisSpec(interval_seconds=30, threshold=10, max_weight=50, step_weight=5),
        api_version="flagger.app/v1alpha3",
    )


def with_analysis(spec: CanarySpec, **analysis: Any) -> CanarySpec:
    return replace(spec, analysis=replace(spec.analysis, **analysis))


def podinfo_deployment(namespace: str = "test", image: str = "quay.io/stefanprodan/podinfo:1.4.0",
                       replicas: int | None = None) -> dict[str, Any]:
    dep: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": namespace,
            "labels": {"app": "podinfo", "team": "blue"},
            "annotations": {"kustomize.toolkit.fluxcd.io/checksum": "x", "note": "kept"},
        },
        "spec": {
            "minReadySeconds": 5,
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": 60,
            "strategy": {"rollingUpdate": {"maxUnavailable": 0}, "type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {
                    "labels": {"app": "podinfo"},
                    "annotations": {"prometheus.io/scrape": "true", "helm.toolkit.fluxcd.io/x": "y"},
                },
                "spec": {
                    "containers": [{
                        "name": "podinfod",
                        "image": image,
                        "ports": [{"name": "http", "containerPort": 9898, "protocol": "TCP"}],
                        "command": ["./podinfo", "--port=9898"],
                    }],
                },
            },
        },
    }
    if replicas is not None:
        dep["spec"]["replicas"] = replicas
    return dep


def podinfo_hpa(namespace: str = "test") -> dict[str, Any]:
    """The tutorial's HPA as the API server serves it at autoscaling/v2."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "podinfo", "namespace": namespace, "labels": {"app": "podinfo"}},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "minReplicas": 2,
            "maxReplicas": 4,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}},
            }],
        },
    }


def with_config(dep: dict[str, Any]) -> dict[str, Any]:
    """podinfo mounting a ConfigMap and a Secret, with env refs, an optional ref and anti-affinity."""
    dep = copy.deepcopy(dep)
    pod = dep["spec"]["template"]["spec"]
    pod["volumes"] = [
        {"name": "config", "configMap": {"name": "podinfo-config"}},
        {"name": "secret", "secret": {"secretName": "podinfo-secret"}},
        {"name": "proj", "projected": {"sources": [{"configMap": {"name": "podinfo-proj"}},
                                                   {"secret": {"name": "podinfo-secret"}}]}},
    ]
    pod["containers"][0]["env"] = [
        {"name": "A", "valueFrom": {"configMapKeyRef": {"name": "podinfo-env", "key": "a"}}},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "podinfo-secret", "key": "b"}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "maybe", "key": "c", "optional": True}}},
        {"name": "D", "value": "plain"},
    ]
    pod["containers"][0]["envFrom"] = [{"configMapRef": {"name": "podinfo-envfrom"}}]
    pod["initContainers"] = [{"name": "init", "image": "busybox",
                              "envFrom": [{"secretRef": {"name": "podinfo-init"}}]}]
    pod["affinity"] = {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "podinfo"}}, "topologyKey": "kubernetes.io/hostname"}],
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 1, "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "podinfo", "x": "y"}},
                                              "topologyKey": "zone"}}],
    }}
    pod["topologySpreadConstraints"] = [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"app": "podinfo"}}},
        {"maxSkew": 1, "topologyKey": "host", "whenUnsatisfiable": "DoNotSchedule"},
    ]
    return dep


OWNER = {
    "apiVersion": "flagger.app/v1beta1",
    "kind": "Canary",
    "name": "podinfo",
    "uid": UID,
    "controller": True,
    "blockOwnerDeletion": True,
}
TOOLKIT = {
    "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
    "helm.toolkit.fluxcd.io/driftDetection": "disabled",
}
