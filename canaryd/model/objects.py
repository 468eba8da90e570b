"""Typed shapes of the API objects canaryd reads most: a Deployment (what the engine's view of it takes),
a Canary's ``.status`` (as written by canaryd.engine.status) and an Istio VirtualService HTTP/TCP route
(what a router reads the weights back from). ``total=False``: the API server omits empty fields and
every reader tolerates a missing one. Objects come from the watch cache as plain dicts; a reader states
the shape it relies on with ``typing.cast`` at that boundary."""

from __future__ import annotations

from typing import Any, TypedDict


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    resourceVersion: str
    creationTimestamp: str
    deletionTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]
    finalizers: list[str]


class LabelSelector(TypedDict, total=False):
    matchLabels: dict[str, str]


class DeploymentSpec(TypedDict, total=False):
    replicas: int
    selector: LabelSelector
    template: dict[str, Any]  # a pod template: hashed and renamed as a whole (engine/revision.py)


class DeploymentStatus(TypedDict, total=False):
    observedGeneration: int
    replicas: int
    updatedReplicas: int
    availableReplicas: int
    readyReplicas: int
    conditions: list[dict[str, Any]]


class Deployment(TypedDict, total=False):
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: DeploymentStatus


class CheckBody(TypedDict, total=False):
    name: str
    verdict: str
    value: float | None
    threshold: str
    message: str
    # the verdict algebra's fields (canaryd/engine/verdicts.py), present only when not the defaults
    counted: bool
    note: str
    dryRun: bool
    kind: str
    judge: dict[str, Any]  # the judge's report (canaryd/analysis/judge_check.py), on its check only


class CanaryStatusBody(TypedDict, total=False):
    """``.status`` of a Canary (field meanings: canaryd/engine/status.py's docstring)."""

    phase: str
    canaryWeight: int
    failedChecks: int
    iterations: int
    lastAppliedSpec: str
    lastPromotedSpec: str
    trackedConfigs: dict[str, str]
    lastTransitionTime: str
    conditions: list[dict[str, Any]]
    nextStepAt: str
    waitingSince: str
    checks: list[CheckBody]
    message: str
    observedGeneration: int
    mirrored: bool
    ignoredFieldsGeneration: int
    sessionAffinityCookie: str
    primarySessionAffinityCookie: str
    previousSessionAffinityCookie: str
    lastRequest: dict[str, Any]
    pausedBy: str
    promoteRequested: bool
    runStartedAt: str
    runImage: str
    weights: list[dict[str, Any]]
    stepChecks: list[dict[str, Any]]
    history: list[dict[str, Any]]
    scaleDownGeneration: int
    errorStreaks: dict[str, int]
    inconclusiveSince: str


class Destination(TypedDict, total=False):
    host: str
    subset: str
    port: dict[str, int]


class RouteDestination(TypedDict, total=False):
    destination: Destination
    weight: int
    headers: dict[str, Any]


class Route(TypedDict, total=False):
    """One entry of a VirtualService's ``http`` (or ``tcp``) list."""

    name: str
    match: list[dict[str, Any]]
    route: list[RouteDestination]
    mirror: Destination
    mirrorPercentage: dict[str, float]
    headers: dict[str, Any]
