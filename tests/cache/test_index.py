"""Which Canaries a change concerns: tables over a store holding two canaries and their objects."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.cache.index import (
    CanaryIndex,
    canaries_for_alert_provider,
    canaries_for_secret,
    canaries_for_template,
    config_refs,
    dependents,
)
from canaryd.cache.store import Store


def meta(name: str, ns: str = "test", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": ns, "resourceVersion": "1", **extra}


POD_SPEC = {
    "volumes": [
        {"name": "v1", "configMap": {"name": "cm-vol"}},
        {"name": "v2", "secret": {"secretName": "sec-vol"}},
        {"name": "v3", "projected": {"sources": [
            {"configMap": {"name": "cm-proj"}}, {"secret": {"name": "sec-proj"}},
        ]}},
        {"name": "v4", "emptyDir": {}},
    ],
    "initContainers": [{"name": "i", "envFrom": [{"secretRef": {"name": "sec-envfrom"}}]}],
    "containers": [
        {
            "name": "c",
            "env": [
                {"name": "A",
                 "valueFrom": {"configMapKeyRef": {"name": "cm-env", "key": "k", "optional": True}}},
                {"name": "B", "valueFrom": {"secretKeyRef": {"name": "sec-env", "key": "k"}}},
                {"name": "C", "value": "plain"},
                {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            ],
            "envFrom": [{"configMapRef": {"name": "cm-envfrom"}}],
        }
    ],
}


def test_config_refs_cover_volumes_projected_env_envfrom_init() -> None:
    assert config_refs(POD_SPEC) == {
        "configmap/cm-vol", "secret/sec-vol", "configmap/cm-proj", "secret/sec-proj", "secret/sec-envfrom",
        "configmap/cm-env", "secret/sec-env", "configmap/cm-envfrom",
    }
    assert config_refs({}) == set()


@pytest.fixture
def store() -> Store:
    s = Store()
    s.upsert("Canary", {"metadata": meta("podinfo", uid="uid-1"),
                        "spec": {"targetRef": {"kind": "Deployment", "name": "podinfo"},
                                 "autoscalerRef": {"name": "podinfo-hpa"}}})
    s.upsert("Canary", {"metadata": meta("other", uid="uid-2"),
                        "spec": {"targetRef": {"name": "backend"}, "service": {"name": "api"}}})
    s.upsert("Canary", {"metadata": meta("podinfo", ns="elsewhere", uid="uid-3"),
                        "spec": {"targetRef": {"name": "podinfo"}}})
    s.upsert("Deployment", {"metadata": meta("podinfo"), "spec": {"template": {"spec": POD_SPEC}}})
    s.upsert("Deployment", {"metadata": meta("backend"),
                            "spec": {"template": {"spec": {"volumes": [{"configMap": {"name": "cm-vol"}}]}}}})
    s.upsert("Service", {"metadata": meta("renamed-by-user", ownerReferences=[
        {"kind": "Canary", "name": "other", "uid": "uid-2"}])})
    return s


@pytest.mark.parametrize(
    ("kind", "name", "expected"),
    [
        ("Canary", "podinfo", ["podinfo"]),
        ("Deployment", "podinfo", ["podinfo"]),
        ("Deployment", "podinfo-primary", ["podinfo"]),
        ("Deployment", "backend", ["other"]),
        ("Deployment", "unrelated", []),
        ("HorizontalPodAutoscaler", "podinfo-hpa", ["podinfo"]),
        ("HorizontalPodAutoscaler", "podinfo-hpa-primary", ["podinfo"]),
        ("Service", "podinfo", ["podinfo"]),
        ("Service", "podinfo-canary", ["podinfo"]),
        ("Service", "api-primary", ["other"]),
        ("Service", "backend", []),  # "other" names its service "api"
        ("Service", "renamed-by-user", ["other"]),  # by ownerReference uid
        ("VirtualService", "api", ["other"]),
        ("DestinationRule", "podinfo-primary", ["podinfo"]),
        ("ConfigMap", "cm-vol", ["podinfo", "other"]),  # shared config: both canaries
        ("ConfigMap", "cm-env", ["podinfo"]),
        ("ConfigMap", "cm-env-primary", ["podinfo"]),  # the generated copy (even once deleted)
        ("Secret", "sec-envfrom", ["podinfo"]),
        ("Secret", "cm-vol", []),  # kinds are not confused
        ("ConfigMap", "nobody-uses-me", []),
    ],
)
def test_dependents(store: Store, kind: str, name: str, expected: list[str]) -> None:
    assert dependents(CanaryIndex(store), kind, "test", name) == expected


def test_other_namespaces_are_separate(store: Store) -> None:
    index = CanaryIndex(store)
    assert dependents(index, "Deployment", "elsewhere", "podinfo") == ["podinfo"]
    assert dependents(index, "ConfigMap", "elsewhere", "cm-vol") == []  # no target cached there


def test_index_follows_canary_changes_deletes_and_relists(store: Store) -> None:
    """Built from what the store holds, then kept in step: a retargeted Canary leaves its old names, a
    deleted one leaves every entry (its uid too), a relist that drops one forgets it, two Canaries on one
    target are both found (the duplicate check's input)."""
    index = CanaryIndex(store)
    assert index.for_target("test", "podinfo") == ["podinfo"]
    store.upsert("Canary", {"metadata": meta("podinfo", uid="uid-1", resourceVersion="2"),
                            "spec": {"targetRef": {"name": "frontend"}}})
    assert index.for_target("test", "podinfo") == [] and index.for_target("test", "frontend") == ["podinfo"]
    assert dependents(index, "Deployment", "test", "podinfo-primary") == []
    assert dependents(index, "Deployment", "test", "frontend-primary") == ["podinfo"]
    assert dependents(index, "HorizontalPodAutoscaler", "test", "podinfo-hpa") == []  # autoscalerRef gone
    twin = {"metadata": meta("twin", uid="uid-9"), "spec": {"targetRef": {"name": "frontend"}}}
    store.upsert("Canary", twin)
    assert index.for_target("test", "frontend") == ["podinfo", "twin"]
    store.delete("Canary", "test", "other")
    assert dependents(index, "Service", "test", "renamed-by-user") == []  # its uid is forgotten
    assert dependents(index, "Service", "test", "api-canary") == []
    store.replace("Canary", [c for c in store.items("Canary", "test") if c["metadata"]["name"] != "twin"],
                  namespace="test")
    assert index.for_target("test", "frontend") == ["podinfo"]
    assert index.for_target("elsewhere", "podinfo") == ["podinfo"]  # the relist was of "test" only
    index.unsubscribe()
    store.delete("Canary", "test", "podinfo")
    assert index.for_target("test", "frontend") == ["podinfo"]  # no longer told


def test_canaries_for_template_in_any_namespace() -> None:
    store = Store()

    def canary(ns: str, name: str, analysis_key: str, refs: list[dict[str, str]]) -> dict[str, Any]:
        metrics = [{"name": f"m{i}", "templateRef": r} for i, r in enumerate(refs)]
        return {"kind": "Canary", "metadata": meta(name, ns),
                "spec": {"targetRef": {"name": name}, analysis_key: {"metrics": metrics}}}

    for obj in (canary("a", "own", "analysis", [{"name": "lat"}]),
                canary("b", "shared", "canaryAnalysis", [{"name": "lat", "namespace": "a"}]),
                canary("b", "local", "analysis", [{"name": "lat"}]),
                canary("a", "other", "analysis", [{"name": "errors"}])):
        store.upsert("Canary", obj)
    assert sorted(canaries_for_template(store, "a", "lat")) == [("a", "own"), ("b", "shared")]
    assert canaries_for_template(store, "b", "lat") == [("b", "local")]
    assert canaries_for_template(store, "a", "missing") == []


def test_canaries_for_secret_through_templates_and_alert_providers() -> None:
    """A Secret named by a template's or an AlertProvider's secretRef concerns the Canaries that use
    them, in any namespace; a Secret of the same name in another namespace, or one nobody names, none."""
    store = Store()
    store.upsert("MetricTemplate", {"kind": "MetricTemplate", "metadata": meta("dd", "tpl"),
                                    "spec": {"provider": {"type": "datadog", "secretRef": {"name": "keys"}}}})
    store.upsert("MetricTemplate", {"kind": "MetricTemplate", "metadata": meta("plain", "tpl"),
                                    "spec": {"provider": {"type": "prometheus"}}})
    store.upsert("AlertProvider", {"kind": "AlertProvider", "metadata": meta("slack", "tpl"),
                                   "spec": {"type": "slack", "secretRef": {"name": "hook"}}})
    def ref(name: str, ns: str | None = "tpl") -> dict[str, Any]:
        target = {"name": name, **({"namespace": ns} if ns else {})}
        return {"metrics": [{"name": "m", "templateRef": target}]}

    canaries = {
        ("a", "uses-template"): ref("dd"),
        ("tpl", "local"): ref("dd", None),
        ("b", "alerts"): {"alerts": [{"name": "x", "providerRef": {"name": "slack", "namespace": "tpl"}}]},
        ("b", "unrelated"): ref("plain"),
    }
    for (ns, name), analysis in canaries.items():
        store.upsert("Canary", {"kind": "Canary", "metadata": meta(name, ns),
                                "spec": {"targetRef": {"name": name}, "analysis": analysis}})
    assert sorted(canaries_for_secret(store, "tpl", "keys")) == [("a", "uses-template"), ("tpl", "local")]
    assert canaries_for_secret(store, "tpl", "hook") == [("b", "alerts")]
    assert canaries_for_alert_provider(store, "tpl", "slack") == [("b", "alerts")]
    assert canaries_for_secret(store, "a", "keys") == []  # the template's Secret lives in its namespace
    assert canaries_for_secret(store, "tpl", "other") == []
