"""Which Canaries a change concerns: tables over a store holding two canaries and their objects."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.cache.index import config_refs, dependents
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
    assert dependents(store, kind, "test", name) == expected


def test_other_namespaces_are_separate(store: Store) -> None:
    assert dependents(store, "Deployment", "elsewhere", "podinfo") == ["podinfo"]
    assert dependents(store, "ConfigMap", "elsewhere", "cm-vol") == []  # no target cached there
