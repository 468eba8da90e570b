"""Run history and per-step weights in status (``status.history``, ``status.weights``), derived from
the difference between the status a decision started from and the one it ends with, so every phase
module keeps writing only its own fields and no end of a run can be missed; and each analysis step's
check values (``status.stepChecks``, :func:`add_step`, called by the step itself: two steps may measure
the same values).

A run ends when a running phase gives way to Succeeded or Failed (promoted, rolled back, aborted), or
when a new revision restarts the analysis mid-run (superseded). Both lists are bounded: a status write
stays small however long the Canary lives, and a run's check steps at most ``MAX_CHECK_STEPS``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from canaryd.engine.types import CanaryStatus, CheckResult, Phase, RunRecord, StepChecks

Outcome = Literal["promoted", "rolled back", "aborted", "superseded"]

MAX_RUNS = 10
MAX_WEIGHTS = 100
MAX_CHECK_STEPS = 20  # ~200 bytes a step with two checks (tests/engine/test_step_checks.py): <= ~4 KB
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


def add_step(st: CanaryStatus, now: float, checks: tuple[CheckResult, ...]) -> tuple[StepChecks, ...]:
    """``st.step_checks`` with this step's checks (name, value, verdict: the thresholds and messages are
    in ``status.checks``) measured at ``st.canary_weight``; the oldest steps drop off past the bound."""
    if not checks:
        return st.step_checks
    kept = tuple(CheckResult(c.name, c.verdict, c.value) for c in checks)
    return (*st.step_checks, StepChecks(now, st.canary_weight, kept))[-MAX_CHECK_STEPS:]


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
    # the results that failed the run (not a dry run's, nor a tolerated error's: engine/verdicts.py)
    failed = tuple(replace(c, report=None) for c in checks if c.verdict != "pass" and c.counted)
    report = next((c.report for c in st.checks or orig.checks if c.report is not None), None)
    return RunRecord(revision=orig.last_applied_spec, image=orig.run_image, started_at=orig.run_started_at,
                     ended_at=now, outcome=outcome, reason=reason, max_weight=max(weights),
                     failed_checks=failed, judge=None if report is None else judge_summary(report))


def judge_summary(report: dict[str, Any]) -> dict[str, Any]:
    """The judge's report as the run history keeps it: verdict, score, message and per metric its
    classification, samples, ratio and p-value (the full report is in ``status.checks`` while it runs)."""
    keep = ("name", "classification", "samples", "ratio", "pValue")
    return {"verdict": report.get("verdict"), "score": report.get("score"), "message": report.get("message"),
            "metrics": [{k: m[k] for k in keep if k in m} for m in report.get("metrics") or []
                        if isinstance(m, dict)]}
