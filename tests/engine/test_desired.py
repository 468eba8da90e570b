"""The engine hands writers everything they need (engine/desired.py, engine/driver.py): routes with the
primary's share and the cookies, the promotion id, the webhook checksum and payload phase, the Events'
checksum; the driver is the one request/answer loop; and a due step whose routes lag status has them
repaired before it is judged."""

from __future__ import annotations

import ast
import pathlib
import uuid
from dataclasses import replace

import pytest

from canaryd.engine.cookies import cookies_for
from canaryd.engine.desired import complete, promotion_id, webhook_checksum
from canaryd.engine.driver import MAX_ROUNDS, Answers, Drive, TooManyRounds
from canaryd.engine.types import (
    CanaryStatus,
    Decision,
    Emit,
    EnsureServicesAndRouting,
    HookResult,
    Phase,
    Promote,
    RunHooks,
    SetRoutes,
)
from canaryd.model.routes import Cookies, Routes

from .test_decide import SPEC, V2, events, non_emit, progressing, run, snap
from .world import passing_checks

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUN = CanaryStatus(phase=Phase.PROGRESSING, canary_weight=20, mirrored=False, last_applied_spec=V2,
                   tracked_configs=(("configmap/c", "abc"),))


def test_actions_carry_what_writers_need() -> None:
    sa = replace(SPEC, analysis=replace(SPEC.analysis, session_affinity={"cookieName": "k"}))
    got = complete(sa, RUN, (SetRoutes(80, 20), EnsureServicesAndRouting(apex=True),
                             EnsureServicesAndRouting(apex=False), Promote(), Emit("hi"),
                             RunHooks("rollout"), RunHooks("post-rollout", wait=False)))
    routes, ensure, no_apex, promote, emit, hook, post = got
    assert isinstance(routes, SetRoutes) and routes.routes == Routes(20, False, cookies_for(sa, RUN, 20))
    assert routes.cookies is not None and routes.cookies.canary.startswith("k=")
    assert isinstance(ensure, EnsureServicesAndRouting) and ensure.routes == routes.routes
    assert ensure.routes is not None and ensure.routes.primary == 80
    assert isinstance(no_apex, EnsureServicesAndRouting) and no_apex.routes is None
    expected_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{SPEC.uid}/{V2}"))
    assert isinstance(promote, Promote) and promote.promotion_id == expected_id == promotion_id(sa, RUN)
    checksum = webhook_checksum(RUN)
    assert len(checksum) == 16 and isinstance(emit, Emit) and emit.checksum == checksum
    assert isinstance(hook, RunHooks) and (hook.phase, hook.checksum) == ("Progressing", checksum)
    assert isinstance(post, RunHooks) and post.phase == "Progressing"  # the phase the run is in
    assert complete(SPEC, RUN, (SetRoutes(80, 20),))[0] == SetRoutes(80, 20)
    assert complete(SPEC, RUN, (SetRoutes(80, 20),))[0].cookies is None  # type: ignore[union-attr]


@pytest.mark.parametrize(("phase", "hook_type", "sent"), [
    (Phase.INITIALIZED, "confirm-rollout", "Initialized"),  # the current phase
    (Phase.PROGRESSING, "pre-rollout", "Progressing"),
    (Phase.WAITING_PROMOTION, "confirm-promotion", "Progressing"),
    (Phase.PROGRESSING, "rollback", "Progressing"),
    (Phase.SUCCEEDED, "post-rollout", "Succeeded"),
])
def test_hook_payload_phase(phase: Phase, hook_type: str, sent: str) -> None:
    wait = hook_type != "post-rollout"
    hook = complete(SPEC, replace(RUN, phase=phase), (RunHooks(hook_type, wait=wait),))[0]
    assert isinstance(hook, RunHooks) and hook.phase == sent


