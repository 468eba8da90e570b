"""The phases between runs: Initializing (primary, Services and routes set up, target scaled to zero)
and at rest (Initialized, Succeeded, Failed, Waiting), where a new revision or changed configs start a
run once the confirm-rollout gate opens; status left by Flagger is adopted here.
"""

from __future__ import annotations

from canaryd.engine import messages
from canaryd.engine.builder import Builder, configs_changed, first_failure, scale_up_replicas, target_view
from canaryd.engine.progressing import reset_run
from canaryd.engine.readiness import deployment_readiness
from canaryd.engine.revision import is_own_hash
from canaryd.engine.types import EnsurePrimary, EnsureServicesAndRouting, Phase, ScaleTarget


def initialize(b: Builder) -> None:
    if b.st.phase != Phase.INITIALIZING:
        b.set(phase=Phase.INITIALIZING)
    primary = b.snap.primary
    if primary is None:
        b.act(EnsurePrimary(), EnsureServicesAndRouting(apex=False))
        return
    if not b.spec.skip_analysis:
        r = deployment_readiness(primary, b.spec.analysis.primary_ready_threshold, b.now, b.deadline)
        if not r.ready:
            # Nothing to roll back yet: report and keep waiting (the cache wakes us on any change).
            msg = f"{b.spec.primary_name}.{b.spec.namespace} not ready: {r.message}"
            if msg != b.st.message:
                b.set(message=msg)
                b.emit(msg, warning=True)
            return
    h = target_view(b).template_hash
    b.act(EnsureServicesAndRouting(apex=True), ScaleTarget(0))
    if b.snap.routes is None:
        # Initialized only once the cache shows the VirtualService (written after the apex Service), as
        # Flagger reconciles both before it writes the phase: scripts read svc/podinfo right after it
        b.log.append(f"Scaling down Deployment {b.target_key}")
        return
    b.set(phase=Phase.INITIALIZED, canary_weight=0, failed_checks=0, iterations=0, last_applied_spec=h,
          last_promoted_spec=h, tracked_configs=b.snap.config_checksums, message="", waiting_since=None,
          next_step_at=None, checks=(), mirrored=False, observed_generation=b.spec.generation,
          scale_down_generation=target_view(b).generation)
    b.emit(f"Initialization done! {b.canary_key}", alert="info",
           alert_message=f"New {b.spec.target.kind} detected, initialization completed.")


# ---- Initialized / Succeeded / Failed / Waiting: is there a new revision? ----


def at_rest(b: Builder) -> None:
    h = target_view(b).template_hash
    st = b.st
    if st.last_applied_spec and not is_own_hash(st.last_applied_spec):
        if not _adopt_foreign(b, h):
            _start_run(b, h)  # Flagger left a target that differs from the primary
            return
        st = b.st
    changed = (h != st.last_applied_spec and h != st.last_promoted_spec) or configs_changed(b)
    if not changed:
        _lost_scale_down(b)
    if not changed and st.phase != Phase.WAITING:
        return
    if st.phase == Phase.WAITING and st.next_step_at is not None and b.now < st.next_step_at:
        return
    gate = b.hooks("confirm-rollout")
    if gate is None:
        return
    failed = first_failure(gate)
    if failed is not None:
        if st.phase != Phase.WAITING:
            b.set(phase=Phase.WAITING)
            b.emit(f"Halt {b.canary_key} advancement waiting for approval {failed.name}", warning=True,
                   alert="" if b.muted(failed.name) else "warn",
                   alert_message="Canary is waiting for approval.")
        b.set(next_step_at=b.next_anchor(), message=f"waiting for approval {failed.name}")
        return
    b.act(*messages.hook_passed_events("confirm-rollout", gate))
    _start_run(b, h)


def _lost_scale_down(b: Builder) -> None:
    """The scale-to-zero decided with this phase (rollback, promotion, initialization) is carried out
    after the status write: a crash in between would leave the target scaled up for good. Status keeps
    the target's generation of that decision: the target still at it with replicas means the scale was
    lost, so it is done again. Our scale (or anyone's change) moves the generation on, so a manual scale
    at rest is left alone, and no status write is needed to know it was done."""
    target = target_view(b)
    if b.st.scale_down_generation and target.generation == b.st.scale_down_generation \
            and target.spec_replicas > 0:
        b.act(ScaleTarget(0))
        b.log.append(f"scaling down {b.target_key}: the scale-down decided with phase {b.st.phase} was lost")


def _adopt_foreign(b: Builder, h: str) -> bool:
    """Status written by Flagger (its hash cannot be reproduced). Returns False when a run must start
    because the target differs from what the primary runs; otherwise adopts canaryd's hash."""
    matches = b.snap.primary_template_matches_target
    if b.st.phase == Phase.FAILED:
        # The rolled-back revision is still in the target: record it as applied, start nothing.
        b.set(last_applied_spec=h, last_promoted_spec=h if matches else b.st.last_promoted_spec)
        b.log.append("took over Failed status from Flagger without starting a run")
        return True
    if matches is False:
        b.log.append("took over status from Flagger: the target differs from the primary, starting a run")
        return False
    tracked = b.st.tracked_configs or b.snap.config_checksums
    b.set(last_applied_spec=h, last_promoted_spec=h, tracked_configs=tracked)
    b.log.append("took over status from Flagger: the primary runs the target's template, no run started")
    return True


def _start_run(b: Builder, h: str) -> None:
    b.emit(f"New revision detected! Scaling up {b.target_key}", alert="info",
           alert_message="New revision detected, progressing canary analysis.")
    b.act(ScaleTarget(scale_up_replicas(b)))
    reset_run(b, h)
