"""The simulator's HTTP side: the main port (data plane + ``/metrics`` + control API under ``/_bed/``), the
per-namespace proxy ports, and the process entry point that wires the watchers to the ``Mesh``."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from e2e.mesh import kubeconfig
from e2e.mesh.app import Mesh
from e2e.mesh.routing import RequestView, strip_port
from e2e.mesh.watch import Watcher, slim_deployment, slim_service, slim_virtual_service

log = logging.getLogger("e2e.mesh")
NAMESPACE_HEADER = "X-Bed-Namespace"
LOOPBACK = frozenset({"", "127.0.0.1", "localhost", "[::1]"})
PATHS = {
    "services": "/api/v1/services",
    "deployments": "/apis/apps/v1/deployments",
    "virtualservices": "/apis/networking.istio.io/v1beta1/virtualservices",
}


class Server:
    """Owns the listening sockets: the main port and one proxy port per namespace ("" = the default
    proxy, qualified names only)."""

    def __init__(self, mesh: Mesh, port: int, *, watchers: dict[str, Watcher] | None = None) -> None:
        self.mesh = mesh
        self.port = port
        self.watchers = watchers or {}
        self.proxies: dict[str, int] = {}
        self.runners: list[web.AppRunner] = []
        self._lock = asyncio.Lock()

    async def start(self, proxy_port: int | None = None) -> int:
        self.port = await self._listen(self.port, None, own=True)
        if proxy_port is not None:
            await self.open_proxy("", proxy_port)
        return self.port

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()
        self.runners.clear()

    async def open_proxy(self, namespace: str, port: int = 0) -> int:
        """Idempotent: the proxy port of ``namespace`` ("" = default), opened on first use."""
        async with self._lock:
            if namespace not in self.proxies:
                self.proxies[namespace] = await self._listen(port, namespace or None, own=False)
                log.info("proxy for namespace %r on 127.0.0.1:%d", namespace, self.proxies[namespace])
            return self.proxies[namespace]

    async def _listen(self, port: int, namespace: str | None, own: bool) -> int:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handler(namespace, own))
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
        await site.start()
        self.runners.append(runner)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        return int(sockets[0].getsockname()[1]) if sockets else port

    def _handler(self, namespace: str | None, own: bool) -> Any:
        async def handle(request: web.Request) -> web.StreamResponse:
            url = request.message.url
            authority = url.raw_authority if url.is_absolute() else request.headers.get("Host", "")
            if strip_port(authority) in LOOPBACK:
                if own:
                    return await self.control(request)
                return web.Response(
                    status=502,
                    text=f"mesh: {authority!r} is not a bed name; clients must "
                    "not proxy loopback addresses (NO_PROXY=127.0.0.1,localhost)\n",
                )
            if request.method == "CONNECT":
                return web.Response(status=405, text="mesh: the bed's proxy carries plain http:// only\n")
            ns = request.headers.get(NAMESPACE_HEADER) or namespace
            headers = {k.lower(): v for k, v in request.headers.items() if k.lower() != "proxy-connection"}
            req = RequestView(request.method, request.rel_url.raw_path_qs, authority, headers)
            reply = await self.mesh.dispatch(authority, ns, req, await request.read())
            resp = web.Response(status=reply.status, body=reply.body, headers=reply.headers)
            resp.headers["Content-Type"] = reply.content_type
            return resp

        return handle

    # ---- control API ----

    async def control(self, request: web.Request) -> web.StreamResponse:
        path, method = request.path, request.method
        if path == "/metrics":
            body = self.mesh.metrics.render()
            return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
        if path == "/_bed/healthz":
            return web.Response(text="OK\n")
        if path == "/_bed/routes":
            return web.json_response(self.mesh.routes())
        if path == "/_bed/status":
            return web.json_response(self.status())
        if method != "POST":
            return web.Response(status=404, text=f"mesh: no control path {method} {path}\n")
        try:
            payload = orjson.loads(await request.read() or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("a JSON object is expected")
            return web.json_response(await self._post(path, payload))
        except (orjson.JSONDecodeError, ValueError, KeyError, TypeError) as err:
            return web.Response(status=400, text=f"mesh: bad request to {path}: {err}\n")
        except LookupError as err:
            return web.Response(status=404, text=f"{err}\n")

    async def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        if path == "/_bed/proxy":
            return {"port": await self.open_proxy(str(payload.get("namespace") or ""))}
        if path == "/_bed/register":
            target = str(payload["target"])
            host, _, port = target.rpartition(":")
            if host not in ("127.0.0.1", "localhost") or not port.isdigit():
                raise ValueError(f"target must be 127.0.0.1:<port>, not {target!r}")
            self.mesh.registrations[(_name(payload, "namespace"), _name(payload, "service"))] = target
            return {"ok": True}
        if path == "/_bed/unregister":
            self.mesh.registrations.pop((_name(payload, "namespace"), _name(payload, "service")), None)
            return {"ok": True}
        if path == "/_bed/background":
            rps = float(payload.get("rps", self.mesh.background_rps))
            if not 0 <= rps <= 1000:
                raise ValueError("rps must be within 0..1000")
            self.mesh.background_overrides[(_name(payload, "namespace"), _name(payload, "host"))] = rps
            return {"ok": True}
        raise LookupError(f"mesh: no control path POST {path}")

    def status(self) -> dict[str, Any]:
        mesh = self.mesh
        return {
            "synced": all(w.synced.is_set() for w in self.watchers.values()),
            "watch": {
                k: {"objects": len(w.objects), "relists": w.relists, "errors": w.errors}
                for k, w in self.watchers.items()
            },
            "proxies": self.proxies,
            "registrations": {f"{s}.{ns}": t for (ns, s), t in mesh.registrations.items()},
            "background": {f"{h}.{ns}": rps for (ns, h), rps in mesh.background_targets().items()},
            "inflight": len(mesh.tasks),
            "dropped": mesh.dropped,
        }


def _name(payload: dict[str, Any], key: str) -> str:
    value = str(payload[key]).strip().lower()
    if not value:
        raise ValueError(f"{key} is empty")
    return value


async def main(kubeconfig_path: str, port: int, background_rps: float, proxy_port: int | None) -> None:
    """Watch the cluster, wait for the first complete lists, then serve until cancelled."""
    access = kubeconfig.load(kubeconfig_path)
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        watchers: dict[str, Watcher] = {}
        mesh = Mesh(
            lambda: (
                watchers["services"].objects,
                watchers["deployments"].objects,
                watchers["virtualservices"].objects,
            ),
            background_rps=background_rps,
        )
        mesh.session = session
        slims = {
            "services": slim_service,
            "deployments": slim_deployment,
            "virtualservices": slim_virtual_service,
        }
        for name, path in PATHS.items():
            watchers[name] = Watcher(session, access, path, slims[name], mesh.changed)
        tasks = [asyncio.create_task(w.run(), name=f"watch-{n}") for n, w in watchers.items()]
        server = Server(mesh, port, watchers=watchers)
        try:
            await asyncio.gather(*(w.synced.wait() for w in watchers.values()))
            await server.start(proxy_port)
            log.info("mesh simulator on 127.0.0.1:%d (background %.1f rps per apex host)", server.port,
                     background_rps)  # fmt: skip
            await mesh.background_loop()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await mesh.drain()
            await server.close()
