"""The Promoted condition carries why a run failed (Argo CD's health check reads only conditions)."""

from __future__ import annotations

import pytest

from canaryd.engine.status import promoted_condition
from canaryd.engine.types import Phase

FAILED_BASE = "Canary analysis failed, Deployment scaled to zero."
WHY = "Failed checks threshold reached 2 (request-success-rate 91.2 < 99)"

# (phase, why, status, message): the reason strings stay Flagger's; only Failed appends why.
TABLE = [
    (Phase.FAILED, WHY, "False", f"{FAILED_BASE} {WHY}"),
    (Phase.FAILED, "Rolled back: aborted by request r-1", "False",
     f"{FAILED_BASE} Rolled back: aborted by request r-1"),
    (Phase.FAILED, "", "False", FAILED_BASE),
    (Phase.PROGRESSING, WHY, "Unknown", "New revision detected, progressing canary analysis."),
    (Phase.WAITING_PROMOTION, "waiting for approval gate", "Unknown", "Waiting for approval."),
    (Phase.SUCCEEDED, WHY, "True", "Canary analysis completed successfully, promotion finished."),
]


@pytest.mark.parametrize(("phase", "why", "cstatus", "message"), TABLE)
def test_failed_message_carries_reason(phase: Phase, why: str, cstatus: str, message: str) -> None:
    c = promoted_condition(phase, "Deployment", 0.0, why=why)
    assert (c["type"], c["status"], c["reason"], c["message"]) == ("Promoted", cstatus, phase.value, message)


def test_new_reason_replaces_kept_condition_but_keeps_transition_time() -> None:
    first = promoted_condition(Phase.FAILED, "Deployment", 100.0, why="deadline exceeded")
    assert promoted_condition(Phase.FAILED, "Deployment", 150.0, (first,), "deadline exceeded") is first
    second = promoted_condition(Phase.FAILED, "Deployment", 200.0, (first,), WHY)
    assert second["message"] == f"{FAILED_BASE} {WHY}"
    assert second["lastTransitionTime"] == first["lastTransitionTime"] == "1970-01-01T00:01:40Z"
    assert second["lastUpdateTime"] == "1970-01-01T00:03:20Z"
