"""The running phases (Progressing, WaitingPromotion): a new revision mid-run restarts the analysis,
the canary must be ready within the deadline, then each due step runs the hooks and checks and
advances the canary weight (or the Blue/Green and A/B iterations) through the traffic-increase and
promotion approval gates; ``skipAnalysis`` promotes at once. Ends hand over to ``outcome``.
"""

from __future__ import annotations

from canaryd.engine import history, inconclusive, messages, verdicts
from canaryd.engine.builder import (
    Builder,
    configs_changed,
    expected_routes,
    first_failure,
    scale_up_replicas,
    target_view,
)
from canaryd.engine.outcome import begin_promotion, rollback
from canaryd.engine.readiness import Readiness, deployment_readiness
from canaryd.engine.revision import is_own_hash
from canaryd.engine.types import CheckResult, Emit, Phase, Promote, ScaleTarget, SetRoutes, Severity
from canaryd.engine.waits import report_wait
from canaryd.model.spec import CanarySpec


def reset_run(b: Builder, h: str) -> None:
    b.set(phase=Phase.PROGRESSING, canary_weight=0, failed_checks=0, iterations=0, last_applied_spec=h,
          tracked_configs=b.snap.config_checksums, waiting_since=b.now, next_step_at=None, checks=(),
          mirrored=False, message="", promote_requested=False, paused_by="", run_started_at=b.now,
          run_image=target_view(b).image, weights=((b.now, 0),), step_checks=(), scale_down_generation=0,
          error_streaks=(), inconclusive_since=None)


def running(b: Builder) -> None:
    target = target_view(b)
    h = target.template_hash
    st = b.st
    foreign = bool(st.last_applied_spec) and not is_own_hash(st.last_applied_spec)
    if foreign or h != st.last_applied_spec or configs_changed(b):
        if foreign:
            b.emit(f"Run taken over from Flagger! Restarting analysis for {b.target_key}")
        else:
            b.emit(f"New revision detected! Restarting analysis for {b.target_key}")
        b.act(SetRoutes(100, 0))
        if target.spec_replicas == 0:
            b.act(ScaleTarget(scale_up_replicas(b)))
        reset_run(b, h)
        return
    if not _canary_ready(b):
        return
    if st.next_step_at is not None and b.now < st.next_step_at:  # (a hold on inconclusive checks: its end)
        return
    if _routes_behind(b):
        return
    if b.spec.skip_analysis:
        _skip_analysis(b)
        return
    if st.promote_requested:  # a promote request skipped the rest of the analysis (engine/requests.py)
        _promote_when_approved(b)
        return
    if st.inconclusive_since is not None:  # a hold on inconclusive checks ran out (engine/inconclusive.py)
        inconclusive.wait(b)
        return
    _step(b)


def _routes_behind(b: Builder) -> bool:
    """A due step whose traffic is not what status says (the last route write failed, and kept failing
    past this due time): write the status's routes and judge the step one interval later, so its checks
    measure the weight status records and the next weight never skips this one (15 -> 20 -> 25)."""
    want = expected_routes(b.st)
    seen, mirrored = b.snap.routes, b.snap.mirrored
    mirror_matches = mirrored is None or mirrored == want.mirror
    if seen is None or (seen == (want.primary, want.canary) and mirror_matches):
        return False
    b.act(want)
    b.set(next_step_at=b.now + b.interval)
    b.log.append(f"routes {seen} differ from status {(want.primary, want.canary)}: "
                 "repairing them before the step is judged")
    return True


def _canary_ready(b: Builder) -> bool:
    """Canary readiness with Flagger's texts, bounded by our own deadline from ``waitingSince``."""
    target = target_view(b)
    if target.spec_replicas == 0:
        # Our scale-up is not in the cache yet, was lost in a crash after the run's status write, or
        # someone scaled the canary to zero: (re)scale it (the writer skips a count the cache shows) and
        # wait quietly, bounded by the deadline like any rollout.
        b.act(ScaleTarget(scale_up_replicas(b)))
        r, quiet = Readiness(False, "waiting for rollout to finish: the canary has 0 replicas", False), True
    else:
        threshold = b.spec.analysis.canary_ready_threshold
        r = deployment_readiness(target, threshold, b.now, b.deadline)
        quiet = target.generation > target.observed_generation  # our own change, not yet observed
    if r.ready:
        if b.st.waiting_since is not None:
            b.set(waiting_since=None)
        if b.st.message.startswith(f"canary deployment {b.target_key} not ready"):
            b.set(message="")
        return True
    since = b.st.waiting_since if b.st.waiting_since is not None else b.now
    if b.st.waiting_since is None:
        b.set(waiting_since=since)
    msg = f"canary deployment {b.target_key} not ready: {r.message}"
    if r.deadline_passed or b.now >= since + b.deadline:
        text = f"Rolling back {b.canary_key} progress deadline exceeded {msg}"
        alert = f"Progress deadline exceeded {msg}"
        rollback(b, Emit(text, warning=True, alert="error", alert_message=alert))
        return False
    report_wait(b, msg, since=since, quiet=quiet)
    return False


