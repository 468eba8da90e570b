"""A loopback HTTP server that answers like a hostile peer a Canary author could point canaryd at:
answers of any size (streamed, so the server itself stays small), gzip bombs, redirects to a second
server holding a secret, and error bodies full of control characters that echo the credentials sent.

The first path segment picks the behaviour, the rest is ignored, so the same address works as a
Prometheus server (``<addr>/api/v1/query``), a webhook or an alert receiver (any method)::

    /big/<bytes>[/<status>]  <status> (200), <bytes> bytes of a JSON-looking answer, chunked (no
                       Content-Length)
    /announced/<bytes> 200 with ``Content-Length: <bytes>``, then that many bytes
    /gzip/<bytes>      200, gzip-encoded zeros that inflate to <bytes> bytes
    /redirect          302 to ``<target>/secret?token=<SECRET>`` (target: another instance)
    /echo/<status>     <status> with a body of control characters, the request URL and its headers
    /ok                200 with a valid one-sample Prometheus answer
    /hang              never answers
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
from aiohttp import web

SECRET = "R3D1RECT-s3cret"
OK = b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"42"]}]}}'
_CHUNK = b"[" + b"1," * (512 * 1024 - 1) + b"1"  # 1 MiB of a JSON array, sent over and over


@dataclass
class Hostile:
    """``await Hostile().start()``; ``sent`` counts body bytes written before the client hung up."""

    redirect_target: str = ""
    seen: list[str] = field(default_factory=list)
    sent: int = 0
    finished: int = 0  # streamed answers done (completely or cut off by the client)
    runner: web.AppRunner | None = None
    url: str = ""

    async def start(self) -> Hostile:
        app = web.Application()
        app.router.add_route("*", "/{mode}/{tail:.*}", self._handle)
        app.router.add_route("*", "/{mode}", self._handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        self.seen.append(request.path_qs)
        mode = request.match_info["mode"]
        args = request.match_info.get("tail", "").split("/")
        tail = args[0]
        if mode == "hang":
            await asyncio.Event().wait()
        if mode == "ok":
            return web.Response(body=OK, content_type="application/json")
        if mode == "redirect":
            raise web.HTTPFound(f"{self.redirect_target}/secret?token={SECRET}")
        if mode == "secret":
            return web.Response(text=f"internal data {SECRET}")
        if mode == "echo":
            headers = orjson.dumps({str(k): v for k, v in request.headers.items()}).decode()
            text = f"\x1b[31mdenied\x00\r\n\u202e{request.url}\x07 {headers}" + " pad" * 2000
            return web.Response(status=int(tail or 400), text=text)
        size = int(tail)
        if mode == "gzip":
            return await self._stream(request, _gzip_zeros(size), headers={"Content-Encoding": "gzip"})
        length = size if mode == "announced" else None
        status = int(args[1]) if len(args) > 1 and args[1].isdigit() else 200
        return await self._stream(request, _repeat(size), length=length, status=status)

    async def _stream(self, request: web.Request, chunks: Iterator[bytes], *, length: int | None = None,
                      headers: dict[str, str] | None = None, status: int = 200) -> web.StreamResponse:
        resp = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
        resp.headers.update(headers or {})
        if length is not None:
            resp.content_length = length
        await resp.prepare(request)
        try:
            for chunk in chunks:
                await resp.write(chunk)
                self.sent += len(chunk)
            await resp.write_eof()
        except (ConnectionError, RuntimeError):  # the client hung up: what the tests want
            pass
        finally:
            self.finished += 1
        return resp


def _repeat(size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        piece = _CHUNK[: min(left, len(_CHUNK))]
        left -= len(piece)
        yield piece


def _gzip_zeros(size: int) -> Iterator[bytes]:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    block = bytes(1024 * 1024)
    left = size
    while left > 0:
        n = min(left, len(block))
        left -= n
        out = z.compress(block[:n])
        if out:
            yield out
    yield z.flush()
