"""Requests: operating a release by hand through the ``canaryd.io/request`` annotation.

The annotation holds ``{"id", "action", "revision"?, "full"?}`` (docs/operations.md, "Requests").
It is an input of the decision like the snapshot: ``decide`` answers it once per id, and the answer
(``status.lastRequest``) is written in the same status write that carries the action out, so a crash
between accepting and acting repeats nothing and loses nothing. canaryd never edits the annotation
(GitOps tools would fight it); a new id is a new request.

Rules: promote (Progressing, WaitingPromotion) skips the rest of the analysis, keeping the
confirm-promotion gate unless ``full``; abort (Progressing, WaitingPromotion, Waiting) rolls back now,
and is refused once Promoting began (the primary already runs the new template: rolling the primary
back is a new revision of the target); retry (Failed, target unchanged) runs the analysis again from
weight 0; pause/resume (a running phase) stop and restart steps and checks. A run held on inconclusive
checks (engine/inconclusive.py) is decided by promote or abort; resume measures again. A request naming a
revision other than the run's is ignored; anything else that cannot apply is refused with the reason.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from canaryd.engine import inconclusive
from canaryd.engine.builder import Builder, scale_up_replicas, target_view
from canaryd.engine.outcome import begin_promotion, rollback
from canaryd.engine.progressing import reset_run
from canaryd.engine.types import Emit, LastRequest, Phase, ScaleTarget

REQUEST_ANNOTATION = "canaryd.io/request"
ACTIONS = ("promote", "abort", "retry", "pause", "resume")
MAX_ID = 64
_RUNNING = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
Result = Literal["done", "refused", "ignored"]


@dataclass(frozen=True)
class Request:
    id: str
    action: str
    revision: str = ""
    full: bool = False


def parse_request(raw: str) -> Request | str:
    """The request, or what is wrong with it. The id of a bad request is :func:`request_id`."""
    try:
        doc = json.loads(raw)
    except ValueError as e:
        return f"malformed request: not JSON ({e})"
    if not isinstance(doc, dict):
        return "malformed request: not a JSON object"
    rid, action = doc.get("id"), doc.get("action")
    revision, full = doc.get("revision", ""), doc.get("full", False)
    if not isinstance(rid, str) or not rid or len(rid) > MAX_ID:
        return f"malformed request: id must be a string of 1 to {MAX_ID} characters"
    if action not in ACTIONS:
        return f"unknown action {action!r}: expected one of {', '.join(ACTIONS)}"
    if not isinstance(revision, str):
        return "malformed request: revision must be a string"
    if not isinstance(full, bool):
        return "malformed request: full must be true or false"
    return Request(rid, str(action), revision, full)


def request_id(raw: str) -> str:
    """The id a request is answered under: its own, or a digest of a request without a usable one."""
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = None
    rid = doc.get("id") if isinstance(doc, dict) else None
    if isinstance(rid, str) and 0 < len(rid) <= MAX_ID:
        return rid
    return "invalid-" + hashlib.sha256(raw.encode()).hexdigest()[:12]


def answer_request(b: Builder) -> None:
    """Answer a request not answered yet (see the module docstring)."""
    raw = b.snap.request
    if raw is None:
        return
    rid = request_id(raw)
    last = b.st.last_request
    if last is not None and last.id == rid:
        return
    req = parse_request(raw)
    if isinstance(req, str):
        action = _action_of(raw)
        _answer(b, rid, action, "refused", req)
        return
    run = b.st.last_applied_spec
    if req.revision and req.revision != run:
        _answer(b, rid, req.action, "ignored", f"names revision {req.revision}, the run is {run or 'none'}")
        return
    handler = _HANDLERS[req.action]
    handler(b, req)


def _action_of(raw: str) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return ""
    action = doc.get("action") if isinstance(doc, dict) else None
    return action[:32] if isinstance(action, str) else ""


def _answer(b: Builder, rid: str, action: str, result: Result, message: str) -> None:
    b.set(last_request=LastRequest(rid, action, result, message, b.now))
    text = f"request {rid} ({action or 'no action'}) {result}: {message}"
    b.emit(text, warning=result != "done")


def _not_running(b: Builder, req: Request, allowed: str) -> None:
    phase = b.st.phase.value if b.st.phase else "not initialized"
    _answer(b, req.id, req.action, "refused", f"{req.action} applies to a canary {allowed}; {b.canary_key} "
                                              f"is {phase}")


def _promote(b: Builder, req: Request) -> None:
    if b.st.phase not in _RUNNING:
        _not_running(b, req, "in Progressing or WaitingPromotion")
        return
    inconclusive.lift(b)
    b.set(promote_requested=True, paused_by="", next_step_at=None)
    if req.full:
        _answer(b, req.id, req.action, "done", "analysis and promotion gates skipped: promoting")
        begin_promotion(b)
        return
    _answer(b, req.id, req.action, "done", "analysis skipped: promoting once confirm-promotion approves")
    # the running phase continues in this pass (decide): it promotes, or waits at confirm-promotion


def _abort(b: Builder, req: Request) -> None:
    phase = b.st.phase
    if phase in (Phase.PROMOTING, Phase.FINALISING):
        _answer(b, req.id, req.action, "refused",
                f"{b.canary_key} is {phase.value}: the primary already runs the new revision; "
                "to go back, revert the target Deployment (a new revision)")
        return
    if phase not in (*_RUNNING, Phase.WAITING):
        _not_running(b, req, "in Progressing, WaitingPromotion or Waiting")
        return
    text = f"Rolling back {b.canary_key} aborted by request {req.id}"
    _answer(b, req.id, req.action, "done", "rolled back")
    if phase == Phase.WAITING:  # the waiting revision becomes the failed one: no run starts for it
        b.set(last_applied_spec=target_view(b).template_hash, tracked_configs=b.snap.config_checksums)
    b.set(paused_by="", promote_requested=False, inconclusive_since=None)
    rollback(b, Emit(text, warning=True, alert="warn",
                     alert_message=f"Rolled back: aborted by request {req.id}"))


def _retry(b: Builder, req: Request) -> None:
    if b.st.phase != Phase.FAILED:
        _not_running(b, req, "that failed (phase Failed)")
        return
    h = target_view(b).template_hash
    failed = b.st.last_applied_spec
    if h != failed or b.st.tracked_configs != b.snap.config_checksums or failed == b.st.last_promoted_spec:
        now = h if b.st.tracked_configs == b.snap.config_checksums else f"{h} with changed configs"
        _answer(b, req.id, req.action, "refused",
                f"the revision that failed ({failed}) was superseded: the target now has {now}")
        return
    _answer(b, req.id, req.action, "done", f"analysis of {failed} restarted from weight 0")
    b.emit(f"Retrying {b.target_key} by request {req.id}: restarting analysis")
    b.act(ScaleTarget(scale_up_replicas(b)))
    reset_run(b, h)


def _pause(b: Builder, req: Request) -> None:
    if b.st.phase not in _RUNNING:
        _not_running(b, req, "in Progressing or WaitingPromotion")
        return
    if b.st.paused_by:
        _answer(b, req.id, req.action, "refused", f"already paused by request {b.st.paused_by}")
        return
    _answer(b, req.id, req.action, "done", "no step and no check until resumed")
    b.set(paused_by=req.id, message=paused_message(req.id))


def _resume(b: Builder, req: Request) -> None:
    if not b.st.paused_by and b.st.inconclusive_since is not None and b.st.phase in _RUNNING:
        _answer(b, req.id, req.action, "done", "inconclusive hold lifted: the analysis measures again now")
        inconclusive.lift(b)
        b.set(next_step_at=None)
        return
    if not b.st.paused_by:
        _not_running(b, req, "paused by request")
        return
    _answer(b, req.id, req.action, "done", f"pause {b.st.paused_by} lifted")
    b.set(paused_by="", message="" if b.st.message == paused_message(b.st.paused_by) else b.st.message)


def paused_message(rid: str) -> str:
    return f"paused by request {rid}"


_HANDLERS = {"promote": _promote, "abort": _abort, "retry": _retry, "pause": _pause, "resume": _resume}
