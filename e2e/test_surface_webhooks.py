"""Webhook fields end to end that had no test on a cluster (issue 11): each one's effect, with the
other side of it in the same test so that the test fails when the field is ignored.

* ``disableTLS``: a pre-rollout hook on a self-signed HTTPS server fails naming the certificate error;
  with ``disableTLS: true`` the same hook passes and the run is promoted
* ``muteAlert``: a closed confirm-rollout gate with ``muteAlert: true`` sends no alert, while the
  unmuted confirm-promotion gate of the same run does
* ``confirm-traffic-increase``: the weight stays 0 while the gate is closed (asked once per interval),
  then advances step by step once it opens

The gates and the alert receiver are loopback aiohttp servers behind in-cluster names of the mesh
simulator (e2e/receivers.py); the HTTPS server is reached on 127.0.0.1 directly (no proxy)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from canaryd.kube.client import KubeClient
from canaryd.kube.resources import CANARY
from e2e.bed.waiting import wait_for
from e2e.canaries import IMAGE, canary, create, event_messages, podinfo, set_image, status, wait_phase
from e2e.flagger_suite import primary_image, vs_spec
from e2e.loopback import serve, server_context
from e2e.mesh.control import MeshControl
from e2e.operator import Operator
from e2e.receivers import Receiver

RUN = 90.0


@pytest.fixture
async def admin(bed: Any) -> AsyncIterator[KubeClient]:
    client = await bed.admin_client()
    yield client
    await client.close()


@pytest.fixture
async def receiver(bed: Any, namespace: str) -> AsyncIterator[Receiver]:
    """One loopback receiver behind ``http://gate.<ns>/`` and ``http://slack.<ns>/``."""
    r = await Receiver().start()
    for name in ("gate", "slack"):
        await MeshControl(bed.mesh_url).register(namespace, name, f"127.0.0.1:{r.port}")
    yield r
    await r.stop()


def gate(namespace: str, name: str, kind: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, "url": f"http://gate.{namespace}{path}", "timeout": "2s", **extra}


async def start(admin: KubeClient, namespace: str, spec: dict[str, Any]) -> None:
    await create(admin, namespace, podinfo(namespace), spec)
    await wait_phase(admin, namespace, "Initialized")


async def vs_canary_weight(admin: KubeClient, namespace: str) -> int:
    route = (await vs_spec(admin, namespace))["http"][0]["route"]
    return int(next(d["weight"] for d in route if d["destination"]["host"] == "podinfo-canary"))


def advances(events: list[str], namespace: str) -> list[str]:
    return [e for e in events if e.startswith(f"Advance podinfo.{namespace}")]


# ---- disableTLS ----


