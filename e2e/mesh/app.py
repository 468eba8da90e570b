"""The simulator's process: watches the cluster, serves the data plane, proxy ports, metrics and the
control API (see the package docstring for the contract)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from e2e.mesh import routing

log = logging.getLogger("e2e.mesh")
BUCKETS = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
)
LABELS = [
    "reporter",
    "source_workload",
    "source_workload_namespace",
    "destination_workload",
    "destination_workload_namespace",
    "destination_service",
    "destination_service_name",
    "destination_app",
    "destination_version",
    "response_code",
]
MAX_DELAY = 30.0


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass
class Mesh:
    """State of the simulator; one per process (no module-level state)."""

    store: Store
    own_port: int
    background_rps: float
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    registrations: dict[tuple[str, str], str] = field(default_factory=dict)
    proxies: dict[str, int] = field(default_factory=dict)  # namespace ("" = default) -> port
    runners: list[web.AppRunner] = field(default_factory=list)
    background: dict[tuple[str, str], float] = field(default_factory=dict)  # (ns, host) -> rps override
    rng: random.Random = field(default_factory=random.Random)
    session: aiohttp.ClientSession | None = None

    def __post_init__(self) -> None:
        self.requests = Counter(
            "istio_requests_total", "Requests (simulated Istio telemetry)", LABELS, registry=self.registry
        )
        self.duration = Histogram(
            "istio_request_duration_milliseconds",
            "Request duration (ms)",
            [*LABELS[:-1], "response_code"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    # ---- resolution ----

    def service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.store.get(r.SERVICE.kind, namespace, name)

    def virtual_service_for(self, host: routing.Host) -> dict[str, Any] | None:
        """A VirtualService claiming this host: by full name (any namespace) or by service name in its
        namespace."""
        names = {host.name}
        if host.namespace:
            names |= {f"{host.name}.{host.namespace}", f"{host.name}.{host.namespace}.svc.cluster.local"}
        for vs in self.store.items(r.VIRTUAL_SERVICE.kind):
            vs_ns = vs["metadata"]["namespace"]
            hosts = set(routing.vs_hosts(vs))
            if host.namespace is None:
                if host.name in hosts:
                    return vs
            elif vs_ns == host.namespace and names & hosts:
                return vs
        return None

    async def dispatch(
        self,
        host_header: str,
        namespace: str | None,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
        *,
        source: str = "unknown",
    ) -> Reply:
        host = routing.parse_host(host_header, namespace)
        if host.namespace is not None:
            target = self.registrations.get((host.namespace, host.name))
            if target is not None:
                return await self.forward(target, method, path, headers, body)
        vs = self.virtual_service_for(host)
        if vs is not None:
            vs_ns = vs["metadata"]["namespace"]
            route = routing.choose_route(vs, headers, path)
            if route is None:
                return Reply(404, b"no route matched\n", "text/plain")
            dest = routing.pick_destination(route, self.rng.random())
            if dest is None:
                return Reply(503, b"no healthy upstream (all weights 0)\n", "text/plain")
            dest_host = routing.parse_host(dest, vs_ns)
            return await self.serve_service(dest_host.namespace or vs_ns, dest_host.name, path, source)
        if host.namespace is None:
            return Reply(
                502,
                f"mesh: unknown host {host_header!r} (no namespace, no VirtualService)\n".encode(),
                "text/plain",
            )
        if self.service(host.namespace, host.name) is None:
            return Reply(
                502, f"mesh: no Service {host.name}.{host.namespace} in the bed\n".encode(), "text/plain"
            )
        return await self.serve_service(host.namespace, host.name, path, source)

    async def forward(
        self, target: str, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> Reply:
        assert self.session is not None
        hop = {"host", "connection", "proxy-connection", "keep-alive", "transfer-encoding", "content-length"}
        fwd = {k: v for k, v in headers.items() if k.lower() not in hop}
        try:
            async with self.session.request(
                method,
                f"http://{target}{path}",
                headers=fwd,
                data=body,
                timeout=aiohttp.ClientTimeout(total=120),
            ) as resp:
                data = await resp.read()
                return Reply(resp.status, data, resp.headers.get("Content-Type", "text/plain"))
        except (aiohttp.ClientError, TimeoutError) as err:
            return Reply(502, f"mesh: registered target {target} failed: {err}\n".encode(), "text/plain")

    async def serve_service(self, namespace: str, name: str, path: str, source: str) -> Reply:
        svc = self.service(namespace, name)
        if svc is None:
            return Reply(502, f"mesh: no Service {name}.{namespace}\n".encode(), "text/plain")
        deployment = routing.workload_for_service(svc, self.store.items(r.DEPLOYMENT.kind, namespace))
        if deployment is None:
            return Reply(503, b"no healthy upstream\n", "text/plain")
        return await self.serve_workload(svc, deployment, path, source)

    async def serve_workload(
        self, svc: dict[str, Any], deployment: dict[str, Any], path: str, source: str
    ) -> Reply:
        started = time.monotonic()
        ns = deployment["metadata"]["namespace"]
        workload = deployment["metadata"]["name"]
        version, error_pct, latency_ms = routing.workload_behaviour(deployment)
        available = int((deployment.get("status") or {}).get("availableReplicas") or 0)
        if available <= 0:
            reply = Reply(503, b"no healthy upstream\n", "text/plain")
        else:
            reply = await self.podinfo(path, workload, version, error_pct, latency_ms)
        elapsed_ms = (time.monotonic() - started) * 1000
        labels = dict(
            reporter="destination",
            source_workload=source,
            source_workload_namespace=ns,
            destination_workload=workload,
            destination_workload_namespace=ns,
            destination_service=f"{svc['metadata']['name']}.{ns}.svc.cluster.local",
            destination_service_name=svc["metadata"]["name"],
            destination_app=str(
                ((deployment.get("spec") or {}).get("selector") or {})
                .get("matchLabels", {})
                .get("app", workload)
            ),
            destination_version=version,
            response_code=str(reply.status),
        )
        self.requests.labels(**labels).inc()
        self.duration.labels(**labels).observe(elapsed_ms)
        return reply

    async def podinfo(
        self, path: str, workload: str, version: str, error_pct: float, latency_ms: float
    ) -> Reply:
        if latency_ms > 0:
            await asyncio.sleep(min(latency_ms / 1000, MAX_DELAY))
        if error_pct > 0 and self.rng.random() * 100 < error_pct:
            return Reply(500, b'{"status": 500}')
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
            code = int(parts[1])
            return Reply(code, orjson.dumps({"status": code}))
        if len(parts) == 2 and parts[0] == "delay":
            try:
                await asyncio.sleep(min(float(parts[1]), MAX_DELAY))
            except ValueError:
                return Reply(400, b'{"error": "bad delay"}')
            return Reply(200, orjson.dumps({"delay": parts[1]}))
        if parts in (["healthz"], ["readyz"]):
            return Reply(200, b'{"status": "OK"}')
        if parts == ["token"]:
            return Reply(200, orjson.dumps({"token": f"bed-token-{workload}", "expiresAt": "never"}))
        return Reply(
            200,
            orjson.dumps(
                {
                    "hostname": f"{workload}-sim",
                    "version": version,
                    "message": f"greetings from podinfo v{version}",
                }
            ),
        )

    # ---- background traffic ----

    def apex_hosts(self) -> list[tuple[str, str]]:
        """(namespace, service) of every Service named in a VirtualService's hosts."""
        out = []
        for vs in self.store.items(r.VIRTUAL_SERVICE.kind):
            ns = vs["metadata"]["namespace"]
            for h in routing.vs_hosts(vs):
                host = routing.parse_host(h, ns)
                if host.namespace == ns and self.service(ns, host.name) is not None:
                    out.append((ns, host.name))
        return out

    async def background_loop(self) -> None:
        """Steady traffic to each apex host: ``rps`` requests a second, spread evenly; bounded work per tick."""
        tick = 0.1
        credit: dict[tuple[str, str], float] = {}
        while True:
            await asyncio.sleep(tick)
            for key in self.apex_hosts():
                rps = self.background.get(key, self.background_rps)
                credit[key] = min(credit.get(key, 0.0) + rps * tick, 50.0)
                while credit[key] >= 1.0:
                    credit[key] -= 1.0
                    ns, name = key
                    with contextlib.suppress(Exception):
                        await self.dispatch(f"{name}.{ns}", ns, "GET", "/", {}, b"", source="bed-background")


