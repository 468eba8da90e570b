"""What the writers need beyond the decision's shape, derived here from the decided status so no writer
decides anything: the routes with their session-affinity cookies (``100 - canary`` to the primary),
the promotion id, the webhook checksum and the phase each hook type's payload carries.

:func:`complete` fills these into a finished decision's actions (``Builder.finish``)."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace

import orjson

from canaryd.engine.cookies import cookies_for
from canaryd.engine.types import (
    Action,
    CanaryStatus,
    Emit,
    EnsureServicesAndRouting,
    Promote,
    RunHooks,
    SetRoutes,
)
from canaryd.model.routes import Routes
from canaryd.model.spec import CanarySpec

# phase sent in the payload of each hook type (Flagger's, docs/contracts.md); absent = the current phase
HOOK_PHASE: dict[str, str] = {
    "pre-rollout": "Progressing",
    "rollout": "Progressing",
    "confirm-traffic-increase": "Progressing",
    "confirm-promotion": "Progressing",
}


def webhook_checksum(status: CanaryStatus) -> str:
    """Identifies the revision under analysis (tracked configs + pod template hash), stable across
    restarts, so a load tester can de-duplicate per run."""
    raw = orjson.dumps(
        {"trackedConfigs": dict(status.tracked_configs), "lastAppliedSpec": status.last_applied_spec},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(raw).hexdigest()[:16]


def promotion_id(spec: CanarySpec, status: CanaryStatus) -> str:
    """One id per run (Canary uid + revision), the same after a restart."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.uid}/{status.last_applied_spec}"))


def routes(spec: CanarySpec, status: CanaryStatus) -> Routes:
    """The routes ``status`` implies (status is the truth; routes follow it)."""
    w = status.canary_weight
    return Routes(canary=w, mirror=status.mirrored, cookies=cookies_for(spec, status, w))


def hook_request(spec: CanarySpec, status: CanaryStatus, request: RunHooks) -> RunHooks:
    """A hook run with its payload's phase and checksum: a waited-for type sends Flagger's phase for it
    (or the current one); post-rollout (``wait=False``) the phase the run ended in."""
    current = status.phase.value if status.phase else ""
    phase = HOOK_PHASE.get(request.hook_type, current) if request.wait else current
    return replace(request, phase=phase, checksum=webhook_checksum(status))


def complete(spec: CanarySpec, status: CanaryStatus, actions: tuple[Action, ...]) -> tuple[Action, ...]:
    """``actions`` with what their writers need, derived from the decided ``status``."""
    checksum = webhook_checksum(status)
    out: list[Action] = []
    for a in actions:
        if isinstance(a, SetRoutes):
            a = replace(a, cookies=cookies_for(spec, status, a.canary))
        elif isinstance(a, EnsureServicesAndRouting) and a.apex:
            a = replace(a, routes=routes(spec, status))
        elif isinstance(a, Promote):
            a = replace(a, promotion_id=promotion_id(spec, status))
        elif isinstance(a, RunHooks):
            a = hook_request(spec, status, a)
        elif isinstance(a, Emit):
            a = replace(a, checksum=checksum)
        out.append(a)
    return tuple(out)
