"""The verdict algebra (engine/verdicts.py) as plain tables, and what its outcomes do to a run: dry runs,
initial delays, error streaks across restarts, nodata handling, inconclusive holds resolved by a
request or by inconclusiveTimeout."""

from __future__ import annotations

import json
from typing import Any

import pytest

from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CheckResult, HookResult, Phase, Promote, Verdict
from canaryd.engine.verdicts import Measured, judge_step, step_measurements
from canaryd.model.spec import DEFAULT_POLICY, CheckPolicy

from .test_decide import V2, events, run, snap, status
from .world import World, change_image, initialized_world, tutorial_canary

LIMIT3 = CheckPolicy(consecutive_error_limit=3)
IGNORE = CheckPolicy(nodata="ignore")
DRY = CheckPolicy(dry_run=True)
DELAY = CheckPolicy(initial_delay_seconds=60.0)


def one(verdict: Verdict, policy: CheckPolicy = DEFAULT_POLICY, key: str = "metric/m") -> Measured:
    return Measured(key, CheckResult("m", verdict, message=f"m {verdict}"), policy)


# (checks, streaks before, elapsed) -> (outcome, counted per check, streaks after)
ALGEBRA: list[tuple[str, list[Measured], dict[str, int], float | None, str, list[bool], dict[str, int]]] = [
    ("all pass", [one("pass"), one("pass", key="metric/n")], {}, 0.0, "pass", [True, True], {}),
    ("a fail fails", [one("pass"), one("fail", key="metric/n")], {}, 0.0, "fail", [True, True], {}),
    ("error counts by default", [one("error")], {}, 0.0, "fail", [True], {"metric/m": 1}),
    ("nodata counts by default", [one("nodata")], {}, 0.0, "fail", [True], {}),
    ("nodata ignored", [one("nodata", IGNORE)], {}, 0.0, "pass", [False], {}),
    ("ignore says nothing of errors", [one("error", IGNORE)], {}, 0.0, "fail", [True], {"metric/m": 1}),
    ("first error of 3 tolerated", [one("error", LIMIT3)], {}, 0.0, "pass", [False], {"metric/m": 1}),
    ("second error of 3 tolerated", [one("error", LIMIT3)], {"metric/m": 1}, 0.0, "pass", [False],
     {"metric/m": 2}),
    ("third error of 3 counts", [one("error", LIMIT3)], {"metric/m": 2}, 0.0, "fail", [True],
     {"metric/m": 3}),
    ("the streak goes on counting", [one("error", LIMIT3)], {"metric/m": 3}, 0.0, "fail", [True],
     {"metric/m": 4}),
    ("a pass ends the streak", [one("pass", LIMIT3)], {"metric/m": 2}, 0.0, "pass", [True], {}),
    ("a fail ends the streak and counts", [one("fail", LIMIT3)], {"metric/m": 2}, 0.0, "fail", [True], {}),
    ("streaks are per check", [one("error", LIMIT3), one("pass", key="metric/n")], {"metric/n": 5}, 0.0,
     "pass", [False, True], {"metric/m": 1}),
    ("dry run fail", [one("fail", DRY)], {}, 0.0, "pass", [False], {}),
    ("dry run error keeps its streak", [one("error", DRY)], {}, 0.0, "pass", [False], {"metric/m": 1}),
    ("dry run inconclusive", [one("inconclusive", DRY)], {}, 0.0, "pass", [False], {}),
    ("dry run beside a real fail", [one("fail", DRY), one("fail", key="metric/n")], {}, 0.0, "fail",
     [False, True], {}),
    ("inconclusive holds", [one("inconclusive"), one("pass", key="metric/n")], {}, 0.0, "inconclusive",
     [True, True], {}),
    ("fail wins over inconclusive", [one("inconclusive"), one("fail", key="metric/n")], {}, 0.0, "fail",
     [True, True], {}),
    ("during the initial delay", [one("fail", DELAY)], {}, 59.0, "pass", [False], {}),
    ("after the initial delay", [one("fail", DELAY)], {}, 60.0, "fail", [True], {}),
    ("unknown run start: delay over", [one("fail", DELAY)], {}, None, "fail", [True], {}),
    ("inconclusive during the delay", [one("inconclusive", DELAY)], {}, 10.0, "pass", [False], {}),
    ("tolerated error then nodata ignored", [one("error", LIMIT3), one("nodata", IGNORE, "metric/n")], {},
     0.0, "pass", [False, False], {"metric/m": 1}),
]