def _headers(request: web.Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def data_plane_handler(mesh: Mesh, namespace: str | None, own: bool) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if own and (host.startswith("127.0.0.1") or host.startswith("localhost") or not host):
            return await control(mesh, request)
        body = await request.read()
        reply = await mesh.dispatch(
            host, namespace, request.method, request.path_qs, _headers(request), body, source="bed-client"
        )
        return web.Response(
            status=reply.status, body=reply.body, content_type=reply.content_type.split(";")[0]
        )

    return handle


async def control(mesh: Mesh, request: web.Request) -> web.StreamResponse:
    path = request.path
    if path == "/metrics":
        return web.Response(
            body=generate_latest(mesh.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
    if path == "/_bed/healthz":
        return web.Response(text="OK")
    if path == "/_bed/routes":
        routes = {
            f"{vs['metadata']['name']}.{vs['metadata']['namespace']}": [
                [(d.get("destination") or {}).get("host"), d.get("weight")]
                for route in (vs.get("spec") or {}).get("http") or []
                for d in route.get("route") or []
            ]
            for vs in mesh.store.items(r.VIRTUAL_SERVICE.kind)
        }
        return web.json_response(routes)
    if request.method != "POST":
        return web.Response(status=404, text="unknown control path\n")
    try:
        payload = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        return web.Response(status=400, text="bad JSON\n")
    if path == "/_bed/proxy":
        ns = str(payload.get("namespace") or "")
        return web.json_response({"port": await open_proxy(mesh, ns)})
    if path == "/_bed/register":
        mesh.registrations[(str(payload["namespace"]), str(payload["service"]))] = str(payload["target"])
        return web.json_response({"ok": True})
    if path == "/_bed/background":
        key = (str(payload["namespace"]), str(payload["host"]))
        mesh.background[key] = float(payload.get("rps", mesh.background_rps))
        return web.json_response({"ok": True})
    return web.Response(status=404, text="unknown control path\n")


async def serve(mesh: Mesh, port: int, namespace: str | None, own: bool) -> int:
    app = web.Application(client_max_size=16 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", data_plane_handler(mesh, namespace, own))
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    mesh.runners.append(runner)
    server = site._server
    sockets = getattr(server, "sockets", None) or []
    return int(sockets[0].getsockname()[1]) if sockets else port


async def open_proxy(mesh: Mesh, namespace: str) -> int:
    if namespace not in mesh.proxies:
        mesh.proxies[namespace] = await serve(mesh, 0, namespace or None, own=False)
    return mesh.proxies[namespace]


async def main(kubeconfig: str, port: int, background_rps: float) -> None:
    client = await KubeClient.from_config(kubeconfig, user_agent="bed-mesh")
    store = Store()
    informers = Informers(
        client, store, resources=[r.VIRTUAL_SERVICE, r.SERVICE, r.DEPLOYMENT], registry=CollectorRegistry()
    )
    mesh = Mesh(store=store, own_port=port, background_rps=background_rps)
    async with aiohttp.ClientSession() as session:
        mesh.session = session
        await informers.start()
        await informers.wait_synced(timeout=60)
        await serve(mesh, port, None, own=True)
        log.info("mesh simulator listening on 127.0.0.1:%d", port)
        try:
            await mesh.background_loop()
        finally:
            for runner in mesh.runners:
                await runner.cleanup()
            await informers.stop()
            await client.close()
