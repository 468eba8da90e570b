"""``kubectl canary dashboard``: a local web UI acting with the user's credentials, so it guards itself
as such: it listens on loopback, answers only requests naming ``127.0.0.1:<port>`` or
``localhost:<port>`` as Host (DNS rebinding), only holders of the random token printed in the URL (a
cookie after the first visit), checks ``Origin`` on every request that is not a read, and sends no CORS
headers. Pages are plain HTML/JS/CSS from this package (no CDN); live updates are server-sent events fed
by one watch of the Canaries (canaryd/console/hub.py) and, on a Canary's page, a watch of its Events."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import secrets
import sys
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

import orjson
from aiohttp import web

from canaryd.console import render
from canaryd.console.actions import ACTIONS, write_request
from canaryd.console.commands import Options
from canaryd.console.hub import Hub, Listener
from canaryd.console.kube import ConsoleError, connect, events_of, follow, is_event_of
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import EVENT

COOKIE = "canaryd_dashboard"
KEEPALIVE = 15.0  # seconds between SSE comments, so a closed page is noticed
STATIC = {"app.js": "text/javascript", "style.css": "text/css", "index.html": "text/html"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

HUB = web.AppKey("hub", Hub)
CLIENT = web.AppKey("client", KubeClient)


class Guard:
    """Who may talk to this server: the right Host, the token (or its cookie), the right Origin."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.hosts: frozenset[str] = frozenset()

    def bind(self, port: int, address: str) -> None:
        names = {"127.0.0.1", "localhost"}
        if address not in ("127.0.0.1", "localhost", "0.0.0.0", "::", ""):
            names.add(address)
        self.hosts = frozenset(f"{n}:{port}" for n in names)

    def host_ok(self, host: str | None) -> bool:
        return (host or "").lower() in self.hosts

    def origin_ok(self, origin: str | None) -> bool:
        return any(origin == f"http://{h}" for h in self.hosts)

    def token_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


GUARD = web.AppKey("guard", Guard)


def _refuse(status: int, text: str) -> web.Response:
    return web.Response(status=status, text=text + "\n", content_type="text/plain")


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    g: Guard = request.app[GUARD]
    if not g.host_ok(request.headers.get("Host")):
        return _refuse(421, "wrong Host: open the dashboard at 127.0.0.1 or localhost")
    if request.method not in ("GET", "HEAD") and not g.origin_ok(request.headers.get("Origin")):
        return _refuse(403, "cross-origin request refused")
    given = request.query.get("token")
    if given is not None:
        if not g.token_ok(given):
            return _refuse(401, "wrong token: open the URL kubectl canary dashboard printed")
        # the token leaves the address bar (and the history) at once; the cookie carries it from now on
        rest = {k: v for k, v in request.rel_url.query.items() if k != "token"}
        raise web.HTTPFound(request.rel_url.with_query(rest), headers={
            "Set-Cookie": f"{COOKIE}={g.token}; Path=/; HttpOnly; SameSite=Strict"})
    if not g.token_ok(request.cookies.get(COOKIE)):
        return _refuse(401, "no token: open the URL kubectl canary dashboard printed")
    return await handler(request)


async def _headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every answer, refusals and streams included: no framing, no sniffing, no referrer (the token
    was in the first URL), nothing cached, only this server's scripts."""
    response.headers.update({"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                             "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
                             "Cache-Control": "no-store"})


def _static(name: str) -> web.Response:
    body = resources.files("canaryd.console").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=STATIC[name], charset="utf-8")


async def page(request: web.Request) -> web.Response:
    return _static("index.html")


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["file"]
    if name not in STATIC or name == "index.html":
        raise web.HTTPNotFound()
    return _static(name)


async def canaries(request: web.Request) -> web.Response:
    return web.json_response(request.app[HUB].snapshot(), dumps=lambda o: orjson.dumps(o).decode())


async def action(request: web.Request) -> web.Response:
    """Promote/abort/retry/pause/resume: the page's confirmed click writes the same request as the CLI
    (canaryd/console/actions.py) with the user's credentials and answers its id; the page then shows
    canaryd's answer when ``status.lastRequest.id`` matches (the stream carries it). A JSON body may
    name the ``revision`` the page showed (default: status.lastAppliedSpec) and ``full`` for promote."""
    ns, name, verb = (request.match_info[k] for k in ("ns", "name", "action"))
    if verb not in ACTIONS:
        return web.json_response({"error": f"unknown action {verb!r}"}, status=404)
    body: Any = {}
    if request.can_read_body:
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return web.json_response({"error": "the body is not JSON"}, status=400)
    if not isinstance(body, dict) or not isinstance(body.get("revision", ""), str | None) or not isinstance(
            body.get("full", False), bool):
        return web.json_response({"error": "body: {\"revision\": string, \"full\": bool}"}, status=400)
    try:
        req, _, _ = await write_request(request.app[CLIENT], ns, name, verb, body.get("revision") or None,
                                        bool(body.get("full")))
    except ConsoleError as err:
        status = 404 if str(err).endswith("not found") else 400 if "full" in str(err) else 502
        return web.json_response({"error": str(err)}, status=status)
    return web.json_response(req, status=202)


