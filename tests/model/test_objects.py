"""The typed shapes of the API objects (model/objects.py) name every field canaryd writes or reads."""

from __future__ import annotations

from typing import get_type_hints

from canaryd.engine.status import status_to_dict
from canaryd.engine.types import CanaryStatus, CheckResult, LastRequest, Phase, RunRecord, StepChecks
from canaryd.model.objects import CanaryStatusBody, Deployment, DeploymentStatus, Route
from canaryd.runtime.snapshot import deployment_view


def test_the_status_shape_names_every_field_written() -> None:
    full = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=10, failed_checks=1, iterations=2,
                        last_applied_spec="cd1:a", last_promoted_spec="cd1:b",
                        tracked_configs=(("configmap/c", "1"),),
                        last_transition_time=1.0, conditions=({"type": "Promoted"},), next_step_at=2.0,
                        waiting_since=3.0, checks=(CheckResult("m", "pass", 1.0),), message="m",
                        observed_generation=4, mirrored=True, ignored_fields_generation=5,
                        session_affinity_cookie="a=b", primary_session_affinity_cookie="c=d",
                        previous_session_affinity_cookie="e=f",
                        last_request=LastRequest("r", "pause", "done", "", 1.0), paused_by="r",
                        promote_requested=True, run_started_at=1.0, run_image="i", weights=((1.0, 0),),
                        step_checks=(StepChecks(1.0, 0, (CheckResult("m", "pass", 1.0),)),),
                        history=(RunRecord("cd1:a", "i", 1.0, 2.0, "promoted", "", 50),),
                        scale_down_generation=3, error_streaks=(("metric/m", 1),), inconclusive_since=4.0)
    written = status_to_dict(full)
    assert set(written) == set(get_type_hints(CanaryStatusBody))  # every field set: all of them written


def test_the_deployment_shape_covers_the_view() -> None:
    obj: Deployment = {"metadata": {"name": "d", "generation": 2},
                       "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "d"}}, "template": {}},
                       "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                                  "availableReplicas": 2, "readyReplicas": 2}}
    v = deployment_view(obj, ("app",))
    assert (v.spec_replicas, v.available_replicas, v.selector_value) == (3, 2, "d")
    assert {"observedGeneration", "updatedReplicas", "availableReplicas", "readyReplicas"} <= \
        set(get_type_hints(DeploymentStatus))
    assert {"route", "mirror", "match"} <= set(get_type_hints(Route))
