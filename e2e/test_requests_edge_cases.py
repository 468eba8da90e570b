"""Requests (the ``canaryd.io/request`` annotation, written with plain ``kubectl annotate``) at their edges,
on the bed against a real canaryd, each scenario in a namespace of its own:

* promote while the run waits at a confirm-promotion gate that stays closed: without ``full`` the run keeps
  waiting (WaitingPromotion); with ``full`` it promotes past the gate (Succeeded);
* retry of the failed revision runs the analysis again from weight 0; retry after the target got a newer
  image (the failed revision superseded) is refused with the reason;
* the Promoted condition of a failed run carries the reason (status.message) for Argo CD's health check;
* canaryd SIGKILLed between accepting a request and carrying it out (crash point after the route write):
  after the restart the request is answered exactly once (one Event, ``lastRequest`` written once), and the
  scale-down the crash lost is done (status keeps the target's generation of that decision,
  ``scaleDownGeneration``), while a manual scale of the target at rest afterwards is left alone.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, VIRTUAL_SERVICE
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, podinfo, set_image, status, wait_phase
from e2e.mesh.control import MeshControl
from e2e.operator import Operator, wait_ready
from e2e.receivers import Receiver
from e2e.tutorial import IMAGE, canary_events, canary_weight, counts, primary_image, recording


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client(user_agent="e2e-requests")
    yield client
    await client.close()


@pytest.fixture
async def gate(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """A confirm-promotion gate behind ``http://gate.<namespace>/gate/check`` that stays closed (403)."""
    r = await Receiver().start()
    r.answer("/gate/check", 403, "Forbidden")
    await MeshControl(bed.mesh_url).register(namespace, "gate", f"127.0.0.1:{r.port}")
    yield r
    await r.stop()


def gated(namespace: str, **analysis: Any) -> dict[str, Any]:
    return canary(namespace, webhooks=[{"name": "promote", "type": "confirm-promotion", "timeout": "2s",
                                        "url": f"http://gate.{namespace}/gate/check"}], **analysis)


def request(bed: Any, ns: str, rid: str, action: str, **kw: Any) -> None:
    """``kubectl annotate --overwrite canary/podinfo canaryd.io/request=…`` (what the CLI writes)."""
    body = json.dumps({"id": rid, "action": action, **kw})
    bed.kubectl("-n", ns, "annotate", "--overwrite", "canaries.flagger.app/podinfo",
                f"canaryd.io/request={body}")


async def answered(admin: KubeClient, ns: str, rid: str, seconds: float = 30) -> dict[str, Any]:
    """The Canary's status once ``lastRequest`` answers ``rid``."""
    async def done() -> dict[str, Any] | None:
        st = await status(admin, ns)
        return st if (st.get("lastRequest") or {}).get("id") == rid else None

    got: dict[str, Any] = await wait_for(done, seconds, f"the answer to request {rid}", interval=0.2)
    return got


async def request_events(admin: KubeClient, ns: str, rid: str) -> dict[str, int]:
    got = counts(await canary_events(admin, ns))
    return {m: n for m, n in got.items() if m.startswith(f"request {rid} ")}


async def test_promote_at_a_closed_confirm_promotion_gate(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient, gate: Receiver) -> None:
    ns = namespace
    await create(admin, ns, podinfo(ns), gated(ns, stepWeight=25))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")
    st = await wait_phase(admin, ns, "WaitingPromotion", seconds=60)
    run = st["lastAppliedSpec"]

    request(bed, ns, "p-gate", "promote", revision=run)
    st = await answered(admin, ns, "p-gate")
    assert (st["lastRequest"]["result"], st["phase"]) == ("done", "WaitingPromotion"), st
    asked = len(gate.bodies("/gate/check"))
    await wait_for(lambda: len(gate.bodies("/gate/check")) >= asked + 2, 15, "the closed gate asked again")
    st = await status(admin, ns)
    assert st["phase"] == "WaitingPromotion" and st["lastRequest"]["id"] == "p-gate", st
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"

    request(bed, ns, "p-full", "promote", revision=run, full=True)
    st = await answered(admin, ns, "p-full")
    assert st["lastRequest"]["result"] == "done", st
    st = await wait_phase(admin, ns, "Succeeded", "Failed", seconds=60)
    assert st["phase"] == "Succeeded", st
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.1"
    assert (await request_events(admin, ns, "p-full")) == {
        "request p-full (promote) done: analysis and promotion gates skipped: promoting": 1}