async def _sse(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                       "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    return resp


async def _send(resp: web.StreamResponse, message: Any) -> None:
    await resp.write(b"data: " + orjson.dumps(message) + b"\n\n")


async def _pump(resp: web.StreamResponse, queue: asyncio.Queue[Any]) -> None:
    """Messages to the page until the hub ends the stream (``None``) or the page goes away."""
    while True:
        try:
            async with asyncio.timeout(KEEPALIVE):
                message = await queue.get()
        except TimeoutError:
            await resp.write(b": keepalive\n\n")
            continue
        if message is None:
            return
        await _send(resp, message)


async def stream_all(request: web.Request) -> web.StreamResponse:
    hub = request.app[HUB]
    listener = hub.listen(None)
    try:
        resp = await _sse(request)
        await _send(resp, {"type": "snapshot", "canaries": hub.snapshot()})
        with contextlib.suppress(ConnectionResetError):
            await _pump(resp, listener.queue)
        return resp
    finally:
        hub.leave(listener)


async def stream_one(request: web.Request) -> web.StreamResponse:
    hub, client = request.app[HUB], request.app[CLIENT]
    key = (request.match_info["ns"], request.match_info["name"])
    listener: Listener = hub.listen(key)
    events_task: asyncio.Task[None] | None = None
    try:
        resp = await _sse(request)
        await _send(resp, {"type": "snapshot", **(hub.one(key) or {"canary": None, "history": []})})
        events, rv = await events_of(client, *key)
        by_name = {str((e.get("metadata") or {}).get("name")): e for e in events}

        def recent() -> dict[str, Any]:
            rows = sorted(by_name.values(), key=render.event_order)[-30:]
            return {"type": "events", "events": [
                {"type": e.get("type"), "reason": e.get("reason"), "message": e.get("message"),
                 "count": e.get("count") or 1, "time": e.get("lastTimestamp") or e.get("eventTime")}
                for e in rows]}

        await _send(resp, recent())

        async def follow_events() -> None:
            if not rv:
                return
            async for kind, obj in follow(client, EVENT, key[0], rv):
                if is_event_of(obj, key[1]):
                    name = str((obj.get("metadata") or {}).get("name"))
                    if kind == "DELETED":
                        by_name.pop(name, None)
                    else:
                        by_name[name] = obj
                    with contextlib.suppress(asyncio.QueueFull):
                        listener.queue.put_nowait(recent())

        events_task = asyncio.create_task(follow_events())
        with contextlib.suppress(ConnectionResetError):
            await _pump(resp, listener.queue)
        return resp
    finally:
        hub.leave(listener)
        if events_task is not None:
            events_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await events_task


def make_app(hub: Hub, client: KubeClient, guard_: Guard) -> web.Application:
    app = web.Application(middlewares=[guard])
    app.on_response_prepare.append(_headers)
    app[HUB], app[CLIENT], app[GUARD] = hub, client, guard_
    app.router.add_get("/", page)
    app.router.add_get("/c/{ns}/{name}", page)
    app.router.add_get("/static/{file}", asset)
    app.router.add_get("/api/canaries", canaries)
    app.router.add_get("/api/stream", stream_all)
    app.router.add_get("/api/canary/{ns}/{name}/stream", stream_one)
    app.router.add_post("/api/canary/{ns}/{name}/{action}", action)
    return app


async def start(opts: Options, address: str, port: int) -> tuple[web.AppRunner, Hub, KubeClient, str]:
    """Connect, list, and listen; returns what :func:`serve` stops at the end and the URL to open."""
    client = await connect(opts.kubeconfig, opts.context)
    hub = Hub(client, opts.namespace)
    try:
        await hub.start()
    except BaseException:
        await client.close()
        raise
    g = Guard(secrets.token_urlsafe(24))
    runner = web.AppRunner(make_app(hub, client, g), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, address, port)
    await site.start()
    bound = runner.addresses[0][1]
    g.bind(bound, address)
    shown = address if address not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return runner, hub, client, f"http://{shown}:{bound}/?token={g.token}"


async def serve(opts: Options, address: str, port: int) -> int:
    try:
        runner, hub, client, url = await start(opts, address, port)
    except ConsoleError as err:
        print(f"kubectl canary: {err}", file=sys.stderr)
        return 3
    except OSError as err:
        print(f"kubectl canary dashboard: cannot listen on {address}:{port}: {err.strerror}", file=sys.stderr)
        return 3
    print(f"canary dashboard: {url}", flush=True)
    print("(it acts with your kubeconfig's credentials; keep the URL to yourself. Ctrl-C stops it)",
          flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await hub.stop()
        await runner.cleanup()
        await client.close()
    return 0
