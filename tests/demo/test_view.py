"""The demo's terminal lines: progress from a Canary, checks with their units, Events printed once."""

from __future__ import annotations

from typing import Any

import pytest

from canaryd.demo.view import Check, new_events, progress_of, render, render_check

CANARY: dict[str, Any] = {
    "spec": {"analysis": {"threshold": 5}},
    "status": {"phase": "Progressing", "canaryWeight": 20, "failedChecks": 1, "checks": [
        {"name": "request-success-rate", "verdict": "fail", "value": 43.2, "threshold": ">= 99%"},
        {"name": "request-duration", "verdict": "pass", "value": 0.49, "threshold": "<= 500ms"},
    ]},
}


@pytest.mark.parametrize(("check", "line"), [
    (Check("request-success-rate", "pass", 99.5, ">= 99%"), "request-success-rate 99.50% (>= 99%: ok)"),
    (Check("request-duration", "fail", 1515.0, "<= 500ms"), "request-duration 1515.00ms (<= 500ms: FAIL)"),
    (Check("request-success-rate", "nodata", None, ">= 99%"),
     "request-success-rate no data (>= 99%: no data)"),
    (Check("custom", "error", None, ""), "custom no data (ERROR)"),
    (Check("custom", "pass", 1.5, ">= 1 and <= 5"), "custom 1.50 (>= 1 and <= 5: ok)"),
])
def test_render_check(check: Check, line: str) -> None:
    assert render_check(check) == line


def test_progress_line() -> None:
    p = progress_of(CANARY)
    assert render(p, 12.34) == ("  12.3s  Progressing  weight  20%  failed checks 1/5  | "
                                "request-success-rate 43.20% (>= 99%: FAIL); "
                                "request-duration 0.49ms (<= 500ms: ok)")


@pytest.mark.parametrize(("canary", "phase", "threshold"), [
    ({}, "-", 0),
    ({"spec": {"canaryAnalysis": {"threshold": 10}}, "status": {"phase": "Initialized"}}, "Initialized", 10),
    ({"status": {"phase": "Failed", "checks": ["junk", {"name": "x", "value": "NaN"}]}}, "Failed", 0),
])
def test_progress_of_tolerates_missing_fields(canary: dict[str, Any], phase: str, threshold: int) -> None:
    p = progress_of(canary)
    assert (p.phase, p.threshold) == (phase, threshold)


def test_progress_key_ignores_values_but_not_verdicts() -> None:
    a = progress_of(CANARY)
    moved = {**CANARY, "status": {**CANARY["status"], "checks": [
        {**c, "value": 50.0} for c in CANARY["status"]["checks"]]}}
    assert progress_of(moved).key() == a.key()
    passed = {**CANARY, "status": {**CANARY["status"], "checks": [
        {**c, "verdict": "pass"} for c in CANARY["status"]["checks"]]}}
    assert progress_of(passed).key() != a.key()


def ev(name: str, msg: str, count: int = 1, ts: str = "2026-01-01T00:00:01Z", warning: bool = False,
       rv: str = "1") -> dict[str, Any]:
    return {"metadata": {"name": name, "resourceVersion": rv}, "message": msg, "count": count,
            "lastTimestamp": ts, "type": "Warning" if warning else "Normal"}


def test_events_printed_once_in_order_and_repeats_shown() -> None:
    seen: dict[str, int] = {}
    first = [ev("b", "Advance weight 20", ts="2026-01-01T00:00:02Z"), ev("a", "Advance weight 10")]
    assert new_events(seen, first) == ["         event Normal  Advance weight 10",
                                       "         event Normal  Advance weight 20"]
    assert new_events(seen, first) == []
    again = [*first, ev("c", "Halt", warning=True, ts="2026-01-01T00:00:03Z"),
             ev("a", "Advance weight 10", count=2, ts="2026-01-01T00:00:04Z")]
    assert new_events(seen, again) == ["         event Warning Halt",
                                       "         event Normal  Advance weight 10 (x2)"]
