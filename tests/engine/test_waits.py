"""Readiness waits (engine/waits.py): a not-ready state is reported (status.message, a Warning Event) once
it has lasted one analysis interval (at least GRACE s), when Flagger's next tick would first meet
it, so the states every rollout passes through cost no status write and no Event; a wait that lasts is
still reported, woken for at the grace's end. Plain tables over decide() (through the driver, as
tests/engine/test_decide.py)."""

from __future__ import annotations

import pytest

from canaryd.engine.types import Phase
from canaryd.engine.waits import NOT_READY_GRACE, report_after

from .test_decide import SPEC, V2, dep, events, progressing, run, snap, status

CANARY_MSG = ("canary deployment podinfo.test not ready: waiting for rollout to finish: 1 out of 2 new "
              "replicas have been updated")
PRIMARY_MSG = ("podinfo-primary.test not ready: waiting for rollout to finish: 1 out of 2 new replicas have "
               "been updated")
GEN_MSG = ("canary deployment podinfo.test not ready: waiting for rollout to finish: observed deployment "
           "generation less than desired generation")

GRACE = report_after(SPEC.analysis.interval_seconds)  # the tutorial's 30 s
ROLLING = dep(updated_replicas=1)
UNOBSERVED = dep(generation=3, observed_generation=2)  # our own scale-up, not yet seen by the controller


@pytest.mark.parametrize(("target", "now", "written", "emitted", "wake"), [
    # (canary Deployment, seconds since the run began) -> status written?, Events, wake-up time
    (ROLLING, 0.2, False, [], 10.0 + GRACE),  # a passing state: nothing written
    (ROLLING, GRACE - 0.1, False, [], 10.0 + GRACE),
    (ROLLING, GRACE, True, [CANARY_MSG], 70.0),  # it lasted: reported, then the deadline
    (ROLLING, 45.0, True, [CANARY_MSG], 70.0),
    (UNOBSERVED, 0.2, False, [], 10.0 + GRACE),  # our own change: quiet, and not even written
    # a controller that never observes: status says why, no Event
    (UNOBSERVED, GRACE + 1.0, True, [], 70.0),
])
def test_canary_wait_is_reported_once_it_lasts(target: object, now: float, written: bool,
                                               emitted: list[str], wake: float) -> None:
    st = progressing(waiting_since=10.0)
    d = run(SPEC, st, snap(target=target), 10.0 + now)
    assert events(d) == emitted
    assert (d.status is not None) == written
    if written:
        assert d.status is not None
        assert d.status.message in (CANARY_MSG, GEN_MSG) and d.status.waiting_since == 10.0
    assert d.wake_at == wake


def test_a_reported_wait_is_not_reported_again() -> None:
    st = progressing(waiting_since=10.0, message=CANARY_MSG)
    d = run(SPEC, st, snap(target=ROLLING), 40.0)
    assert d.status is None and d.actions == () and d.wake_at == 70.0


def test_mid_run_unready_starts_the_wait_without_a_message() -> None:
    st = progressing(canary_weight=20, next_step_at=1000.0)
    d = run(SPEC, st, snap(target=ROLLING, routes=(80, 20)), 500.0)
    assert d.status is not None and d.status.waiting_since == 500.0 and d.status.message == ""
    assert events(d) == [] and d.wake_at == 500.0 + GRACE
    d = run(SPEC, d.status, snap(target=ROLLING, routes=(80, 20)), d.wake_at)
    assert events(d) == [CANARY_MSG]


@pytest.mark.parametrize(("now", "emitted"), [(0.3, []), (GRACE + 0.5, [PRIMARY_MSG])])
def test_primary_wait_during_promotion(now: float, emitted: list[str]) -> None:
    st = status(Phase.PROMOTING, canary_weight=50, last_applied_spec=V2, waiting_since=0.0)
    rolling = snap(primary=dep("podinfo-primary", V2, updated_replicas=1),
                   primary_template_matches_target=True, routes=(50, 50))
    d = run(SPEC, st, rolling, now)
    assert events(d) == emitted
    assert (d.status is not None) == bool(emitted)
    assert d.wake_at == (GRACE if not emitted else 60.0)


def test_template_not_yet_observed_is_never_an_event() -> None:
    st = status(Phase.PROMOTING, canary_weight=50, last_applied_spec=V2, waiting_since=0.0)
    unseen = snap(primary=dep("podinfo-primary", "cd1:v1"), primary_template_matches_target=False,
                  routes=(50, 50))
    assert run(SPEC, st, unseen, 0.1).status is None
    d = run(SPEC, st, unseen, GRACE + 1.0)
    assert events(d) == [] and d.status is not None
    assert d.status.message.endswith("primary template update not yet observed")


@pytest.mark.parametrize(("interval", "after"), [
    (1.0, NOT_READY_GRACE), (5.0, 5.0), (10.0, 10.0), (30.0, 30.0), (300.0, 300.0),
])
def test_a_wait_is_reported_after_one_interval_never_under_the_grace(interval: float, after: float) -> None:
    assert report_after(interval) == after
