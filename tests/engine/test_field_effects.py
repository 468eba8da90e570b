"""Decisions about fields once accepted and ignored: ready thresholds of 0, a Canary without analysis,
MetricTemplates of providers canaryd does not implement, and fields accepted without effect."""

from __future__ import annotations

import copy
from dataclasses import replace

from canaryd.engine.decide import ignored_fields_message
from canaryd.engine.readiness import deployment_readiness
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, DeploymentView, Emit, Phase
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec

from .test_decide import SPEC, events, finish, non_emit, progressing, run, snap, status
from .world import initialized_world


def _view(**kw: int) -> DeploymentView:
    base = dict(name="podinfo", generation=2, observed_generation=2, spec_replicas=3, status_replicas=3,
                updated_replicas=3, available_replicas=0, ready_replicas=0, template_hash="cd1:v2")
    base.update(kw)
    return DeploymentView(**base)  # type: ignore[arg-type]


def test_ready_threshold_zero_drops_only_the_available_replicas_wait() -> None:
    # nothing available: 100 % waits, 0 % does not
    assert deployment_readiness(_view(), 100, 0.0, 60.0).ready is False
    assert deployment_readiness(_view(), 0, 0.0, 60.0) == (True, "", False)
    # the updated-replicas and old-replicas waits stay with a threshold of 0 (as in Flagger)
    r = deployment_readiness(_view(updated_replicas=1), 0, 0.0, 60.0)
    assert (r.ready, r.message) == (False, "waiting for rollout to finish: 1 out of 3 new replicas have "
                                           "been updated")
    r = deployment_readiness(_view(status_replicas=4), 0, 0.0, 60.0)
    assert (r.ready, r.message) == (False, "waiting for rollout to finish: 1 old replicas are pending "
                                           "termination")
    r = deployment_readiness(_view(observed_generation=1), 0, 0.0, 60.0)
    assert r.ready is False


def test_canary_without_analysis_promotes_as_skip_analysis() -> None:
    raw = {"apiVersion": "flagger.app/v1beta1", "kind": "Canary",
           "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1", "generation": 1},
           "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                    "service": {"port": 9898}}}
    spec = parse_canary(raw)
    assert isinstance(spec, CanarySpec), spec
    w = initialized_world(spec)
    evs = finish(w)
    assert evs[-1] == "Promotion completed! Canary analysis was skipped for podinfo.test"
    assert w.status.phase == Phase.SUCCEEDED and w.status.last_promoted_spec == "cd1:v2"


REFUSED = ("metric lat: MetricTemplate test/lat has provider datadog, which canaryd does not support yet; "
           "supported: prometheus")


def test_unsupported_template_provider_is_refused_before_a_run() -> None:
    sn = snap(template_error=REFUSED)  # a new revision waits: the run would start now
    for st in (status(Phase.SUCCEEDED), status(Phase.INITIALIZED), status(None)):
        d = run(SPEC, st, sn, 10.0)
        assert events(d) == [REFUSED] and non_emit(d) == []
        assert next(a for a in d.actions if isinstance(a, Emit)).warning
        assert d.status is not None and d.status.message == REFUSED
        valid = next(c for c in d.status.conditions if c["type"] == "Valid")
        assert (valid["status"], valid["reason"], valid["message"]) == (
            "False", "UnsupportedProvider", REFUSED)
        assert d.status.phase == st.phase and d.status.canary_weight == 0
        assert run(SPEC, d.status, sn, 11.0).actions == ()  # said once
    # fixed template: the run starts
    d = run(SPEC, status(Phase.SUCCEEDED, message=REFUSED), snap(), 12.0)
    assert d.status is not None and d.status.phase == Phase.PROGRESSING and d.status.message == ""


def test_template_turning_unsupported_mid_run_is_left_to_the_check() -> None:
    st = progressing(canary_weight=20, next_step_at=1000.0)
    d = run(SPEC, st, snap(template_error=REFUSED, routes=(80, 20)), 10.0)
    assert REFUSED not in events(d)
    assert d.status is None or d.status.phase == Phase.PROGRESSING


def test_fields_without_effect_are_named_once_per_generation() -> None:
    spec = replace(SPEC, ignored_fields=("spec.service.someField",), generation=4)
    message = ignored_fields_message(spec)
    assert message == ("generation 4: spec.service.someField accepted without effect: canaryd does not "
                       "implement it yet (docs/compatibility.md)")
    settled = snap(primary_template_matches_target=True)
    d = run(spec, status(Phase.SUCCEEDED, last_applied_spec="cd1:v2"), settled, 10.0)
    assert events(d) == [message]
    assert d.status is not None and d.status.ignored_fields_generation == 4
    # remembered in status: a restart (status read back) stays quiet
    again = status_from_dict(copy.deepcopy(status_to_dict(d.status)))
    assert again.ignored_fields_generation == 4
    assert message not in events(run(spec, again, settled, 11.0))
    # a new generation that still sets it: named again
    newer = replace(spec, generation=5)
    assert ignored_fields_message(newer) in events(run(newer, again, settled, 12.0))
    # no such fields: nothing said
    assert all("without effect" not in e for e in events(run(SPEC, CanaryStatus(), snap(), 13.0)))
