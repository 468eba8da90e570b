"""The decision core: ``decide(spec, status, snapshot, inputs) -> Decision``.

A pure function, cheap enough to call on every cache event. It reacts at once to what it sees
(new revision, readiness, promotion progress) and runs an analysis step only when
``now >= status.next_step_at``, so calling it twice with the same inputs never advances twice.
Flagger's state machine (flagger-behaviour.md §3.2-§3.10) with canaryd's differences, all listed
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
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from canaryd.engine import messages
from canaryd.engine.readiness import Readiness, deployment_readiness
from canaryd.engine.revision import is_own_hash
from canaryd.engine.status import problem_of, promoted_condition, valid_condition, with_conditions
from canaryd.engine.types import (
    Action,
    CanaryStatus,
    CheckResult,
    Decision,
    DeploymentView,
    Emit,
    EnsurePrimary,
    EnsureServicesAndRouting,
    HookResult,
    Inputs,
    Phase,
    Promote,
    RunHooks,
    ScaleTarget,
    SetRoutes,
    Snapshot,
)
from canaryd.model.spec import CanarySpec

SUSPENDED = "skipping canary run as object is suspended"
_RUNNING = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
_AT_REST = (Phase.INITIALIZED, Phase.SUCCEEDED, Phase.FAILED, Phase.WAITING)


def decide(spec: CanarySpec, status: CanaryStatus, snap: Snapshot, inputs: Inputs) -> Decision:
    """What to do now; see the module docstring and ``RunHooks`` for the calling protocol."""
    b = _Builder(spec, status, snap, inputs)
    problem = _snapshot_problem(spec, snap)
    if problem is not None:
        b.invalid(*problem)
        return b.finish(repair=False)
    b.clear_problem()
    if spec.suspend:
        if status.message != SUSPENDED:
            b.set(message=SUSPENDED)
            b.emit(SUSPENDED)
        return b.finish(repair=False)
    if b.st.message == SUSPENDED:
        b.set(message="")
    phase = status.phase
    if phase is None or phase in (Phase.INITIALIZING, Phase.TERMINATING, Phase.TERMINATED):
        _initialize(b)
    elif phase in _AT_REST:
        _at_rest(b)
    elif phase in _RUNNING:
        _running(b)
    elif phase == Phase.PROMOTING:
        _promoting(b)
    elif phase == Phase.FINALISING:
        _finalising(b)
    return b.finish(repair=True)


def decide_invalid(status: CanaryStatus, message: str, now: float) -> Decision:
    """For a Canary whose spec does not parse (``SpecError``): a Warning Event once per distinct
    message, ``status.message`` and a ``Valid=False`` condition; nothing else changes."""
    if problem_of(status) == message and status.message == message:
        return Decision()
    promoted = next((c for c in status.conditions if c.get("type") == "Promoted"), None)
    valid = valid_condition(message, "InvalidSpec", now, status.conditions)
    conditions = tuple(c for c in (promoted, valid) if c is not None)
    new = replace(status, message=message, conditions=conditions, last_transition_time=now)
    return Decision(status=new, actions=(Emit(message, warning=True),))


# ---- the builder: accumulates one decision ----


class _Builder:
    def __init__(self, spec: CanarySpec, status: CanaryStatus, snap: Snapshot, inputs: Inputs) -> None:
        self.spec = spec
        self.orig = status
        self.st = status
        self.snap = snap
        self.inputs = inputs
        self.now = inputs.now
        self.actions: list[Action] = []
        self.requests: list[RunHooks] = []
        self.analyse = False
        self.log: list[str] = []
        self.valid: dict[str, Any] | None = None
        self.c = spec.key  # "<canary>.<ns>"
        self.t = f"{spec.target.name}.{spec.namespace}"  # "<target>.<ns>"

    # status and actions
    def set(self, **changes: Any) -> None:
        self.st = replace(self.st, **changes)

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def emit(self, message: str, *, warning: bool = False, alert: str = "", alert_message: str = "") -> None:
        self.actions.append(Emit(message, warning=warning, alert=alert, alert_message=alert_message))

    # hooks and checks
    def hooks(self, hook_type: str) -> tuple[HookResult, ...] | None:
        """Results of this step's hooks of a type; None after asking the runtime to run them."""
        if not any(w.type == hook_type for w in self.spec.analysis.webhooks):
            return ()
        got = (self.inputs.hooks or {}).get(hook_type)
        if got is None:
            self.requests.append(RunHooks(hook_type))
            return None
        return got

    def checks(self) -> tuple[CheckResult, ...] | None:
        if not self.spec.analysis.metrics:
            return ()
        if self.inputs.checks is None:
            self.analyse = True
            return None
        return self.inputs.checks

    @property
    def requesting(self) -> bool:
        return self.analyse or bool(self.requests)

    def muted(self, name: str) -> bool:
        return any(w.name == name and w.mute_alert for w in self.spec.analysis.webhooks)

    # derived values
    @property
    def interval(self) -> float:
        return self.spec.analysis.interval_seconds

    @property
    def deadline(self) -> float:
        return float(self.spec.progress_deadline_seconds)

    def next_anchor(self) -> float:
        """The next step time: one interval after the due time (cadence kept), or after now when
        the due time is more than an interval ago (after downtime: no burst of catch-up steps)."""
        prev = self.orig.next_step_at
        if prev is not None and prev + self.interval > self.now:
            return prev + self.interval
        return self.now + self.interval

    def post_rollout(self) -> None:
        if any(w.type == "post-rollout" for w in self.spec.analysis.webhooks):
            self.act(RunHooks("post-rollout", wait=False))

    # invalid snapshots
    def invalid(self, message: str, reason: str) -> None:
        self.valid = valid_condition(message, reason, self.now, self.orig.conditions)
        if self.orig.message != message:
            self.set(message=message)
            self.emit(message, warning=True)

    def clear_problem(self) -> None:
        problem = problem_of(self.orig)
        if problem is not None:
            self.log.append(f"recovered: {problem}")
            if self.st.message == problem:
                self.set(message="")

    def finish(self, *, repair: bool) -> Decision:
        if self.requesting:  # a request: nothing is written, the same status comes back with results
            return Decision(actions=tuple(self.requests), analyse=self.analyse)
        st = self.st
        phase = st.phase
        settled = phase is not None and phase not in (Phase.INITIALIZING, Phase.TERMINATING, Phase.TERMINATED)
        if repair and settled:
            front: list[Action] = []
            if self.snap.primary is None:
                front.append(EnsurePrimary())
            if self.spec.generation != st.observed_generation or self.snap.primary is None:
                front.append(EnsureServicesAndRouting(apex=True))
                st = replace(st, observed_generation=self.spec.generation)
            self.actions[:0] = front
            want = expected_routes(st)
            seen = self.snap.routes
            mirror_differs = self.snap.mirrored is not None and self.snap.mirrored != want.mirror
            if seen is not None and (seen != (want.primary, want.canary) or mirror_differs):
                if not any(isinstance(a, SetRoutes) for a in self.actions):
                    self.actions.append(want)
                    self.log.append(f"repairing routes {seen} -> {(want.primary, want.canary)}")
        if phase is not None:
            kind = self.spec.target.kind
            promoted = promoted_condition(phase, kind, self.now, self.orig.conditions)
            st = replace(st, conditions=with_conditions(promoted, self.valid))
        elif self.valid is not None or problem_of(self.orig) is not None:
            st = replace(st, conditions=(self.valid,) if self.valid is not None else ())
        changed = st != self.orig
        if changed:
            st = replace(st, last_transition_time=self.now)
        return Decision(
            status=st if changed else None,
            actions=tuple(self.actions),
            wake_at=self._wake(st),
            log=tuple(self.log),
        )

    def _wake(self, st: CanaryStatus) -> float | None:
        when: float | None = None
        if st.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING):
            if st.waiting_since is not None:
                when = st.waiting_since + self.deadline
            else:
                when = st.next_step_at
        elif st.phase == Phase.WAITING:
            when = st.next_step_at
        return when if when is not None and when > self.now else None


