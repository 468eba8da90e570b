"""The built-in hey against a real loopback target: request counts, rates, flags, errors, proxies."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator

import pytest

from canaryd.loadtester.hey import run, summary
from canaryd.loadtester.heyflags import parse_hey_args

from .target import Target


@pytest.fixture
async def target() -> AsyncIterator[Target]:
    t = await Target().start()
    yield t
    await t.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def hey(*argv: str) -> str:
    report = await run(parse_hey_args(list(argv)))
    return summary(report)


async def test_n_requests_split_over_workers(target: Target) -> None:
    out = await hey("-n", "100", "-c", "5", target.url + "/")
    assert len(target.seen) == 100
    assert "  [200]\t100 responses" in out
    # hey drops the remainder: 103 over 10 workers is 10 each
    target.seen.clear()
    await hey("-n", "103", "-c", "10", target.url + "/")
    assert len(target.seen) == 100


async def test_duration_and_qps_per_worker(target: Target) -> None:
    began = time.monotonic()
    out = await hey("-z", "2s", "-q", "10", "-c", "2", target.url + "/")
    took = time.monotonic() - began
    # 10 per second per worker, 2 workers, 2 s: at most 40 (the tick at the deadline may or may not be
    # sent). The caps are the contract; a busy machine (the suite runs on 2 cores beside test beds) drops
    # ticks, as Go's ticker does, so the lower bounds only show that load was generated throughout
    assert 20 <= len(target.seen) <= 40, len(target.seen)
    assert 1.9 <= took < 4.0
    per_second = [sum(1 for s in target.seen if began + i <= s.at < began + i + 1) for i in range(2)]
    assert all(8 <= n <= 21 for n in per_second), per_second
    rps = float(out.split("Requests/sec:\t")[1].split()[0])
    assert 10.0 <= rps <= 21.0


async def test_method_body_headers_host(target: Target) -> None:
    await hey("-m", "post", "-d", '{"a": 1}', "-T", "application/json", "-H", "X-Test: 1",
              "-H", "User-Agent: tester", "-host", "app.example.com", "-n", "2", "-c", "1", target.url + "/p")
    assert len(target.seen) == 2
    seen = target.seen[0]
    assert (seen.method, seen.path, seen.body, seen.host) == ("POST", "/p", b'{"a": 1}', "app.example.com")
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.headers["X-Test"] == "1"
    assert seen.headers["User-Agent"] == "tester hey/0.0.1"


async def test_keepalive_and_disable_keepalive(target: Target) -> None:
    await hey("-n", "10", "-c", "1", target.url + "/")
    assert len({s.peer_port for s in target.seen}) == 1
    target.seen.clear()
    await hey("-n", "10", "-c", "1", "-disable-keepalive", target.url + "/")
    assert len({s.peer_port for s in target.seen}) == 10


async def test_status_and_error_distribution(target: Target) -> None:
    out = await hey("-n", "6", "-c", "2", target.url + "/status/500")
    assert "Status code distribution:\n  [500]\t6 responses" in out
    dead = f"http://127.0.0.1:{free_port()}/"
    out = await hey("-n", "4", "-c", "2", dead)
    assert "Error distribution:\n  [4]\tGet \"" + dead + "\"" in out
    assert "Requests/sec:" in out and "Status code distribution:" in out


async def test_request_timeout_and_deadline(target: Target) -> None:
    out = await hey("-t", "1", "-n", "2", "-c", "2", target.url + "/delay/3")
    assert '[2]\tGet "' in out and ": timeout" in out
    began = time.monotonic()
    await hey("-z", "1s", "-c", "2", target.url + "/delay/0.4")
    # in-flight requests at the deadline finish (hey), nothing new starts after it
    assert time.monotonic() - began < 1.9
    assert 4 <= len(target.seen) - 2 <= 6


async def test_proxy_variables_honoured(target: Target) -> None:
    """Run as the load tester runs it (a child process) with HTTP_PROXY set: in-cluster names go to the
    proxy; NO_PROXY names go direct."""
    env = {**os.environ, "HTTP_PROXY": target.url, "NO_PROXY": "127.0.0.1,localhost"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canaryd.loadtester.hey", "-n", "4", "-c", "2", "http://podinfo.test:9898/",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert [s.headers["Host"] for s in target.seen] == ["podinfo.test:9898"] * 4
    assert b"[200]\t4 responses" in out
    # direct: a dead proxy does not matter for 127.0.0.1
    env["HTTP_PROXY"] = f"http://127.0.0.1:{free_port()}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canaryd.loadtester.hey", "-n", "3", "-c", "1", target.url + "/direct",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert b"[200]\t3 responses" in out, out
    assert [s.path for s in target.seen[4:]] == ["/direct"] * 3


async def test_usage_error_exit_code() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "canaryd.loadtester.hey", "-z", "10", "http://x/",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    assert b'invalid value "10" for flag -z' in err and b"Usage: hey" in err
