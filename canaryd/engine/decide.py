"""The decision core: ``decide(spec, status, snapshot, inputs) -> Decision``.

A pure function, cheap enough to call on every cache event. It reacts at once to what it sees
(new revision, readiness, promotion progress) and runs an analysis step only when
``now >= status.next_step_at``, so calling it twice with the same inputs never advances twice.
Flagger's state machine (flagger-reference.md §3.2-§3.10) with canaryd's differences, all listed
in docs/timeline.md and docs/compatibility.md:

* the first weight is set as soon as the canary is ready, then one step every ``interval``,
  anchored in ``status.nextStepAt`` (wall clock, so restarts keep the cadence);
* weights never exceed ``maxWeight`` (Flagger overshoots: 20, 40, 60 for max 50);
* rollback happens in the step that records the ``threshold``-th failed check (Flagger waits one
  more tick), still after exactly ``threshold`` Halt events;
* every wait for a rollout (canary or primary) is bounded by ``progressDeadlineSeconds`` measured
  from ``status.waitingSince`` (Flagger #1247/#1578); approval gates are not;
* a primary that does not become ready during promotion fails the run with all traffic on the
  canary (the v1.44 behaviour: the canary passed analysis and is ready; the primary is not);
* WaitingPromotion keeps the canary weight in status (Flagger shows 0 while traffic stays split);
  Blue/Green and A/B record the canary's share in ``canaryWeight`` (0 or 100) so routes always
  follow from status.

This module checks the snapshot and dispatches on the phase; the phases live in ``at_rest``
(Initializing, and a new revision between runs), ``progressing`` (a run's steps) and ``outcome``
(promotion and rollback), all writing into one ``builder.Builder``.
"""

from __future__ import annotations

from dataclasses import replace

from canaryd.engine.at_rest import at_rest, initialize
from canaryd.engine.builder import Builder
from canaryd.engine.desired import webhook_checksum
from canaryd.engine.outcome import finalising, promoting
from canaryd.engine.progressing import running
from canaryd.engine.requests import answer_request, paused_message
from canaryd.engine.status import problem_of, valid_condition
from canaryd.engine.types import CanaryStatus, Decision, Emit, Inputs, Phase, Snapshot
from canaryd.model.spec import CanarySpec

SUSPENDED = "skipping canary run as object is suspended"
# seconds a Canary never decided on may miss its target before that is reported: the target is often
# created just before it, and the two come through different watches (a cluster-wide one is not ordered
# with a namespace's), so for a moment the cache can hold the Canary without its Deployment
TARGET_GRACE = 5.0
_RUNNING = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
_AT_REST = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING)
_IN_RUN = (*_RUNNING, Phase.PROMOTING, Phase.FINALISING)


def decide(spec: CanarySpec, status: CanaryStatus, snap: Snapshot, inputs: Inputs) -> Decision:
    """What to do now; see the module docstring and ``RunHooks`` for the calling protocol."""
    b = Builder(spec, status, snap, inputs)
    problem = _snapshot_problem(spec, snap)
    if problem is None and snap.template_error and status.phase not in _IN_RUN:
        # known at apply time: refused before a run starts; mid-run the check fails with the same text
        problem = snap.template_error, "UnsupportedProvider"
    if problem is not None and problem[1] == "TargetNotFound" and (
            (grace_ends := _target_grace_end(spec, status, b.now)) is not None):
        b.wake_by(grace_ends)  # quietly: the target may still be on its way
        return b.finish(repair=False)
    if problem is not None:
        b.invalid(*problem)
        return b.finish(repair=False)
    b.clear_problem()
    _name_ignored_fields(b)
    if spec.suspend:
        if status.message != SUSPENDED:
            b.set(message=SUSPENDED)
            b.emit(SUSPENDED)
        return b.finish(repair=False)
    if b.st.message == SUSPENDED:
        b.set(message="")
    answer_request(b)
    if b.st.phase != status.phase:  # the request ended or restarted the run: that is this pass
        return b.finish(repair=True)
    if b.st.paused_by:
        if b.st.message != paused_message(b.st.paused_by):
            b.set(message=paused_message(b.st.paused_by))
        return b.finish(repair=True)
    phase = status.phase
    if phase is None or phase in (Phase.INITIALIZING, Phase.TERMINATING, Phase.TERMINATED):
        initialize(b)
    elif phase in _AT_REST:
        at_rest(b)
    elif phase in _RUNNING:
        running(b)
    elif phase == Phase.PROMOTING:
        promoting(b)
    elif phase == Phase.FINALISING:
        finalising(b)
    return b.finish(repair=True)


def ignored_fields_message(spec: CanarySpec) -> str:
    """The Warning Event naming the fields canaryd accepts without effect (canaryd.model.coverage)."""
    return (f"generation {spec.generation}: {', '.join(spec.ignored_fields)} accepted without effect: "
            "canaryd does not implement it yet (docs/compatibility.md)")


def _name_ignored_fields(b: Builder) -> None:
    """One Warning Event per generation that sets such fields, remembered in status across restarts."""
    spec = b.spec
    if spec.ignored_fields and b.st.ignored_fields_generation != spec.generation:
        b.emit(ignored_fields_message(spec), warning=True)
        b.set(ignored_fields_generation=spec.generation)


def decide_invalid(status: CanaryStatus, message: str, now: float) -> Decision:
    """For a Canary whose spec does not parse (``SpecError``): a Warning Event once per distinct
    message, ``status.message`` and a ``Valid=False`` condition; nothing else changes."""
    if problem_of(status) == message and status.message == message:
        return Decision()
    promoted = next((c for c in status.conditions if c.get("type") == "Promoted"), None)
    valid = valid_condition(message, "InvalidSpec", now, status.conditions)
    conditions = tuple(c for c in (promoted, valid) if c is not None)
    new = replace(status, message=message, conditions=conditions, last_transition_time=now,
                  session_affinity_cookie="", primary_session_affinity_cookie="",
                  previous_session_affinity_cookie="")  # no spec: no session affinity to describe
    return Decision(status=new, actions=(Emit(message, warning=True, checksum=webhook_checksum(new)),))


def _target_grace_end(spec: CanarySpec, status: CanaryStatus, now: float) -> float | None:
    """When a missing target is to be reported, for a Canary no pass has decided on yet and created less
    than ``TARGET_GRACE`` s ago; None when it is to be reported now."""
    if status.phase is not None or spec.created_at is None or now >= spec.created_at + TARGET_GRACE:
        return None
    return spec.created_at + TARGET_GRACE


def _snapshot_problem(spec: CanarySpec, snap: Snapshot) -> tuple[str, str] | None:
    t = f"{spec.target.name}.{spec.namespace}"
    if snap.duplicate_of:
        return (
            f"Deployment {t} is already the target of canary {snap.duplicate_of}; a Deployment can be "
            f"released by one Canary only: delete {spec.key} or point its targetRef at another Deployment",
            "DuplicateTarget",
        )
    if snap.target is None:
        return (
            f"target Deployment {t} not found; create it (or fix spec.targetRef.name) and the canary "
            "initializes when it appears",
            "TargetNotFound",
        )
    if snap.target.selector_label is None:
        return (
            f"getSelectorLabel failed: deployment {t} spec.selector.matchLabels must contain one of "
            f"[{' '.join(snap.selector_labels)}]",
            "SelectorLabelMissing",
        )
    if snap.config_error:
        return snap.config_error, "ConfigMissing"
    return None
