"""How a run ends: promotion (``Promote`` at the end of the analysis, then the Promoting and Finalising
phases up to Succeeded, or Failed when the primary never becomes ready) and rollback (Failed, all
traffic back on the primary). Called from the running phases and from ``decide``'s phase dispatch.
"""

from __future__ import annotations

from canaryd.engine.builder import Builder, target_view
from canaryd.engine.readiness import Readiness, deployment_readiness
from canaryd.engine.types import Emit, Phase, Promote, ScaleTarget, SetRoutes
from canaryd.engine.waits import report_wait


def begin_promotion(b: Builder) -> None:
    """The analysis passed: ask for the primary's update (``Promote``, carried out by the writer
    ``actuators.workloads.promote``) and enter Promoting."""
    b.emit(f"Copying {b.target_key} template spec to {b.spec.primary_name}.{b.spec.namespace}")
    b.act(Promote())
    b.set(phase=Phase.PROMOTING, waiting_since=b.now, next_step_at=None, message="")


def promoting(b: Builder) -> None:
    primary = b.snap.primary
    st = b.st
    if primary is None or b.snap.primary_template_matches_target is False:
        r, quiet = Readiness(False, "waiting for rollout to finish: primary template update not yet observed",
                             False), True
    else:
        threshold = b.spec.analysis.primary_ready_threshold
        r = deployment_readiness(primary, threshold, b.now, b.deadline)
        quiet = primary.generation > primary.observed_generation
    primary_key = f"{b.spec.primary_name}.{b.spec.namespace}"
    if not r.ready:
        since = st.waiting_since if st.waiting_since is not None else b.now
        if st.waiting_since is None:
            b.set(waiting_since=since)
        msg = f"{primary_key} not ready: {r.message}"
        if r.deadline_passed or b.now >= since + b.deadline:
            _failed_promotion(b, msg)
            return
        report_wait(b, msg, since=since, quiet=quiet)
        return
    if st.waiting_since is not None or st.message:
        b.set(waiting_since=None, message="")
    step = b.spec.analysis.step_weight_promotion
    if step == 0:
        b.emit("Routing all traffic to primary")
        b.act(SetRoutes(100, 0))
        b.set(phase=Phase.FINALISING, canary_weight=0, mirrored=False, next_step_at=None)
        return
    if st.next_step_at is not None and b.now < st.next_step_at:
        return
    primary_weight = min(100, 100 - st.canary_weight + step)
    b.emit(f"Advance {b.canary_key} primary weight {primary_weight}")
    b.act(SetRoutes(primary_weight, 100 - primary_weight))
    if primary_weight == 100:
        b.set(phase=Phase.FINALISING, canary_weight=0, mirrored=False, next_step_at=None)
    else:
        b.set(canary_weight=100 - primary_weight, mirrored=False, next_step_at=b.next_anchor())


def _failed_promotion(b: Builder, msg: str) -> None:
    b.emit(f"Promotion of {b.target_key} failed, primary not ready: {msg}", warning=True, alert="error",
           alert_message=f"Promotion failed, primary not ready: {msg}")
    b.act(SetRoutes(0, 100))
    b.set(phase=Phase.FAILED, canary_weight=100, failed_checks=0, iterations=0, mirrored=False,
          waiting_since=None, next_step_at=None, message=f"Promotion failed, primary not ready: {msg}")
    b.post_rollout()


def finalising(b: Builder) -> None:
    # Scale the canary down only once the VirtualService shows all traffic on the primary.
    if b.snap.routes is not None and b.snap.routes != (100, 0):
        return
    b.act(ScaleTarget(0))
    b.set(phase=Phase.SUCCEEDED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          last_promoted_spec=b.st.last_applied_spec, waiting_since=None, next_step_at=None, message="",
          scale_down_generation=target_view(b).generation)
    b.emit(f"Promotion completed! Scaling down {b.target_key}", alert="info",
           alert_message="Canary analysis completed successfully, promotion finished.")
    b.post_rollout()


# ---- rollback ----


def rollback(b: Builder, reason: Emit) -> None:
    b.act(reason, SetRoutes(100, 0))
    b.emit(f"Canary failed! Scaling down {b.canary_key}", warning=True)
    b.act(ScaleTarget(0))
    b.set(phase=Phase.FAILED, canary_weight=0, failed_checks=0, iterations=0, mirrored=False,
          waiting_since=None, next_step_at=None, message=reason.message,
          scale_down_generation=target_view(b).generation,
          inconclusive_since=None)
    b.post_rollout()