def expected_routes(st: CanaryStatus) -> SetRoutes:
    """The VirtualService weights status implies (status is the truth; routes follow it)."""
    return SetRoutes(primary=100 - st.canary_weight, canary=st.canary_weight, mirror=st.mirrored)


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


def _target(b: _Builder) -> DeploymentView:
    assert b.snap.target is not None  # checked by _snapshot_problem
    return b.snap.target


def _configs_changed(b: _Builder) -> bool:
    return b.st.tracked_configs != b.snap.config_checksums


def _scale_up_replicas(b: _Builder) -> int:
    """Flagger's ScaleFromZero: target replicas if set, else HPA min (>1) or the primary's replicas."""
    target = _target(b)
    if target.spec_replicas > 0:
        return target.spec_replicas
    if b.spec.autoscaler is not None:
        hpa_min = b.snap.hpa_min_replicas or 1
        return hpa_min if hpa_min > 1 else 1
    if b.snap.primary is not None and b.snap.primary.spec_replicas > 0:
        return b.snap.primary.spec_replicas
    return 1


# ---- Initializing ----


def _initialize(b: _Builder) -> None:
    if b.st.phase != Phase.INITIALIZING:
        b.set(phase=Phase.INITIALIZING)
    primary = b.snap.primary
    if primary is None:
        b.act(EnsurePrimary(), EnsureServicesAndRouting(apex=False))
        return
    if not b.spec.skip_analysis:
        r = deployment_readiness(primary, b.spec.analysis.primary_ready_threshold, b.now, b.deadline)
        if not r.ready:
            # Nothing to roll back yet: report and keep waiting (the cache wakes us on any change).
            msg = f"{b.spec.primary_name}.{b.spec.namespace} not ready: {r.message}"
            if msg != b.st.message:
                b.set(message=msg)
                b.emit(msg, warning=True)
            return
    h = _target(b).template_hash
    b.act(EnsureServicesAndRouting(apex=True), ScaleTarget(0))
    if b.snap.routes is None:
        # Initialized only once the cache shows the VirtualService (written after the apex Service), as
        # Flagger reconciles both before it writes the phase: scripts read svc/podinfo right after it
        b.log.append(f"Scaling down Deployment {b.t}")
        return
    b.set(phase=Phase.INITIALIZED, canary_weight=0, failed_checks=0, iterations=0, last_applied_spec=h,
          last_promoted_spec=h, tracked_configs=b.snap.config_checksums, message="", waiting_since=None,
          next_step_at=None, checks=(), mirrored=False, observed_generation=b.spec.generation)
    b.emit(f"Initialization done! {b.c}", alert="info",
           alert_message=f"New {b.spec.target.kind} detected, initialization completed.")