class TlsServer:
    """An HTTPS server on loopback with a self-signed certificate (for 127.0.0.1) that answers every POST
    with 200 and records the paths it served (a refused handshake never gets that far)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.served: list[str] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> TlsServer:
        context = await asyncio.to_thread(server_context, self.workdir)

        async def handle(request: web.Request) -> web.Response:
            await request.read()
            self.served.append(request.path)
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        self._runner, self.port = await serve(app, context)
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def test_disable_tls_skips_certificate_verification_of_a_webhook(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient, tmp_path: Path) -> None:
    server = await TlsServer(tmp_path).start()
    try:
        url = f"https://127.0.0.1:{server.port}/pre"
        pre = {"name": "self-signed", "type": "pre-rollout", "url": url, "timeout": "2s"}
        operator_factory(namespace)
        await start(admin, namespace, canary(namespace, threshold=2, metrics=[], webhooks=[pre]))

        # verified (the default): the handshake fails, the hook fails naming the certificate error
        await set_image(admin, namespace, "6.0.1")
        await wait_phase(admin, namespace, "Failed", seconds=RUN)
        failed = f"Halt podinfo.{namespace} advancement pre-rollout check self-signed failed"
        halts = [e for e in await event_messages(admin, namespace) if e.startswith(failed)]
        assert halts and all("certificate" in e.lower() for e in halts), halts
        assert server.served == []

        # disableTLS: true: the same server is accepted and the next release is promoted
        pre_insecure = {**pre, "disableTLS": True}
        await admin.patch(CANARY, namespace, "podinfo",
                          {"spec": {"analysis": {"webhooks": [pre_insecure]}}}, patch_type="merge")
        await set_image(admin, namespace, "6.0.2")
        await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
        assert server.served and set(server.served) == {"/pre"}
        assert await primary_image(admin, namespace) == f"{IMAGE}:6.0.2"
        assert "Pre-rollout check self-signed passed" in await event_messages(admin, namespace)
    finally:
        await server.stop()


# ---- muteAlert ----


def alert_texts(r: Receiver, path: str) -> list[str]:
    return [b["attachments"][0]["text"] for b in r.bodies(path)]


async def test_mute_alert_silences_only_the_muted_gate(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    slack = "/services/mute"
    receiver.answer("/rollout", 403, "Forbidden")
    receiver.answer("/promote", 403, "Forbidden")
    operator_factory(namespace, env={"SLACK_URL": f"http://slack.{namespace}{slack}"})
    await start(admin, namespace, canary(namespace, stepWeight=25, metrics=[], webhooks=[
        gate(namespace, "approve", "confirm-rollout", "/rollout", muteAlert=True),
        gate(namespace, "promote", "confirm-promotion", "/promote")]))
    await set_image(admin, namespace, "6.0.1")
    st = await wait_phase(admin, namespace, "Waiting", seconds=RUN)
    assert st["message"] == "waiting for approval approve"
    halt = f"Halt podinfo.{namespace} advancement waiting for approval approve"
    await wait_for(lambda: _has_event(admin, namespace, halt), 20, "the muted gate's Halt Event")
    await wait_for(lambda: len(receiver.bodies("/rollout")) >= 3, 20, "the muted gate asked again")

    receiver.answer("/rollout", 200, "Approved")
    await wait_phase(admin, namespace, "WaitingPromotion", seconds=RUN)
    promotion_wait = "Canary promotion is waiting for approval."

    def alerted() -> list[str] | None:
        texts = alert_texts(receiver, slack)
        return texts if promotion_wait in texts else None

    texts = await wait_for(alerted, 30, "the unmuted gate's alert")
    # the muted gate halted the run first, yet only the unmuted one was alerted
    assert "Canary is waiting for approval." not in texts, texts
    assert texts.index("New revision detected, progressing canary analysis.") < texts.index(promotion_wait)

    receiver.answer("/promote", 200, "Approved")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    assert "Canary is waiting for approval." not in alert_texts(receiver, slack)


async def _has_event(admin: KubeClient, namespace: str, message: str) -> bool:
    return message in await event_messages(admin, namespace)


# ---- confirm-traffic-increase ----


async def test_confirm_traffic_increase_holds_the_weight_until_opened(
        namespace: str, operator_factory: Callable[..., Operator], admin: KubeClient,
        receiver: Receiver) -> None:
    receiver.answer("/traffic", 403, "Forbidden")
    operator_factory(namespace)
    await start(admin, namespace, canary(namespace, stepWeight=10, maxWeight=30, metrics=[], webhooks=[
        gate(namespace, "more", "confirm-traffic-increase", "/traffic")]))
    await set_image(admin, namespace, "6.0.1")
    await wait_phase(admin, namespace, "Progressing", seconds=RUN)

    weights: list[tuple[int, int]] = []

    async def asked_thrice_at_zero() -> bool:
        st = await status(admin, namespace)
        weights.append((int(st.get("canaryWeight") or 0), await vs_canary_weight(admin, namespace)))
        return len(receiver.bodies("/traffic")) >= 3  # ≥ 2 intervals after the first refusal

    await wait_for(asked_thrice_at_zero, 30, "the closed gate asked three times")
    assert weights and set(weights) == {(0, 0)}, weights
    st = await status(admin, namespace)
    assert st["phase"] == "Progressing" and int(st.get("canaryWeight") or 0) == 0
    assert st["message"] == f"Halt podinfo.{namespace} advancement waiting for traffic increase approval more"
    assert advances(await event_messages(admin, namespace), namespace) == []

    receiver.answer("/traffic", 200, "Approved")
    await wait_phase(admin, namespace, "Succeeded", seconds=RUN)
    assert advances(await event_messages(admin, namespace), namespace) == [
        f"Advance podinfo.{namespace} canary weight {w}" for w in (10, 20, 30)]