def _step(b: Builder) -> None:
    """One analysis step (the canary is ready and the step is due)."""
    st = b.st
    started = st.canary_weight > 0 or st.iterations > 0 or st.mirrored
    rollback_hooks = b.hooks("rollback")
    first = b.hooks("rollout" if started else "pre-rollout")
    checks = b.checks() if started else ()
    if rollback_hooks is None or first is None or checks is None:
        return
    for r in rollback_hooks:
        if r.passed:
            b.emit(f"Rollback check {r.name} passed", warning=True)
            rollback(b, Emit(f"Rolling back {b.canary_key} manual webhook invoked", warning=True,
                             alert="warn", alert_message="Rolling back manual webhook invoked"))
            return
        b.log.append(f"Rollback hook {r.name} not signaling a rollback")
    if not started:
        b.emit(f"Starting canary analysis for {b.target_key}")
        failed = first_failure(first)
        if failed is not None:
            # beyond Flagger (#1663): a failing pre-rollout hook is worth an alert of its own
            text = f"Halt {b.canary_key} advancement pre-rollout check {failed.name} failed {failed.message}"
            _fail_step(b, text, alert="warn",
                       alert_message=f"Pre-rollout check {failed.name} failed: {failed.message}")
            return
        b.act(*messages.hook_passed_events("pre-rollout", first))
    else:
        elapsed = None if st.run_started_at is None else b.now - st.run_started_at
        judged = verdicts.judge_step(verdicts.step_measurements(b.spec, first, checks), st.error_streaks,
                                     elapsed)
        shown = judged.results
        b.set(checks=shown, step_checks=history.add_step(b.st, b.now, shown), error_streaks=judged.streaks)
        bad = judged.failure
        if bad is not None and bad.kind == "webhook":
            _fail_step(b, f"Halt {b.canary_key} advancement external check {bad.name} failed {bad.message}")
            return
        if bad is not None:
            _fail_step(b, _halt_text(b, bad))
            return
        if judged.inconclusive:
            inconclusive.hold(b, judged.inconclusive)
            return
    if b.spec.strategy == "canary":
        _advance_canary(b)
    else:
        _advance_iterations(b)


def _halt_text(b: Builder, check: CheckResult) -> str:
    if check.verdict == "fail" and not check.message.startswith("Halt "):
        return f"Halt {b.canary_key} advancement {check.message or check.name + ' failed'}"
    return check.message or f"Halt {b.canary_key} advancement {check.name} {check.verdict}"


def _fail_step(b: Builder, text: str, *, alert: Severity = "", alert_message: str = "") -> None:
    failed = b.st.failed_checks + 1
    b.emit(text, warning=True, alert=alert, alert_message=alert_message)
    b.set(failed_checks=failed, message=text, next_step_at=b.next_anchor())
    if failed >= b.spec.analysis.threshold:
        rollback(b, Emit(f"Rolling back {b.canary_key} failed checks threshold reached {failed}",
                         warning=True, alert="error",
                         alert_message=f"Failed checks threshold reached {failed}"))


def next_step_weight(spec: CanarySpec, weight: int) -> int:
    """Flagger's ``nextStepWeight``: stepWeight, or the distance to the next stepWeights entry."""
    a = spec.analysis
    if a.step_weight > 0 or not a.step_weights:
        return a.step_weight
    room = 100 - weight
    if room == 0:
        return 1
    if weight == 0:
        return min(room, a.step_weights[0])
    for i, w in enumerate(a.step_weights):
        if w == weight and i + 1 < len(a.step_weights):
            return min(room, a.step_weights[i + 1] - weight)
    return room