# ---- Initialized / Succeeded / Failed / Waiting: is there a new revision? ----


def _at_rest(b: _Builder) -> None:
    h = _target(b).template_hash
    st = b.st
    if st.last_applied_spec and not is_own_hash(st.last_applied_spec):
        if not _adopt_foreign(b, h):
            _start_run(b, h)  # Flagger left a target that differs from the primary
            return
        st = b.st
    changed = (h != st.last_applied_spec and h != st.last_promoted_spec) or _configs_changed(b)
    if not changed and st.phase != Phase.WAITING:
        return
    if st.phase == Phase.WAITING and st.next_step_at is not None and b.now < st.next_step_at:
        return
    gate = b.hooks("confirm-rollout")
    if gate is None:
        return
    failed = _first_failure(gate)
    if failed is not None:
        if st.phase != Phase.WAITING:
            b.set(phase=Phase.WAITING)
            b.emit(f"Halt {b.c} advancement waiting for approval {failed.name}", warning=True,
                   alert="" if b.muted(failed.name) else "warn",
                   alert_message="Canary is waiting for approval.")
        b.set(next_step_at=b.next_anchor(), message=f"waiting for approval {failed.name}")
        return
    b.act(*messages.hook_passed_events("confirm-rollout", gate))
    _start_run(b, h)


