"""Webhook gates end to end (flagger-reference.md §6.2): canaryd, under its own ServiceAccount, calls a gate
server of ours on loopback through the mesh simulator's proxy as ``http://gate.<ns>/…``. A closed gate answers
403 ``Forbidden`` and an open one 200 ``Approved`` (the load tester's /gate/check contract).

* confirm-rollout closed → Waiting, the canary not scaled up; opened → Progressing → Succeeded
* a rollback gate opened mid-run → Failed ("manual webhook invoked")
* confirm-promotion closed at max weight → WaitingPromotion (weight held); opened → Succeeded
* a failing pre-rollout hook → one Halt per step, each a failed check, Failed at the threshold; alerted

Substitution the bed forces: the gate server is a local aiohttp receiver instead of flagger-loadtester."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import DEPLOYMENT, EVENT
from e2e.bed.waiting import wait_for
from e2e.canaries import canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


@pytest.fixture
async def gate(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """The gate server behind ``http://gate.<namespace>/``."""
    r = await Receiver().start()
    await MeshControl(bed.mesh_url).register(namespace, "gate", f"127.0.0.1:{r.port}")
    yield r
    await r.stop()


def close(gate: Receiver, path: str) -> None:
    gate.answer(path, 403, "Forbidden")


def open_(gate: Receiver, path: str) -> None:
    gate.answer(path, 200, "Approved")


def hook(namespace: str, name: str, kind: str, path: str) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": f"http://gate.{namespace}{path}", "timeout": "2s",
            "metadata": {"team": "e2e"}}


async def replicas(client: KubeClient, namespace: str, name: str = "podinfo") -> int:
    return int((await client.get(DEPLOYMENT, namespace, name))["spec"].get("replicas") or 0)


async def has_event(client: KubeClient, namespace: str, message: str) -> list[str] | None:
    """The Canary's Event messages once ``message`` is among them (status is written before Events)."""
    events = await event_messages(client, namespace)
    return events if message in events else None


async def replicas_are(client: KubeClient, namespace: str, n: int) -> bool:
    return await replicas(client, namespace) == n


async def start(admin: KubeClient, namespace: str, spec: dict[str, Any]) -> None:
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")


async def test_confirm_rollout_closed_waits_then_opened_progresses(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, gate: Receiver) -> None:
    close(gate, "/gate/check")
    operator_factory(namespace)
    await start(admin, namespace, canary(namespace, webhooks=[hook(namespace, "approve", "confirm-rollout",
                                                                   "/gate/check")]))
    assert gate.bodies("/gate/check") == []  # initialization is not gated
    await set_image(admin, namespace, "6.0.1")
    st = await wait_phase(admin, namespace, "Waiting")
    assert st["message"] == "waiting for approval approve"
    halt = f"Halt podinfo.{namespace} advancement waiting for approval approve"
    await wait_for(lambda: has_event(admin, namespace, halt), 10, "the Halt Event")
    # asked again while closed (once per interval), the canary never scaled up
    await wait_for(lambda: len(gate.bodies("/gate/check")) >= 3, 10, "the gate asked again")
    assert await replicas(admin, namespace) == 0 and (await status(admin, namespace))["phase"] == "Waiting"
    first, later = gate.bodies("/gate/check")[0], gate.bodies("/gate/check")[-1]
    assert (first["name"], first["namespace"], first["phase"], first["metadata"]) == (
        "podinfo", namespace, "Initialized", {"team": "e2e"})
    assert later["phase"] == "Waiting" and later["checksum"] == first["checksum"]

    open_(gate, "/gate/check")
    await wait_phase(admin, namespace, "Progressing", "Succeeded")
    await wait_phase(admin, namespace, "Succeeded")
    done = f"Promotion completed! Scaling down podinfo.{namespace}"
    events = await wait_for(lambda: has_event(admin, namespace, done), 10, "the promotion's Events")
    assert events.count(halt) == 1  # one Event, aggregated
    assert "Confirm-rollout check approve passed" in events
    assert events.index(halt) < events.index(f"New revision detected! Scaling up podinfo.{namespace}")


