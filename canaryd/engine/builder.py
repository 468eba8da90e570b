"""The decision builder every phase of :func:`canaryd.engine.decide.decide` writes into, and the small
reads of the snapshot they share (target, tracked configs, scale-up replicas, first failed hook).

Kept apart so each phase module depends only on this one (and on the phases that end a run), never on
``decide``: the layering is builder <- outcome <- progressing <- at_rest <- decide.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from canaryd.engine import history
from canaryd.engine.cookies import status_cookies
from canaryd.engine.desired import complete, hook_request
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
    RunHooks,
    SetRoutes,
    Severity,
    Snapshot,
)
from canaryd.model.spec import CanarySpec, HookType


class Builder:
    """Accumulates one decision: status changes, actions, hook and check requests, log lines."""

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
        self.wake_hints: list[float] = []  # extra times to look again (engine/waits.py), beside deadlines
        self.canary_key = spec.key  # "<canary>.<ns>", as Flagger's messages name the Canary
        self.target_key = f"{spec.target.name}.{spec.namespace}"  # "<target>.<ns>", the target Deployment

    # status and actions
    def set(self, **changes: Any) -> None:
        self.st = replace(self.st, **changes)

    def act(self, *actions: Action) -> None:
        self.actions.extend(actions)

    def wake_by(self, when: float) -> None:
        """Decide again at ``when`` at the latest, even if nothing changes before."""
        self.wake_hints.append(when)

    def emit(self, message: str, *, warning: bool = False, alert: Severity = "",
             alert_message: str = "") -> None:
        self.actions.append(Emit(message, warning=warning, alert=alert, alert_message=alert_message))

    # hooks and checks
    def hooks(self, hook_type: HookType) -> tuple[HookResult, ...] | None:
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
            requests = tuple(hook_request(self.spec, self.orig, r) for r in self.requests)
            return Decision(actions=requests, analyse=self.analyse)
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
            promoted = promoted_condition(phase, kind, self.now, self.orig.conditions, st.message)
            st = replace(st, conditions=with_conditions(promoted, self.valid))
        elif self.valid is not None or problem_of(self.orig) is not None:
            st = replace(st, conditions=(self.valid,) if self.valid is not None else ())
        st = history.record(self.orig, st, self.now)
        changed = st != self.orig
        if changed:  # the cookie fields follow the rest of status (written with it, never alone)
            st = replace(status_cookies(self.spec, st), last_transition_time=self.now)
        return Decision(
            status=st if changed else None,
            actions=complete(self.spec, st, tuple(self.actions)),
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
        times = [t for t in (when, *self.wake_hints) if t is not None and t > self.now]
        return min(times) if times else None


def expected_routes(st: CanaryStatus) -> SetRoutes:
    """The VirtualService weights status implies (status is the truth; routes follow it)."""
    return SetRoutes(primary=100 - st.canary_weight, canary=st.canary_weight, mirror=st.mirrored)



def target_view(b: Builder) -> DeploymentView:
    assert b.snap.target is not None  # checked by _snapshot_problem
    return b.snap.target


def configs_changed(b: Builder) -> bool:
    return b.st.tracked_configs != b.snap.config_checksums


def scale_up_replicas(b: Builder) -> int:
    """Flagger's ScaleFromZero: target replicas if set, else HPA min (>1) or the primary's replicas."""
    target = target_view(b)
    if target.spec_replicas > 0:
        return target.spec_replicas
    if b.spec.autoscaler is not None:
        hpa_min = b.snap.hpa_min_replicas or 1
        return hpa_min if hpa_min > 1 else 1
    if b.snap.primary is not None and b.snap.primary.spec_replicas > 0:
        return b.snap.primary.spec_replicas
    return 1



def first_failure(results: tuple[HookResult, ...]) -> HookResult | None:
    return next((r for r in results if not r.passed), None)
