"""Webhook failures quote the URL without the credentials in it (user info, query), against real
loopback servers; plus the URL helpers as a table."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.urls import display_url, safe_url, scrub_url
from canaryd.analysis.webhooks import call_webhook
from canaryd.model.spec import WebhookSpec

SECRET = "s3cr3t-token"


@pytest.mark.parametrize(
    ("url", "safe", "kept_path"),
    [
        (f"http://user:{SECRET}@lt.test:8080/gate/check?token={SECRET}#f", "http://lt.test:8080",
         "http://lt.test:8080/gate/check"),
        ("http://flagger-loadtester.test/", "http://flagger-loadtester.test", "http://flagger-loadtester.test/"),
        ("not a url", "<invalid URL>", "<invalid URL>"),
    ],
)
def test_url_forms(url: str, safe: str, kept_path: str) -> None:
    assert safe_url(url) == safe
    assert display_url(url) == kept_path


def test_scrub_url_replaces_url_and_its_secrets() -> None:
    url = f"http://me:{SECRET}@lt.test/?token={SECRET}x"
    text = scrub_url(f"Cannot connect to {url} as me:{SECRET} (token={SECRET}x)", url)
    assert SECRET not in text and "http://lt.test/" in text


async def _server(status: int) -> tuple[web.AppRunner, int]:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(status=status, text="nope")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_giving_up_message_has_no_credentials(session: aiohttp.ClientSession) -> None:
    runner, port = await _server(503)
    try:
        url = f"http://bot:{SECRET}@127.0.0.1:{port}/gate/check?token={SECRET}"
        hook = WebhookSpec(name="gate", url=url, type="confirm-rollout", timeout_seconds=2)
        result = await call_webhook(session, hook, {"name": "podinfo"}, backoff=0.01)
    finally:
        await runner.cleanup()
    assert not result.passed
    assert result.message == f"POST http://127.0.0.1:{port}/gate/check giving up after 1 attempt(s)"


async def test_transport_error_has_no_credentials(session: aiohttp.ClientSession) -> None:
    port = _closed_port()
    url = f"http://bot:{SECRET}@127.0.0.1:{port}/?token={SECRET}"
    hook = WebhookSpec(name="lt", url=url, timeout_seconds=2, retries=1)
    result = await call_webhook(session, hook, {"name": "podinfo"}, backoff=0.01)
    assert not result.passed
    assert result.message.startswith(f"POST http://127.0.0.1:{port}/ giving up after 2 attempt(s): ")
    assert SECRET not in result.message and "bot" not in result.message


async def test_failing_status_surfaces_body_not_url(session: aiohttp.ClientSession) -> None:
    runner, port = await _server(403)
    try:
        hook = WebhookSpec(name="gate", url=f"http://127.0.0.1:{port}/?token={SECRET}", timeout_seconds=2)
        result = await call_webhook(session, hook, {"name": "podinfo"})
    finally:
        await runner.cleanup()
    assert (result.passed, result.message) == (False, "nope")
