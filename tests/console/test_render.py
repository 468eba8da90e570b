"""kubectl canary's text: list rows and table, the weight bar, get's view, plain tables of inputs."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.console import render
from canaryd.model.fields import parse_time

CANARY: dict[str, Any] = {
    "metadata": {"namespace": "test", "name": "podinfo", "generation": 2},
    "spec": {"analysis": {"threshold": 5, "maxWeight": 50, "stepWeight": 10}},
    "status": {"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1, "observedGeneration": 2,
               "lastAppliedSpec": "cd1:0123456789abcdef", "nextStepAt": "2026-01-01T00:00:10.000Z",
               "message": "Halt podinfo.test advancement success rate 43.20% < 99%",
               "checks": [
                   {"name": "request-success-rate", "verdict": "fail", "value": 43.2, "threshold": ">= 99%",
                    "message": "success rate 43.20% < 99%"},
                   {"name": "request-duration", "verdict": "pass", "value": 12.5, "threshold": "<= 500ms"}]},
}
T0 = parse_time("2026-01-01T00:00:00Z") or 0.0


@pytest.mark.parametrize(("weight", "top", "bar"), [
    (0, 50, "[....................] 0%/50%"),
    (25, 50, "[##########..........] 25%/50%"),
    (50, 50, "[####################] 50%/50%"),
    (80, 50, "[####################] 80%/50%"),  # never wider than the bar
    (5, 0, "[####################] 5%/1%"),  # no maximum known: no division by zero
])
def test_weight_bar(weight: int, top: int, bar: str) -> None:
    assert render.weight_bar(weight, top) == bar


@pytest.mark.parametrize(("seconds", "text"),
                         [(0, "0s"), (9.6, "10s"), (59, "59s"), (61, "1m01s"), (-3, "0s")])
def test_duration_text(seconds: float, text: str) -> None:
    assert render.duration_text(seconds) == text


def test_list_table_aligns_columns_and_shows_verdicts() -> None:
    other = {"metadata": {"namespace": "prod", "name": "api"}, "status": {"phase": "Succeeded"}}
    rows = [render.row(CANARY), render.row(other)]
    assert render.table(rows, namespaces=True) == [
        "NAMESPACE   NAME      STATUS        WEIGHT   FAILED   CHECKS",
        "test        podinfo   Progressing   20       1/5      request-success-rate=FAIL,request-duration=ok",
        "prod        api       Succeeded     0        0/0      -",
    ]
    assert render.table(rows[1:], namespaces=False) == [
        "NAME   STATUS      WEIGHT   FAILED   CHECKS", "api    Succeeded   0        0/0      -"]


def test_view_shows_weight_checks_next_step_and_recent_events_in_order() -> None:
    events = [{"metadata": {"name": f"e{i}", "resourceVersion": str(i)}, "type": "Normal",
               "message": f"Advance podinfo.test canary weight {i * 10}",
               "lastTimestamp": f"2026-01-01T00:00:0{i}Z"} for i in (2, 1)]
    events.append({"metadata": {"name": "w", "resourceVersion": "9"}, "type": "Warning", "count": 2,
                   "message": "Halt", "lastTimestamp": "2026-01-01T00:00:03Z"})
    assert render.view(CANARY, events, T0 + 4) == [
        "Canary test/podinfo   phase Progressing   revision cd1:0123456789abcdef",
        "weight  [########............] 20%/50%",
        "failed checks 1/5",
        "next step in 6s",
        "message: Halt podinfo.test advancement success rate 43.20% < 99%",
        "checks:",
        "  request-success-rate      43.20%  >= 99%       FAIL  success rate 43.20% < 99%",
        "  request-duration         12.50ms  <= 500ms     ok",
        "events:",
        "  00:00:01 Normal  Advance podinfo.test canary weight 10",
        "  00:00:02 Normal  Advance podinfo.test canary weight 20",
        "  00:00:03 Warning Halt (x2)",
    ]


@pytest.mark.parametrize(("phase", "gate", "countdown"), [
    ("Waiting", "gate: confirm-rollout gate closed: the run waits for approval to start", True),
    ("WaitingPromotion", "gate: confirm-promotion gate closed: the run waits for approval to promote", True),
    ("Succeeded", None, False),  # at rest: no next step shown even when a stale nextStepAt remains
])
def test_view_gates_and_countdown_by_phase(phase: str, gate: str | None, countdown: bool) -> None:
    canary = {**CANARY, "status": {**CANARY["status"], "phase": phase, "checks": [], "message": ""}}
    lines = render.view(canary, [], T0)
    assert ("next step in 10s" in lines) is countdown
    assert [x for x in lines if x.startswith("gate:")] == ([gate] if gate else [])


def test_max_weight_from_step_weights_and_default() -> None:
    steps = {"spec": {"analysis": {"stepWeights": [1, 20, 80]}}}
    assert render.progress_of(steps).max_weight == 80
    assert render.progress_of({}).max_weight == 100


def test_generation_not_yet_observed() -> None:
    stale = {**CANARY, "metadata": {**CANARY["metadata"], "generation": 3}}
    assert render.progress_of(stale).generation_seen is False
    assert render.progress_of(CANARY).generation_seen is True


def test_a_live_view_shows_each_checks_earlier_steps() -> None:
    steps: list[tuple[render.Check, ...]] = []
    for rate in (100.0, 100.0, 98.25, None):
        c = {**CANARY, "status": {**CANARY["status"], "checks": [
            {"name": "request-success-rate", "verdict": "pass" if rate else "nodata", "value": rate,
             "threshold": ">= 99%"}]}}
        render.record_step(steps, render.progress_of(c))
    assert len(steps) == 3  # the same values twice: one step
    [line] = [x for x in render.view(c, [], T0, steps=steps) if "request-success-rate" in x]
    assert line.endswith("no data  (earlier steps: 100.0 98.2)"), line
    for _ in range(10):
        render.record_step(steps, render.progress_of({**CANARY, "status": {**CANARY["status"], "checks": [
            {"name": "x", "verdict": "pass", "value": float(len(steps) + _)}]}}))
    assert len(steps) == 5


def test_get_shows_earlier_steps_from_status_without_having_watched_them() -> None:
    def step(rate: float | None, verdict: str) -> dict[str, Any]:
        return {"at": "2026-01-01T00:00:00.000Z", "weight": 10,
                "checks": [{"name": "request-success-rate", "value": rate, "verdict": verdict}]}
    kept = [step(100.0, "pass"), step(99.5, "pass"), step(None, "nodata"), step(43.2, "fail")]
    c = {**CANARY, "status": {**CANARY["status"], "stepChecks": kept}}
    assert [s[0].value for s in render.status_steps(c)] == [100.0, 99.5, None, 43.2]
    [line] = [x for x in render.view(c, [], T0) if "request-success-rate" in x]
    assert line.endswith("(earlier steps: 100.0 99.5 -)"), line  # the last step is the current value
    assert render.status_steps({"status": {"stepChecks": "junk"}}) == []


def test_verdict_notes_and_inconclusive_are_shown() -> None:
    """The verdict algebra's fields (docs/verdicts.md) in get's view, list's marks and the one-line form;
    a result that did not count is not a reason a run failed."""
    from canaryd.console.wait_result import failure_reason

    status = {"phase": "Progressing", "canaryWeight": 10, "checks": [
        {"name": "errors", "verdict": "fail", "value": 7, "threshold": "<= 5",
         "message": "errors 7.00 > 5", "counted": False, "note": "dry run: not counted", "dryRun": True},
        {"name": "ratio", "verdict": "inconclusive", "value": 3, "threshold": "<= 5, inconclusive >= 2",
         "message": "ratio 3.00 within inconclusive range >= 2"}]}
    canary = {**CANARY, "status": status}
    lines = render.view(canary, [], T0)
    errors = next(line for line in lines if line.startswith("  errors "))
    assert errors.split() == ["errors", "7.00", "<=", "5", "FAIL", "(dry", "run:", "not", "counted)",
                              "errors", "7.00", ">", "5"], errors
    assert any(line.startswith("  ratio") and "INCONCLUSIVE" in line for line in lines), lines
    assert render.verdicts(render.progress_of(canary)) == "errors=FAIL,ratio=INCONCLUSIVE"
    p = render.progress_of(canary)
    assert render.render_check(p.checks[0]) == "errors 7.00 (<= 5: FAIL, dry run: not counted)"
    assert failure_reason({**canary, "status": {**status, "message": "why"}}) == "why"
