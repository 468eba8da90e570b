"""Run history and per-step weights in status (``status.history``, ``status.weights``), derived from
the difference between the status a decision started from and the one it ends with, so every phase
module keeps writing only its own fields and no end of a run can be missed.

A run ends when a running phase gives way to Succeeded or Failed (promoted, rolled back, aborted), or
when a new revision restarts the analysis mid-run (superseded). Both lists are bounded: a status write
stays small however long the Canary lives.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal

from canaryd.engine.types import CanaryStatus, Phase, RunRecord

Outcome = Literal["promoted", "rolled back", "aborted", "superseded"]

MAX_RUNS = 10
MAX_WEIGHTS = 100
ABORTED_MARK = "aborted by request"
_IN_RUN = (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING)


def record(orig: CanaryStatus, st: CanaryStatus, now: float) -> CanaryStatus:
    """``st`` with the ended run appended to its history and the weight change recorded."""
    ended = _ended(orig, st, now)
    if ended is not None:
        st = replace(st, history=(ended, *st.history)[:MAX_RUNS])
    if st.phase in _IN_RUN or (ended is not None and st.phase in (Phase.SUCCEEDED, Phase.FAILED)):
        last = st.weights[-1][1] if st.weights else None
        if st.canary_weight != orig.canary_weight and last != st.canary_weight:
            st = replace(st, weights=(*st.weights, (now, st.canary_weight))[-MAX_WEIGHTS:])
    return st


def _ended(orig: CanaryStatus, st: CanaryStatus, now: float) -> RunRecord | None:
    if orig.phase not in _IN_RUN:
        return None
    outcome: Outcome
    if st.phase == Phase.SUCCEEDED:
        outcome = "promoted"
        reason = "promoted by request" if orig.promote_requested else "analysis passed"
    elif st.phase == Phase.FAILED:
        outcome = "aborted" if ABORTED_MARK in st.message else "rolled back"
        reason = st.message
    elif st.last_applied_spec != orig.last_applied_spec or st.run_started_at != orig.run_started_at:
        outcome, reason = "superseded", f"new revision {st.last_applied_spec}"
    else:
        return None
    weights = [w for _, w in orig.weights] + [orig.canary_weight]
    checks = () if outcome == "promoted" else (st.checks or orig.checks)
    failed = tuple(c for c in checks if c.verdict != "pass")
    return RunRecord(revision=orig.last_applied_spec, image=orig.run_image, started_at=orig.run_started_at,
                     ended_at=now, outcome=outcome, reason=reason, max_weight=max(weights),
                     failed_checks=failed)