def _adopt_foreign(b: _Builder, h: str) -> bool:
    """Status written by Flagger (its hash cannot be reproduced). Returns False when a run must start
    because the target differs from what the primary runs; otherwise adopts canaryd's hash."""
    matches = b.snap.primary_template_matches_target
    if b.st.phase == Phase.FAILED:
        # The rolled-back revision is still in the target: record it as applied, start nothing.
        b.set(last_applied_spec=h, last_promoted_spec=h if matches else b.st.last_promoted_spec)
        b.log.append("took over Failed status from Flagger without starting a run")
        return True
    if matches is False:
        b.log.append("took over status from Flagger: the target differs from the primary, starting a run")
        return False
    tracked = b.st.tracked_configs or b.snap.config_checksums
    b.set(last_applied_spec=h, last_promoted_spec=h, tracked_configs=tracked)
    b.log.append("took over status from Flagger: the primary runs the target's template, no run started")
    return True


def _start_run(b: _Builder, h: str) -> None:
    b.emit(f"New revision detected! Scaling up {b.t}", alert="info",
           alert_message="New revision detected, progressing canary analysis.")
    b.act(ScaleTarget(_scale_up_replicas(b)))
    _reset_run(b, h)


def _reset_run(b: _Builder, h: str) -> None:
    b.set(phase=Phase.PROGRESSING, canary_weight=0, failed_checks=0, iterations=0, last_applied_spec=h,
          tracked_configs=b.snap.config_checksums, waiting_since=b.now, next_step_at=None, checks=(),
          mirrored=False, message="")


# ---- Progressing / WaitingPromotion ----


def _running(b: _Builder) -> None:
    target = _target(b)
    h = target.template_hash
    st = b.st
    foreign = bool(st.last_applied_spec) and not is_own_hash(st.last_applied_spec)
    if foreign or h != st.last_applied_spec or _configs_changed(b):
        if foreign:
            b.emit(f"Run taken over from Flagger! Restarting analysis for {b.t}")
        else:
            b.emit(f"New revision detected! Restarting analysis for {b.t}")
        b.act(SetRoutes(100, 0))
        if target.spec_replicas == 0:
            b.act(ScaleTarget(_scale_up_replicas(b)))
        _reset_run(b, h)
        return
    if not _canary_ready(b):
        return
    if st.next_step_at is not None and b.now < st.next_step_at:
        return
    if b.spec.skip_analysis:
        _skip_analysis(b)
        return
    _step(b)


def _canary_ready(b: _Builder) -> bool:
    """Canary readiness with Flagger's texts, bounded by our own deadline from ``waitingSince``."""
    target = _target(b)
    if target.spec_replicas == 0:
        # Our scale-up is not in the cache yet (or someone scaled the canary to zero): quiet wait.
        r, quiet = Readiness(False, "waiting for rollout to finish: the canary has 0 replicas", False), True
    else:
        threshold = b.spec.analysis.canary_ready_threshold
        r = deployment_readiness(target, threshold, b.now, b.deadline)
        quiet = target.generation > target.observed_generation  # our own change, not yet observed
    if r.ready:
        if b.st.waiting_since is not None:
            b.set(waiting_since=None)
        if b.st.message.startswith(f"canary deployment {b.t} not ready"):
            b.set(message="")
        return True
    since = b.st.waiting_since if b.st.waiting_since is not None else b.now
    if b.st.waiting_since is None:
        b.set(waiting_since=since)
    msg = f"canary deployment {b.t} not ready: {r.message}"
    if r.deadline_passed or b.now >= since + b.deadline:
        text = f"Rolling back {b.c} progress deadline exceeded {msg}"
        alert = f"Progress deadline exceeded {msg}"
        _rollback(b, Emit(text, warning=True, alert="error", alert_message=alert))
        return False
    if msg != b.st.message:
        b.set(message=msg)
        if not quiet:
            b.emit(msg, warning=True)
    return False


