"""A real HTTP receiver on loopback for notification and webhook tests: it records every POST (path,
headers, JSON body) and answers each path with a status/body the test sets (e.g. a gate that is closed
with 403 until opened with 200), or holds the request open to play a receiver that never answers."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from e2e.loopback import serve


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """``await Receiver().start()``; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, tuple[int, str]] = {}
        self._hang: set[str] = set()
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def answer(self, path: str, status: int, text: str = "") -> None:
        """Answer POSTs to ``path`` with ``status`` from now on (default 200 ``ok``)."""
        self._answers[path] = (status, text)

    def hang(self, path: str) -> None:
        """Never answer ``path`` (until ``stop``): the client's timeout must fire."""
        self._hang.add(path)

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r.body for r in self.received if path is None or r.path == path]

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = await request.json() if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        self.received.append(Received(request.path, dict(request.headers), body))
        if request.path in self._hang:
            await self._release.wait()
        status, text = self._answers.get(request.path, (200, "ok"))
        return web.Response(status=status, text=text)

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self.port = await serve(app)
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
