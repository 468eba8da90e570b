"""A webhook failure is an ``error`` when the hook could not answer (5xx, transport, 3xx) and a plain no
(4xx) otherwise; after a hook whose failure may not count (verdict options) the next hooks are still
called. Against a real loopback server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.webhooks import call_hooks, call_webhook
from canaryd.model.spec import CheckPolicy, WebhookSpec


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[str]]]:
    """``/<status>`` answers with that status; the paths asked, in order."""
    asked: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        asked.append(request.path)
        return web.Response(status=int(request.path.strip("/")), text="answer")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", asked
    await runner.cleanup()


@pytest.mark.parametrize(("status", "passed", "error"), [
    (200, True, False), (202, True, False), (204, False, False), (403, False, False), (404, False, False),
    (500, False, True), (501, False, True), (503, False, True), (302, False, True),
])
async def test_error_or_no(server: tuple[str, list[str]], status: int, passed: bool, error: bool) -> None:
    base, _ = server
    async with aiohttp.ClientSession() as session:
        r = await call_webhook(session, WebhookSpec("h", f"{base}/{status}"), {}, backoff=0.01)
    assert (r.passed, r.error) == (passed, error), r


async def test_hooks_after_one_whose_failure_may_not_count_still_run(server: tuple[str, list[str]]) -> None:
    base, asked = server
    tolerant = WebhookSpec("a", f"{base}/500", policy=CheckPolicy(consecutive_error_limit=3))
    dry = WebhookSpec("b", f"{base}/403", policy=CheckPolicy(dry_run=True))
    plain_no = WebhookSpec("c", f"{base}/403")
    last = WebhookSpec("d", f"{base}/200")
    async with aiohttp.ClientSession() as session:
        results = await call_hooks(session, [tolerant, dry, plain_no, last], name="n", namespace="ns",
                                   phase="Progressing", checksum="x")
    assert [r.name for r in results] == ["a", "b", "c"]  # a plain failure still stops the list (Flagger)
    assert asked == ["/500", "/403", "/403"]