def _step(b: _Builder) -> None:
    """One analysis step (the canary is ready and the step is due)."""
    st = b.st
    started = st.canary_weight > 0 or st.iterations > 0 or st.mirrored
    rollback_hooks = b.hooks("rollback")
    first = b.hooks("rollout" if started else "pre-rollout")
    checks = b.checks() if started else ()
    if rollback_hooks is None or first is None or checks is None:
        return
    for r in rollback_hooks:
        if r.passed:
            b.emit(f"Rollback check {r.name} passed", warning=True)
            _rollback(b, Emit(f"Rolling back {b.c} manual webhook invoked", warning=True, alert="warn",
                              alert_message="Rolling back manual webhook invoked"))
            return
        b.log.append(f"Rollback hook {r.name} not signaling a rollback")
    if not started:
        b.emit(f"Starting canary analysis for {b.t}")
        failed = _first_failure(first)
        if failed is not None:
            # beyond Flagger (#1663): a failing pre-rollout hook is worth an alert of its own
            _fail_step(b, f"Halt {b.c} advancement pre-rollout check {failed.name} failed {failed.message}",
                       alert="warn",
                       alert_message=f"Pre-rollout check {failed.name} failed: {failed.message}")
            return
        b.act(*messages.hook_passed_events("pre-rollout", first))
    else:
        b.set(checks=checks)
        failed = _first_failure(first)
        if failed is not None:
            _fail_step(b, f"Halt {b.c} advancement external check {failed.name} failed {failed.message}")
            return
        bad = next((c for c in checks if c.verdict != "pass"), None)
        if bad is not None:
            _fail_step(b, _halt_text(b, bad))
            return
    if b.spec.strategy == "canary":
        _advance_canary(b)
    else:
        _advance_iterations(b)


def _halt_text(b: _Builder, check: CheckResult) -> str:
    if check.verdict == "fail" and not check.message.startswith("Halt "):
        return f"Halt {b.c} advancement {check.message or check.name + ' failed'}"
    return check.message or f"Halt {b.c} advancement {check.name} {check.verdict}"


def _fail_step(b: _Builder, text: str, *, alert: str = "", alert_message: str = "") -> None:
    failed = b.st.failed_checks + 1
    b.emit(text, warning=True, alert=alert, alert_message=alert_message)
    b.set(failed_checks=failed, message=text, next_step_at=b.next_anchor())
    if failed >= b.spec.analysis.threshold:
        _rollback(b, Emit(f"Rolling back {b.c} failed checks threshold reached {failed}", warning=True,
                          alert="error", alert_message=f"Failed checks threshold reached {failed}"))


def next_step_weight(spec: CanarySpec, weight: int) -> int:
    """Flagger's ``nextStepWeight``: stepWeight, or the distance to the next stepWeights entry."""
    a = spec.analysis
    if a.step_weight > 0 or not a.step_weights:
        return a.step_weight
    room = 100 - weight
    if room == 0:
        return 1
    if weight == 0:
        return min(room, a.step_weights[0])
    for i, w in enumerate(a.step_weights):
        if w == weight and i + 1 < len(a.step_weights):
            return min(room, a.step_weights[i + 1] - weight)
    return room