def _advance_canary(b: Builder) -> None:
    st = b.st
    weight, max_weight = st.canary_weight, b.spec.analysis.max_weight
    if not st.mirrored and st.phase == Phase.PROGRESSING:
        gate = b.hooks("confirm-traffic-increase")
        if gate is None:
            return
        failed = first_failure(gate)
        if failed is not None:
            text = f"Halt {b.canary_key} advancement waiting for traffic increase approval {failed.name}"
            if st.message != text:
                b.emit(text, warning=True, alert="" if b.muted(failed.name) else "warn",
                       alert_message="Canary traffic increase is waiting for approval.")
            b.set(message=text, next_step_at=b.next_anchor())
            return
        b.act(*messages.hook_passed_events("confirm-traffic-increase", gate))
    if weight >= max_weight:
        _promote_when_approved(b)
        return
    if b.spec.analysis.mirror and weight == 0 and not st.mirrored:
        b.log.append("Running mirror step 100/0/true")
        b.set(mirrored=True, message="", next_step_at=b.next_anchor())
        b.act(SetRoutes(100, 0, mirror=True))
        return
    new = min(max_weight, weight + next_step_weight(b.spec, weight))
    b.set(canary_weight=new, mirrored=False, message="", next_step_at=b.next_anchor())
    b.act(SetRoutes(100 - new, new))
    b.emit(f"Advance {b.canary_key} canary weight {new}")


def _advance_iterations(b: Builder) -> None:
    """Blue/Green (traffic stays on the primary, then one step at 100 % canary) and A/B (matched
    traffic to the canary from the first iteration)."""
    st = b.st
    total = b.spec.analysis.iterations
    ab = b.spec.strategy == "ab-testing"
    if total > st.iterations:
        n = st.iterations + 1
        if ab:
            if st.canary_weight != 100:
                b.act(SetRoutes(0, 100))
            b.set(canary_weight=100)
        elif b.spec.analysis.mirror and not st.mirrored:
            b.log.append("Start traffic mirroring")
            b.act(SetRoutes(100, 0, mirror=True))
            b.set(mirrored=True)
        b.set(iterations=n, message="", next_step_at=b.next_anchor())
        b.emit(f"Advance {b.canary_key} canary iteration {n}/{total}")
        return
    if _approval_missing(b):
        return
    if not ab and total == st.iterations:
        if st.mirrored:
            b.emit("Stop traffic mirroring and route all traffic to canary")
        else:
            b.emit("Routing all traffic to canary")
        b.act(SetRoutes(0, 100))
        b.set(canary_weight=100, mirrored=False, iterations=st.iterations + 1, message="",
              next_step_at=b.next_anchor())
        return
    begin_promotion(b)


def _approval_missing(b: Builder) -> bool:
    """confirm-promotion: True while the gate is closed (or its result is being asked for)."""
    gate = b.hooks("confirm-promotion")
    if gate is None:
        return True
    failed = first_failure(gate)
    if failed is not None:
        text = f"Halt {b.canary_key} advancement waiting for promotion approval {failed.name}"
        if b.st.phase != Phase.WAITING_PROMOTION:
            b.emit(text, warning=True, alert="" if b.muted(failed.name) else "warn",
                   alert_message="Canary promotion is waiting for approval.")
        b.set(phase=Phase.WAITING_PROMOTION, message=text, next_step_at=b.next_anchor())
        return True
    b.act(*messages.hook_passed_events("confirm-promotion", gate))
    return False


def _promote_when_approved(b: Builder) -> None:
    if not _approval_missing(b):
        begin_promotion(b)


def _skip_analysis(b: Builder) -> None:
    b.act(SetRoutes(100, 0))
    b.emit(f"Copying {b.target_key} template spec to {b.spec.primary_name}.{b.spec.namespace}")
    b.act(Promote(), ScaleTarget(0))
    b.set(phase=Phase.SUCCEEDED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          last_promoted_spec=b.st.last_applied_spec, waiting_since=None, next_step_at=None, message="",
          scale_down_generation=target_view(b).generation)
    b.emit(f"Promotion completed! Canary analysis was skipped for {b.target_key}", alert="info",
           alert_message="Canary analysis was skipped, promotion finished.")
    b.post_rollout()