async def test_rollback_gate_opened_mid_run_fails_the_run(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, gate: Receiver) -> None:
    close(gate, "/rollback/check")
    close(gate, "/gate/check")  # confirm-promotion stays closed: the run cannot finish before we abort it
    operator_factory(namespace)
    await start(admin, namespace, canary(namespace, stepWeight=5, webhooks=[
        hook(namespace, "abort", "rollback", "/rollback/check"),
        hook(namespace, "promote", "confirm-promotion", "/gate/check")]))
    await set_image(admin, namespace, "6.0.1")

    async def mid_run() -> bool:
        st = await status(admin, namespace)
        return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 10

    await wait_for(mid_run, 60, "the run at weight 10 or more")
    asked = len(gate.bodies("/rollback/check"))
    assert asked >= 2 and all(b["phase"] == "Progressing" for b in gate.bodies("/rollback/check"))
    open_(gate, "/rollback/check")
    st = await wait_phase(admin, namespace, "Failed")
    assert st["canaryWeight"] == 0
    last = f"Canary failed! Scaling down podinfo.{namespace}"
    events = await wait_for(lambda: has_event(admin, namespace, last), 10, "the rollback's Events")
    assert "Rollback check abort passed" in events
    assert f"Rolling back podinfo.{namespace} manual webhook invoked" in events
    await wait_for(lambda: replicas_are(admin, namespace, 0), 10, "podinfo scaled down")


async def test_confirm_promotion_closed_holds_max_weight_then_opened_succeeds(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, gate: Receiver) -> None:
    close(gate, "/gate/check")
    operator_factory(namespace)
    await start(admin, namespace, canary(namespace, webhooks=[
        hook(namespace, "promote", "confirm-promotion", "/gate/check")]))
    await set_image(admin, namespace, "6.0.1")
    st = await wait_phase(admin, namespace, "WaitingPromotion")
    assert st["canaryWeight"] == 50
    halt = f"Halt podinfo.{namespace} advancement waiting for promotion approval promote"
    await wait_for(lambda: has_event(admin, namespace, halt), 10, "the Halt Event")
    # held: asked again at every step, weight unchanged, metrics still checked
    asked = len(gate.bodies("/gate/check"))
    await wait_for(lambda: len(gate.bodies("/gate/check")) >= asked + 2, 10, "the gate asked again")
    st = await status(admin, namespace)
    assert (st["phase"], st["canaryWeight"]) == ("WaitingPromotion", 50)
    assert all(b["phase"] == "Progressing" for b in gate.bodies("/gate/check"))
    open_(gate, "/gate/check")
    await wait_phase(admin, namespace, "Succeeded")
    done = f"Promotion completed! Scaling down podinfo.{namespace}"
    events = await wait_for(lambda: has_event(admin, namespace, done), 10, "the promotion's Events")
    assert "Confirm-promotion check promote passed" in events


async def test_failing_pre_rollout_hook_counts_as_failed_checks_and_alerts(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, gate: Receiver) -> None:
    gate.answer("/pre", 403, "Forbidden")
    operator_factory(namespace, env={"SLACK_URL": f"http://gate.{namespace}/slack"})
    await start(admin, namespace, canary(namespace, threshold=3, webhooks=[
        hook(namespace, "db-migrate", "pre-rollout", "/pre")]))
    await set_image(admin, namespace, "6.0.1")

    seen: list[int] = []

    async def failed() -> bool:
        st = await status(admin, namespace)
        if st.get("failedChecks") and (not seen or seen[-1] != st["failedChecks"]):
            seen.append(int(st["failedChecks"]))
        return st.get("phase") == "Failed"

    await wait_for(failed, 60, "the run failed by its pre-rollout hook", interval=0.05)
    last = f"Canary failed! Scaling down podinfo.{namespace}"
    await wait_for(lambda: has_event(admin, namespace, last), 10, "the rollback's Events")
    halt = f"Halt podinfo.{namespace} advancement pre-rollout check db-migrate failed Forbidden"
    items, _ = await admin.list(EVENT, namespace)
    counts = {e["message"]: int(e.get("count") or 1) for e in items}
    assert counts[halt] == 3  # one Halt per step, each a failed check
    assert counts[f"Rolling back podinfo.{namespace} failed checks threshold reached 3"] == 1
    assert seen[:2] == [1, 2]  # counted up step by step (3 is written with the rollback, which resets it)
    assert len(gate.bodies("/pre")) == 3 and all(b["phase"] == "Progressing" for b in gate.bodies("/pre"))
    await wait_for(lambda: replicas_are(admin, namespace, 0), 10, "podinfo scaled down")  # after the Event
    texts = await wait_for(lambda: [b["attachments"][0]["text"] for b in gate.bodies("/slack")]
                           if len(gate.bodies("/slack")) >= 6 else None, 15, "the alerts")
    assert texts == ["New Deployment detected, initialization completed.",
                     "New revision detected, progressing canary analysis.",
                     *["Pre-rollout check db-migrate failed: Forbidden"] * 3,
                     "Failed checks threshold reached 3"]
