"""``.status`` of a Canary <-> :class:`CanaryStatus`, and the ``Promoted`` condition.

Reading is tolerant (status may have been written by Flagger, by an older canaryd, or edited by
hand): a missing, foreign or invalid field gives its default, never an exception, so a bad status
can never wedge a canary. Writing produces Flagger's field names, so kubectl columns, ``kubectl
wait --for=condition=promoted`` and tools written for Flagger keep working.

CRD-facing fields written by :func:`status_to_dict` (the CRD schema must allow all of them)::

    phase                 string   always (Flagger's enum; "" before the first decision)
    canaryWeight          integer  always
    failedChecks          integer  always
    iterations            integer  always
    lastAppliedSpec       string   when set      canaryd hashes start with "cd1:"
    lastPromotedSpec      string   when set
    trackedConfigs        object   when non-empty  {"configmap/<name>"|"secret/<name>": checksum}
    lastTransitionTime    string   RFC3339 (seconds), when set
    conditions            array    [{type, status, reason, message, lastUpdateTime, lastTransitionTime}]
                                   "Promoted" always first; "Valid" (status False) while the Canary
                                   or its target is unusable
    # canaryd's own fields
    nextStepAt            string   RFC3339 with milliseconds, when set (next analysis/gate step)
    waitingSince          string   RFC3339 with milliseconds, when set (start of a rollout wait)
    checks                array    [{name, verdict, value (number|null), threshold, message}], plus
                                   counted: false, note, dryRun: true, kind when not the defaults
                                   (engine/verdicts.py); verdict also "inconclusive"; the judge's
                                   entry (kind judge) carries its report as ``judge``
    message               string   when non-empty (why the canary is waiting/halted/invalid)
    observedGeneration    integer  always
    mirrored              boolean  when true
    sessionAffinityCookie, primarySessionAffinityCookie, previousSessionAffinityCookie
                          string   when set (Flagger's fields; engine/cookies.py decides them)
    lastRequest           object   {id, action, result: done|refused|ignored, message, at}
                                   (engine/requests.py)
    pausedBy              string   when paused: the id of the pause request
    promoteRequested      boolean  when true: a promote request skipped the rest of the analysis
    runStartedAt          string   RFC3339, when the current (or last) run began
    runImage              string   the target's first container image in that run
    weights               array    [{at, weight}] per-step weights of the current run (at most 100)
    stepChecks            array    [{at, weight, checks: [{name, value, verdict}]}] each analysis step's
                                   checks in the current run (at most 20; thresholds in ``checks``)
    errorStreaks          object   {"metric/<name>"|"webhook/<name>"|"judge": errors in a row} when any
                                   (engine/verdicts.py: consecutiveErrorLimit survives a restart)
    inconclusiveSince     string   RFC3339 with milliseconds: the run waits for a person on inconclusive
                                   checks since then (engine/inconclusive.py)
    scaleDownGeneration   integer  when set: the target's generation when a phase at rest was decided
                                   with its scale-to-zero (engine/at_rest.py repeats a lost one)
    history               array    [{revision, image, startedAt, endedAt, outcome, reason, maxWeight,
                                   failedChecks: [{name, value, threshold}], judge (the run's last
                                   judgement, shortened: engine/history.py)}], newest first, at most 10
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, cast, get_args

from canaryd.engine.types import CanaryStatus, CheckResult, LastRequest, Phase, RunRecord, StepChecks, Verdict
from canaryd.model.fields import parse_time
from canaryd.model.objects import CanaryStatusBody, CheckBody

PROMOTED = "Promoted"
VALID = "Valid"

_PROMOTED_TABLE: dict[Phase, tuple[str, str]] = {
    Phase.INITIALIZING: ("Unknown", "New {kind} detected, starting initialization."),
    Phase.INITIALIZED: ("True", "{kind} initialization completed."),
    Phase.WAITING: ("Unknown", "Waiting for approval."),
    Phase.WAITING_PROMOTION: ("Unknown", "Waiting for approval."),
    Phase.PROGRESSING: ("Unknown", "New revision detected, progressing canary analysis."),
    Phase.PROMOTING: ("Unknown", "Canary analysis completed, starting primary rolling update."),
    Phase.FINALISING: ("Unknown", "Canary analysis completed, routing all traffic to primary."),
    Phase.SUCCEEDED: ("True", "Canary analysis completed successfully, promotion finished."),
    Phase.FAILED: ("False", "Canary analysis failed, {kind} scaled to zero."),
}


# ---- time ----


def rfc3339(t: float, *, millis: bool = False) -> str:
    """UTC RFC3339 text of an epoch time (``Z`` suffix); seconds precision like Kubernetes' metav1.Time
    unless ``millis``."""
    dt = datetime.fromtimestamp(t, UTC)
    if millis:
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- conditions ----


def promoted_condition(
    phase: Phase, kind: str, now: float, previous: tuple[dict[str, Any], ...] = (), why: str = ""
) -> dict[str, Any]:
    """Flagger's single ``Promoted`` condition for ``phase`` (reason strings as Flagger writes them).
    On ``Failed`` the message also carries ``why`` (status.message: the failed checks, the deadline,
    the abort), so a health check that only reads conditions (Argo CD's) shows why the run failed.
    The previous condition is kept as it was when status, reason and message are unchanged;
    ``lastTransitionTime`` is kept while the status is unchanged."""
    cstatus, template = _PROMOTED_TABLE.get(phase, _PROMOTED_TABLE[Phase.INITIALIZING])
    message = template.format(kind=kind)
    if phase == Phase.FAILED and why:
        message = f"{message} {why}"
    old = next((c for c in previous if c.get("type") == PROMOTED), None)
    if (old is not None and old.get("status") == cstatus and old.get("reason") == phase.value
            and old.get("message") == message):
        return old
    stamp = rfc3339(now)
    transition = stamp
    if old is not None and old.get("status") == cstatus and isinstance(old.get("lastTransitionTime"), str):
        transition = old["lastTransitionTime"]
    return {
        "type": PROMOTED,
        "status": cstatus,
        "reason": phase.value,
        "message": message,
        "lastUpdateTime": stamp,
        "lastTransitionTime": transition,
    }


def valid_condition(problem: str | None, reason: str, now: float,
                    previous: tuple[dict[str, Any], ...] = ()) -> dict[str, Any] | None:
    """canaryd's ``Valid`` condition: present (status False) only while something is wrong."""
    if problem is None:
        return None
    old = next((c for c in previous if c.get("type") == VALID), None)
    if old is not None and old.get("message") == problem and old.get("reason") == reason:
        return old
    stamp = rfc3339(now)
    return {"type": VALID, "status": "False", "reason": reason, "message": problem,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp}


def with_conditions(promoted: dict[str, Any], valid: dict[str, Any] | None) -> tuple[dict[str, Any], ...]:
    """Promoted first, then Valid when present; conditions of other types are dropped."""
    return (promoted,) if valid is None else (promoted, valid)


def problem_of(status: CanaryStatus) -> str | None:
    """The message of a standing ``Valid=False`` condition, if any."""
    for c in status.conditions:
        if c.get("type") == VALID and c.get("status") == "False":
            return str(c.get("message") or "")
    return None


# ---- dict <-> CanaryStatus ----


def status_from_dict(d: Any) -> CanaryStatus:
    """Read ``.status``; never raises. Unknown phases, wrong types and bad times give defaults."""
    if not isinstance(d, dict):
        return CanaryStatus()
    phase: Phase | None
    try:
        phase = Phase(str(d["phase"])) if d.get("phase") else None
    except ValueError:
        phase = None
    tracked_raw = d.get("trackedConfigs")
    tracked: tuple[tuple[str, str], ...] = ()
    if isinstance(tracked_raw, dict):
        tracked = tuple(sorted((str(k), str(v)) for k, v in tracked_raw.items() if isinstance(v, str)))
    conditions = tuple(c for c in _list(d.get("conditions")) if isinstance(c, dict))
    checks = tuple(_check(c) for c in _list(d.get("checks")) if isinstance(c, dict))
    return CanaryStatus(
        phase=phase,
        canary_weight=_clamp(_int(d.get("canaryWeight")), 0, 100),
        failed_checks=max(0, _int(d.get("failedChecks"))),
        iterations=max(0, _int(d.get("iterations"))),
        last_applied_spec=_str(d.get("lastAppliedSpec")),
        last_promoted_spec=_str(d.get("lastPromotedSpec")),
        tracked_configs=tracked,
        last_transition_time=parse_time(d.get("lastTransitionTime")),
        conditions=conditions,
        next_step_at=parse_time(d.get("nextStepAt")),
        waiting_since=parse_time(d.get("waitingSince")),
        checks=checks,
        message=_str(d.get("message")),
        observed_generation=max(0, _int(d.get("observedGeneration"))),
        mirrored=d.get("mirrored") is True,
        ignored_fields_generation=max(0, _int(d.get("ignoredFieldsGeneration"))),
        session_affinity_cookie=_str(d.get("sessionAffinityCookie")),
        primary_session_affinity_cookie=_str(d.get("primarySessionAffinityCookie")),
        previous_session_affinity_cookie=_str(d.get("previousSessionAffinityCookie")),
        last_request=_last_request(d.get("lastRequest")),
        paused_by=_str(d.get("pausedBy")),
        promote_requested=d.get("promoteRequested") is True,
        run_started_at=parse_time(d.get("runStartedAt")),
        run_image=_str(d.get("runImage")),
        weights=tuple((t, _clamp(_int(w.get("weight")), 0, 100)) for w in _list(d.get("weights"))
                      if isinstance(w, dict) and (t := parse_time(w.get("at"))) is not None)[-100:],
        step_checks=tuple(s for v in _list(d.get("stepChecks")) if (s := _step(v)) is not None)[-20:],
        history=tuple(_run(r) for r in _list(d.get("history")) if isinstance(r, dict))[:10],
        scale_down_generation=max(0, _int(d.get("scaleDownGeneration"))),
        error_streaks=_streaks(d.get("errorStreaks")),
        inconclusive_since=parse_time(d.get("inconclusiveSince")),
    )


def status_to_dict(s: CanaryStatus) -> CanaryStatusBody:
    """``.status`` body for the status subresource (see the module docstring for the fields)."""
    out: CanaryStatusBody = {
        "phase": s.phase.value if s.phase is not None else "",
        "canaryWeight": s.canary_weight,
        "failedChecks": s.failed_checks,
        "iterations": s.iterations,
    }
    if s.last_applied_spec:
        out["lastAppliedSpec"] = s.last_applied_spec
    if s.last_promoted_spec:
        out["lastPromotedSpec"] = s.last_promoted_spec
    if s.tracked_configs:
        out["trackedConfigs"] = dict(s.tracked_configs)
    if s.last_transition_time is not None:
        out["lastTransitionTime"] = rfc3339(s.last_transition_time)
    if s.conditions:
        out["conditions"] = [dict(c) for c in s.conditions]
    if s.next_step_at is not None:
        out["nextStepAt"] = rfc3339(s.next_step_at, millis=True)
    if s.waiting_since is not None:
        out["waitingSince"] = rfc3339(s.waiting_since, millis=True)
    if s.checks:
        out["checks"] = [_check_body(c) for c in s.checks]
    if s.message:
        out["message"] = s.message
    out["observedGeneration"] = s.observed_generation
    if s.mirrored:
        out["mirrored"] = True
    if s.ignored_fields_generation:
        out["ignoredFieldsGeneration"] = s.ignored_fields_generation
    if s.session_affinity_cookie:
        out["sessionAffinityCookie"] = s.session_affinity_cookie
    if s.primary_session_affinity_cookie:
        out["primarySessionAffinityCookie"] = s.primary_session_affinity_cookie
    if s.previous_session_affinity_cookie:
        out["previousSessionAffinityCookie"] = s.previous_session_affinity_cookie
    if s.last_request is not None:
        r = s.last_request
        out["lastRequest"] = {"id": r.id, "action": r.action, "result": r.result, "message": r.message,
                              "at": rfc3339(r.at)}
    if s.paused_by:
        out["pausedBy"] = s.paused_by
    if s.promote_requested:
        out["promoteRequested"] = True
    if s.run_started_at is not None:
        out["runStartedAt"] = rfc3339(s.run_started_at)
    if s.run_image:
        out["runImage"] = s.run_image
    if s.weights:
        out["weights"] = [{"at": rfc3339(t, millis=True), "weight": w} for t, w in s.weights]
    if s.step_checks:
        out["stepChecks"] = [
            {"at": rfc3339(x.at, millis=True), "weight": x.weight,
             "checks": [{"name": c.name, "value": _json_number(c.value), "verdict": c.verdict}
                        for c in x.checks]}
            for x in s.step_checks
        ]
    if s.history:
        out["history"] = [_run_body(r) for r in s.history]
    if s.scale_down_generation:
        out["scaleDownGeneration"] = s.scale_down_generation
    if s.error_streaks:
        out["errorStreaks"] = dict(s.error_streaks)
    if s.inconclusive_since is not None:
        out["inconclusiveSince"] = rfc3339(s.inconclusive_since, millis=True)
    return out


def _run_body(r: RunRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "revision": r.revision, "image": r.image, "endedAt": rfc3339(r.ended_at), "outcome": r.outcome,
        "reason": r.reason, "maxWeight": r.max_weight,
        "failedChecks": [{"name": c.name, "value": _json_number(c.value), "threshold": c.threshold}
                         for c in r.failed_checks],
    }
    if r.started_at is not None:
        body["startedAt"] = rfc3339(r.started_at)
    if r.judge is not None:
        body["judge"] = r.judge
    return body


def _streaks(v: Any) -> tuple[tuple[str, int], ...]:
    if not isinstance(v, dict):
        return ()
    return tuple(sorted((str(k), c) for k, n in v.items() if (c := _int(n)) > 0))[:64]


def _last_request(v: Any) -> LastRequest | None:
    if not isinstance(v, dict) or not isinstance(v.get("id"), str):
        return None
    result = v.get("result")
    return LastRequest(id=v["id"], action=_str(v.get("action")),
                       result=result if result in ("done", "refused", "ignored") else "refused",
                       message=_str(v.get("message")), at=parse_time(v.get("at")) or 0.0)


def _run(v: dict[str, Any]) -> RunRecord:
    outcome = v.get("outcome")
    checks = tuple(
        CheckResult(name=_str(c.get("name")), verdict="fail", threshold=_str(c.get("threshold")),
                    value=_check(c).value)
        for c in _list(v.get("failedChecks")) if isinstance(c, dict))
    return RunRecord(
        revision=_str(v.get("revision")), image=_str(v.get("image")),
        started_at=parse_time(v.get("startedAt")),
        ended_at=parse_time(v.get("endedAt")) or 0.0,
        outcome=outcome if outcome in ("promoted", "rolled back", "aborted", "superseded") else "rolled back",
        reason=_str(v.get("reason")), max_weight=_clamp(_int(v.get("maxWeight")), 0, 100),
        failed_checks=checks, judge=v.get("judge") if isinstance(v.get("judge"), dict) else None)


def _step(v: Any) -> StepChecks | None:
    at = parse_time(v.get("at")) if isinstance(v, dict) else None
    if at is None:
        return None
    checks = tuple(_check(c) for c in _list(v.get("checks")) if isinstance(c, dict))
    return StepChecks(at, _clamp(_int(v.get("weight")), 0, 100), checks)


def _check(c: dict[str, Any]) -> CheckResult:
    value = c.get("value")
    return CheckResult(
        name=_str(c.get("name")),
        verdict=_verdict(c.get("verdict")),
        value=float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None,
        threshold=_str(c.get("threshold")),
        message=_str(c.get("message")),
        counted=c.get("counted") is not False,
        note=_str(c.get("note")),
        dry_run=c.get("dryRun") is True,
        kind=_str(c.get("kind")) or "metric",
        report=c.get("judge") if isinstance(c.get("judge"), dict) else None,
    )


def _check_body(c: CheckResult) -> CheckBody:
    """A ``status.checks`` entry; the verdict algebra's fields only when they differ from the defaults,
    so a status without them reads as before (and Flagger-era readers see the same five keys)."""
    body: CheckBody = {"name": c.name, "verdict": c.verdict, "value": _json_number(c.value),
                            "threshold": c.threshold, "message": c.message}
    if not c.counted:
        body["counted"] = False
    if c.note:
        body["note"] = c.note
    if c.dry_run:
        body["dryRun"] = True
    if c.kind != "metric":
        body["kind"] = c.kind
    if c.report is not None:
        body["judge"] = c.report
    return body


def _verdict(v: Any) -> Verdict:
    """A stored verdict; anything else (a hand-edited status) reads as "error"."""
    for known in get_args(Verdict):
        if v == known:
            return cast(Verdict, known)
    return "error"


def _json_number(v: float | None) -> float | None:
    return None if v is None or math.isnan(v) or math.isinf(v) else v


def _int(v: Any) -> int:
    if isinstance(v, bool):
        return 0
    if isinstance(v, int):
        return v
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return 0


def _list(v: Any) -> list[Any]:
    return v if isinstance(v, list) else []


def _str(v: Any) -> str:
    return v if isinstance(v, str) else ""


def _clamp(v: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, v))
