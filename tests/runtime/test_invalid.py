"""A Canary whose spec does not parse runs the tested ``engine.decide.decide_invalid`` (issue 9): status
message and ``Valid=False`` with its ``lastTransitionTime``, one Warning Event; a repeat is recognised
from the status (not from the task's memory: a new task, as after a restart, stays quiet too)."""

from __future__ import annotations

from canaryd.kube.resources import CANARY
from canaryd.runtime.task import CanaryTask

from .conftest import Rig
from .test_conflict import NS, a_canary


def warnings(rig: Rig) -> list[str]:
    posts = [r.body for r in rig.api.requests if r.method == "POST" and r.path.endswith("/events")]
    return [str(b.get("message")) for b in posts if b and b.get("type") == "Warning"]


async def test_invalid_spec_gets_valid_false_with_a_transition_time_once(rig: Rig) -> None:
    bad = a_canary()
    del bad["spec"]["service"]
    rig.store.upsert("Canary", rig.api.put_object(CANARY, bad))

    await CanaryTask(rig.ctx, NS, "podinfo").reconcile()

    server = rig.api.get_object(CANARY, NS, "podinfo")
    assert server is not None
    status = server["status"]
    valid = [c for c in status["conditions"] if c["type"] == "Valid"]
    assert len(valid) == 1 and valid[0]["status"] == "False" and valid[0]["reason"] == "InvalidSpec"
    assert valid[0]["lastTransitionTime"]
    assert status["message"] == valid[0]["message"]
    assert status["lastTransitionTime"]
    assert warnings(rig) == [status["message"]]

    rig.store.upsert("Canary", server)  # the watch delivers our write; a new task (a restart) looks again
    await CanaryTask(rig.ctx, NS, "podinfo").reconcile()
    assert len(rig.api.writes("PUT", "/status")) == 1
    assert len(warnings(rig)) == 1
