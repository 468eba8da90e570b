"""The HTTP endpoints of the operator: ``/metrics``, ``/healthz`` (process alive and leader election still
working: the liveness probe) and ``/readyz`` (caches synced, and leader or standby)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

Probe = Callable[[], tuple[bool, str]]


def build_app(registry: CollectorRegistry, ready: Probe, healthy: Probe | None = None) -> web.Application:
    """An aiohttp app; ``ready()`` and ``healthy()`` return (ok, reason) for ``/readyz`` and ``/healthz``."""

    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        ok, reason = healthy() if healthy is not None else (True, "")
        return web.Response(text=reason or "OK", status=200 if ok else 503)

    async def readyz(_: web.Request) -> web.Response:
        ok, reason = ready()
        return web.Response(text=reason or "OK", status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app


async def start_http(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