@pytest.mark.parametrize(("checks", "before", "elapsed", "outcome", "counted", "after"),
                         [row[1:] for row in ALGEBRA], ids=[row[0] for row in ALGEBRA])
def test_step_algebra(checks: list[Measured], before: dict[str, int], elapsed: float | None, outcome: str,
                      counted: list[bool], after: dict[str, int]) -> None:
    v = judge_step(checks, tuple(sorted(before.items())), elapsed)
    assert v.outcome == outcome
    assert [r.counted for r in v.results] == counted
    assert dict(v.streaks) == after
    assert all(r.note for r in v.results if not r.counted)  # every result left out says why
    if outcome == "fail":
        assert v.failure is not None and v.failure.counted
        assert v.failure.verdict in ("fail", "error", "nodata")
    assert (v.failure is None) == (outcome != "fail")


def test_notes_say_why() -> None:
    notes = [judge_step([m], (), 0.0).results[0].note for m in
             (one("fail", DRY), one("error", LIMIT3), one("nodata", IGNORE), one("fail", DELAY))]
    assert notes == ["dry run: not counted", "error 1 of 3 in a row: not counted",
                     "no data: ignored (nodata: ignore)", "initial delay 1m0s: not counted"]
    counted = judge_step([one("error", LIMIT3)], (("metric/m", 2),), 0.0).results[0]
    assert counted.note == "error 3 in a row (consecutiveErrorLimit 3)" and counted.counted
    assert judge_step([one("fail", DRY)], (), 0.0).results[0].dry_run


def test_webhooks_are_checks_first_and_shown_with_options() -> None:
    spec = tutorial_canary(webhooks=[
        {"name": "plain", "url": "http://a/"},
        {"name": "tolerant", "url": "http://b/", "consecutiveErrorLimit": 2},
    ])
    hooks = (HookResult("plain", True), HookResult("tolerant", False, "POST http://b/ giving up", error=True))
    checks = (CheckResult("istio_requests_total", "pass", 99.9),
              CheckResult("istio_request_duration_seconds_bucket", "fail", 600.0))
    m = step_measurements(spec, hooks, checks)
    assert [x.key for x in m] == ["webhook/plain", "webhook/tolerant", "metric/istio_requests_total",
                                  "metric/istio_request_duration_seconds_bucket"]
    v = judge_step(m, (), 0.0)
    assert [r.name for r in v.results] == ["tolerant", "istio_requests_total",
                                           "istio_request_duration_seconds_bucket"]  # plain hook: not shown
    assert v.results[0].verdict == "error" and v.results[0].kind == "webhook" and not v.results[0].counted
    assert v.failure is not None and v.failure.name == "istio_request_duration_seconds_bucket"
    no = step_measurements(spec, (HookResult("plain", False, "Forbidden"),), checks)
    failure = judge_step(no, (), 0.0).failure
    assert failure == CheckResult("plain", "fail", message="Forbidden", kind="webhook")


# ---- what the outcomes do to a run ----

def _spec(metric: dict[str, Any], **analysis: Any) -> Any:
    return tutorial_canary(threshold=1, interval="10s", stepWeight=10, maxWeight=30, metrics=[
        {"name": "istio_requests_total", "threshold": 99, "interval": "30s"}, metric], **analysis)


def _checks(verdict: Verdict, value: float | None = 2.0) -> Any:
    return lambda t: (CheckResult("istio_requests_total", "pass", 99.9, ">= 99%"),
                      CheckResult("errors", verdict, value, "<= 1", f"errors {value} > 1"))


ERRORS = {"name": "errors", "query": "sum(x)", "threshold": 1}


def _promoted(w: World) -> bool:
    return w.status.phase in (Phase.SUCCEEDED, Phase.FAILED)


