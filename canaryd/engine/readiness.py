"""Is a Deployment rolled out? Flagger's rules and texts (flagger-reference.md §3.8), as pure functions.

The progress deadline here is the Deployment-condition one Flagger has (``Available=False /
MinimumReplicasUnavailable`` older than the deadline, or ``ProgressDeadlineExceeded``). canaryd adds
its own wall-clock deadline on top (``status.waitingSince``, in :mod:`canaryd.engine.progressing` and
:mod:`canaryd.engine.outcome`), because these conditions alone let a crash-looping canary wait forever
(Flagger #1247, #1578).
"""

from __future__ import annotations

from typing import NamedTuple

from canaryd.engine.types import DeploymentView
from canaryd.model.fields import parse_time


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
