"""Pod-template hashing, config refs, takeover normalisation; status <-> dict; readiness texts."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from canaryd.engine.readiness import deployment_readiness
from canaryd.engine.revision import (
    is_own_hash,
    normalise_primary_template,
    pod_template_hash,
    templates_match,
    tracked_checksums,
)
from canaryd.engine.status import promoted_condition, status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, CheckResult, DeploymentView, Phase
from canaryd.model.podconfigs import ConfigRef, pod_config_refs

TEMPLATE: dict[str, Any] = {
    "metadata": {"labels": {"app": "podinfo"}, "annotations": {"prometheus.io/scrape": "true"}},
    "spec": {
        "containers": [{
            "name": "podinfod", "image": "stefanprodan/podinfo:1.4.0",
            "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                    {"name": "B",
                     "valueFrom": {"secretKeyRef": {"name": "sec", "key": "b", "optional": True}}}],
            "envFrom": [{"configMapRef": {"name": "env-cm"}}],
        }],
        "initContainers": [{"name": "init", "image": "busybox",
                            "envFrom": [{"secretRef": {"name": "init-sec"}}]}],
        "volumes": [
            {"name": "v1", "configMap": {"name": "cfg", "optional": True}},
            {"name": "v2", "secret": {"secretName": "vol-sec"}},
            {"name": "v3", "projected": {"sources": [{"configMap": {"name": "proj-cm", "optional": True}},
                                                     {"secret": {"name": "proj-sec"}}]}},
        ],
        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"app": "podinfo"}},
             "topologyKey": "kubernetes.io/hostname"}]}},
    },
}


def test_hash_is_stable_prefixed_and_order_independent() -> None:
    h = pod_template_hash(TEMPLATE)
    assert h.startswith("cd1:") and len(h) == 20 and is_own_hash(h)
    reordered = dict(reversed(list(copy.deepcopy(TEMPLATE).items())))
    assert pod_template_hash(reordered) == h
    changed = copy.deepcopy(TEMPLATE)
    changed["spec"]["containers"][0]["image"] = "stefanprodan/podinfo:1.4.1"
    assert pod_template_hash(changed) != h
    assert not is_own_hash("bcdf5f8b7c") and not is_own_hash("")


def test_tracked_config_refs() -> None:
    refs = pod_config_refs(TEMPLATE["spec"])
    assert refs == (
        ConfigRef("configmap", "cfg", False),  # mandatory env ref wins over the optional volume
        ConfigRef("configmap", "env-cm", False),
        ConfigRef("configmap", "proj-cm", True),
        ConfigRef("secret", "init-sec", False),
        ConfigRef("secret", "proj-sec", False),
        ConfigRef("secret", "sec", True),
        ConfigRef("secret", "vol-sec", False),
    )
    assert refs[0].key == "configmap/cfg"


def test_tracked_checksums() -> None:
    refs = (ConfigRef("configmap", "a", False), ConfigRef("secret", "b", True),
            ConfigRef("secret", "c", False))
    objects: dict[str, Any] = {
        "configmap/a": {"metadata": {}, "checksum": "1111"},
        "secret/c": {"metadata": {}, "type": "Opaque", "checksum": "3333"},
    }
    assert tracked_checksums(refs, objects) == ((("configmap/a", "1111"), ("secret/c", "3333")), None)
    objects["secret/c"] = {"metadata": {}, "type": "kubernetes.io/service-account-token", "checksum": "x"}
    objects["configmap/a"] = {"metadata": {"annotations": {"flagger.app/config-tracking": "disabled"}},
                              "checksum": "1"}
    assert tracked_checksums(refs, objects) == ((), None)
    del objects["configmap/a"]
    pairs, err = tracked_checksums(refs, objects)
    assert pairs == () and err is not None and "ConfigMap a" in err and "optional: true" in err


def promoted_copy(tmpl: dict[str, Any]) -> dict[str, Any]:
    """What Flagger's promotion writes into the primary's template."""
    p = copy.deepcopy(tmpl)
    p["metadata"]["labels"]["app"] = "podinfo-primary"
    p["metadata"]["annotations"]["flagger-id"] = "5b0a1c3e-uuid"
    c = p["spec"]["containers"][0]
    c["env"][0]["valueFrom"]["configMapKeyRef"]["name"] = "cfg-primary"
    c["envFrom"][0]["configMapRef"]["name"] = "env-cm-primary"
    p["spec"]["volumes"][0]["configMap"]["name"] = "cfg-primary"
    p["spec"]["volumes"][1]["secret"]["secretName"] = "vol-sec-primary"
    p["spec"]["volumes"][2]["projected"]["sources"][1]["secret"]["name"] = "proj-sec-primary"
    aff = p["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    aff["labelSelector"]["matchLabels"]["app"] = "podinfo-primary"
    return p


PROMOTED_CONFIGS = ("configmap/cfg", "configmap/env-cm", "secret/proj-sec", "secret/vol-sec")


def test_normalised_primary_matches_target() -> None:
    primary = promoted_copy(TEMPLATE)
    assert pod_template_hash(primary) != pod_template_hash(TEMPLATE)
    normalised = normalise_primary_template(primary, "app", "podinfo", PROMOTED_CONFIGS)
    assert pod_template_hash(normalised) == pod_template_hash(TEMPLATE)
    assert templates_match(TEMPLATE, primary, "app", target_name="podinfo", tracked=PROMOTED_CONFIGS)
    newer = copy.deepcopy(TEMPLATE)
    newer["spec"]["containers"][0]["image"] = "stefanprodan/podinfo:1.5.0"
    assert not templates_match(newer, primary, "app", target_name="podinfo", tracked=PROMOTED_CONFIGS)
    # a config promotion renamed that is no longer tracked: the primary does not run the target's configs
    assert not templates_match(TEMPLATE, primary, "app", target_name="podinfo", tracked=PROMOTED_CONFIGS[1:])
    assert primary["metadata"]["labels"]["app"] == "podinfo-primary"  # input untouched


# ---- status ----

FLAGGER_STATUS = {
    "phase": "Succeeded", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
    "lastAppliedSpec": "5d8b9c7f6", "lastPromotedSpec": "5d8b9c7f6",
    "trackedConfigs": {"secret/podinfo-secret": "0b7a2f1c4d5e6f70"},
    "lastTransitionTime": "2024-07-25T10:44:21Z",
    "conditions": [{"type": "Promoted", "status": "True", "reason": "Succeeded",
                    "message": "Canary analysis completed successfully, promotion finished.",
                    "lastUpdateTime": "2024-07-25T10:44:21Z", "lastTransitionTime": "2024-07-25T10:44:21Z"}],
}


def test_reads_flagger_status() -> None:
    s = status_from_dict(FLAGGER_STATUS)
    assert s.phase == Phase.SUCCEEDED and s.last_applied_spec == "5d8b9c7f6"
    assert s.tracked_configs == (("secret/podinfo-secret", "0b7a2f1c4d5e6f70"),)
    assert s.last_transition_time == 1721904261.0 and len(s.conditions) == 1


@pytest.mark.parametrize("junk", [None, [], "x", {
    "phase": "Exploding", "canaryWeight": "lots", "failedChecks": -3, "trackedConfigs": [1],
    "conditions": "no", "checks": [1, {}], "nextStepAt": "tomorrow", "iterations": True, "mirrored": "yes"}])
def test_tolerant_read(junk: Any) -> None:
    s = status_from_dict(junk)
    assert s.phase is None and s.canary_weight == 0 and s.failed_checks == 0 and s.next_step_at is None
    assert s.iterations == 0 and not s.mirrored and s.tracked_configs == ()


def test_round_trip_and_field_names() -> None:
    s = CanaryStatus(
        phase=Phase.PROGRESSING, canary_weight=15, failed_checks=2, iterations=0, last_applied_spec="cd1:aa",
        last_promoted_spec="cd1:bb", tracked_configs=(("configmap/x", "12"),), last_transition_time=1000.0,
        conditions=(promoted_condition(Phase.PROGRESSING, "Deployment", 1000.0),), next_step_at=1030.25,
        waiting_since=990.5, checks=(CheckResult("request-success-rate", "fail", 69.17, ">= 99%",
                                                 "success rate 69.17% < 99%"),),
        message="Halt", observed_generation=4, mirrored=True)
    d = status_to_dict(s)
    assert d["nextStepAt"] == "1970-01-01T00:17:10.250Z" and d["waitingSince"] == "1970-01-01T00:16:30.500Z"
    assert d["lastTransitionTime"] == "1970-01-01T00:16:40Z" and d["trackedConfigs"] == {"configmap/x": "12"}
    assert d["checks"][0] == {"name": "request-success-rate", "verdict": "fail", "value": 69.17,
                              "threshold": ">= 99%", "message": "success rate 69.17% < 99%"}
    assert status_from_dict(d) == s
    empty = status_to_dict(CanaryStatus())
    assert empty == {"phase": "", "canaryWeight": 0, "failedChecks": 0, "iterations": 0,
                     "observedGeneration": 0}


PROMOTED_TABLE = [
    (Phase.INITIALIZING, "Unknown", "New Deployment detected, starting initialization."),
    (Phase.INITIALIZED, "True", "Deployment initialization completed."),
    (Phase.WAITING, "Unknown", "Waiting for approval."),
    (Phase.WAITING_PROMOTION, "Unknown", "Waiting for approval."),
    (Phase.PROGRESSING, "Unknown", "New revision detected, progressing canary analysis."),
    (Phase.PROMOTING, "Unknown", "Canary analysis completed, starting primary rolling update."),
    (Phase.FINALISING, "Unknown", "Canary analysis completed, routing all traffic to primary."),
    (Phase.SUCCEEDED, "True", "Canary analysis completed successfully, promotion finished."),
    (Phase.FAILED, "False", "Canary analysis failed, Deployment scaled to zero."),
    (Phase.TERMINATING, "Unknown", "New Deployment detected, starting initialization."),
]


@pytest.mark.parametrize(("phase", "cstatus", "message"), PROMOTED_TABLE)
def test_promoted_condition_table(phase: Phase, cstatus: str, message: str) -> None:
    c = promoted_condition(phase, "Deployment", 0.0)
    assert (c["type"], c["status"], c["reason"], c["message"]) == ("Promoted", cstatus, phase.value, message)


def test_promoted_transition_time_kept_while_status_unchanged() -> None:
    progressing = promoted_condition(Phase.PROGRESSING, "Deployment", 100.0)
    promoting = promoted_condition(Phase.PROMOTING, "Deployment", 200.0, (progressing,))
    assert promoting["lastTransitionTime"] == progressing["lastTransitionTime"] == "1970-01-01T00:01:40Z"
    assert promoting["lastUpdateTime"] == "1970-01-01T00:03:20Z"
    assert promoted_condition(Phase.PROMOTING, "Deployment", 300.0, (promoting,)) is promoting
    succeeded = promoted_condition(Phase.SUCCEEDED, "Deployment", 400.0, (promoting,))
    assert succeeded["lastTransitionTime"] == "1970-01-01T00:06:40Z"


# ---- readiness ----


def view(**kw: Any) -> DeploymentView:
    base: dict[str, Any] = dict(name="podinfo", generation=2, observed_generation=2, spec_replicas=2,
                                status_replicas=2, updated_replicas=2, available_replicas=2, ready_replicas=2,
                                template_hash="cd1:x")
    base.update(kw)
    return DeploymentView(**base)


UNAVAILABLE = {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
               "lastUpdateTime": "1970-01-01T00:00:10Z"}
NOT_AVAILABLE = "waiting for rollout to finish: 0 of 2 (readyThreshold 100%) updated replicas are available"

READINESS = [
    (view(), 100, 0.0, (True, "", False)),
    (view(generation=3), 100, 0.0,
     (False, "waiting for rollout to finish: observed deployment generation less than desired generation",
      False)),
    (view(updated_replicas=1), 100, 0.0,
     (False, "waiting for rollout to finish: 1 out of 2 new replicas have been updated", False)),
    (view(status_replicas=3), 100, 0.0,
     (False, "waiting for rollout to finish: 1 old replicas are pending termination", False)),
    (view(available_replicas=0), 100, 0.0,
     (False, NOT_AVAILABLE, False)),
    (view(available_replicas=1), 50, 0.0, (True, "", False)),
    (view(available_replicas=0, conditions=(UNAVAILABLE,)), 100, 69.0,
     (False, NOT_AVAILABLE, False)),
    (view(available_replicas=0, conditions=(UNAVAILABLE,)), 100, 71.0,
     (False, NOT_AVAILABLE, True)),
    (view(conditions=({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"},)),
     100, 0.0,
     (False, 'deployment "podinfo" exceeded its progress deadline', True)),
]


@pytest.mark.parametrize(("v", "threshold", "now", "expected"), READINESS)
def test_readiness(v: DeploymentView, threshold: int, now: float, expected: tuple[bool, str, bool]) -> None:
    assert tuple(deployment_readiness(v, threshold, now, 60.0)) == expected
