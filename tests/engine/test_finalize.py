"""engine.finalize: the finalizer list, the replicas given back to the target and the
steps of a deletion with ``revertOnDeletion`` (flagger-reference.md §3.9), as plain tables."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canaryd.engine.finalize import (
    FINALIZER,
    MAX_FAILURES,
    decide_finalize,
    finalizers_after,
    revert_replicas,
)
from canaryd.engine.types import (
    CanaryStatus,
    DeploymentView,
    Emit,
    Phase,
    RemoveFinalizer,
    RevertRouting,
    ScaleTarget,
    Snapshot,
)

from .world import tutorial_canary

SPEC = replace(tutorial_canary(), revert_on_deletion=True, progress_deadline_seconds=60)
C = f"{SPEC.name}.{SPEC.namespace}"
T0 = 1_000_000.0


def dep(name: str = "podinfo", replicas: int = 2, available: int | None = None, **kw: Any) -> DeploymentView:
    avail = replicas if available is None else available
    base: dict[str, Any] = dict(name=name, generation=2, observed_generation=2, spec_replicas=replicas,
                                status_replicas=replicas, updated_replicas=replicas, available_replicas=avail,
                                ready_replicas=avail, template_hash="cd1:x", selector_label="app",
                                selector_value=name)
    base.update(kw)
    return DeploymentView(**base)


def snap(target: DeploymentView | None = None, primary: DeploymentView | None = None,
         hpa_min: int | None = 2) -> Snapshot:
    return Snapshot(target=target, primary=primary, hpa_min_replicas=hpa_min, hpa_exists=hpa_min is not None)


@pytest.mark.parametrize(
    ("finalizers", "revert", "deleting", "want"),
    [
        ((), True, False, (FINALIZER,)),
        (("other",), True, False, ("other", FINALIZER)),
        ((FINALIZER,), True, False, None),
        ((), True, True, None),  # the API server refuses new finalizers on an object being deleted
        ((), False, False, None),  # without revertOnDeletion a Canary never gets it
        ((FINALIZER,), False, False, ()),  # opting out
        (("other", FINALIZER), False, True, ("other",)),  # opting out while deleting
        ((FINALIZER,), True, True, None),  # kept until the revert is done
    ],
)
def test_finalizers_after(finalizers: tuple[str, ...], revert: bool, deleting: bool,
                          want: tuple[str, ...] | None) -> None:
    assert finalizers_after(finalizers, revert, deleting) == want


@pytest.mark.parametrize(
    ("target", "primary", "hpa_min", "autoscaled", "want"),
    [
        (dep(replicas=0), dep("podinfo-primary", 3), 2, True, 3),  # the primary's replicas
        (dep(replicas=5), dep("podinfo-primary", 3), 2, True, 3),  # even when the target has others
        (dep(replicas=4), None, 2, True, 4),  # no primary: ScaleFromZero, target replicas when set
        (dep(replicas=0), None, 3, True, 3),  # … else the HPA minimum above 1
        (dep(replicas=0), None, 1, True, 1),
        (dep(replicas=0), None, None, False, 1),  # … else 1
        (dep(replicas=0), dep("podinfo-primary", 0), None, False, 1),
    ],
)
def test_revert_replicas(target: DeploymentView, primary: DeploymentView | None, hpa_min: int | None,
                         autoscaled: bool, want: int) -> None:
    spec = SPEC if autoscaled else replace(SPEC, autoscaler=None)
    assert revert_replicas(spec, snap(target, primary, hpa_min)) == want


def succeeded() -> CanaryStatus:
    return CanaryStatus(phase=Phase.SUCCEEDED, canary_weight=0, last_applied_spec="cd1:x",
                        last_promoted_spec="cd1:x", observed_generation=1)


def terminating(since: float = T0, **kw: Any) -> CanaryStatus:
    return replace(succeeded(), phase=Phase.TERMINATING, waiting_since=since, **kw)


PRIMARY = dep("podinfo-primary", 2)
REVERT = RevertRouting("app", "podinfo")
DONE = (REVERT, Emit(f"Terminated canary {C}"), RemoveFinalizer())


@pytest.mark.parametrize(
    ("case", "status", "target", "now", "failures", "want_phase", "want_actions", "wake"),
    [
        # deletion noticed: Terminating, Event, the target scaled to the primary's replicas
        ("enter", succeeded(), dep(replicas=0), T0, 0, Phase.TERMINATING,
         (Emit(f"Terminating canary {C}"), ScaleTarget(2)), T0 + 1),
        # mid-run deletion: the same, whatever the weight was
        ("enter mid-run", replace(succeeded(), phase=Phase.PROGRESSING, canary_weight=30),
         dep(replicas=2), T0, 0, Phase.TERMINATING, (Emit(f"Terminating canary {C}"), ScaleTarget(2)),
         T0 + 1),
        # restarted between the status write and the scale: scaled again
        ("scale lost", terminating(), dep(replicas=0), T0 + 5, 0, None, (ScaleTarget(2),), T0 + 6),
        # scaled, not ready yet: wait (until the deadline)
        ("wait", terminating(), dep(replicas=2, available=0), T0 + 5, 0, Phase.TERMINATING, (), T0 + 60),
        # ready: routing given back, then the finalizer removed
        ("ready", terminating(), dep(replicas=2), T0 + 5, 0, None, DONE, None),
        # never ready: reverted anyway at the deadline, with a Warning
        ("deadline", terminating(), dep(replicas=2, available=0), T0 + 61, 0, None,
         (Emit(f"Target podinfo.{SPEC.namespace} not ready within 60s while finalizing {C} (waiting for "
               "rollout to finish: 0 of 2 (readyThreshold 100%) updated replicas are available); reverting "
               "anyway", warning=True), *DONE), None),
        # no target at all: nothing to scale or wait for
        ("no target", terminating(), None, T0 + 1, 0, None,
         (RevertRouting(None, None), Emit(f"Terminated canary {C}"), RemoveFinalizer()), None),
        # failing again and again: the finalizer goes anyway
        ("give up", terminating(), dep(replicas=0), T0 + 100, MAX_FAILURES, None,
         (Emit(f"Reverting {C} failed {MAX_FAILURES} times (boom); removing finalizer {FINALIZER} without "
               "completing the revert", warning=True), Emit(f"Terminated canary {C}"), RemoveFinalizer()),
         None),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_decide_finalize(case: str, status: CanaryStatus, target: DeploymentView | None, now: float,
                         failures: int, want_phase: Phase | None, want_actions: tuple[Any, ...],
                         wake: float | None) -> None:
    d = decide_finalize(SPEC, status, snap(target, PRIMARY), now, failures=failures, last_error="boom")
    assert d.actions == want_actions
    assert d.wake_at == wake
    if want_phase is None:
        assert d.status is None  # nothing to write
    else:
        assert d.status is not None and d.status.phase == want_phase
    assert not d.is_request


def test_entering_resets_the_run_fields_and_starts_the_clock() -> None:
    st = replace(succeeded(), phase=Phase.PROGRESSING, canary_weight=30, iterations=2, next_step_at=T0 + 3,
                 message="x")
    d = decide_finalize(SPEC, st, snap(dep(replicas=0), PRIMARY), T0)
    assert d.status is not None
    assert (d.status.phase, d.status.canary_weight, d.status.iterations, d.status.waiting_since,
            d.status.next_step_at, d.status.message) == (Phase.TERMINATING, 0, 0, T0, None, "")


def test_waiting_message_written_once() -> None:
    target = dep(replicas=2, available=0)
    first = decide_finalize(SPEC, terminating(), snap(target, PRIMARY), T0 + 2)
    assert first.status is not None
    assert first.status.message.startswith(
        "canary not ready during finalizing: waiting for rollout to finish")
    again = decide_finalize(SPEC, first.status, snap(target, PRIMARY), T0 + 3)
    assert again.status is None and again.actions == ()


def test_a_run_through_restarts_reaches_removal() -> None:
    """Each pass decided from status and cache alone (as after a restart at any point) ends in removal."""
    st, target, now = succeeded(), dep(replicas=0), T0
    seen: list[Any] = []
    for _ in range(6):
        d = decide_finalize(SPEC, st, snap(target, PRIMARY), now)
        st = d.status or st
        seen += d.actions
        for a in d.actions:
            if isinstance(a, ScaleTarget):
                target = dep(replicas=a.replicas, available=0)  # scaled, pods starting
        if RemoveFinalizer() in d.actions:
            break
        now += 1
        if now > T0 + 2:
            target = dep(replicas=2)  # ready
    assert seen[-3:] == list(DONE)
    assert [a for a in seen if isinstance(a, ScaleTarget)] == [ScaleTarget(2)]
    assert seen.count(Emit(f"Terminating canary {C}")) == 1