def test_dry_run_failing_every_step_still_promotes() -> None:
    w = initialized_world(_spec({**ERRORS, "dryRun": True}), check_results=_checks("fail"))
    seen: list[float] = []

    def measured(t: float) -> tuple[CheckResult, ...]:
        seen.append(t)
        out: tuple[CheckResult, ...] = _checks("fail")(t)
        return out

    w.check_results = measured
    change_image(w)
    w.run(0.0, 600.0, stop=_promoted)
    assert w.status.phase == Phase.SUCCEEDED, w.rows
    assert len(seen) >= 3  # measured every step
    assert not [e for _, e in w.events if e.message.startswith("Halt")]
    assert w.status.history[0].outcome == "promoted"


def test_dry_run_result_in_status() -> None:
    spec = _spec({**ERRORS, "dryRun": True})
    st = status(Phase.PROGRESSING, last_applied_spec=V2, canary_weight=10, next_step_at=100.0,
                run_started_at=0.0)
    d = run(spec, st, snap(routes=(90, 10)), 100.0, checks=_checks("fail")(100.0))
    assert d.status is not None and d.status.canary_weight == 20 and d.status.failed_checks == 0
    body = status_to_dict(d.status)["checks"][1]
    assert body["verdict"] == "fail" and body.get("dryRun") is True and body.get("counted") is False
    assert body.get("note") == "dry run: not counted"


def test_initial_delay_does_not_count_early_failures() -> None:
    w = initialized_world(_spec({**ERRORS, "initialDelay": "25s"}), check_results=_checks("fail"))
    change_image(w)
    w.run(0.0, 600.0, stop=_promoted)
    assert w.status.phase == Phase.FAILED
    started = w.status.history[0].started_at
    assert started is not None
    halts = [t for t, e in w.events if e.message.startswith("Halt")]
    advances = [t for t, e in w.events if e.message.startswith("Advance")]
    assert halts and halts[0] >= started + 25.0  # nothing counted before the delay
    assert advances and advances[0] < started + 25.0  # steps ran (and advanced) during it


def test_error_streaks_survive_a_restart() -> None:
    """consecutiveErrorLimit 3: two errors in a row are tolerated, the third counts; the streak is in
    status, which the world re-reads from its dict form on every call (a restart's path)."""
    spec = _spec({**ERRORS, "consecutiveErrorLimit": 3})
    st = status(Phase.PROGRESSING, last_applied_spec=V2, canary_weight=10, next_step_at=100.0,
                run_started_at=0.0)
    t = 100.0
    for n in (1, 2):
        d = run(spec, st, snap(routes=(100 - st.canary_weight, st.canary_weight)), t,
                checks=_checks("error", None)(t))
        assert d.status is not None and d.status.failed_checks == 0, events(d)
        st = status_from_dict(status_to_dict(d.status))  # restarted between steps
        assert st.error_streaks == (("metric/errors", n),)
        assert st.next_step_at is not None
        t = st.next_step_at
    d = run(spec, st, snap(routes=(100 - st.canary_weight, st.canary_weight)), t,
            checks=_checks("error", None)(t))
    assert d.status is not None and d.status.phase == Phase.FAILED  # threshold 1: the third error counts
    ok = run(spec, st, snap(routes=(100 - st.canary_weight, st.canary_weight)), t,
             checks=_checks("pass", 0.5)(t))
    assert ok.status is not None and ok.status.error_streaks == ()


def test_webhook_errors_tolerated_then_success() -> None:
    spec = tutorial_canary(threshold=1, interval="10s", stepWeight=10, maxWeight=50, webhooks=[
        {"name": "flaky", "url": "http://flaky/", "consecutiveErrorLimit": 4}])
    w = initialized_world(spec, check_results=lambda t: (
        CheckResult("istio_requests_total", "pass", 99.9),
        CheckResult("istio_request_duration_seconds_bucket", "pass", 300.0)))
    calls: list[float] = []

    def hooks(kind: str, t: float) -> tuple[HookResult, ...]:
        if kind != "rollout":
            return ()
        calls.append(t)
        if len(calls) <= 3:
            return (HookResult("flaky", False, "POST http://flaky/ giving up after 1 attempt(s)",
                               error=True),)
        return (HookResult("flaky", True),)

    w.hook_results = hooks
    change_image(w)
    w.run(0.0, 600.0, stop=_promoted)
    assert w.status.phase == Phase.SUCCEEDED
    assert len(calls) > 3 and not [e for _, e in w.events if e.message.startswith("Halt")]


