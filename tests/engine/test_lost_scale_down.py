"""The target's scale-to-zero at the end of a run, lost in a crash after the status write, is done again
at rest: status keeps the target's generation of that decision (``scaleDownGeneration``) for every end
that scales down (rollback on failed checks, abort, promotion, skipAnalysis, initialization); while the
target still has that generation and replicas the scale was lost. Any later change of the target (our
scale, a manual one) moves its generation on, so a manual scale at rest is left alone, with no status
write needed to learn the scale was done. The run start's scale-up, lost the same way, is done again
while the run waits for the canary."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from canaryd.engine.types import CanaryStatus, CheckResult, Decision, Phase, ScaleTarget

from .test_decide import SPEC, V1, V2, dep, run, snap, status
from .test_requests import progressing, req

FAILING = (CheckResult("istio_requests_total", "fail", 50.0, ">= 99%", "success rate 50% < 99%"),)
G = 2  # the target's generation in test_decide.dep


def scales(d: Decision) -> list[int]:
    return [a.replicas for a in d.actions if isinstance(a, ScaleTarget)]


def at_rest(phase: Phase, **kw: Any) -> CanaryStatus:
    base: dict[str, Any] = dict(last_applied_spec=V2, last_promoted_spec=V2 if phase != Phase.FAILED else V1)
    base.update(kw)
    return status(phase, **base)


# ---- every end of a run that scales the target down records the target's generation with it ----

ENDS: list[tuple[str, Any]] = [
    ("failed checks", lambda: run(SPEC, progressing(failed_checks=9), snap(routes=(80, 20)), 1000.0,
                                  checks=FAILING)),
    ("abort", lambda: run(SPEC, progressing(), snap(routes=(80, 20), request=req("abort")), 10.0)),
    ("promotion", lambda: run(SPEC, status(Phase.FINALISING, last_applied_spec=V2),
                              snap(routes=(100, 0), primary=dep("podinfo-primary", V2),
                                   primary_template_matches_target=True), 10.0)),
    ("skipAnalysis", lambda: run(replace(SPEC, skip_analysis=True), progressing(next_step_at=None),
                                 snap(routes=(80, 20)), 10.0)),
    ("initialization", lambda: run(SPEC, status(Phase.INITIALIZING), snap(target=dep(h=V1),
                                   primary=dep("podinfo-primary", V1)), 10.0)),
]


@pytest.mark.parametrize(("end", "decide_it"), ENDS, ids=[e for e, _ in ENDS])
def test_each_end_that_scales_down_records_the_targets_generation(end: str, decide_it: Any) -> None:
    d = decide_it()
    assert d.status is not None and d.status.phase in (Phase.FAILED, Phase.SUCCEEDED, Phase.INITIALIZED), end
    assert 0 in scales(d) and d.status.scale_down_generation == G, (end, d.status)


# ---- at rest: a lost scale done again; our own or a manual scale (a newer generation) left alone ----

AT_REST = [
    # (phase, recorded generation, target generation, target replicas) -> scales to 0
    (Phase.FAILED, G, G, 2, True),          # the scale lost in a crash: done again
    (Phase.SUCCEEDED, G, G, 2, True),
    (Phase.INITIALIZED, G, G, 1, True),
    (Phase.FAILED, G, G, 0, False),         # nothing to scale
    (Phase.FAILED, G, G + 1, 0, False),     # our scale, seen
    (Phase.FAILED, G, G + 2, 3, False),     # scaled by hand after ours: left alone
    (Phase.SUCCEEDED, G, G + 2, 3, False),
    (Phase.INITIALIZED, G, G + 2, 3, False),
    (Phase.FAILED, 0, G, 3, False),         # nothing recorded (status of an older canaryd or Flagger)
]


@pytest.mark.parametrize(("phase", "recorded", "generation", "replicas", "scaled"), AT_REST)
def test_at_rest(phase: Phase, recorded: int, generation: int, replicas: int, scaled: bool) -> None:
    st = at_rest(phase, scale_down_generation=recorded)
    target = dep(replicas=replicas, generation=generation, observed_generation=generation)
    d = run(SPEC, st, snap(target=target), 50.0)
    assert scales(d) == ([0] if scaled else []), d.actions
    assert d.status is None  # never a status write of its own
    if not scaled:
        assert d.actions == ()


def test_a_new_revision_takes_the_target_over() -> None:
    st = at_rest(Phase.FAILED, scale_down_generation=G)
    d = run(SPEC, st, snap(target=dep(h="cd1:v3", replicas=2)), 50.0)
    assert d.status is not None and d.status.phase == Phase.PROGRESSING
    assert d.status.scale_down_generation == 0 and 0 not in scales(d)


def test_suspended_repairs_nothing() -> None:
    st = at_rest(Phase.FAILED, scale_down_generation=G)
    d = run(replace(SPEC, suspend=True), st, snap(target=dep(replicas=2)), 50.0)
    assert scales(d) == []


def test_crash_after_the_rollback_write_then_restart_then_manual_scale() -> None:
    """The sequence the bed's e2e test drives through a real SIGKILL, as decisions."""
    ended = run(SPEC, progressing(failed_checks=9), snap(routes=(80, 20)), 1000.0, checks=FAILING)
    assert ended.status is not None and ended.status.phase == Phase.FAILED
    # crash: status written, the routes written, ScaleTarget(0) never carried out; restart:
    restarted = run(SPEC, ended.status, snap(routes=(100, 0), target=dep(replicas=2)), 1100.0)
    assert scales(restarted) == [0] and restarted.status is None
    ours = dep(replicas=0, generation=G + 1, observed_generation=G + 1)
    seen = run(SPEC, ended.status, snap(routes=(100, 0), target=ours), 1101.0)
    assert seen.status is None and seen.actions == ()
    by_hand = dep(replicas=3, generation=G + 2, observed_generation=G + 2)
    later = run(SPEC, ended.status, snap(routes=(100, 0), target=by_hand), 1200.0)
    assert later.status is None and later.actions == ()


def test_the_run_starts_scale_up_lost_in_a_crash_is_done_again() -> None:
    """The other end of a run: Progressing written, the target's scale-up never carried out."""
    st = progressing(canary_weight=0, weights=((0.0, 0),), waiting_since=0.0, next_step_at=None)
    d = run(SPEC, st, snap(target=dep(replicas=0, available=0)), 5.0)
    assert scales(d) == [2]  # the HPA minimum (the target has no replicas of its own)
    assert d.status is None or d.status.phase == Phase.PROGRESSING
