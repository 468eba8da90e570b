"""The process around the tasks, in the box: its HTTP endpoints, a graceful hand-over between two
replicas with leader election, and the crash-point syntax."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from canaryd.kube import resources as r
from canaryd.runtime import app
from canaryd.runtime.crash import parse_crash_points
from canaryd.runtime.http import build_app, start_http

from .harness import Box, eventually
from .scenario import NS, initialized, succeeded

ELECTION: dict[str, Any] = {"leader_elect": True, "lease_duration": 150.0, "renew_deadline": 100.0,
                            "retry_period": 10.0}


def holder(box: Box) -> str:
    lease = box.api.get(r.LEASE, "canaryd-system", "canaryd-leader") or {}
    return str((lease.get("spec") or {}).get("holderIdentity") or "")


async def test_endpoints_report_health_readiness_and_metrics(box: Box) -> None:
    inst = await box.run()
    runner = await start_http(build_app(inst.metrics.registry, inst.runtime.ready), "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        async with aiohttp.ClientSession(f"http://{host}:{port}") as http:
            async with http.get("/healthz") as resp:
                assert resp.status == 200
            async with http.get("/readyz") as resp:
                assert resp.status == 200 and await resp.text() == "leader"
            async with http.get("/metrics") as resp:
                assert 'flagger_info{mesh_provider="istio"' in await resp.text()
    finally:
        await runner.cleanup()


async def test_a_graceful_stop_hands_the_lease_to_the_standby(box: Box) -> None:
    first = await box.run(leader_identity="box-a", **ELECTION)
    await eventually(lambda: holder(box) == "box-a", 5, "box-a leading")
    second = await box.run(leader_identity="box-b", **ELECTION)
    await initialized(box)
    await eventually(lambda: second.runtime.leadership.state == "standby", 5, "box-b standing by")
    assert not second.runtime.leadership.may_act()
    assert second.runtime.ready() == (True, "standby")

    await first.stop()  # SIGTERM: the pass finishes, the lease is released
    assert first.runtime.leadership.state == "stopped"
    await eventually(lambda: holder(box) == "box-b", 5, "box-b took the released lease")
    await eventually(second.runtime.leadership.may_act, 5, "box-b may act")
    box.set_image(NS, "6.0.1")
    await succeeded(box)


def test_crash_point_syntax() -> None:
    assert parse_crash_points("after-status-write:3, after-route-write,bad:x,:2") == {
        "after-status-write": 3, "after-route-write": 1, "bad": 1}


async def test_canaryd_run_drives_canaries_and_stops_on_sigterm(box: Box, tmp_path: Path) -> None:
    """``canaryd run`` itself (app.run: kubeconfig, CRD check, signals, endpoints, Runtime), real clock."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "box",
        "clusters": [{"name": "box", "cluster": {"server": box.api.url}}],
        "users": [{"name": "box", "user": {"token": "box"}}],
        "contexts": [{"name": "box", "context": {"cluster": "box", "user": "box"}}]}))
    settings = box.settings(kubeconfig=str(kubeconfig), host="127.0.0.1", port=0)
    loop = asyncio.get_running_loop()
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    task = loop.create_task(app.run(settings, logging.getLogger("canaryd.box.run")))
    try:
        await initialized(box)  # so the process has its signal handlers by now
        os.kill(os.getpid(), signal.SIGTERM)
        assert await asyncio.wait_for(task, 20) == 0
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            signal.signal(sig, handler)
    assert box.api.get(r.DEPLOYMENT, NS, "podinfo-primary") is not None
