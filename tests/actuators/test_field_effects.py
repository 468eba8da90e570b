"""The generated objects honour ``primaryScalerReplicas``, ``trafficDistribution`` and
``unmanagedMetadata`` (they were accepted and ignored before)."""

from __future__ import annotations

import copy
from dataclasses import replace

from canaryd.actuators import primary_objects, routing, service_objects
from canaryd.model.spec import CanarySpec

from .fixtures import Gen, podinfo_deployment, podinfo_hpa, tutorial_spec

GEN = Gen()


def _scaled(min_replicas: int | None, max_replicas: int | None) -> CanarySpec:
    spec = tutorial_spec()
    assert spec.autoscaler is not None
    ref = replace(spec.autoscaler, primary_min_replicas=min_replicas, primary_max_replicas=max_replicas)
    return replace(spec, autoscaler=ref)


def test_primary_hpa_takes_min_max_from_primary_scaler_replicas() -> None:
    for promoting in (False, True):
        hpa = primary_objects.primary_hpa(_scaled(5, 9), podinfo_hpa(), GEN, promoting=promoting)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (5, 9)
        assert hpa["spec"]["metrics"] == podinfo_hpa()["spec"]["metrics"]


def test_primary_hpa_copies_the_target_hpa_without_primary_scaler_replicas() -> None:
    hpa = primary_objects.primary_hpa(_scaled(None, None), podinfo_hpa(), GEN)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 4)
    hpa = primary_objects.primary_hpa(_scaled(None, 8), podinfo_hpa(), GEN)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 8)


def test_services_carry_traffic_distribution() -> None:
    spec = tutorial_spec(traffic_distribution="PreferClose")
    for role, svc in service_objects.services(spec, podinfo_deployment(), GEN).items():
        assert svc["spec"]["trafficDistribution"] == "PreferClose", role
    plain = service_objects.service(tutorial_spec(), podinfo_deployment(), GEN, "canary")
    assert "trafficDistribution" not in plain["spec"]


def test_traffic_distribution_is_patched_onto_an_existing_service() -> None:
    spec = tutorial_spec(traffic_distribution="PreferSameZone")
    desired = service_objects.service(spec, podinfo_deployment(), GEN, "canary")
    live = copy.deepcopy(desired)
    del live["spec"]["trafficDistribution"]
    assert routing._service_patch(spec, desired, live) == {"spec": {"trafficDistribution": "PreferSameZone"}}
    assert routing._service_patch(spec, desired, desired) is None
    # removed from the spec: removed from an owned Service
    plain = tutorial_spec()
    assert routing._service_patch(plain, service_objects.service(plain, podinfo_deployment(), GEN, "canary"),
                                  desired) == {"spec": {"trafficDistribution": None}}


def test_unmanaged_keys_are_never_added() -> None:
    spec = tutorial_spec(canary={"labels": {"team": "a", "tier": "web"}, "annotations": {"x/y": "1"}},
                         unmanaged_labels=("team",), unmanaged_annotations=("x/y",))
    svc = service_objects.service(spec, podinfo_deployment(), GEN, "canary")
    assert "team" not in svc["metadata"]["labels"] and svc["metadata"]["labels"]["tier"] == "web"
    assert "x/y" not in svc["metadata"]["annotations"]


def test_unmanaged_keys_are_never_changed_or_removed() -> None:
    spec = tutorial_spec(unmanaged_labels=("team",), unmanaged_annotations=("owner/sync",))
    desired = service_objects.service(spec, podinfo_deployment(), GEN, "primary")
    live = copy.deepcopy(desired)
    live["metadata"]["labels"]["team"] = "set-by-another-controller"
    live["metadata"]["annotations"]["owner/sync"] = "yes"
    assert routing._service_patch(spec, desired, live) is None
    # a managed key that drifted is still brought back, the unmanaged one left alone
    live["metadata"]["labels"]["app"] = "drifted"
    live["metadata"]["labels"]["stray"] = "x"
    assert routing._service_patch(spec, desired, live) == {
        "metadata": {"labels": {"app": "podinfo-primary", "stray": None}}}
    # without unmanagedMetadata the same keys are removed (the test above can fail)
    plain = tutorial_spec()
    body = routing._service_patch(plain, service_objects.service(plain, podinfo_deployment(), GEN, "primary"),
                                  live)
    assert body is not None and body["metadata"]["labels"]["team"] is None
