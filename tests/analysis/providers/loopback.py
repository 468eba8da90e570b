"""A loopback HTTP server that records each request and answers with queued (status, body, headers):
the InfluxDB and Graphite tests' stand-in when no real server is wanted (shapes from a real InfluxDB
1.8.10 with Flux and Graphite's render API documentation)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from e2e.loopback import serve


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query_string: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Loopback:
    answers: list[tuple[int, bytes, dict[str, str]]] = field(default_factory=list)
    seen: list[Request] = field(default_factory=list)
    url: str = ""
    runner: web.AppRunner | None = None

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.answers.append((status, body, headers or {}))

    async def start(self) -> Loopback:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner, port = await serve(app, shutdown_timeout=0.1)
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(Request(request.method, request.path, request.rel_url.raw_query_string,
                                 dict(request.headers), body))
        status, answer, headers = self.answers.pop(0) if self.answers else (404, b"no answer queued", {})
        return web.Response(status=status, body=answer, headers=headers)
