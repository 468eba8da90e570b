"""How the weight moves, end to end (issue 11: these were unit-only), read from the VirtualService canaryd
writes and from its Events:

* ``stepWeights``: the canary's weights follow the list exactly, then it is promoted
* ``stepWeightPromotion``: after the analysis, traffic moves back to the primary by that step
* ``suspend`` mid-run: no step while suspended (watched across ≥ 2 intervals, timed by a second Canary
  whose closed gate canaryd asks once per interval), then the run resumes at the weight it had

Every Canary has no metric checks (the weights are under test, not the checks) and a 1-2 s interval."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from canaryd.engine.decide import SUSPENDED
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY, DEPLOYMENT
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image, vs_spec
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver

RUN = 90.0


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


async def vs_weights(admin: KubeClient, namespace: str, name: str = "podinfo") -> tuple[int, int]:
    """(primary, canary) weights of the VirtualService's route."""
    route = (await vs_spec(admin, namespace, name))["http"][0]["route"]
    by_host = {d["destination"]["host"]: int(d["weight"]) for d in route}
    return by_host[f"{name}-primary"], by_host[f"{name}-canary"]


def advances(events: list[str], namespace: str, what: str = "canary weight") -> list[int]:
    prefix = f"Advance podinfo.{namespace} {what} "
    return [int(e[len(prefix):]) for e in events if e.startswith(prefix)]


async def run_watching_weights(admin: KubeClient, namespace: str) -> list[tuple[int, int]]:
    """Bump the image and sample the VirtualService's weights until the run ends Succeeded; the
    distinct (primary, canary) pairs in the order seen."""
    seen: list[tuple[int, int]] = []

    async def ended() -> bool:
        w = await vs_weights(admin, namespace)
        if not seen or seen[-1] != w:
            seen.append(w)
        return (await status(admin, namespace)).get("phase") in ("Succeeded", "Failed")

    await set_image(admin, namespace, "6.0.1")
    await wait_for(ended, RUN, "the run to end", interval=0.05)

    async def settled() -> bool:
        """canaryd writes status before it acts: the last route may land just after the final phase."""
        w = await vs_weights(admin, namespace)
        if seen[-1] != w:
            seen.append(w)
        return w[1] == 0

    await wait_for(settled, 30, "all traffic back on the primary", interval=0.05)
    st = await status(admin, namespace)
    assert st["phase"] == "Succeeded", (st, await event_messages(admin, namespace))
    assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"
    return seen


async def test_step_weights_are_followed_exactly(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, interval="2s", metrics=[], stepWeights=[5, 15, 40])
    del spec["spec"]["analysis"]["stepWeight"], spec["spec"]["analysis"]["maxWeight"]
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    seen = await run_watching_weights(admin, namespace)
    assert advances(await event_messages(admin, namespace), namespace) == [5, 15, 40]
    # only the listed splits, in order, then back to the primary (sampling may miss none at 2 s steps)
    assert seen == [(100, 0), (95, 5), (85, 15), (60, 40), (100, 0)], seen


