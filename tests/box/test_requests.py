"""Requests (the ``canaryd.io/request`` annotation) against the real runtime: promote at a gate, abort
mid-run, retry after a failure, pause/resume, a request naming an older revision, and a crash between
accepting a request and acting on it."""

from __future__ import annotations

import json
from typing import Any

from canaryd.kube import resources as r

from .harness import Box, eventually
from .objects import IMAGE
from .peers import failing_success_rate, healthy
from .scenario import KEY, NS, final_phase, initialized, weight_at_least


def request(box: Box, rid: str, action: str, **kw: Any) -> None:
    """What ``kubectl annotate --overwrite canary/podinfo canaryd.io/request=...`` does."""
    def change(c: dict[str, Any]) -> None:
        c["metadata"].setdefault("annotations", {})["canaryd.io/request"] = json.dumps(
            {"id": rid, "action": action, **kw})
    box.api.edit(r.CANARY, NS, "podinfo", change)


def answer(box: Box) -> dict[str, Any]:
    return dict(box.status(NS).get("lastRequest") or {})


async def answered(box: Box, rid: str, within: float = 10) -> dict[str, Any]:
    await eventually(lambda: answer(box).get("id") == rid, within, f"the answer to request {rid}")
    return answer(box)


async def test_promote_while_waiting_at_the_promotion_gate(box: Box) -> None:
    box.hooks.answers["/promote"] = 403
    await box.run()
    await initialized(box)
    canary = box.canary(NS)
    canary["spec"]["canaryAnalysis"]["webhooks"] = [
        {"name": "promotion", "type": "confirm-promotion", "url": f"{box.hooks.url}/promote"}]
    box.api.put(r.CANARY, canary)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    request(box, "p-1", "promote", full=True)
    got = await answered(box, "p-1")
    assert got["result"] == "done", got
    assert await final_phase(box) == "Succeeded", box.status(NS)
    assert box.primary_image(NS) == f"{IMAGE}:6.0.1"
    assert 0 < box.status(NS)["history"][0]["maxWeight"] < 50
    assert box.status(NS)["history"][0]["outcome"] == "promoted"


async def test_abort_mid_run_rolls_back_and_is_recorded(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    revision = box.status(NS)["lastAppliedSpec"]
    request(box, "stop-1", "abort", revision=revision)
    assert await final_phase(box) == "Failed", box.status(NS)
    st = box.status(NS)
    assert st["message"] == f"Rolling back {KEY} aborted by request stop-1"
    assert answer(box)["result"] == "done"
    assert st["history"][0]["outcome"] == "aborted" and st["history"][0]["image"] == f"{IMAGE}:6.0.1"
    assert [w["weight"] for w in st["weights"]][:3] == [0, 5, 10]
    assert box.primary_image(NS) == f"{IMAGE}:6.0.0"
    await eventually(lambda: any(m.startswith("request stop-1 (abort) done") for m in box.messages(NS)), 5,
                     "the request's Event")


async def test_retry_after_a_failure_runs_the_same_revision_again(box: Box) -> None:
    box.prometheus.answer = failing_success_rate
    await box.run()
    await initialized(box, threshold=1)
    box.set_image(NS, "6.0.1")
    assert await final_phase(box) == "Failed", box.status(NS)
    assert box.status(NS)["history"][0]["outcome"] == "rolled back"
    box.prometheus.answer = healthy
    request(box, "again-1", "retry")
    assert (await answered(box, "again-1"))["result"] == "done"
    assert await final_phase(box) == "Succeeded", box.status(NS)
    assert box.primary_image(NS) == f"{IMAGE}:6.0.1"
    outcomes = [h["outcome"] for h in box.status(NS)["history"]]
    assert outcomes == ["promoted", "rolled back"]


async def test_pause_holds_the_weight_until_resumed(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    request(box, "hold", "pause")
    assert (await answered(box, "hold"))["result"] == "done"
    held = box.status(NS)["canaryWeight"]
    assert box.status(NS)["message"] == "paused by request hold"
    start = box.clock.now()
    await eventually(lambda: box.clock.now() > start + 120, 10, "four intervals of virtual time")
    assert box.status(NS)["canaryWeight"] == held and box.phase(NS) == "Progressing"
    request(box, "go", "resume")
    assert (await answered(box, "go"))["result"] == "done"
    assert await final_phase(box) == "Succeeded", box.status(NS)


async def test_a_request_naming_an_older_revision_is_ignored(box: Box) -> None:
    await box.run()
    await initialized(box)
    old = box.status(NS)["lastAppliedSpec"]
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 5), 20, "weight 5")
    request(box, "old-1", "abort", revision=old)
    got = await answered(box, "old-1")
    assert got["result"] == "ignored" and got["message"].startswith(f"names revision {old}, the run is ")
    assert await final_phase(box) == "Succeeded", box.status(NS)
    await eventually(lambda: any(m.startswith("request old-1 (abort) ignored") for m in box.messages(NS)), 5,
                     "the Warning Event")


async def test_a_crash_between_accepting_and_acting_repeats_nothing(box: Box) -> None:
    await box.run()
    await initialized(box)
    box.set_image(NS, "6.0.1")
    await eventually(lambda: weight_at_least(box, 10), 20, "weight 10")
    for inst in list(box.instances):
        await inst.stop()
    request(box, "stop-2", "abort")  # seen in the new process's first pass
    first = await box.run(crash_at={"after-status-write": 1})
    await eventually(first.crash.crashed.wait, 30, "the crash after the status write")
    await first.stop()
    assert box.phase(NS) == "Failed" and answer(box)["id"] == "stop-2"  # accepted and decided together
    await box.run()  # the restarted process: carries out the rest from status, answers nothing again
    await eventually(lambda: box.weights(NS)[-1] == 0, 10, "all traffic back on the primary")
    aborted = f"Rolling back {KEY} aborted by request stop-2"
    assert box.phase(NS) == "Failed" and box.status(NS)["message"] == aborted
    assert len(box.status(NS)["history"]) == 1
