"""actuators.restore: what ``revertOnDeletion`` writes to the apex Service and the VirtualService (JSON
patches from the cached objects), as tables; the patches are applied with a small RFC 6902 evaluator so
the tables state the resulting objects, not the operations."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from canaryd.actuators import generated, istio_objects
from canaryd.actuators.restore import saved_spec, service_ops, virtual_service_ops

from .fixtures import UID, tutorial_spec

SPEC = tutorial_spec()
OWNER = generated.owner_reference(SPEC)
ORIG = generated.ORIGINAL_CONFIGURATION
LAST = generated.KUBECTL_LAST_APPLIED
USER_SVC_SPEC = {"type": "ClusterIP", "clusterIP": "10.0.0.7", "selector": {"app": "podinfo"},
                 "ports": [{"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
USER_VS_SPEC = {"hosts": ["app.example.com", "podinfo"], "gateways": ["istio-system/ingressgateway"],
                "http": [{"retries": {"attempts": 3, "perTryTimeout": "1s"},
                          "route": [{"destination": {"host": "podinfo"}}]}]}


def apply_ops(obj: dict[str, Any], ops: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON patch operations restore emits (add, remove, test), applied as the API server would."""
    out = copy.deepcopy(obj)
    for op in ops:
        parts = [p.replace("~1", "/").replace("~0", "~") for p in op["path"].split("/")[1:]]
        parent: Any = out
        for p in parts[:-1]:
            parent = parent[int(p)] if isinstance(parent, list) else parent[p]
        last = parts[-1]
        key: Any = int(last) if isinstance(parent, list) else last
        if op["op"] == "test":
            assert parent[key] == op["value"], op
        elif op["op"] == "remove":
            del parent[key]
        else:
            parent[key] = copy.deepcopy(op["value"])
    return out


def taken_over_service(**annotations: str) -> dict[str, Any]:
    live_spec = {**USER_SVC_SPEC, "selector": {"app": "podinfo-primary"},
                 "ports": [{"name": "http", "port": 9898, "targetPort": 9898, "protocol": "TCP"}]}
    return {"metadata": {"name": "podinfo", "labels": {"owner": "user"}, "annotations": dict(annotations)},
            "spec": live_spec}


def generated_service() -> dict[str, Any]:
    owners = [{"kind": "Other", "name": "x", "uid": "1"}, OWNER]
    return {"metadata": {"name": "podinfo", "ownerReferences": owners,
                         "labels": {"app": "podinfo"}, "annotations": dict(generated.TOOLKIT_DISABLED)},
            "spec": {"selector": {"app": "podinfo-primary"}, "ports": [{"name": "http", "port": 9898}]}}


