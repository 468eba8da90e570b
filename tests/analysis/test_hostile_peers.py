"""What a peer chosen by a Canary author can make canaryd do, tried against a hostile loopback server
(tests/analysis/hostile.py): answers past the cap fail the check without being read, redirects are
not followed (the target is never contacted), and only a short, printable, scrubbed excerpt of an
answer and an address without user info or query reach a message."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from canaryd.analysis.bounded import ANSWER_LIMIT, METRICS_ANSWER_LIMIT, excerpt
from canaryd.analysis.checks import run_checks
from canaryd.analysis.prometheus import PrometheusClient, PrometheusError
from canaryd.analysis.urls import basic_auth, display_url, host_of, safe_url
from canaryd.analysis.webhooks import call_webhook
from canaryd.model.spec import WebhookSpec
from canaryd.notify.sender import post_json

from .hostile import SECRET, Hostile
from .promserver import free_port
from .specs import canary, metric

PASSWORD = "pw-S3CRET-1"
TOKEN = "TOK-S3CRET-2"
KI = 1024
MI = 1024 * 1024


async def until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, Hostile]]:
    """A hostile server and the internal endpoint its redirects point at."""
    inside = await Hostile().start()
    outside = await Hostile(redirect_target=inside.url).start()
    yield outside, inside
    await outside.stop()
    await inside.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def assert_clean(message: str, quoted_max: int = 200) -> None:
    """No credential of any form, nothing non-printable, and short."""
    for secret in (PASSWORD, TOKEN, SECRET, basic_auth("admin", PASSWORD)):
        assert secret not in message, message
    assert message.isprintable(), repr(message)
    assert len(message) <= quoted_max + 120, len(message)


# ---- pure helpers ----

@pytest.mark.parametrize(("answer", "want"), [
    (b"Forbidden\n", "Forbidden"),
    ("\x1b[31mred\x00 \r\n\tnext\u202eline\x07", "[31mred next line"),
    (b"\xff\xfe bad utf-8", "\ufffd\ufffd bad utf-8"),
    ("x" * 250, "x" * 199 + "…"),
    (b"y" * 10 * MI, "y" * 199 + "…"),
    (f"token={TOKEN} basic={basic_auth('admin', PASSWORD)}", "<redacted> basic=<redacted>"),  # whole query
])
def test_excerpt(answer: bytes | str, want: str) -> None:
    assert excerpt(answer, f"http://admin:{PASSWORD}@h/p?token={TOKEN}", TOKEN) == want


def test_excerpt_scrubs_before_cutting() -> None:
    text = "a" * 190 + TOKEN  # the token straddles the cut: not even its first half may show
    assert TOKEN[:5] not in excerpt(text, "", TOKEN)


@pytest.mark.parametrize(("url", "shown", "host"), [
    (f"http://admin:{PASSWORD}@prom.monitoring:9090/tenant-a?token={TOKEN}#x",
     "http://prom.monitoring:9090/tenant-a", "prom.monitoring:9090"),
    ("https://[::1]:8443/", "https://[::1]:8443/", "[::1]:8443"),
    ("prometheus:9090", "<invalid URL>", "<invalid URL>"),
    ("http://lt.test/gate\x00\u202e/x?token=t", "http://lt.test/gate%00%E2%80%AE/x", "lt.test"),
])
def test_display_url(url: str, shown: str, host: str) -> None:
    assert display_url(url) == shown
    assert host_of(url) == host
    assert safe_url(url) == (shown if host == "<invalid URL>" else shown.split("://")[0] + "://" + host)


def test_default_caps() -> None:
    assert (METRICS_ANSWER_LIMIT, ANSWER_LIMIT) == (10 * MI, 64 * KI)


# ---- Prometheus ----

async def one_check(address: str, session: aiohttp.ClientSession, *, limit: int = METRICS_ANSWER_LIMIT,
                    budget: float = 5.0) -> Any:
    spec = canary(metric("q", hi=100, query="up"))
    (r,) = await run_checks(spec, session=session, metrics_server=address, timeout=budget,
                            max_answer_bytes=limit)
    return r


@pytest.mark.parametrize("mode", ["big", "announced", "gzip"])
async def test_prometheus_answer_past_the_cap_fails_unread(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession, mode: str
) -> None:
    server, _ = hostile
    size = 64 * MI
    r = await one_check(f"{server.url}/{mode}/{size}", session, limit=64 * KI)
    port = server.url.rsplit(":", 1)[1]
    assert (r.verdict, r.message) == (
        "error", f"Prometheus query failed for q: answer from 127.0.0.1:{port} larger than 65536 bytes")
    await until(lambda: server.finished == 1)
    assert server.sent < size // 2, server.sent  # canaryd hung up: the rest was never sent nor read


async def test_prometheus_answer_under_the_cap_is_read(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, _ = hostile
    r = await one_check(f"{server.url}/ok", session, limit=1 * KI)
    assert (r.verdict, r.value) == ("pass", 42.0)


async def test_prometheus_redirect_is_not_followed(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, inside = hostile
    address = f"http://admin:{PASSWORD}@{server.url.split('://')[1]}/redirect"
    r = await one_check(address, session)
    assert (r.verdict, r.message) == (
        "error", f"Prometheus query failed for q: Prometheus {server.url}/redirect answered with a "
                 f"redirect (302 Found) to {inside.url} not followed")
    assert server.seen == ["/redirect/api/v1/query?query=up"]
    assert inside.seen == []  # the internal endpoint was never asked


async def test_prometheus_error_body_is_a_clean_excerpt(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, _ = hostile
    address = f"http://admin:{PASSWORD}@{server.url.split('://')[1]}/echo/400?token={TOKEN}"
    clients = [PrometheusClient(address, session),  # user info in the URL: sent as Basic auth, echoed back
               PrometheusClient(f"{server.url}/echo/400", session, bearer_token=TOKEN),
               PrometheusClient(f"{server.url}/echo/400", session, username="admin", password=PASSWORD)]
    for client in clients:
        with pytest.raises(PrometheusError) as err:
            await client.query("up")
        message = str(err.value)
        assert message.startswith("error response: Status 400 Bad Request: [31mdenied ")
        assert message.endswith("…")
        assert_clean(message)
    assert len(server.seen) == 3


async def test_prometheus_address_is_shown_without_user_info(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, _ = hostile
    down = f"127.0.0.1:{free_port()}"
    r = await one_check(f"http://admin:{PASSWORD}@{down}/prom?token={TOKEN}", session)
    assert r.message == (f"Prometheus query failed for q: Prometheus http://{down}/prom unreachable: "
                         "connection refused")
    hung = f"http://admin:{PASSWORD}@{server.url.split('://')[1]}/hang?token={TOKEN}"
    r = await one_check(hung, session, budget=0.5)
    assert r.message == f"Prometheus query failed for q: Prometheus {server.url}/hang timed out after 0.5s"
    spec = canary(metric("request-success-rate", lo=99))
    (r,) = await run_checks(spec, session=session, metrics_server=hung, timeout=0.5)
    assert r.message == f"Prometheus query failed: Prometheus {server.url}/hang timed out after 0.5s"


# ---- webhooks ----

def hook(url: str, retries: int = 0) -> WebhookSpec:
    return WebhookSpec(name="gate", url=url, type="confirm-rollout", timeout_seconds=5, retries=retries)


@pytest.mark.parametrize("mode", ["big", "announced", "gzip"])
async def test_webhook_answer_past_the_cap_fails_at_once(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession, mode: str
) -> None:
    server, _ = hostile
    size = 64 * MI
    result = await call_webhook(session, hook(f"{server.url}/{mode}/{size}", retries=3), {"name": "x"},
                                backoff=0.01)
    port = server.url.rsplit(":", 1)[1]
    assert (result.passed, result.message) == (False, f"answer from 127.0.0.1:{port} larger than 65536 bytes")
    assert len(server.seen) == 1  # not retried: the same answer would come back
    await until(lambda: server.finished == 1)
    assert server.sent < size // 2, server.sent


async def test_webhook_cap_is_configurable(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, _ = hostile
    result = await call_webhook(session, hook(f"{server.url}/big/{100 * KI}"), {}, max_answer_bytes=200 * KI)
    assert result.passed and len(result.message) == 200  # read whole, quoted as an excerpt
    result = await call_webhook(session, hook(f"{server.url}/big/{100 * KI}"), {}, max_answer_bytes=10 * KI)
    assert not result.passed and result.message.endswith("larger than 10240 bytes")


async def test_webhook_redirect_is_not_followed(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, inside = hostile
    url = f"http://bot:{PASSWORD}@{server.url.split('://')[1]}/redirect?token={TOKEN}"
    result = await call_webhook(session, hook(url, retries=2), {"name": "x"}, backoff=0.01)
    assert (result.passed, result.message) == (
        False, f"POST {server.url}/redirect redirect (302 Found) to {inside.url} not followed")
    assert inside.seen == []
    assert len(server.seen) == 1


async def test_webhook_answer_is_a_clean_excerpt(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, _ = hostile
    url = f"http://admin:{PASSWORD}@{server.url.split('://')[1]}/echo/403?token={TOKEN}"
    result = await call_webhook(session, hook(url), {"name": "x"})
    assert not result.passed
    assert result.message.startswith("[31mdenied ") and len(result.message) == 200
    assert_clean(result.message)


# ---- notifier ----

async def test_notifier_answers_are_capped_and_not_redirected(
    hostile: tuple[Hostile, Hostile], session: aiohttp.ClientSession
) -> None:
    server, inside = hostile
    port = server.url.rsplit(":", 1)[1]
    error = await post_json(session, f"{server.url}/big/{64 * MI}/500", {"text": "hi"})
    assert error == f"sending notification bad response: answer from 127.0.0.1:{port} larger than 65536 bytes"
    await until(lambda: server.finished == 1)
    assert server.sent < 32 * MI
    assert await post_json(session, f"{server.url}/big/{64 * MI}", {"text": "hi"}) is None  # 2xx: not read
    error = await post_json(session, f"{server.url}/redirect", {"text": "hi"})
    # (the notifier also scrubs the URL's path segments, chat services' credentials: "redirect" here)
    assert error == (f"sending notification bad response 302: <redacted> (302 Found) to {inside.url} "
                     "not followed")
    assert inside.seen == []
    error = await post_json(session, f"{server.url}/echo/500/{TOKEN}", {"text": "hi"}, token=TOKEN)
    assert error is not None and error.startswith("sending notification bad response 500: [31mdenied ")
    assert_clean(error)
