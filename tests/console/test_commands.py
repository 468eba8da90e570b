"""list, get and wait against a loopback API server: what they print and wait's exit codes while the
Canary's status moves (written as canaryd writes it), and one line for a cluster without the CRD."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from canaryd.console.commands import Options, get_command, list_command, wait_command
from canaryd.kube.resources import CANARY
from tests.console.fixtures import IMAGE, NS, REVISION, Cluster, cluster, write_kubeconfig

__all__ = ["cluster"]  # the fixture


def options(c: Cluster, output: str = "", namespace: str | None = NS) -> Options:
    return Options(kubeconfig=c.kubeconfig, context=None, namespace=namespace, output=output,
                   out=io.StringIO(), err=io.StringIO())


async def test_list_prints_a_table_and_json(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", canaryWeight=10, failedChecks=0, lastAppliedSpec=REVISION,
                         checks=[{"name": "request-success-rate", "verdict": "pass", "value": 100.0,
                                  "threshold": ">= 99%"}])
    opts = options(cluster, namespace=None)
    assert await list_command(opts) == 0
    assert opts.out.getvalue().splitlines() == [  # type: ignore[attr-defined]
        "NAMESPACE   NAME      STATUS        WEIGHT   FAILED   CHECKS",
        "shop        podinfo   Progressing   10       0/2      request-success-rate=ok"]
    opts = options(cluster, output="json")
    assert await list_command(opts) == 0
    [item] = json.loads(opts.out.getvalue())["items"]  # type: ignore[attr-defined]
    assert (item["name"], item["phase"], item["weight"], item["revision"]) == (
        "podinfo", "Progressing", 10, REVISION)


async def test_get_prints_the_view_once(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", canaryWeight=20)
    await cluster.event("e1", "Advance podinfo.shop canary weight 20")
    opts = options(cluster)
    assert await get_command(opts, "podinfo", watch=False) == 0
    out = opts.out.getvalue()  # type: ignore[attr-defined]
    assert "phase Progressing" in out and "[########............] 20%/50%" in out
    assert "Normal  Advance podinfo.shop canary weight 20" in out


async def test_get_a_missing_canary_is_exit_3(cluster: Cluster) -> None:
    opts = options(cluster)
    assert await get_command(opts, "nope", watch=False) == 3
    assert opts.err.getvalue() == "kubectl canary: canary shop/nope not found\n"  # type: ignore[attr-defined]


async def watch_until(task: asyncio.Task[int], out: io.StringIO, text: str) -> None:
    async with asyncio.timeout(10):
        while text not in out.getvalue():
            assert not task.done(), out.getvalue()
            await asyncio.sleep(0.02)


@pytest.mark.parametrize(("phase", "code", "said"), [
    ("Succeeded", 0, f"revision {REVISION} promoted"),
    ("Failed", 1, "rolled back: request-success-rate 10.00% (>= 99%: FAIL)"),
])
async def test_wait_follows_the_revision_to_its_end(cluster: Cluster, phase: str, code: int,
                                                    said: str) -> None:
    await cluster.status(phase="Succeeded", lastAppliedSpec="cd1:0000000000000000")  # the previous run
    opts = options(cluster)
    task = asyncio.create_task(wait_command(opts, "podinfo", IMAGE, 20))
    out = opts.out
    assert isinstance(out, io.StringIO)
    await watch_until(task, out, "waiting for canaryd to start revision")
    await cluster.status(phase="Progressing", canaryWeight=10, lastAppliedSpec=REVISION)
    await watch_until(task, out, "Progressing weight 10%")
    await cluster.status(phase=phase, canaryWeight=0, lastPromotedSpec=REVISION, checks=[
        {"name": "request-success-rate", "verdict": "fail" if code else "pass", "value": 10.0,
         "threshold": ">= 99%"}])
    assert await asyncio.wait_for(task, 10) == code
    assert said in (out.getvalue() if code == 0 else opts.err.getvalue())  # type: ignore[attr-defined]


async def test_wait_times_out_with_2_and_json_says_why(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", lastAppliedSpec=REVISION, canaryWeight=30)
    opts = options(cluster, output="json")
    assert await wait_command(opts, "podinfo", None, 0.5) == 2
    got = json.loads(opts.out.getvalue())  # type: ignore[attr-defined]
    assert (got["result"], got["exitCode"], got["revision"]) == ("timeout", 2, REVISION)
    assert "Progressing weight 30%" in got["reason"]


@pytest.mark.parametrize(("name", "revision", "said"), [
    ("nope", None, "canary shop/nope not found"),
    ("podinfo", "ghcr.io/stefanprodan/podinfo:9.9.9", "is not the one Deployment podinfo runs now"),
])
async def test_wait_invalid_is_3(cluster: Cluster, name: str, revision: str | None, said: str) -> None:
    opts = options(cluster)
    assert await wait_command(opts, name, revision, 5) == 3
    assert said in opts.err.getvalue()  # type: ignore[attr-defined]


@pytest.fixture
async def no_crd(tmp_path: Path) -> AsyncIterator[str]:
    """An API server without canaryd's CRDs: every flagger.app path is 404 page not found."""
    async def missing(_: web.Request) -> web.Response:
        return web.Response(status=404, text="404 page not found")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", missing)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield write_kubeconfig(tmp_path / "kc", f"http://127.0.0.1:{runner.addresses[0][1]}")
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("command", ["list", "get", "wait"])
async def test_a_cluster_without_the_crd_is_one_line(no_crd: str, command: str) -> None:
    opts = Options(kubeconfig=no_crd, context=None, namespace="x", out=io.StringIO(), err=io.StringIO())
    run = {"list": lambda: list_command(opts), "get": lambda: get_command(opts, "a", False),
           "wait": lambda: wait_command(opts, "a", None, 5)}[command]
    assert await run() == 3
    [line] = opts.err.getvalue().splitlines()  # type: ignore[attr-defined]
    assert "this cluster has no Canary resources (canaries.flagger.app is not served)" in line