def _advance_canary(b: _Builder) -> None:
    st = b.st
    weight, max_weight = st.canary_weight, b.spec.analysis.max_weight
    if not st.mirrored and st.phase == Phase.PROGRESSING:
        gate = b.hooks("confirm-traffic-increase")
        if gate is None:
            return
        failed = _first_failure(gate)
        if failed is not None:
            text = f"Halt {b.c} advancement waiting for traffic increase approval {failed.name}"
            if st.message != text:
                b.emit(text, warning=True, alert="" if b.muted(failed.name) else "warn",
                       alert_message="Canary traffic increase is waiting for approval.")
            b.set(message=text, next_step_at=b.next_anchor())
            return
        b.act(*messages.hook_passed_events("confirm-traffic-increase", gate))
    if weight >= max_weight:
        _promote_when_approved(b)
        return
    if b.spec.analysis.mirror and weight == 0 and not st.mirrored:
        b.log.append("Running mirror step 100/0/true")
        b.set(mirrored=True, message="", next_step_at=b.next_anchor())
        b.act(SetRoutes(100, 0, mirror=True))
        return
    new = min(max_weight, weight + next_step_weight(b.spec, weight))
    b.set(canary_weight=new, mirrored=False, message="", next_step_at=b.next_anchor())
    b.act(SetRoutes(100 - new, new))
    b.emit(f"Advance {b.c} canary weight {new}")


def _advance_iterations(b: _Builder) -> None:
    """Blue/Green (traffic stays on the primary, then one step at 100 % canary) and A/B (matched
    traffic to the canary from the first iteration)."""
    st = b.st
    total = b.spec.analysis.iterations
    ab = b.spec.strategy == "ab-testing"
    if total > st.iterations:
        n = st.iterations + 1
        if ab:
            if st.canary_weight != 100:
                b.act(SetRoutes(0, 100))
            b.set(canary_weight=100)
        elif b.spec.analysis.mirror and not st.mirrored:
            b.log.append("Start traffic mirroring")
            b.act(SetRoutes(100, 0, mirror=True))
            b.set(mirrored=True)
        b.set(iterations=n, message="", next_step_at=b.next_anchor())
        b.emit(f"Advance {b.c} canary iteration {n}/{total}")
        return
    if _approval_missing(b):
        return
    if not ab and total == st.iterations:
        if st.mirrored:
            b.emit("Stop traffic mirroring and route all traffic to canary")
        else:
            b.emit("Routing all traffic to canary")
        b.act(SetRoutes(0, 100))
        b.set(canary_weight=100, mirrored=False, iterations=st.iterations + 1, message="",
              next_step_at=b.next_anchor())
        return
    _promote(b)


def _approval_missing(b: _Builder) -> bool:
    """confirm-promotion: True while the gate is closed (or its result is being asked for)."""
    gate = b.hooks("confirm-promotion")
    if gate is None:
        return True
    failed = _first_failure(gate)
    if failed is not None:
        text = f"Halt {b.c} advancement waiting for promotion approval {failed.name}"
        if b.st.phase != Phase.WAITING_PROMOTION:
            b.emit(text, warning=True, alert="" if b.muted(failed.name) else "warn",
                   alert_message="Canary promotion is waiting for approval.")
        b.set(phase=Phase.WAITING_PROMOTION, message=text, next_step_at=b.next_anchor())
        return True
    b.act(*messages.hook_passed_events("confirm-promotion", gate))
    return False


def _promote_when_approved(b: _Builder) -> None:
    if not _approval_missing(b):
        _promote(b)


def _promote(b: _Builder) -> None:
    b.emit(f"Copying {b.t} template spec to {b.spec.primary_name}.{b.spec.namespace}")
    b.act(Promote())
    b.set(phase=Phase.PROMOTING, waiting_since=b.now, next_step_at=None, message="")