async def test_step_weight_promotion_moves_traffic_back_by_that_step(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    operator_factory(namespace)
    spec = canary(namespace, interval="2s", metrics=[], stepWeight=25, maxWeight=50, stepWeightPromotion=20)
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")
    seen = await run_watching_weights(admin, namespace)
    events = await event_messages(admin, namespace)
    assert advances(events, namespace) == [25, 50]
    assert advances(events, namespace, "primary weight") == [70, 90, 100]
    assert seen == [(100, 0), (75, 25), (50, 50), (70, 30), (90, 10), (100, 0)], seen
    assert "Routing all traffic to primary" not in events  # the one-step promotion did not run


def ticker(namespace: str, gate_url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A second Deployment and Canary (``ticker``) whose closed confirm-rollout gate canaryd asks once per
    interval: a clock that runs in the same canaryd as the Canary under test."""
    dep = copy.deepcopy(podinfo(namespace))
    dep["metadata"].update(name="ticker", labels={"app": "ticker"})
    dep["spec"]["selector"]["matchLabels"] = {"app": "ticker"}
    dep["spec"]["template"]["metadata"]["labels"] = {"app": "ticker"}
    can = canary(namespace, metrics=[], webhooks=[
        {"name": "tick", "type": "confirm-rollout", "url": gate_url, "timeout": "2s"}])
    can["metadata"]["name"] = "ticker"
    can["spec"]["targetRef"]["name"] = "ticker"
    return dep, can


async def test_suspend_mid_run_holds_the_weight_then_resumes_where_it_was(
        bed: Any, namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient) -> None:
    gate = await Receiver().start()
    try:
        gate.answer("/tick", 403, "Forbidden")
        await MeshControl(bed.mesh_url).register(namespace, "gate", f"127.0.0.1:{gate.port}")
        operator_factory(namespace)
        tick_dep, tick_canary = ticker(namespace, f"http://gate.{namespace}/tick")
        await create(admin, namespace, podinfo(namespace),
                     canary(namespace, interval="1s", metrics=[], stepWeight=5, maxWeight=50),
                     tick_dep, tick_canary)
        await wait_phase(admin, namespace, "Initialized")

        async def ticker_phase() -> str:
            obj = await admin.get(CANARY, namespace, "ticker")
            return str((obj.get("status") or {}).get("phase"))

        async def ticker_initialized() -> bool:
            return await ticker_phase() == "Initialized"

        async def ticker_waiting() -> bool:
            return await ticker_phase() == "Waiting"

        await wait_for(ticker_initialized, RUN, "the ticker Canary Initialized")
        container = {"name": "podinfod", "image": f"{IMAGE}:6.0.1"}
        tpl = {"spec": {"template": {"spec": {"containers": [container]}}}}
        await admin.patch(DEPLOYMENT, namespace, "ticker", tpl, patch_type="strategic")
        await wait_for(ticker_waiting, RUN, "the ticker Waiting on its closed gate")

        await set_image(admin, namespace, "6.0.1")

        async def mid_run() -> bool:
            st = await status(admin, namespace)
            return st.get("phase") == "Progressing" and int(st.get("canaryWeight") or 0) >= 10

        await wait_for(mid_run, RUN, "the run at weight 10 or more")
        await admin.patch(CANARY, namespace, "podinfo", {"spec": {"suspend": True}}, patch_type="merge")

        async def suspended() -> dict[str, Any] | None:
            st = await status(admin, namespace)
            return st if st.get("message") == SUSPENDED else None

        st = await wait_for(suspended, 30, "the suspension in status")
        held = int(st["canaryWeight"])
        assert st["phase"] == "Progressing" and 10 <= held < 50, st
        assert await vs_weights(admin, namespace) == (100 - held, held)

        samples: list[tuple[int, tuple[int, int]]] = []
        ticks = len(gate.bodies("/tick"))

        async def two_intervals_later() -> bool:
            samples.append((int((await status(admin, namespace)).get("canaryWeight") or 0),
                            await vs_weights(admin, namespace)))
            return len(gate.bodies("/tick")) >= ticks + 3

        await wait_for(two_intervals_later, 30, "three more ticks of the ticker (≥ 2 intervals)")
        assert set(samples) == {(held, (100 - held, held))}, samples
        assert (await status(admin, namespace))["phase"] == "Progressing"
        before = advances(await event_messages(admin, namespace), namespace)
        assert before == list(range(5, held + 1, 5)), before
        assert SUSPENDED in await event_messages(admin, namespace)

        await admin.patch(CANARY, namespace, "podinfo", {"spec": {"suspend": False}}, patch_type="merge")
        await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
        # resumed at the held weight: every step once, none repeated, none skipped
        assert advances(await event_messages(admin, namespace), namespace) == list(range(5, 51, 5))
        assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.1"
    finally:
        await gate.stop()
