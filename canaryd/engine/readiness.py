"""Is a Deployment rolled out? Flagger's rules and texts (flagger-behaviour.md §3.8), as pure functions.

The progress deadline here is the Deployment-condition one Flagger has (``Available=False /
MinimumReplicasUnavailable`` older than the deadline, or ``ProgressDeadlineExceeded``). canaryd adds
its own wall-clock deadline on top (``status.waitingSince``, in :mod:`canaryd.engine.progressing` and
:mod:`canaryd.engine.outcome`), because these conditions alone let a crash-looping canary wait forever
(Flagger #1247, #1578).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from canaryd.engine.status import parse_time
from canaryd.engine.types import DeploymentView


class Readiness(NamedTuple):
    ready: bool
    message: str  # "waiting for rollout to finish: …" or the deadline text; "" when ready
    deadline_passed: bool  # Flagger's non-retriable case


def deployment_readiness(view: DeploymentView, threshold: int, now: float, deadline: float) -> Readiness:
    """Flagger's ``isDeploymentReady`` with ``readyThreshold`` = ``threshold`` % and the Canary's
    ``progressDeadlineSeconds`` = ``deadline``."""
    if view.generation > view.observed_generation:
        msg = "waiting for rollout to finish: observed deployment generation less than desired generation"
        return Readiness(False, msg, False)
    stuck = False
    for cond in view.conditions:
        if cond.get("type") == "Available" and cond.get("status") == "False" and (
            cond.get("reason") == "MinimumReplicasUnavailable"
        ):
            updated_at = parse_time(cond.get("lastUpdateTime"))
            if updated_at is not None and updated_at + deadline < now:
                stuck = True
    for cond in view.conditions:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            return Readiness(False, f'deployment "{view.name}" exceeded its progress deadline', True)
    ready_replicas = int(view.updated_replicas * threshold / 100)
    if view.updated_replicas < view.spec_replicas:
        msg = (f"waiting for rollout to finish: {view.updated_replicas} out of {view.spec_replicas} "
               "new replicas have been updated")
    elif view.status_replicas > view.updated_replicas:
        msg = (f"waiting for rollout to finish: {view.status_replicas - view.updated_replicas} "
               "old replicas are pending termination")
    elif view.available_replicas < ready_replicas:
        msg = (f"waiting for rollout to finish: {view.available_replicas} of {ready_replicas} "
               f"(readyThreshold {threshold}%) updated replicas are available")
    else:
        return Readiness(True, "", False)
    return Readiness(False, msg, stuck)


def deployment_view(
    obj: Mapping[str, Any], selector_labels: tuple[str, ...], template_hash: str
) -> DeploymentView:
    """The fields decisions need from a cached Deployment; ``template_hash`` is
    :func:`canaryd.engine.revision.pod_template_hash` of its ``.spec.template`` (computed by the caller
    once per resourceVersion, so it is not recomputed on every decision)."""
    meta = _map(obj.get("metadata"))
    spec = _map(obj.get("spec"))
    status = _map(obj.get("status"))
    match_labels = _map(_map(spec.get("selector")).get("matchLabels"))
    label = next((lbl for lbl in selector_labels if lbl in match_labels), None)
    raw = status.get("conditions")
    conditions = tuple(c for c in raw if isinstance(c, dict)) if isinstance(raw, list) else ()
    replicas = spec.get("replicas")
    return DeploymentView(
        name=str(meta.get("name") or ""),
        generation=_int(meta.get("generation")),
        observed_generation=_int(status.get("observedGeneration")),
        spec_replicas=1 if replicas is None else _int(replicas),  # the API server defaults replicas to 1
        status_replicas=_int(status.get("replicas")),
        updated_replicas=_int(status.get("updatedReplicas")),
        available_replicas=_int(status.get("availableReplicas")),
        ready_replicas=_int(status.get("readyReplicas")),
        template_hash=template_hash,
        conditions=conditions,
        selector_label=label,
        selector_value=str(match_labels[label]) if label is not None else None,
    )


def _map(v: Any) -> Mapping[str, Any]:
    return v if isinstance(v, Mapping) else {}


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) else 0