def test_nodata_ignore_never_fails() -> None:
    w = initialized_world(_spec({**ERRORS, "nodata": "ignore"}), check_results=_checks("nodata", None))
    change_image(w)
    w.run(0.0, 600.0, stop=_promoted)
    assert w.status.phase == Phase.SUCCEEDED


# ---- inconclusive ----

def _held(timeout: str | None = None) -> tuple[Any, Any]:
    extra = {"inconclusiveTimeout": timeout} if timeout else {}
    spec = _spec({**ERRORS, "inconclusiveRange": {"min": 1, "max": 5}}, **extra)
    st = status(Phase.PROGRESSING, last_applied_spec=V2, canary_weight=10, next_step_at=100.0,
                run_started_at=0.0)
    d = run(spec, st, snap(routes=(90, 10)), 100.0, checks=_checks("inconclusive", 3.0)(100.0))
    return spec, d


def test_inconclusive_holds_like_a_gate() -> None:
    spec, d = _held("2m")
    assert d.status is not None
    st = d.status
    assert st.inconclusive_since == 100.0 and st.canary_weight == 10 and st.failed_checks == 0
    assert st.phase == Phase.PROGRESSING and st.next_step_at == 220.0 and d.wake_at == 220.0
    assert "inconclusive" in st.message and "promote or abort" in st.message
    alerts = [a for a in d.actions if getattr(a, "alert", "") == "warn"]
    assert len(alerts) == 1
    later = run(spec, st, snap(routes=(90, 10)), 200.0)
    assert later.status is None and later.actions == ()  # no step, no checks, no advance
    assert not later.is_request


def test_inconclusive_resolved_by_promote_request() -> None:
    spec, d = _held()
    assert d.status is not None
    req = json.dumps({"id": "p1", "action": "promote"})
    out = run(spec, d.status, snap(routes=(90, 10), request=req), 150.0)
    assert out.status is not None and out.status.inconclusive_since is None
    assert out.status.phase == Phase.PROMOTING and any(isinstance(a, Promote) for a in out.actions)


def test_inconclusive_resolved_by_abort_or_resume() -> None:
    spec, d = _held()
    assert d.status is not None
    abort = run(spec, d.status, snap(routes=(90, 10), request=json.dumps({"id": "a", "action": "abort"})),
                150.0)
    assert abort.status is not None and abort.status.phase == Phase.FAILED
    assert abort.status.inconclusive_since is None
    resume = run(spec, d.status, snap(routes=(90, 10), request=json.dumps({"id": "r", "action": "resume"})),
                 150.0, checks=_checks("pass", 0.5)(150.0))
    assert resume.status is not None and resume.status.inconclusive_since is None
    assert resume.status.canary_weight == 20  # measured again at once, and passed


def test_inconclusive_timeout_rolls_back() -> None:
    spec, d = _held("2m")
    assert d.status is not None
    out = run(spec, d.status, snap(routes=(90, 10)), 220.0)
    assert out.status is not None and out.status.phase == Phase.FAILED
    assert "inconclusive analysis not resolved within 2m0s" in out.status.message


def test_inconclusive_timeout_defaults_to_progress_deadline() -> None:
    spec, d = _held()
    assert d.status is not None and d.status.next_step_at == 100.0 + spec.progress_deadline_seconds


def test_run_history_names_only_counted_failures() -> None:
    spec = _spec({**ERRORS, "dryRun": True})
    st = status(Phase.PROGRESSING, last_applied_spec=V2, canary_weight=10, next_step_at=100.0,
                run_started_at=0.0)
    checks = (CheckResult("istio_requests_total", "fail", 90.0, ">= 99%", "success rate 90.00% < 99%"),
              CheckResult("errors", "fail", 7.0, "<= 1", "errors 7.00 > 1"))
    d = run(spec, st, snap(routes=(90, 10)), 100.0, checks=checks)
    assert d.status is not None and d.status.phase == Phase.FAILED
    assert [c.name for c in d.status.history[0].failed_checks] == ["istio_requests_total"]
    assert events(d)[0] == "Halt podinfo.test advancement success rate 90.00% < 99%"
