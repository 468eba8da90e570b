"""The dashboard's guard and live stream, served for real on loopback against a loopback API server:
wrong Host, missing or wrong token, cross-origin POSTs refused; no CORS; the token becomes a cookie;
an action writes the CLI's request (a uuid4, the revision shown); a status change reaches an open page
as a server-sent event with a new weight point."""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from canaryd.console.actions import ANNOTATION
from canaryd.console.commands import Options
from canaryd.console.dashboard import COOKIE, start
from canaryd.kube.resources import CANARY
from tests.console.fixtures import NS, REVISION, Cluster, cluster

__all__ = ["cluster"]


@pytest.fixture
async def dash(cluster: Cluster) -> AsyncIterator[tuple[Cluster, URL]]:
    opts = Options(kubeconfig=cluster.kubeconfig, context=None, namespace=None, out=io.StringIO(),
                   err=io.StringIO())
    runner, hub, client, url = await start(opts, "127.0.0.1", 0)
    try:
        yield cluster, URL(url)
    finally:
        await hub.stop()
        await runner.cleanup()
        await client.close()


async def fetch(url: URL, method: str = "GET", **headers: str) -> tuple[int, dict[str, str], str]:
    """One request with exactly these headers (no cookie jar), redirects not followed."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, s.request(
            method, url, headers=headers, allow_redirects=False) as resp:
        return resp.status, dict(resp.headers), await resp.text()


def cookie(url: URL) -> str:
    return f"{COOKIE}={url.query['token']}"


async def test_the_token_in_the_url_becomes_a_cookie_and_leaves_the_address(
        dash: tuple[Cluster, URL]) -> None:
    _, url = dash
    status, headers, _ = await fetch(url)
    assert status == 302 and headers["Location"] == "/"
    assert headers["Set-Cookie"].startswith(cookie(url)) and "HttpOnly" in headers["Set-Cookie"]
    assert "SameSite=Strict" in headers["Set-Cookie"]
    status, headers, body = await fetch(url.with_query(None), Cookie=cookie(url))
    assert status == 200 and "/static/app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert not [h for h in headers if h.lower().startswith("access-control-")]


@pytest.mark.parametrize(("change", "status"), [
    ({"token": None}, 401),
    ({"token": "guessed"}, 401),
    ({"host": "evil.example:{port}"}, 421),  # DNS rebinding: the browser sends the attacker's name
    ({"host": "127.0.0.1:1"}, 421),
    ({"host": "localhost:{port}"}, 302),
])
async def test_requests_without_the_token_or_with_a_wrong_host_are_refused(
        dash: tuple[Cluster, URL], change: dict[str, Any], status: int) -> None:
    _, url = dash
    target = url
    headers = {}
    if "token" in change:
        target = url.with_query(None if change["token"] is None else {"token": change["token"]})
    if "host" in change:
        headers["Host"] = change["host"].format(port=url.port)
    got, _, _ = await fetch(target, **headers)
    assert got == status


@pytest.mark.parametrize(("origin", "status"), [
    (None, 403), ("http://evil.example", 403), ("null", 403), ("http://127.0.0.1:{port}", 202),
    ("http://localhost:{port}", 202),
])
async def test_every_post_needs_our_origin(dash: tuple[Cluster, URL], origin: str | None,
                                           status: int) -> None:
    cluster, url = dash
    headers = {"Cookie": cookie(url)}
    if origin is not None:
        headers["Origin"] = origin.format(port=url.port)
    got, _, _ = await fetch(url.with_path(f"/api/canary/{NS}/podinfo/promote").with_query(None), "POST",
                            **headers)
    assert got == status
    written = ((await cluster.client.get(CANARY, NS, "podinfo"))["metadata"].get("annotations") or {})
    assert (ANNOTATION in written) == (status == 202)


async def post(url: URL, path: str, body: dict[str, Any] | None = None,
               token: bool = True) -> tuple[int, dict[str, Any]]:
    headers = {"Origin": f"http://127.0.0.1:{url.port}"}
    if token:
        headers["Cookie"] = cookie(url)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, s.post(
            url.with_path(path).with_query(None), headers=headers, json=body) as resp:
        text = await resp.text()
        return resp.status, json.loads(text) if resp.content_type == "application/json" else {"text": text}


async def test_an_action_needs_the_token(dash: tuple[Cluster, URL]) -> None:
    cluster, url = dash
    got, _ = await post(url, f"/api/canary/{NS}/podinfo/abort", token=False)
    assert got == 401
    canary = await cluster.client.get(CANARY, NS, "podinfo")
    assert ANNOTATION not in (canary["metadata"].get("annotations") or {})


async def test_an_action_writes_the_request_with_a_uuid_and_the_revision_shown(
        dash: tuple[Cluster, URL]) -> None:
    cluster, url = dash
    await cluster.status(phase="Progressing", canaryWeight=20, lastAppliedSpec=REVISION)
    got, answer = await post(url, f"/api/canary/{NS}/podinfo/abort", {"revision": REVISION})
    assert got == 202
    canary = await cluster.client.get(CANARY, NS, "podinfo")
    request = json.loads(canary["metadata"]["annotations"][ANNOTATION])
    assert request == answer == {"id": answer["id"], "action": "abort", "revision": REVISION}
    assert uuid.UUID(request["id"]).version == 4
    # no body: the revision canaryd shows now; a second click is a new request
    got, again = await post(url, f"/api/canary/{NS}/podinfo/promote", None)
    assert got == 202 and again["revision"] == REVISION and again["id"] != answer["id"]
    got, full = await post(url, f"/api/canary/{NS}/podinfo/promote",
                           {"full": True, "revision": "cd1:00000000000000aa"})
    assert got == 202 and (full["full"], full["revision"]) == (True, "cd1:00000000000000aa")


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    (f"/api/canary/{NS}/podinfo/undo", None, 404, "unknown action 'undo'"),
    (f"/api/canary/{NS}/nope/abort", None, 404, "canary shop/nope not found"),
    (f"/api/canary/{NS}/podinfo/abort", {"full": True}, 400, "--full goes with promote only"),
    (f"/api/canary/{NS}/podinfo/abort", {"revision": 7}, 400, "body:"),
])
async def test_a_bad_action_writes_nothing(dash: tuple[Cluster, URL], path: str, body: dict[str, Any] | None,
                                           status: int, error: str) -> None:
    cluster, url = dash
    got, answer = await post(url, path, body)
    assert got == status and answer["error"].startswith(error)
    canary = await cluster.client.get(CANARY, NS, "podinfo")
    assert ANNOTATION not in (canary["metadata"].get("annotations") or {})


async def test_no_cors_preflight(dash: tuple[Cluster, URL]) -> None:
    _, url = dash
    got, headers, _ = await fetch(url.with_path("/api/canaries").with_query(None), "OPTIONS",
                                  Cookie=cookie(url), Origin="http://evil.example",
                                  **{"Access-Control-Request-Method": "POST"})
    assert got in (403, 405) and not [h for h in headers if h.lower().startswith("access-control-")]


async def test_a_status_change_reaches_an_open_page_with_a_new_weight_point(
        dash: tuple[Cluster, URL]) -> None:
    cluster, url = dash
    stream = url.with_path(f"/api/canary/{NS}/podinfo/stream").with_query(None)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s, s.get(
            stream, headers={"Cookie": cookie(url)}) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")

        async def next_message() -> dict[str, Any]:
            async with asyncio.timeout(10):
                while True:
                    line = (await resp.content.readline()).decode()
                    if line.startswith("data: "):
                        message: dict[str, Any] = json.loads(line[6:])
                        return message

        snapshot = await next_message()
        assert snapshot["type"] == "snapshot" and snapshot["canary"]["name"] == "podinfo"
        assert len(snapshot["history"]) == 1
        assert (await next_message())["type"] == "events"
        await cluster.status(phase="Progressing", canaryWeight=10)
        update = await next_message()
        assert update["type"] == "canary" and update["canary"]["weight"] == 10
        assert update["point"][1:] == [10, "Progressing"]
        await cluster.event("e1", "Advance podinfo.shop canary weight 10")
        events = await next_message()
        assert [e["message"] for e in events["events"]] == ["Advance podinfo.shop canary weight 10"]
        # what the page needs for a reload's chart, the history table and an action's result
        weights = [{"at": "2026-01-01T00:00:00.000Z", "weight": 10}]
        runs = [{"revision": REVISION, "startedAt": "2026-01-01T00:00:00Z", "maxWeight": 10}]
        last = {"id": "x", "action": "abort", "result": "done", "message": "rolled back",
                "at": "2026-01-01T00:00:05Z"}
        steps = [{"at": "2026-01-01T00:00:00.000Z", "weight": 10,
                  "checks": [{"name": "request-success-rate", "value": 99.5, "verdict": "pass"}]}]
        await cluster.status(weights=weights, history=runs, lastRequest=last, stepChecks=steps)
        update = await next_message()
        while update["type"] != "canary":
            update = await next_message()
        c = update["canary"]
        assert (c["weights"], c["runs"], c["lastRequest"], c["steps"]) == (weights, runs, last, steps)
