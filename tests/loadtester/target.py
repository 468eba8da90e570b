"""A loopback HTTP target that records every request it gets (also usable as an HTTP proxy: a request in
absolute form is recorded with the Host it asked for)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Seen:
    at: float
    method: str
    path: str
    host: str
    headers: dict[str, str]
    body: bytes
    peer_port: int


@dataclass
class Target:
    seen: list[Seen] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.seen.append(Seen(time.monotonic(), request.method, request.path, request.host,
                              dict(request.headers), await request.read(), peer[1] if peer else 0))
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path.rsplit("/", 1)[1]), text="status")
        if request.path.startswith("/delay/"):
            await asyncio.sleep(float(request.path.rsplit("/", 1)[1]))
        return web.Response(text="hello from the target")

    async def start(self) -> Target:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
