"""The configs a pod uses (volumes, projected sources, env, envFrom) and Flagger's tracking exclusions."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.model.podconfigs import ConfigRef, config_tracking_enabled, pod_config_refs, template_pod_spec
from tests.actuators.fixtures import podinfo_deployment, with_config


def test_config_refs_scan() -> None:
    refs = pod_config_refs(template_pod_spec(with_config(podinfo_deployment())))
    assert refs == (
        ConfigRef("configmap", "maybe", True),
        ConfigRef("configmap", "podinfo-config"),
        ConfigRef("configmap", "podinfo-env"),
        ConfigRef("configmap", "podinfo-envfrom"),
        ConfigRef("configmap", "podinfo-proj"),
        ConfigRef("secret", "podinfo-init"),
        ConfigRef("secret", "podinfo-secret"),
    )


def test_config_ref_mandatory_wins_over_optional() -> None:
    dep = podinfo_deployment()
    dep["spec"]["template"]["spec"]["volumes"] = [
        {"name": "a", "configMap": {"name": "cm", "optional": True}},
        {"name": "b", "configMap": {"name": "cm"}},
    ]
    assert pod_config_refs(template_pod_spec(dep)) == (ConfigRef("configmap", "cm", False),)


@pytest.mark.parametrize(
    ("kind", "obj", "tracked"),
    [
        ("configmap", {"metadata": {}}, True),
        ("configmap", {"metadata": {"annotations": {"flagger.app/config-tracking": "disabled"}}}, False),
        ("secret", {"metadata": {}, "type": "Opaque"}, True),
        ("secret", {"metadata": {}, "type": "kubernetes.io/tls"}, True),
        ("secret", {"metadata": {}, "type": "kubernetes.io/dockerconfigjson"}, False),
        ("secret", {"metadata": {}, "type": "kubernetes.io/service-account-token"}, False),
    ],
)
def test_is_tracked(kind: str, obj: dict[str, Any], tracked: bool) -> None:
    assert config_tracking_enabled(kind, obj) is tracked