def test_checksum_follows_the_revision_only() -> None:
    assert webhook_checksum(RUN) == webhook_checksum(replace(RUN, canary_weight=40, phase=Phase.FAILED))
    assert webhook_checksum(RUN) != webhook_checksum(replace(RUN, last_applied_spec="cd1:other"))
    assert webhook_checksum(RUN) != webhook_checksum(replace(RUN, tracked_configs=()))


def test_routes_primary_is_the_rest() -> None:
    assert Routes(canary=30).primary == 70 and Routes(canary=0, mirror=True, cookies=Cookies()).primary == 100


def test_driver_answers_requests_and_keeps_earlier_rounds() -> None:
    st, sn = progressing(canary_weight=10, next_step_at=65.0), snap(routes=(90, 10))
    drive = Drive(SPEC, st, sn, 65.0)
    first = drive.decision
    assert first.analyse and first.requests == (RunHooks("rollout"),) and first.status is None
    assert first.requests[0].checksum == webhook_checksum(st)  # asked with the run's checksum
    final = drive.answer(Answers(now=65.5, checks=passing_checks(65.0),
                                 hooks={"rollout": (HookResult("r", True),)}))
    assert not final.is_request and events(final) == ["Advance podinfo.test canary weight 15"]
    assert drive.inputs.now == 65.5 and drive.inputs.hooks == {"rollout": (HookResult("r", True),)}
    with pytest.raises(ValueError):
        drive.answer(Answers(now=66.0))


def test_driver_gives_up_when_asked_too_often() -> None:
    st, sn = progressing(canary_weight=10, next_step_at=65.0), snap(routes=(90, 10))
    drive = Drive(SPEC, st, sn, 65.0)
    with pytest.raises(TooManyRounds):
        for _ in range(MAX_ROUNDS):  # answering nothing: the engine keeps asking
            drive.answer(Answers(now=65.0))


# a due step (next_step_at 65) whose routes differ from status: repaired first, judged an interval later
@pytest.mark.parametrize(("weight", "mirrored", "seen", "seen_mirror", "repaired"), [
    (20, False, (85, 15), False, SetRoutes(80, 20)),  # the write of 20 failed past the due time
    (0, True, (100, 0), False, SetRoutes(100, 0, mirror=True)),  # the mirror step's write failed
    (20, False, (80, 20), True, SetRoutes(80, 20)),
])
def test_a_due_step_with_lagging_routes_repairs_them_first(
        weight: int, mirrored: bool, seen: tuple[int, int], seen_mirror: bool, repaired: SetRoutes) -> None:
    st = progressing(canary_weight=weight, mirrored=mirrored, next_step_at=65.0)
    d = run(SPEC, st, snap(routes=seen, mirrored=seen_mirror), 70.0)
    assert non_emit(d) == [repaired] and events(d) == []
    assert d.status is not None and d.status.canary_weight == weight and d.status.next_step_at == 100.0
    assert d.wake_at == 100.0
    judged = run(SPEC, d.status, snap(routes=(repaired.primary, repaired.canary), mirrored=repaired.mirror),
                 100.0)
    assert events(judged) and events(judged)[-1].startswith("Advance podinfo.test canary weight")


@pytest.mark.parametrize(("seen", "seen_mirror"), [(None, None), ((80, 20), None), ((80, 20), False)])
def test_a_due_step_with_matching_or_unknown_routes_is_judged(
        seen: tuple[int, int] | None, seen_mirror: bool | None) -> None:
    st = progressing(canary_weight=20, next_step_at=65.0)
    d: Decision = run(SPEC, st, snap(routes=seen, mirrored=seen_mirror), 70.0)
    assert events(d) == ["Advance podinfo.test canary weight 25"]


def test_actuators_do_not_import_the_engine() -> None:
    """Writers build objects from what they are given: nothing in canaryd/actuators decides."""
    for path in sorted((ROOT / "canaryd" / "actuators").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not [n for n in names if n == "canaryd.engine" or n.startswith("canaryd.engine.")], path
