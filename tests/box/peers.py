"""The other HTTP peers of canaryd in the box, on loopback: a Prometheus whose answers each scenario scripts
(a function of the query), and a webhook receiver (load tester, gates, rollback hooks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Answer = Callable[[str], float | None]  # PromQL -> value (None: no values)


def healthy(query: str) -> float | None:
    """A canary that behaves: 100 % success, 10 ms P99 (and ``vector(1)`` for the online probe)."""
    if "histogram_quantile" in query:
        return 10.0
    return 100.0 if "istio_requests_total" in query else 1.0


def failing_success_rate(query: str) -> float | None:
    """Half of the canary's requests fail."""
    return 50.0 if "istio_requests_total" in query and "histogram_quantile" not in query else healthy(query)


class _Server:
    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _serve(self, app: web.Application) -> None:
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class ScriptedPrometheus(_Server):
    """``/api/v1/query``: a vector of one sample valued ``answer(query)``; every query is kept."""

    def __init__(self, answer: Answer = healthy) -> None:
        super().__init__()
        self.answer = answer
        self.queries: list[str] = []

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/v1/query", self._query)
        await self._serve(app)

    async def _query(self, request: web.Request) -> web.Response:
        query = request.query.get("query", "")
        if not query and request.method == "POST":
            query = str((await request.post()).get("query", ""))
        self.queries.append(query)
        value = self.answer(query)
        result = [] if value is None else [{"metric": {}, "value": [time.time(), repr(float(value))]}]
        body = {"status": "success", "data": {"resultType": "vector", "result": result}}
        return web.Response(body=orjson.dumps(body), content_type="application/json")


@dataclass
class Hook:
    path: str
    body: Any


@dataclass
class Webhooks(_Server):
    """Records every POST; answers 200 unless ``answers[path]`` says otherwise."""

    received: list[Hook] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _Server.__init__(self)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._hook)
        await self._serve(app)

    async def _hook(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = raw.decode("utf-8", "replace")
        self.received.append(Hook(request.path, body))
        status = self.answers.get(request.path, 200)
        return web.Response(status=status, text="ok" if status < 400 else "refused")

    def bodies(self, path: str) -> list[Any]:
        return [h.body for h in self.received if h.path == path]