class Terminal(io.StringIO):
    """What get -w writes to when stdout is a terminal."""

    def isatty(self) -> bool:
        return True


async def test_get_watch_redraws_in_place_on_a_terminal(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", canaryWeight=10)
    out = Terminal()
    opts = Options(kubeconfig=cluster.kubeconfig, context=None, namespace=NS, out=out, err=io.StringIO())
    task = asyncio.create_task(get_command(opts, "podinfo", watch=True))
    try:
        await watch_until(task, out, "10%/50%")
        await cluster.status(phase="Progressing", canaryWeight=20)
        await watch_until(task, out, "20%/50%")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    frames = out.getvalue().split("\x1b[H\x1b[2J")
    assert frames[0] == "" and len(frames) >= 3  # every frame starts by clearing the screen
    assert "20%/50%" in frames[-1] and "10%/50%" not in frames[-1]


async def test_get_watch_piped_prints_one_line_per_change_and_ends_when_deleted(cluster: Cluster) -> None:
    await cluster.status(phase="Progressing", canaryWeight=10)
    opts = options(cluster)
    out = opts.out
    assert isinstance(out, io.StringIO)
    task = asyncio.create_task(get_command(opts, "podinfo", watch=True))
    await watch_until(task, out, "weight  10%")
    await cluster.status(phase="Progressing", canaryWeight=20)
    await watch_until(task, out, "weight  20%")
    await cluster.client.delete(CANARY, NS, "podinfo")
    assert await asyncio.wait_for(task, 10) == 3
    lines = out.getvalue().splitlines()
    assert "\x1b[" not in out.getvalue() and len(lines) == 2, lines
    assert "was deleted" in opts.err.getvalue()  # type: ignore[attr-defined]
