"""Requests (canaryd.io/request) as inputs of decide(): every action, the once-per-id rule, revisions,
refusals; and the run history / per-step weights they and ordinary runs leave in status."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from canaryd.engine.history import MAX_RUNS, MAX_WEIGHTS
from canaryd.engine.requests import parse_request, request_id
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import (
    CanaryStatus,
    CheckResult,
    HookResult,
    LastRequest,
    Phase,
    Promote,
    RunRecord,
    ScaleTarget,
    SetRoutes,
)

from .test_decide import SPEC, V1, V2, events, run, snap, status
from .world import tutorial_canary

GATED = tutorial_canary(webhooks=[{"name": "gate", "url": "http://gate/", "type": "confirm-promotion"}])
CLOSED = {"confirm-promotion": (HookResult("gate", False, "closed"),)}


def req(action: str, rid: str = "r1", **kw: Any) -> str:
    return json.dumps({"id": rid, "action": action, **kw})


def progressing(**kw: Any) -> CanaryStatus:
    base: dict[str, Any] = dict(last_applied_spec=V2, canary_weight=20, next_step_at=1000.0,
                                run_started_at=0.0, run_image="podinfo:6.0.1", weights=((0.0, 0), (30.0, 20)))
    base.update(kw)
    return status(Phase.PROGRESSING, **base)


def answered(st: CanaryStatus | None) -> LastRequest:
    assert st is not None and st.last_request is not None
    return st.last_request


# ---- parsing ----

PARSE = [
    ('{"id": "a", "action": "promote"}', "promote"),
    ('{"id": "a", "action": "promote", "full": true, "revision": "cd1:x"}', "promote"),
    ("not json", "malformed request: not JSON"),
    ('["a"]', "malformed request: not a JSON object"),
    ('{"action": "promote"}', "malformed request: id must be"),
    ('{"id": "' + "x" * 65 + '", "action": "promote"}', "malformed request: id must be"),
    ('{"id": "a", "action": "undo"}', "unknown action 'undo'"),
    ('{"id": "a", "action": "promote", "full": "yes"}', "malformed request: full must be"),
    ('{"id": "a", "action": "promote", "revision": 3}', "malformed request: revision must be"),
]


@pytest.mark.parametrize(("raw", "want"), PARSE)
def test_parse(raw: str, want: str) -> None:
    got = parse_request(raw)
    if isinstance(got, str):
        assert got.startswith(want)
    else:
        assert got.action == want and got.id == "a"


def test_request_id_of_a_request_without_one_is_stable() -> None:
    assert request_id("not json") == request_id("not json") != request_id("not json!")
    assert request_id(req("abort", "x1")) == "x1"


# ---- each action ----


def test_promote_skips_the_analysis_and_promotes() -> None:
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("promote")), 10.0)
    assert d.status is not None and d.status.phase == Phase.PROMOTING
    assert Promote() in d.actions
    assert answered(d.status).result == "done" and answered(d.status).action == "promote"
    assert any(e.startswith("request r1 (promote) done") for e in events(d))


def test_promote_keeps_the_promotion_gate_then_promotes_when_it_opens() -> None:
    d = run(GATED, progressing(), snap(routes=(80, 20), request=req("promote")), 10.0, hooks=CLOSED)
    st = d.status
    assert st is not None and st.phase == Phase.WAITING_PROMOTION and st.promote_requested
    assert answered(st).result == "done" and Promote() not in d.actions
    # later steps: no analysis (no checks asked), straight to the gate
    d = run(GATED, st, snap(routes=(80, 20), request=req("promote")), st.next_step_at or 0.0,
            checks=(CheckResult("istio_requests_total", "fail", 1.0),))
    assert d.status is not None and d.status.phase == Phase.PROMOTING


def test_promote_full_skips_the_promotion_gate_too() -> None:
    sn = snap(routes=(80, 20), request=req("promote", full=True))
    d = run(GATED, progressing(), sn, 10.0, hooks=CLOSED)
    assert d.status is not None and d.status.phase == Phase.PROMOTING


def test_abort_rolls_back_now_and_records_the_run() -> None:
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort", "stop-1")), 10.0)
    st = d.status
    assert st is not None and st.phase == Phase.FAILED
    assert st.message == "Rolling back podinfo.test aborted by request stop-1"
    assert SetRoutes(100, 0) in d.actions and ScaleTarget(0) in d.actions
    assert answered(st).result == "done"
    run_ = st.history[0]
    assert (run_.outcome, run_.revision, run_.image, run_.max_weight, run_.started_at) == (
        "aborted", V2, "podinfo:6.0.1", 20, 0.0)


def test_abort_while_waiting_at_confirm_rollout_fails_the_waiting_revision() -> None:
    st = status(Phase.WAITING, next_step_at=1000.0)
    d = run(SPEC, st, snap(request=req("abort")), 10.0)
    assert d.status is not None and d.status.phase == Phase.FAILED and d.status.last_applied_spec == V2
    again = run(SPEC, d.status, snap(request=req("abort")), 20.0)
    assert again.status is None or again.status.phase == Phase.FAILED  # no run starts for it


@pytest.mark.parametrize("phase", [Phase.PROMOTING, Phase.FINALISING])
def test_abort_is_refused_once_the_primary_is_updated(phase: Phase) -> None:
    st = status(phase, last_applied_spec=V2)
    d = run(SPEC, st, snap(request=req("abort"), primary=None, routes=(50, 50)), 10.0)
    assert d.status is not None and d.status.phase == phase
    last = answered(d.status)
    assert last.result == "refused" and "already runs the new revision" in last.message


def test_retry_runs_the_failed_revision_again_from_weight_0() -> None:
    st = status(Phase.FAILED, last_applied_spec=V2)
    d = run(SPEC, st, snap(target=replace(snap().target, spec_replicas=0), request=req("retry")), 10.0)  # type: ignore[arg-type]
    assert d.status is not None and d.status.phase == Phase.PROGRESSING and d.status.canary_weight == 0
    assert d.status.last_applied_spec == V2 and answered(d.status).result == "done"
    assert ScaleTarget(2) in d.actions  # the primary's replicas
    assert d.status.weights == ((10.0, 0),) and d.status.run_started_at == 10.0


def test_retry_of_a_superseded_revision_is_refused_with_the_reason() -> None:
    st = status(Phase.FAILED, last_applied_spec="cd1:v0")  # the target has moved on to V2 since
    d = run(SPEC, st, snap(request=req("retry")), 10.0)
    last = answered(d.status)
    assert last.result == "refused" and "superseded" in last.message and V2 in last.message


def test_pause_stops_steps_and_resume_continues() -> None:
    st = progressing(next_step_at=5.0)
    d = run(SPEC, st, snap(routes=(80, 20), request=req("pause", "p1")), 10.0)
    paused = d.status
    assert paused is not None and paused.paused_by == "p1" and paused.message == "paused by request p1"
    assert paused.canary_weight == 20  # no step taken
    later = run(SPEC, paused, snap(routes=(80, 20), request=req("pause", "p1")), 500.0)
    assert later.status is None and not later.analyse  # nothing, however late
    d = run(SPEC, paused, snap(routes=(80, 20), request=req("resume", "p2")), 600.0)
    assert d.status is not None and d.status.paused_by == "" and d.status.canary_weight == 25


REFUSALS = [
    ("promote", Phase.SUCCEEDED, "promote applies to a canary in Progressing or WaitingPromotion; "
                                 "podinfo.test is Succeeded"),
    ("pause", Phase.FAILED, "pause applies to a canary in Progressing or WaitingPromotion"),
    ("resume", Phase.PROGRESSING, "resume applies to a canary paused by request"),
    ("retry", Phase.SUCCEEDED, "retry applies to a canary that failed"),
    ("abort", Phase.INITIALIZED, "abort applies to a canary in Progressing"),
]


@pytest.mark.parametrize(("action", "phase", "message"), REFUSALS)
def test_requests_for_a_canary_not_in_a_fitting_phase_are_refused(action: str, phase: Phase,
                                                                  message: str) -> None:
    st = status(phase, last_applied_spec=V2, last_promoted_spec=V2, next_step_at=1000.0)
    d = run(SPEC, st, snap(routes=(100, 0), request=req(action)), 10.0)
    assert d.status is not None
    last = answered(d.status)
    assert last.result == "refused" and last.message.startswith(message), last.message
    assert replace(d.status, last_request=None, conditions=st.conditions, last_transition_time=None) == st


@pytest.mark.parametrize("raw", ["{oops", req("undo"), '{"action": "abort"}'])
def test_bad_requests_are_refused_and_change_nothing_else(raw: str) -> None:
    st = progressing()
    d = run(SPEC, st, snap(routes=(80, 20), request=raw), 10.0)
    assert d.status is not None and answered(d.status).result == "refused"
    assert any("refused" in e for e in events(d))
    assert replace(d.status, last_request=None, conditions=st.conditions, last_transition_time=None) == st
    again = run(SPEC, d.status, snap(routes=(80, 20), request=raw), 11.0)
    assert again.status is None and again.actions == ()  # answered once


def test_a_request_naming_another_revision_is_ignored() -> None:
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort", revision=V1)), 10.0)
    st = d.status
    assert st is not None and st.phase == Phase.PROGRESSING
    assert answered(st).result == "ignored"
    assert answered(st).message == f"names revision {V1}, the run is {V2}"
    assert any(e.startswith("request r1 (abort) ignored: names revision") for e in events(d))


def test_a_request_naming_the_run_is_carried_out() -> None:
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort", revision=V2)), 10.0)
    assert d.status is not None and d.status.phase == Phase.FAILED


def test_an_answered_id_is_never_acted_on_again() -> None:
    st = progressing(last_request=LastRequest("r1", "abort", "done", "rolled back", 1.0))
    d = run(SPEC, st, snap(routes=(80, 20), request=req("abort")), 5.0)
    assert d.status is None or d.status.phase == Phase.PROGRESSING


def test_the_answer_survives_the_status_round_trip() -> None:
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort")), 10.0)
    assert d.status is not None
    back = status_from_dict(status_to_dict(d.status))
    assert back.last_request == d.status.last_request
    assert back.history == d.status.history and back.weights == d.status.weights
    again = run(SPEC, back, snap(routes=(100, 0), request=req("abort")), 20.0)
    assert again.status is None or answered(again.status) == answered(back)


# ---- history and weights of ordinary runs ----


def test_a_step_records_its_weight() -> None:
    d = run(SPEC, progressing(next_step_at=5.0), snap(routes=(80, 20)), 10.0)
    assert d.status is not None and d.status.weights[-1] == (10.0, 25)


def test_a_new_revision_mid_run_supersedes_the_run() -> None:
    st = progressing()
    d = run(SPEC, st, snap(target=replace(snap().target, template_hash="cd1:v3"), routes=(80, 20)), 10.0)  # type: ignore[arg-type]
    assert d.status is not None and d.status.history[0].outcome == "superseded"
    assert d.status.history[0].revision == V2 and d.status.weights == ((10.0, 0),)


def test_history_and_weights_are_bounded() -> None:
    old = tuple(RunRecord("cd1:o", "i", 0.0, 1.0, "promoted", "", 50) for _ in range(MAX_RUNS))
    weights = tuple((float(i), 20) for i in range(MAX_WEIGHTS))
    st = progressing(history=old, weights=weights)
    d = run(SPEC, st, snap(routes=(80, 20), request=req("abort")), 2000.0)
    assert d.status is not None and len(d.status.history) == MAX_RUNS
    assert d.status.history[0].outcome == "aborted"
    d = run(SPEC, progressing(weights=weights, next_step_at=5.0), snap(routes=(80, 20)), 10.0)
    assert d.status is not None and len(d.status.weights) == MAX_WEIGHTS
    assert d.status.weights[-1] == (10.0, 25)


def test_a_rollback_records_the_failed_checks() -> None:
    bad = CheckResult("istio_requests_total", "fail", 42.0, ">= 99%", "success rate 42% < 99%")
    st = progressing(failed_checks=9, next_step_at=5.0)
    d = run(SPEC, st, snap(routes=(80, 20)), 10.0, checks=(bad,))
    assert d.status is not None and d.status.phase == Phase.FAILED
    h = d.status.history[0]
    assert h.outcome == "rolled back" and h.failed_checks == (bad,)
    back = status_from_dict(status_to_dict(d.status)).history[0]
    assert (back.failed_checks[0].name, back.failed_checks[0].value, back.failed_checks[0].threshold) == (
        "istio_requests_total", 42.0, ">= 99%")


def test_requests_wait_while_the_canary_is_suspended() -> None:
    suspended = replace(SPEC, suspend=True)
    d = run(suspended, progressing(), snap(routes=(80, 20), request=req("abort")), 10.0)
    assert d.status is None or d.status.last_request is None
    d = run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort")), 20.0)
    assert d.status is not None and answered(d.status).result == "done"


def test_abort_lifts_a_pause() -> None:
    st = progressing(paused_by="p1", message="paused by request p1")
    d = run(SPEC, st, snap(routes=(80, 20), request=req("abort", "a1")), 10.0)
    assert d.status is not None and d.status.phase == Phase.FAILED and d.status.paused_by == ""


def test_promote_before_the_run_started_is_refused() -> None:
    st = status(Phase.WAITING, next_step_at=1000.0)
    d = run(SPEC, st, snap(request=req("promote")), 10.0)
    last = answered(d.status)
    assert last.result == "refused" and "is Waiting" in last.message
