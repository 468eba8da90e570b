"""Each analysis step's check values in status (``status.stepChecks``): one entry per step with the
weight it measured, kept through the run's end, cleared by the next run, bounded; and what they add to
a status write."""

from __future__ import annotations

import orjson

from canaryd.engine.history import MAX_CHECK_STEPS, add_step
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CheckResult, Phase, StepChecks

from .test_decide import SPEC, run, snap
from .test_requests import progressing
from .timeline import tutorial_run
from .world import change_image, passing_checks

FAILING = (CheckResult("istio_requests_total", "fail", 50.0, ">= 99%", "success rate 50% < 99%"),
           CheckResult("istio_request_duration_seconds_bucket", "pass", 120.0, "<= 500ms"))


def test_the_tutorial_run_keeps_one_entry_per_step_with_the_weight_it_measured() -> None:
    w = tutorial_run()
    steps = w.status.step_checks
    assert w.status.phase == Phase.SUCCEEDED
    # checks run from the second step on (the first sets weight 5), up to and at maxWeight 50
    assert [s.weight for s in steps] == [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]
    assert all(s.checks == tuple(CheckResult(c.name, c.verdict, c.value) for c in passing_checks(0))
               for s in steps)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    change_image(w, "cd1:v3")  # the next run starts with none
    w.run(3000.0, 3001.0)
    assert w.status.phase == Phase.PROGRESSING and w.status.step_checks == ()


def test_a_failing_step_is_recorded_with_its_verdict_and_kept_after_the_rollback() -> None:
    st = progressing(failed_checks=9, step_checks=(StepChecks(1.0, 15, passing_checks(0)),))
    d = run(SPEC, st, snap(routes=(80, 20)), 1000.0, checks=FAILING)
    assert d.status is not None and d.status.phase == Phase.FAILED
    last = d.status.step_checks[-1]
    assert (last.at, last.weight) == (1000.0, 20)
    assert [(c.name, c.verdict, c.value, c.threshold, c.message) for c in last.checks] == [
        ("istio_requests_total", "fail", 50.0, "", ""),  # thresholds and messages live in status.checks
        ("istio_request_duration_seconds_bucket", "pass", 120.0, "", "")]
    assert len(d.status.step_checks) == 2


BOUNDS = [(0, 1), (MAX_CHECK_STEPS - 1, MAX_CHECK_STEPS), (MAX_CHECK_STEPS, MAX_CHECK_STEPS),
          (MAX_CHECK_STEPS + 7, MAX_CHECK_STEPS)]


def test_bounded_and_no_entry_without_checks() -> None:
    for before, after in BOUNDS:
        st = progressing(step_checks=tuple(StepChecks(float(i), 5, FAILING) for i in range(before)))
        got = add_step(st, 999.0, FAILING)
        assert (len(got), got[-1].at) == (after, 999.0), before
    assert add_step(progressing(), 1.0, ()) == ()


def test_round_trip_and_bytes_added_to_a_status_write() -> None:
    w = tutorial_run()
    st = w.status
    back = status_from_dict(status_to_dict(st))
    assert back.step_checks == st.step_checks
    full = len(orjson.dumps(status_to_dict(st)))
    without = len(orjson.dumps(status_to_dict(status_from_dict({**status_to_dict(st), "stepChecks": []}))))
    per_step = (full - without) / len(st.step_checks)
    # two checks: about 200 bytes a step, so the bound keeps it near 4 KB (figure in docs/operations.md)
    assert 100 < per_step < 250, per_step
    print(f"stepChecks: {full - without} bytes for {len(st.step_checks)} steps ({per_step:.0f} a step); "
          f"status {without} -> {full} bytes")