@pytest.mark.parametrize(
    ("case", "live", "want_spec", "want_annotations", "want_owners"),
    [
        ("original-configuration", taken_over_service(**{ORIG: json.dumps(USER_SVC_SPEC), "team": "a"}),
         USER_SVC_SPEC, {"team": "a"}, None),
        ("kubectl wins", taken_over_service(**{LAST: json.dumps({"spec": USER_SVC_SPEC}),
                                               ORIG: json.dumps({"selector": {"x": "y"}})}),
         USER_SVC_SPEC, {LAST: json.dumps({"spec": USER_SVC_SPEC})}, None),
        # nothing saved: Flagger points the selector at the target's pods
        ("no record", taken_over_service(),
         {**taken_over_service()["spec"], "selector": {"app": "podinfo"}}, {}, None),
        ("broken record", taken_over_service(**{ORIG: "{not json"}),
         {**taken_over_service()["spec"], "selector": {"app": "podinfo"}}, {}, None),
        # generated: released (our ownerReference only) and selecting the target's pods
        ("generated", generated_service(),
         {"selector": {"app": "podinfo"}, "ports": [{"name": "http", "port": 9898}]},
         generated.TOOLKIT_DISABLED, [{"kind": "Other", "name": "x", "uid": "1"}]),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_service_restored(case: str, live: dict[str, Any], want_spec: dict[str, Any],
                          want_annotations: dict[str, str], want_owners: list[dict[str, Any]] | None) -> None:
    out = apply_ops(live, service_ops(SPEC, live, "app", "podinfo"))
    assert out["spec"] == want_spec
    assert out["metadata"].get("annotations") == want_annotations
    assert out["metadata"].get("ownerReferences") == want_owners
    assert out["metadata"]["labels"] == live["metadata"]["labels"]
    # idempotent: nothing left to do on the result (a released Service is no longer ours)
    assert service_ops(SPEC, out, "app", "podinfo") == []


def test_service_restore_is_guarded_by_the_owner_uid() -> None:
    ops = service_ops(SPEC, generated_service(), "app", "podinfo")
    assert ops[0] == {"op": "test", "path": "/metadata/ownerReferences/1/uid", "value": UID}


def test_service_without_target_label_keeps_its_selector() -> None:
    live = generated_service()
    out = apply_ops(live, service_ops(SPEC, live, None, None))
    assert out["spec"]["selector"] == {"app": "podinfo-primary"}
    assert len(out["metadata"]["ownerReferences"]) == 1


def taken_over_vs(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "podinfo", "labels": {"team": "a"},
                         "annotations": {**generated.TOOLKIT_DISABLED, "note": "mine", **annotations}},
            "spec": istio_objects.virtual_service_spec(SPEC, 70, 30)}


@pytest.mark.parametrize(
    ("case", "live", "want_spec"),
    [
        ("original-configuration", taken_over_vs(**{ORIG: json.dumps(USER_VS_SPEC)}), USER_VS_SPEC),
        ("kubectl", taken_over_vs(**{LAST: json.dumps({"apiVersion": "x", "spec": USER_VS_SPEC})}),
         USER_VS_SPEC),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_taken_over_virtual_service_restored(case: str, live: dict[str, Any],
                                             want_spec: dict[str, Any]) -> None:
    ops = virtual_service_ops(SPEC, live)
    assert ops is not None
    out = apply_ops(live, ops)
    assert out["spec"] == want_spec
    # the takeover's record and Flux's "disabled" marks go; the user's own metadata stays
    assert ORIG not in out["metadata"]["annotations"]
    assert not set(generated.TOOLKIT_DISABLED) & set(out["metadata"]["annotations"])
    assert out["metadata"]["annotations"]["note"] == "mine" and out["metadata"]["labels"] == {"team": "a"}
    assert virtual_service_ops(SPEC, out) in (None, [])


def test_taken_over_virtual_service_without_record_is_left_alone() -> None:
    assert virtual_service_ops(SPEC, taken_over_vs()) is None


@pytest.mark.parametrize("port", [False, True])
def test_generated_virtual_service_routes_to_the_apex_host(port: bool) -> None:
    spec = tutorial_spec(port_discovery=port, gateways=("istio-system/gw",)) if port else SPEC
    vs_spec = istio_objects.virtual_service_spec(spec, 60, 40, mirror=False)
    vs_spec["http"][0]["mirror"] = {"host": "podinfo-canary"}
    live = {"metadata": {"name": "podinfo", "ownerReferences": [generated.owner_reference(spec)]},
            "spec": vs_spec}
    ops = virtual_service_ops(spec, live)
    assert ops is not None
    out = apply_ops(live, ops)
    route = out["spec"]["http"][0]
    dest = {"host": "podinfo", **({"port": {"number": 9898}} if port else {})}
    assert route["route"] == [{"destination": dest, "weight": 100}]
    assert "mirror" not in route
    assert {k: v for k, v in route.items() if k != "route"} == {
        k: v for k, v in vs_spec["http"][0].items() if k not in ("route", "mirror")}
    assert out["spec"]["hosts"] == vs_spec["hosts"]
    assert virtual_service_ops(spec, out) == []


def test_tcp_routes_too() -> None:
    live = {"metadata": {"ownerReferences": [OWNER]},
            "spec": {"hosts": ["podinfo"], "tcp": [{"route": [
                {"destination": {"host": "podinfo-primary"}, "weight": 90},
                {"destination": {"host": "podinfo-canary"}, "weight": 10}]}]}}
    out = apply_ops(live, virtual_service_ops(SPEC, live) or [])
    assert out["spec"]["tcp"] == [{"route": [{"destination": {"host": "podinfo"}, "weight": 100}]}]


@pytest.mark.parametrize(
    ("annotations", "want"),
    [
        ({}, None),
        ({ORIG: '{"a": 1}'}, {"a": 1}),
        ({ORIG: "[1]"}, None),
        ({LAST: '{"spec": {"b": 2}}', ORIG: '{"a": 1}'}, {"b": 2}),
        ({LAST: '{"kind": "Service"}'}, None),
        ({LAST: "nope"}, None),
    ],
)
def test_saved_spec(annotations: dict[str, str], want: dict[str, Any] | None) -> None:
    assert saved_spec({"metadata": {"annotations": annotations}}) == want