async def test_retry_runs_the_failed_revision_again_and_refuses_a_superseded_one(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient) -> None:
    ns = namespace
    failing = {"BED_ERROR_PERCENT": "100"}
    await create(admin, ns, podinfo(ns), canary(ns, threshold=2))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1", env=failing)
    st = await wait_phase(admin, ns, "Failed", "Succeeded", seconds=60)
    assert st["phase"] == "Failed", st
    failed = st["lastAppliedSpec"]
    promoted = next(c for c in st["conditions"] if c["type"] == "Promoted")  # what Argo CD's health reads
    assert (promoted["status"], promoted["reason"]) == ("False", "Failed"), promoted
    why = st["message"]
    assert why, st
    assert promoted["message"] == f"Canary analysis failed, Deployment scaled to zero. {why}", promoted

    async with recording(admin, ns) as rec:
        request(bed, ns, "r-1", "retry", revision=failed)
        st = await answered(admin, ns, "r-1")
        assert (st["lastRequest"]["result"], st["phase"]) == ("done", "Progressing"), st
        assert st["lastAppliedSpec"] == failed  # the same revision, no spec or template change
        st = await wait_phase(admin, ns, "Failed", "Succeeded", seconds=60)
        await wait_for(lambda: rec.weights[-1:] == [0], 10, "all traffic back on the primary")
    # the analysis ran again from weight 0: its first step, then back to the primary
    assert rec.weights[:2] == [0, 10], rec.weights
    assert st["phase"] == "Failed", st
    assert [h["revision"] for h in st["history"][:2]] == [failed, failed], st["history"]

    # the target gets a newer image while canaryd is down; the retry reaches it first: refused, with why
    operator.kill()
    await set_image(admin, ns, "6.0.2", env=failing)
    request(bed, ns, "r-2", "retry")
    operator.start()
    st = await answered(admin, ns, "r-2")
    assert st["lastRequest"]["result"] == "refused", st
    assert f"the revision that failed ({failed}) was superseded" in st["lastRequest"]["message"], st
    events = await wait_for(lambda: request_events(admin, ns, "r-2"), 15, "the refusal's Event")
    assert list(events.values()) == [1] and "superseded" in next(iter(events)), events
    assert st["lastAppliedSpec"] != failed  # the new image's run started as for any new revision


async def _abort_killed_after_route_write(bed: Any, ns: str, operator: Operator, admin: KubeClient) -> str:
    """A run held at the closed gate; canaryd SIGKILLed, an abort written, and the next process killed by
    its crash point right after the abort's route write (status and the answer's Event written, the
    target not scaled down yet); then started again. Returns ``lastRequest.at`` as first written."""
    await create(admin, ns, podinfo(ns), gated(ns, stepWeight=25))
    await wait_phase(admin, ns, "Initialized")
    await set_image(admin, ns, "6.0.1")
    await wait_phase(admin, ns, "WaitingPromotion", seconds=60)
    operator.kill()
    request(bed, ns, "a-kill", "abort")  # seen in the next process's first pass
    operator.start(CANARYD_CRASH_AT="after-route-write:1")
    code = await asyncio.to_thread(operator.wait_exit, 60)
    assert code == 137, (code, operator.messages()[-10:])
    assert "crash point after-route-write reached: exiting" in operator.messages()[-5:]
    st = await status(admin, ns)
    assert st["phase"] == "Failed" and st["lastRequest"]["id"] == "a-kill", st
    operator.start()
    await asyncio.to_thread(wait_ready, operator)
    return str(st["lastRequest"]["at"])


async def test_sigkill_between_accepting_and_acting_answers_once(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient, gate: Receiver) -> None:
    ns = namespace
    answered_at = await _abort_killed_after_route_write(bed, ns, operator, admin)
    # the restarted process answers nothing again: lastRequest as first written, its Event once
    answer = "request a-kill (abort) done: rolled back"
    await wait_for(lambda: _has(admin, ns, answer), 15, "the answer's Event")
    st = await status(admin, ns)
    assert (st["lastRequest"]["id"], st["lastRequest"]["at"]) == ("a-kill", answered_at), st
    request(bed, ns, "a-later", "pause")  # a later request is answered: the first one was not acted on again
    st = await answered(admin, ns, "a-later")
    assert st["lastRequest"]["result"] == "refused", st
    assert st["phase"] == "Failed" and "aborted by request a-kill" in st["message"], st
    assert [h["outcome"] for h in st["history"]] == ["aborted"], st["history"]
    assert await request_events(admin, ns, "a-kill") == {answer: 1}
    assert canary_weight(await admin.get(VIRTUAL_SERVICE, ns, "podinfo")) == 0
    assert await primary_image(admin, ns) == f"{IMAGE}:6.0.0"


async def test_sigkill_after_an_abort_route_write_target_scaled_down(
        bed: Any, namespace: str, operator: Operator, admin: KubeClient, gate: Receiver) -> None:
    ns = namespace
    await _abort_killed_after_route_write(bed, ns, operator, admin)

    async def replicas() -> int:
        d = await admin.get(DEPLOYMENT, ns, "podinfo")
        return int(d["spec"].get("replicas") or 0)

    async def scaled_to(n: int) -> bool:
        return await replicas() == n

    # the target still has the generation status recorded with the abort: the restarted process scales it
    await wait_for(lambda: scaled_to(0), 20, "the canary scaled to zero by the restarted process")
    recorded = int((await status(admin, ns))["scaleDownGeneration"])
    assert int((await admin.get(DEPLOYMENT, ns, "podinfo"))["metadata"]["generation"]) == recorded + 1
    # a manual scale of the target at rest is left alone: a later request answered proves a pass saw it
    bed.kubectl("-n", ns, "scale", "deployment/podinfo", "--replicas=2")
    await wait_for(lambda: scaled_to(2), 10, "the manual scale")
    request(bed, ns, "a-after-scale", "pause")
    st = await answered(admin, ns, "a-after-scale")
    assert st["phase"] == "Failed", st
    assert await replicas() == 2


async def _has(admin: KubeClient, ns: str, message: str) -> bool:
    return message in counts(await canary_events(admin, ns))
