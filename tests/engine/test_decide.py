"""decide(): phase transitions (flagger-reference.md §3.10), weights, revision detection, deadlines,
idempotence, takeover, invalid snapshots, gates. Plain tables over the pure function, plus runs through
the fake world."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canaryd.engine.decide import TARGET_GRACE, decide, decide_invalid
from canaryd.engine.driver import Answers, drive
from canaryd.engine.progressing import next_step_weight
from canaryd.engine.status import promoted_condition
from canaryd.engine.types import (
    CanaryStatus,
    CheckResult,
    Decision,
    DeploymentView,
    Emit,
    EnsurePrimary,
    EnsureServicesAndRouting,
    HookResult,
    Inputs,
    Phase,
    RunHooks,
    ScaleTarget,
    SetRoutes,
    Snapshot,
)
from canaryd.model.spec import CanarySpec

from .world import World, change_image, initialized_world, passing_checks, tutorial_canary

SPEC = tutorial_canary()
V1, V2 = "cd1:v1", "cd1:v2"


def dep(name: str = "podinfo", h: str = V2, replicas: int = 2, available: int | None = None,
        **kw: Any) -> DeploymentView:
    avail = replicas if available is None else available
    base: dict[str, Any] = dict(name=name, generation=2, observed_generation=2, spec_replicas=replicas,
                                status_replicas=replicas, updated_replicas=replicas, available_replicas=avail,
                                ready_replicas=avail, template_hash=h, selector_label="app",
                                selector_value=name)
    base.update(kw)
    return DeploymentView(**base)


def snap(**kw: Any) -> Snapshot:
    base: dict[str, Any] = dict(target=dep(), primary=dep("podinfo-primary", V1), hpa_min_replicas=2,
                                hpa_exists=True, routes=(100, 0), mirrored=False,
                                primary_template_matches_target=False)
    base.update(kw)
    return Snapshot(**base)


def status(phase: Phase | None, **kw: Any) -> CanaryStatus:
    base: dict[str, Any] = dict(phase=phase, last_applied_spec=V1, last_promoted_spec=V1,
                                observed_generation=1)
    if phase is not None:
        base["conditions"] = (promoted_condition(phase, "Deployment", 0.0),)
    base.update(kw)
    return CanaryStatus(**base)


def events(d: Decision) -> list[str]:
    return [a.message for a in d.actions if isinstance(a, Emit)]


def non_emit(d: Decision) -> list[Any]:
    return [a for a in d.actions if not isinstance(a, Emit)]


def run(spec: CanarySpec, st: CanaryStatus, sn: Snapshot, now: float,
        checks: tuple[CheckResult, ...] | None = None,
        hooks: dict[str, tuple[HookResult, ...]] | None = None) -> Decision:
    """Call decide through the runtime's driver, answering requests with the given checks/hooks
    (default: pass)."""
    def answer(d: Decision) -> Answers:
        results = {r.hook_type: (hooks or {}).get(r.hook_type, (HookResult(r.hook_type + "-hook", True),))
                   for r in d.requests}
        return Answers(now=now, checks=(checks if checks is not None else passing_checks(now)) if d.analyse
                       else None, hooks=results)
    return drive(spec, st, sn, now, answer)


# ---- initialization ----


def test_initializing_creates_primary_then_waits_then_initializes() -> None:
    d = run(SPEC, CanaryStatus(), snap(primary=None, routes=None), 0.0)
    assert non_emit(d) == [EnsurePrimary(), EnsureServicesAndRouting(apex=False)]
    assert d.status is not None and d.status.phase == Phase.INITIALIZING
    assert d.status.conditions[0]["status"] == "Unknown"

    st = d.status
    not_ready = snap(primary=dep("podinfo-primary", V1, available=0), routes=None)
    d = run(SPEC, st, not_ready, 1.0)
    assert events(d) == ["podinfo-primary.test not ready: waiting for rollout to finish: 0 of 2 "
                         "(readyThreshold 100%) updated replicas are available"]
    assert d.status is not None
    again = run(SPEC, d.status, not_ready, 2.0)
    assert again.status is None and again.actions == ()  # once per distinct message

    st = d.status
    d = run(SPEC, st, snap(target=dep(h=V1, replicas=1), routes=None), 3.0)
    assert non_emit(d) == [EnsureServicesAndRouting(apex=True), ScaleTarget(0)]
    assert events(d) == [] and (d.status is None or d.status.phase == Phase.INITIALIZING)
    # Initialized once the cache shows the routing written (apex Service, then the VirtualService)
    d = run(SPEC, st, snap(target=dep(h=V1, replicas=1), routes=(100, 0)), 3.1)
    assert non_emit(d) == [EnsureServicesAndRouting(apex=True), ScaleTarget(0)]
    assert events(d) == ["Initialization done! podinfo.test"]
    assert d.status is not None and d.status.phase == Phase.INITIALIZED
    assert d.status.last_applied_spec == d.status.last_promoted_spec == V1
    assert d.status.conditions[0]["status"] == "True" and d.status.message == ""
    alert = next(a for a in d.actions if isinstance(a, Emit))
    assert alert.alert == "info"
    assert alert.alert_message == "New Deployment detected, initialization completed."


# ---- revision detection ----

REVISIONS = [
    ("template change", status(Phase.INITIALIZED), snap(), True),
    ("replicas change only", status(Phase.INITIALIZED), snap(target=dep(h=V1, replicas=5)), False),
    ("nothing changed", status(Phase.SUCCEEDED), snap(target=dep(h=V1, replicas=0)), False),
    ("back to the promoted spec after a failure", status(Phase.FAILED, last_applied_spec=V2),
     snap(target=dep(h=V1)), False),
    ("same failed spec again", status(Phase.FAILED, last_applied_spec=V2), snap(target=dep(h=V2)), False),
    ("config change", status(Phase.SUCCEEDED, tracked_configs=(("configmap/c", "aa"),)),
     snap(target=dep(h=V1), config_checksums=(("configmap/c", "bb"),)), True),
    ("config added", status(Phase.SUCCEEDED), snap(target=dep(h=V1), config_checksums=(("secret/s", "1"),)),
     True),
]


@pytest.mark.parametrize(("what", "st", "sn", "starts"), REVISIONS, ids=[r[0] for r in REVISIONS])
def test_revision_detection(what: str, st: CanaryStatus, sn: Snapshot, starts: bool) -> None:
    d = run(SPEC, st, sn, 10.0)
    if starts:
        assert events(d) == ["New revision detected! Scaling up podinfo.test"]
        assert d.status is not None and d.status.phase == Phase.PROGRESSING
        assert d.status.last_applied_spec == sn.target.template_hash if sn.target else False
        assert d.status.tracked_configs == sn.config_checksums and d.status.waiting_since == 10.0
        replicas = sn.target.spec_replicas if sn.target and sn.target.spec_replicas else 2
        assert ScaleTarget(replicas) in d.actions
    else:
        assert d.status is None and d.actions == ()


def test_scale_up_uses_hpa_min_when_target_is_at_zero() -> None:
    d = run(SPEC, status(Phase.SUCCEEDED), snap(target=dep(replicas=0)), 0.0)
    assert ScaleTarget(2) in d.actions
    no_hpa = replace(SPEC, autoscaler=None)
    d = run(no_hpa, status(Phase.SUCCEEDED), snap(target=dep(replicas=0), primary=dep("podinfo-primary", V1,
                                                                                       replicas=3)), 0.0)
    assert ScaleTarget(3) in d.actions


def test_new_revision_mid_run_restarts_at_weight_zero() -> None:
    st = status(Phase.PROGRESSING, canary_weight=25, failed_checks=2, last_applied_spec=V2,
                next_step_at=100.0)
    d = run(SPEC, st, snap(target=dep(h="cd1:v3"), routes=(75, 25)), 50.0)
    assert events(d) == ["New revision detected! Restarting analysis for podinfo.test"]
    assert non_emit(d) == [SetRoutes(100, 0)]
    assert d.status is not None and (d.status.phase, d.status.canary_weight, d.status.failed_checks,
                                     d.status.iterations, d.status.last_applied_spec) == (
        Phase.PROGRESSING, 0, 0, 0, "cd1:v3")


# ---- steps, cadence and idempotence ----


def progressing(**kw: Any) -> CanaryStatus:
    return status(Phase.PROGRESSING, last_applied_spec=V2, **kw)


def test_first_weight_when_ready_then_one_step_per_interval() -> None:
    d = run(SPEC, progressing(waiting_since=0.0), snap(), 5.0)
    assert events(d) == ["Starting canary analysis for podinfo.test", "Advance podinfo.test canary weight 5"]
    assert non_emit(d) == [SetRoutes(95, 5)]
    assert d.status is not None and d.status.next_step_at == 35.0 and d.status.waiting_since is None
    assert d.wake_at == 35.0
    st = d.status
    routed = snap(routes=(95, 5))
    for t in (5.0, 20.0, 34.999):  # before next_step_at: nothing, however often we are called
        again = run(SPEC, st, routed, t)
        assert again.status is None and again.actions == () and again.wake_at == 35.0
    first = decide(SPEC, st, routed, Inputs(now=35.0))
    assert first.analyse and first.requests == (RunHooks("rollout"),) and first.status is None
    d = run(SPEC, st, routed, 35.2)
    assert events(d) == ["Advance podinfo.test canary weight 10"] and non_emit(d) == [SetRoutes(90, 10)]
    assert d.status is not None and d.status.next_step_at == 65.0  # cadence anchored, not now + interval
    assert d.status.checks == passing_checks(0)


def test_same_inputs_same_decision() -> None:
    st, sn = progressing(canary_weight=10, next_step_at=65.0), snap(routes=(90, 10))
    assert run(SPEC, st, sn, 65.0) == run(SPEC, st, sn, 65.0)


def test_restart_continues_from_status_after_downtime() -> None:
    st = progressing(canary_weight=20, failed_checks=3, next_step_at=100.0)
    d = run(SPEC, st, snap(routes=(80, 20)), 500.0)  # down for 400 s: one step, not a burst
    assert events(d) == ["Advance podinfo.test canary weight 25"]
    assert d.status is not None and d.status.failed_checks == 3 and d.status.next_step_at == 530.0


def test_routes_repaired_from_status_without_changing_it() -> None:
    st = progressing(canary_weight=15, next_step_at=1000.0)
    d = run(SPEC, st, snap(routes=(90, 10)), 10.0)  # crash between the status write and the route write
    assert d.status is None and d.actions == (SetRoutes(85, 15),)
    d = run(SPEC, status(Phase.FAILED, last_applied_spec=V2), snap(routes=(50, 50)), 10.0)
    assert d.status is None and d.actions == (SetRoutes(100, 0),)


WEIGHTS = [
    ({"stepWeight": 5, "maxWeight": 50}, [5, 10, 15, 20, 25, 30, 35, 40, 45, 50]),
    ({"stepWeight": 20, "maxWeight": 50}, [20, 40, 50]),  # Flagger: 20, 40, 60
    ({"stepWeight": 30, "maxWeight": 0}, [30, 60, 90, 100]),
    ({"stepWeight": None, "stepWeights": [1, 5, 25, 50]}, [1, 5, 25, 50]),
    ({"stepWeight": None, "stepWeights": [10, 20, 100]}, [10, 20, 100]),
]


@pytest.mark.parametrize(("analysis", "expected"), WEIGHTS)
def test_weight_sequence(analysis: dict[str, Any], expected: list[int]) -> None:
    spec = tutorial_canary(**analysis)
    st, weights, t = progressing(), [], 0.0
    for _ in range(len(expected) + 1):
        d = run(spec, st, snap(routes=(100 - st.canary_weight, st.canary_weight)), t)
        assert d.status is not None
        st = d.status
        t = st.next_step_at or t
        if st.phase != Phase.PROGRESSING:
            break
        weights.append(st.canary_weight)
    assert weights == expected
    assert st.phase == Phase.PROMOTING  # one more analysis at max weight, then promotion


def test_next_step_weight_rules() -> None:
    steps = tutorial_canary(stepWeight=None, stepWeights=[10, 30, 60])
    assert [next_step_weight(steps, w) for w in (0, 10, 30, 20, 100)] == [10, 20, 30, 80, 1]


# ---- failed checks and rollback ----

FAILING = (
    CheckResult("istio_requests_total", "fail", 69.17, ">= 99%", "success rate 69.17% < 99%"),
    CheckResult("istio_request_duration_seconds_bucket", "fail", 1515.0, "<= 500ms",
                "request duration 1.515s > 500ms"),
)


def test_failed_checks_halt_then_roll_back_at_threshold() -> None:
    spec = tutorial_canary(threshold=2)
    st = progressing(canary_weight=15, next_step_at=100.0)
    d = run(spec, st, snap(routes=(85, 15)), 100.0, checks=FAILING)
    assert events(d) == ["Halt podinfo.test advancement success rate 69.17% < 99%"]  # one per step
    assert d.status is not None and d.status.failed_checks == 1 and d.status.canary_weight == 15
    assert d.status.checks == FAILING and d.status.next_step_at == 130.0 and non_emit(d) == []
    d = run(spec, d.status, snap(routes=(85, 15)), 130.0, checks=FAILING)
    assert events(d) == ["Halt podinfo.test advancement success rate 69.17% < 99%",
                         "Rolling back podinfo.test failed checks threshold reached 2",
                         "Canary failed! Scaling down podinfo.test"]
    assert non_emit(d) == [SetRoutes(100, 0), ScaleTarget(0)]
    assert d.status is not None and (d.status.phase, d.status.canary_weight, d.status.failed_checks) == (
        Phase.FAILED, 0, 0)
    assert d.status.conditions[0]["status"] == "False"
    rollback = [a for a in d.actions if isinstance(a, Emit)][1]
    assert rollback.warning and rollback.alert == "error"


def test_nodata_and_hook_failures_are_verbatim_or_prefixed() -> None:
    nodata = (CheckResult("request-success-rate", "nodata", None, "",
                          "Halt advancement no values found for istio metric request-success-rate probably "
                          "podinfo.test is not receiving traffic: running query failed: no values found"),)
    st = progressing(canary_weight=5, next_step_at=10.0)
    d = run(SPEC, st, snap(routes=(95, 5)), 10.0, checks=nodata)
    assert events(d) == [nodata[0].message]
    hooks = {"rollout": (HookResult("load-test", False, "POST http://x giving up after 1 attempt(s)"),)}
    d = run(SPEC, st, snap(routes=(95, 5)), 10.0, hooks=hooks)
    assert events(d) == ["Halt podinfo.test advancement external check load-test failed POST http://x "
                         "giving up after 1 attempt(s)"]


# ---- deadlines ----


def test_canary_never_ready_rolls_back_at_the_progress_deadline() -> None:
    st = progressing(waiting_since=0.0)
    stuck = snap(target=dep(available=0))
    assert run(SPEC, st, stuck, 29.0).status is None  # not reported within an interval (test_waits.py)
    d = run(SPEC, st, stuck, 30.0)
    msg = ("canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 2 "
           "(readyThreshold 100%) updated replicas are available")
    assert events(d) == [msg] and d.wake_at == 60.0
    assert d.status is not None
    assert run(SPEC, d.status, stuck, 59.9).actions == ()
    d = run(SPEC, d.status, stuck, 60.0)
    assert events(d) == [f"Rolling back podinfo.test progress deadline exceeded {msg}",
                         "Canary failed! Scaling down podinfo.test"]
    assert d.status is not None and d.status.phase == Phase.FAILED


def test_canary_unready_mid_run_is_bounded_too() -> None:
    st = progressing(canary_weight=20, next_step_at=1000.0)
    crashing = snap(target=dep(available=1), routes=(80, 20))
    d = run(SPEC, st, crashing, 500.0)
    assert d.status is not None and d.status.waiting_since == 500.0
    d = run(SPEC, d.status, crashing, 560.0)
    assert d.status is not None and d.status.phase == Phase.FAILED


def test_primary_deadline_during_promotion_routes_to_canary() -> None:
    st = status(Phase.PROMOTING, canary_weight=50, last_applied_spec=V2, waiting_since=0.0)
    rolling = snap(primary=dep("podinfo-primary", V2, updated_replicas=1),
                   primary_template_matches_target=True, routes=(50, 50))
    d = run(SPEC, st, rolling, 30.0)
    assert events(d) == ["podinfo-primary.test not ready: waiting for rollout to finish: 1 out of 2 new "
                         "replicas have been updated"]
    d = run(SPEC, st, rolling, 60.0)
    assert events(d)[0].startswith("Promotion of podinfo.test failed, primary not ready: "
                                   "podinfo-primary.test not ready: waiting for rollout to finish")
    assert non_emit(d) == [SetRoutes(0, 100)]
    assert d.status is not None and (d.status.phase, d.status.canary_weight) == (Phase.FAILED, 100)


def test_promotion_waits_for_the_new_primary_template() -> None:
    st = status(Phase.PROMOTING, canary_weight=50, last_applied_spec=V2, waiting_since=0.0)
    d = run(SPEC, st, snap(routes=(50, 50)), 1.0)  # cache still shows the old primary, fully ready
    assert events(d) == [] and d.status is None and d.wake_at == 30.0  # waits, quietly (engine/waits.py)
    d = run(SPEC, st, snap(primary=dep("podinfo-primary", V2), primary_template_matches_target=True,
                           routes=(50, 50)), 2.0)
    assert events(d) == ["Routing all traffic to primary"] and non_emit(d) == [SetRoutes(100, 0)]
    assert d.status is not None and d.status.phase == Phase.FINALISING
    fin = run(SPEC, d.status, snap(routes=(50, 50), primary_template_matches_target=True), 2.1)
    assert fin.actions == (SetRoutes(100, 0),)  # routes not yet observed: repair only, no scale-down
    fin = run(SPEC, d.status, snap(routes=(100, 0), primary_template_matches_target=True), 2.2)
    assert events(fin) == ["Promotion completed! Scaling down podinfo.test"] and ScaleTarget(0) in fin.actions
    assert fin.status is not None
    assert fin.status.phase == Phase.SUCCEEDED and fin.status.last_promoted_spec == V2


# ---- takeover of Flagger status ----


def test_foreign_status_adopted_without_a_run_when_primary_matches() -> None:
    st = status(Phase.SUCCEEDED, last_applied_spec="bcdf95", last_promoted_spec="bcdf95",
                tracked_configs=(("secret/s", "1"),), observed_generation=0)
    d = run(SPEC, st, snap(primary_template_matches_target=True, config_checksums=(("secret/s", "1"),)), 0.0)
    assert events(d) == [] and d.status is not None and d.status.phase == Phase.SUCCEEDED
    assert d.status.last_applied_spec == d.status.last_promoted_spec == V2
    assert non_emit(d) == [EnsureServicesAndRouting(apex=True)]  # our generated objects, once


def test_foreign_status_starts_a_run_when_target_differs() -> None:
    st = status(Phase.SUCCEEDED, last_applied_spec="bcdf95", last_promoted_spec="bcdf95")
    d = run(SPEC, st, snap(primary_template_matches_target=False), 0.0)
    assert "New revision detected! Scaling up podinfo.test" in events(d)


def test_foreign_run_mid_way_restarts_at_zero() -> None:
    st = status(Phase.PROGRESSING, canary_weight=30, last_applied_spec="bcdf95", last_promoted_spec="zzz")
    d = run(SPEC, st, snap(routes=(70, 30)), 0.0)
    assert events(d) == ["Run taken over from Flagger! Restarting analysis for podinfo.test"]
    assert d.status is not None and d.status.canary_weight == 0 and d.status.last_applied_spec == V2
    assert SetRoutes(100, 0) in d.actions


# ---- invalid snapshots, invalid spec, suspend ----

INVALID = [
    (snap(target=None), "target Deployment podinfo.test not found"),
    (snap(target=dep(selector_label=None)),
     "getSelectorLabel failed: deployment podinfo.test spec.selector.matchLabels must contain one of "
     "[app name app.kubernetes.io/name]"),
    (snap(config_error="ConfigMap cfg used by the pod template does not exist"), "ConfigMap cfg"),
    (snap(duplicate_of="other.test"), "already the target of canary other.test"),
]


@pytest.mark.parametrize(("created_at", "st", "now", "reported", "wake"), [
    # a Canary never decided on, created at 100: its target may still be on its way through another watch
    (100.0, status(None), 101.0, False, 100.0 + TARGET_GRACE),
    (100.0, status(None), 100.0 + TARGET_GRACE, True, None),  # the grace is over: reported
    (None, status(None), 101.0, True, None),  # no creation time: reported at once
    (100.0, status(Phase.INITIALIZED), 101.0, True, None),  # decided on before: its target was deleted
])
def test_a_new_canary_s_missing_target_is_reported_after_a_grace(
        created_at: float | None, st: CanaryStatus, now: float, reported: bool, wake: float | None) -> None:
    spec = replace(SPEC, created_at=created_at)
    d = run(spec, st, snap(target=None), now)
    if reported:
        assert events(d) == ["target Deployment podinfo.test not found; create it (or fix "
                             "spec.targetRef.name) and the canary initializes when it appears"]
        assert d.status is not None
    else:
        assert d.actions == () and d.status is None and d.wake_at == wake
        assert run(spec, st, snap(), now).actions != ()  # the target arrived within the grace: it goes on


@pytest.mark.parametrize(("sn", "needle"), INVALID)
def test_invalid_snapshot_warns_once_and_recovers(sn: Snapshot, needle: str) -> None:
    st = progressing(canary_weight=20, next_step_at=1000.0)
    d = run(SPEC, st, sn, 10.0)
    assert len(events(d)) == 1 and needle in events(d)[0] and non_emit(d) == []
    assert next(a for a in d.actions if isinstance(a, Emit)).warning
    assert d.status is not None and d.status.phase == Phase.PROGRESSING and needle in d.status.message
    assert d.status.conditions[1]["type"] == "Valid" and d.status.conditions[1]["status"] == "False"
    again = run(SPEC, d.status, sn, 11.0)
    assert again.status is None and again.actions == ()
    fixed = run(SPEC, d.status, snap(routes=(80, 20)), 12.0)
    assert fixed.status is not None and fixed.status.message == "" and len(fixed.status.conditions) == 1


def test_invalid_spec() -> None:
    d = decide_invalid(CanaryStatus(), "spec.analysis is missing", 5.0)
    assert d.actions == (Emit("spec.analysis is missing", warning=True),)
    assert d.status is not None and d.status.conditions[0]["type"] == "Valid"
    assert decide_invalid(d.status, "spec.analysis is missing", 6.0) == Decision()


def test_suspend_does_nothing_but_say_so_once() -> None:
    spec = replace(SPEC, suspend=True)
    st = progressing(canary_weight=20, next_step_at=10.0)
    d = run(spec, st, snap(routes=(90, 10)), 50.0)
    assert events(d) == ["skipping canary run as object is suspended"] and non_emit(d) == []
    assert d.status is not None
    assert run(spec, d.status, snap(routes=(90, 10)), 60.0) == Decision()


# ---- gates, hooks and strategies through the fake world ----


def finish(w: World, until: float = 3000.0) -> list[str]:
    change_image(w)
    w.run(0.0, until, stop=lambda w: w.status.phase in (Phase.SUCCEEDED, Phase.FAILED)
          and w.status.last_applied_spec == V2)
    return [e.message for _, e in w.events]


def phases(w: World) -> list[str]:
    out: list[str] = []
    for r in w.rows:
        if not out or out[-1] != f"{r.phase} {r.weight}":
            out.append(f"{r.phase} {r.weight}")
    return out


def test_step_weight_promotion_phases() -> None:
    w = initialized_world(tutorial_canary(stepWeight=100, maxWeight=100, stepWeightPromotion=50),
                          check_results=passing_checks)
    evs = finish(w)
    assert phases(w) == ["Progressing 0", "Progressing 100", "Promoting 100", "Promoting 50", "Finalising 0",
                         "Succeeded 0"]
    assert "Advance podinfo.test primary weight 50" in evs
    assert "Advance podinfo.test primary weight 100" in evs


def test_blue_green_phases() -> None:
    w = initialized_world(tutorial_canary(stepWeight=None, iterations=2), check_results=passing_checks)
    evs = finish(w)
    assert [e for e in evs if e.startswith(("Advance", "Routing", "Copying", "Promotion"))] == [
        "Advance podinfo.test canary iteration 1/2", "Advance podinfo.test canary iteration 2/2",
        "Routing all traffic to canary", "Copying podinfo.test template spec to podinfo-primary.test",
        "Routing all traffic to primary", "Promotion completed! Scaling down podinfo.test"]
    assert w.status.phase == Phase.SUCCEEDED


def test_ab_routes_matched_traffic_from_the_first_iteration() -> None:
    match = [{"headers": {"x": {"exact": "1"}}}]
    w = initialized_world(tutorial_canary(stepWeight=None, iterations=2, match=match),
                          check_results=passing_checks)
    evs = finish(w)
    assert "Advance podinfo.test canary iteration 1/2" in evs and "Routing all traffic to canary" not in evs
    assert phases(w)[1] == "Progressing 100" and w.status.phase == Phase.SUCCEEDED


def test_mirror_first_step() -> None:
    w = initialized_world(tutorial_canary(mirror=True, stepWeight=25, maxWeight=50),
                          check_results=passing_checks)
    finish(w)
    assert phases(w)[:3] == ["Progressing 0", "Progressing 25", "Progressing 50"]
    # mirror step at 5 s, first weight one interval on
    assert next(r.t for r in w.rows if r.weight == 25) == 35.0


def test_skip_analysis() -> None:
    w = initialized_world(replace(tutorial_canary(), skip_analysis=True))
    evs = finish(w)
    assert evs[-1] == "Promotion completed! Canary analysis was skipped for podinfo.test"
    assert w.status.phase == Phase.SUCCEEDED and w.status.last_promoted_spec == V2


def gate_hooks(open_at: float, kind: str) -> Any:
    def answer(hook_type: str, t: float) -> tuple[HookResult, ...]:
        if hook_type == kind:
            return (HookResult("gate", t >= open_at, "Forbidden"),)
        return (HookResult("h", True),)
    return answer


@pytest.mark.parametrize(("kind", "waiting", "halt"), [
    ("confirm-rollout", Phase.WAITING, "Halt podinfo.test advancement waiting for approval gate"),
    ("confirm-promotion", Phase.WAITING_PROMOTION,
     "Halt podinfo.test advancement waiting for promotion approval gate"),
    ("confirm-traffic-increase", Phase.PROGRESSING,
     "Halt podinfo.test advancement waiting for traffic increase approval gate"),
])
def test_gates_wait_without_deadline(kind: str, waiting: Phase, halt: str) -> None:
    spec = tutorial_canary(webhooks=[{"name": "gate", "url": "http://gate/", "type": kind}])
    w = initialized_world(spec, check_results=passing_checks, hook_results=gate_hooks(2000.0, kind))
    seen: set[Phase] = set()

    def stop(w: World) -> bool:
        if w.status.phase is not None:
            seen.add(w.status.phase)
        return w.status.phase == Phase.SUCCEEDED and w.status.last_applied_spec == V2

    change_image(w)
    w.run(0.0, 5000.0, stop=stop)
    evs = [e.message for _, e in w.events]
    assert evs.count(halt) == 1 and waiting in seen  # far beyond the 60 s progress deadline: still waiting
    assert f"{kind.capitalize()} check gate passed" in evs and w.status.phase == Phase.SUCCEEDED


def test_rollback_webhook() -> None:
    spec = tutorial_canary(webhooks=[{"name": "abort", "url": "http://x/", "type": "rollback"}])
    w = initialized_world(spec, check_results=passing_checks, hook_results=gate_hooks(60.0, "rollback"))
    evs = finish(w)
    assert "Rolling back podinfo.test manual webhook invoked" in evs and w.status.phase == Phase.FAILED


def test_rollback_run_counts_exactly_threshold_halts() -> None:
    w = initialized_world(check_results=lambda t: FAILING)
    evs = finish(w)
    assert sum(e.startswith("Halt ") for e in evs) == 10
    assert evs[-2:] == ["Rolling back podinfo.test failed checks threshold reached 10",
                        "Canary failed! Scaling down podinfo.test"]
    assert w.routes == (100, 0) and w.target.replicas == 0 and w.primary_template == V1


# ---- alerts beyond Flagger (#1663) ----


def alerts(d: Decision) -> list[tuple[str, str]]:
    return [(a.alert, a.alert_message) for a in d.actions if isinstance(a, Emit) and a.alert]


def test_failing_pre_rollout_hook_alerts_each_time_and_at_the_threshold() -> None:
    spec = tutorial_canary(threshold=2,
                           webhooks=[{"name": "db-migrate", "url": "http://x/", "type": "pre-rollout"}])
    hooks = {"pre-rollout": (HookResult("db-migrate", False, "Forbidden"),)}
    d = run(spec, progressing(waiting_since=0.0), snap(), 5.0, hooks=hooks)
    assert "Halt podinfo.test advancement pre-rollout check db-migrate failed Forbidden" in events(d)
    assert alerts(d) == [("warn", "Pre-rollout check db-migrate failed: Forbidden")]
    assert d.status is not None and d.status.failed_checks == 1
    d = run(spec, d.status, snap(), 35.0, hooks=hooks)
    assert alerts(d) == [("warn", "Pre-rollout check db-migrate failed: Forbidden"),
                         ("error", "Failed checks threshold reached 2")]
    assert d.status is not None and d.status.phase == Phase.FAILED


def test_passing_pre_rollout_hook_and_failing_rollout_hook_do_not_alert() -> None:
    spec = tutorial_canary(webhooks=[{"name": "db-migrate", "url": "http://x/", "type": "pre-rollout"}])
    assert alerts(run(spec, progressing(waiting_since=0.0), snap(), 5.0)) == []
    hooks = {"rollout": (HookResult("load-test", False, "Forbidden"),)}
    assert alerts(run(SPEC, progressing(canary_weight=5, next_step_at=10.0), snap(routes=(95, 5)), 10.0,
                      hooks=hooks)) == []


def test_progress_deadline_rollback_alerts_as_error() -> None:
    stuck = snap(target=dep(available=0))
    d = run(SPEC, progressing(waiting_since=0.0), stuck, 60.0)
    msg = ("canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 2 "
           "(readyThreshold 100%) updated replicas are available")
    assert alerts(d) == [("error", f"Progress deadline exceeded {msg}")]
