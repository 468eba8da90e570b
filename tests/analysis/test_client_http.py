"""What the Prometheus client sends, seen by a real aiohttp server on loopback: the URL joined to the
address's own path, the encoded query, headers and credentials; and HTTP errors as Flagger words them."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from canaryd.analysis.prometheus import PrometheusClient, PrometheusHTTPError

from .promserver import free_port

OK = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}'


@pytest.fixture
async def recorder() -> AsyncIterator[tuple[str, list[web.Request]]]:
    seen: list[web.Request] = []

    async def handle(request: web.Request) -> web.Response:
        seen.append(request)
        if request.query.get("query") == "fail":
            return web.Response(status=503, text="overloaded\n")
        return web.Response(body=OK, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


@pytest.mark.parametrize(("suffix", "path"), [
    ("", "/api/v1/query"), ("/", "/api/v1/query"), ("/prom", "/prom/api/v1/query"),
    ("/prom/", "/prom/api/v1/query"),
])
async def test_path_joined_to_address(
    recorder: tuple[str, list[web.Request]], suffix: str, path: str
) -> None:
    url, seen = recorder
    async with aiohttp.ClientSession() as session:
        assert await PrometheusClient(url + suffix, session).query('sum(rate(x{a="b"}[1m])) * 100') == 42.0
    assert seen[-1].path == path
    assert seen[-1].query["query"] == 'sum(rate(x{a="b"}[1m])) * 100'


async def test_headers_and_bearer(recorder: tuple[str, list[web.Request]]) -> None:
    url, seen = recorder
    async with aiohttp.ClientSession() as session:
        client = PrometheusClient(url, session, headers={"X-Scope-OrgID": "team-a"}, bearer_token="t0k")
        await client.query("up")
    assert seen[-1].headers["X-Scope-OrgID"] == "team-a"
    assert seen[-1].headers["Authorization"] == "Bearer t0k"


async def test_basic_auth(recorder: tuple[str, list[web.Request]]) -> None:
    url, seen = recorder
    async with aiohttp.ClientSession() as session:
        await PrometheusClient(url, session, username="u", password="p").query("up")
    assert seen[-1].headers["Authorization"] == "Basic dTpw"  # base64("u:p")


async def test_no_credentials_no_authorization(recorder: tuple[str, list[web.Request]]) -> None:
    url, seen = recorder
    async with aiohttp.ClientSession() as session:
        await PrometheusClient(url, session).query("up")
    assert "Authorization" not in seen[-1].headers


async def test_http_error_text(recorder: tuple[str, list[web.Request]]) -> None:
    url, _ = recorder
    async with aiohttp.ClientSession() as session:
        with pytest.raises(PrometheusHTTPError) as err:
            await PrometheusClient(url, session).query("fail")
    assert str(err.value) == "error response: Status 503 Service Unavailable: overloaded"
