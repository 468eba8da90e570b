"""A real aiohttp server on loopback that answers from a per-test script and records every request,
so the client's HTTP behaviour (headers, bodies, retries, streams) is observed on the wire."""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Scripted:
    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    replies: deque[Reply] = field(default_factory=deque)

    def reply(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.seen.append(Seen(request.method, request.path, dict(request.query), dict(request.headers), body))
        if not self.replies:
            return web.Response(status=599, text="script exhausted")
        return await self.replies.popleft()(request)


def status(code: int, reason: str = "", message: str = "", headers: dict[str, str] | None = None) -> Reply:
    async def reply(_: web.Request) -> web.StreamResponse:
        body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                "reason": reason, "code": code}
        return web.Response(status=code, body=orjson.dumps(body), content_type="application/json",
                            headers=headers)
    return reply


def ok(obj: Any, code: int = 200) -> Reply:
    async def reply(_: web.Request) -> web.StreamResponse:
        return web.Response(status=code, body=orjson.dumps(obj), content_type="application/json")
    return reply


def text(code: int, body: str) -> Reply:
    async def reply(_: web.Request) -> web.StreamResponse:
        return web.Response(status=code, text=body)
    return reply


def stream(chunks: list[bytes]) -> Reply:
    """A chunked 200 response written piece by piece exactly as given (lines may straddle chunks)."""
    async def reply(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for chunk in chunks:
            await resp.write(chunk)
        await resp.write_eof()
        return resp
    return reply


async def start(scripted: Scripted) -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", scripted.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    scripted.url = f"http://{host}:{port}"
    return runner
