"""``revertOnDeletion``: the finalizer and what to do while a Canary is being deleted (flagger-reference.md
§3.9), as pure functions.

A Canary with ``revertOnDeletion: true`` carries the finalizer ``finalizer.flagger.app``; one without it
never does (a finalizer left from an earlier spec is removed: Flagger's "opting out"). When such a Canary
is deleted the API server keeps it (with ``deletionTimestamp``) until the finalizer goes, and
:func:`decide_finalize` walks it through Flagger's order, one call per wake-up, restart-safe because every
step is derived from the cache and ``status`` (phase ``Terminating``, ``waitingSince``):

1. phase ``Terminating`` + Event ``Terminating canary <c>``; the target scaled to the primary's replicas
   (Flagger's ScaleFromZero count when the primary is gone);
2. wait for the target to be ready — bounded by ``progressDeadlineSeconds`` from ``waitingSince``
   (Flagger gives up after four retries and retries the whole finalization forever);
3. routing given back (:class:`RevertRouting`), Event ``Terminated canary <c>``, finalizer removed.

Errors while carrying these out are retried by the runtime with its one backoff policy
(runtime/backoff.py, ``FINALIZERS``: 1 s doubling to 30 s); after :data:`MAX_FAILURES` the finalizer is
removed anyway with a Warning Event, so a deletion never hangs on
a revert that cannot succeed.
"""

from __future__ import annotations

from dataclasses import replace

from canaryd.engine.readiness import deployment_readiness
from canaryd.engine.types import (
    Action,
    CanaryStatus,
    Decision,
    Emit,
    Phase,
    RemoveFinalizer,
    RevertRouting,
    ScaleTarget,
    Snapshot,
)
from canaryd.model.spec import CanarySpec

FINALIZER = "finalizer.flagger.app"
MAX_FAILURES = 8  # about two minutes of retries with runtime/backoff.py's FINALIZERS policy


def finalizers_after(finalizers: tuple[str, ...], revert_on_deletion: bool,
                     deleting: bool) -> tuple[str, ...] | None:
    """The Canary's finalizer list as it should be, or None when it is right already. The finalizer is
    added only to a live Canary (the API server refuses new finalizers on one being deleted) and removed
    whenever ``revertOnDeletion`` is off."""
    has = FINALIZER in finalizers
    if revert_on_deletion and not has and not deleting:
        return (*finalizers, FINALIZER)
    if not revert_on_deletion and has:
        return tuple(f for f in finalizers if f != FINALIZER)
    return None


def revert_replicas(spec: CanarySpec, snap: Snapshot) -> int:
    """Flagger: the primary's replicas; without a primary its ScaleFromZero count (target replicas if
    set, else the HPA minimum when above 1, else 1)."""
    if snap.primary is not None and snap.primary.spec_replicas > 0:
        return snap.primary.spec_replicas
    if snap.target is not None and snap.target.spec_replicas > 0:
        return snap.target.spec_replicas
    if spec.autoscaler is not None and (snap.hpa_min_replicas or 1) > 1:
        return snap.hpa_min_replicas or 1
    return 1


def decide_finalize(spec: CanarySpec, status: CanaryStatus, snap: Snapshot, now: float, *,
                    failures: int = 0, last_error: str = "") -> Decision:
    """The next step of the revert of a Canary being deleted with the finalizer (module docstring).
    ``failures``/``last_error``: consecutive failed attempts of the runtime so far and the last error."""
    c = spec.key
    st = status
    actions: list[Action] = []
    entering = st.phase != Phase.TERMINATING
    if entering:
        st = replace(st, phase=Phase.TERMINATING, canary_weight=0, iterations=0, waiting_since=now,
                     next_step_at=None, message="", last_transition_time=now)
        actions.append(Emit(f"Terminating canary {c}"))
    if failures >= MAX_FAILURES:
        actions.append(Emit(f"Reverting {c} failed {failures} times ({last_error}); removing finalizer "
                            f"{FINALIZER} without completing the revert", warning=True))
        actions += [Emit(f"Terminated canary {c}"), RemoveFinalizer()]
        return _decision(status, st, actions, None)
    started = st.waiting_since if st.waiting_since is not None else now
    deadline = started + spec.progress_deadline_seconds
    target = snap.target
    if target is not None:
        if entering or target.spec_replicas == 0:
            actions.append(ScaleTarget(revert_replicas(spec, snap)))
            return _decision(status, st, actions, min(deadline, now + 1.0))  # readiness: next wake-up
        r = deployment_readiness(target, spec.analysis.canary_ready_threshold, now,
                                 float(spec.progress_deadline_seconds))
        if not r.ready and now < deadline:
            msg = f"canary not ready during finalizing: {r.message}"
            if st.message != msg:
                st = replace(st, message=msg, last_transition_time=now)
            return _decision(status, st, actions, deadline)
        if not r.ready:
            actions.append(Emit(f"Target {spec.target.name}.{spec.namespace} not ready within "
                                f"{spec.progress_deadline_seconds}s while finalizing {c} ({r.message}); "
                                "reverting anyway", warning=True))
    actions += [
        RevertRouting(target.selector_label if target else None, target.selector_value if target else None),
        Emit(f"Terminated canary {c}"),
        RemoveFinalizer(),
    ]
    return _decision(status, st, actions, None)


def _decision(before: CanaryStatus, after: CanaryStatus, actions: list[Action],
              wake_at: float | None) -> Decision:
    return Decision(status=after if after != before else None, actions=tuple(actions), wake_at=wake_at)