def _skip_analysis(b: _Builder) -> None:
    b.act(SetRoutes(100, 0))
    b.emit(f"Copying {b.t} template spec to {b.spec.primary_name}.{b.spec.namespace}")
    b.act(Promote(), ScaleTarget(0))
    b.set(phase=Phase.SUCCEEDED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          last_promoted_spec=b.st.last_applied_spec, waiting_since=None, next_step_at=None, message="")
    b.emit(f"Promotion completed! Canary analysis was skipped for {b.t}", alert="info",
           alert_message="Canary analysis was skipped, promotion finished.")
    b.post_rollout()


# ---- Promoting / Finalising ----


def _promoting(b: _Builder) -> None:
    primary = b.snap.primary
    st = b.st
    if primary is None or b.snap.primary_template_matches_target is False:
        r, quiet = Readiness(False, "waiting for rollout to finish: primary template update not yet observed",
                             False), True
    else:
        threshold = b.spec.analysis.primary_ready_threshold
        r = deployment_readiness(primary, threshold, b.now, b.deadline)
        quiet = primary.generation > primary.observed_generation
    primary_key = f"{b.spec.primary_name}.{b.spec.namespace}"
    if not r.ready:
        since = st.waiting_since if st.waiting_since is not None else b.now
        if st.waiting_since is None:
            b.set(waiting_since=since)
        msg = f"{primary_key} not ready: {r.message}"
        if r.deadline_passed or b.now >= since + b.deadline:
            _failed_promotion(b, msg)
            return
        if msg != st.message:
            b.set(message=msg)
            if not quiet:
                b.emit(msg, warning=True)
        return
    if st.waiting_since is not None or st.message:
        b.set(waiting_since=None, message="")
    step = b.spec.analysis.step_weight_promotion
    if step == 0:
        b.emit("Routing all traffic to primary")
        b.act(SetRoutes(100, 0))
        b.set(phase=Phase.FINALISING, canary_weight=0, mirrored=False, next_step_at=None)
        return
    if st.next_step_at is not None and b.now < st.next_step_at:
        return
    primary_weight = min(100, 100 - st.canary_weight + step)
    b.emit(f"Advance {b.c} primary weight {primary_weight}")
    b.act(SetRoutes(primary_weight, 100 - primary_weight))
    if primary_weight == 100:
        b.set(phase=Phase.FINALISING, canary_weight=0, mirrored=False, next_step_at=None)
    else:
        b.set(canary_weight=100 - primary_weight, mirrored=False, next_step_at=b.next_anchor())


def _failed_promotion(b: _Builder, msg: str) -> None:
    b.emit(f"Promotion of {b.t} failed, primary not ready: {msg}", warning=True, alert="error",
           alert_message=f"Promotion failed, primary not ready: {msg}")
    b.act(SetRoutes(0, 100))
    b.set(phase=Phase.FAILED, canary_weight=100, failed_checks=0, iterations=0, mirrored=False,
          waiting_since=None, next_step_at=None, message=f"Promotion failed, primary not ready: {msg}")
    b.post_rollout()


def _finalising(b: _Builder) -> None:
    # Scale the canary down only once the VirtualService shows all traffic on the primary.
    if b.snap.routes is not None and b.snap.routes != (100, 0):
        return
    b.act(ScaleTarget(0))
    b.set(phase=Phase.SUCCEEDED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          last_promoted_spec=b.st.last_applied_spec, waiting_since=None, next_step_at=None, message="")
    b.emit(f"Promotion completed! Scaling down {b.t}", alert="info",
           alert_message="Canary analysis completed successfully, promotion finished.")
    b.post_rollout()


# ---- rollback ----


def _rollback(b: _Builder, reason: Emit) -> None:
    b.act(reason, SetRoutes(100, 0))
    b.emit(f"Canary failed! Scaling down {b.c}", warning=True)
    b.act(ScaleTarget(0))
    b.set(phase=Phase.FAILED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          waiting_since=None, next_step_at=None, message=reason.message)
    b.post_rollout()


def _first_failure(results: tuple[HookResult, ...]) -> HookResult | None:
    return next((r for r in results if not r.passed), None)
