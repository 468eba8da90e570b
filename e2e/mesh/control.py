"""``MeshControl``: a small async client of the simulator's control API, for tests and the bed."""

from __future__ import annotations

from typing import Any

import aiohttp


class MeshControl:
    """``MeshControl(bed.mesh_url)``; every call is one short request (no session to close)."""

    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        # trust_env=False: the control API is on loopback and must never go through a proxy
        async with (
            aiohttp.ClientSession(timeout=self.timeout, trust_env=False) as s,
            s.request(method, f"{self.base_url}{path}", json=body) as resp,
        ):
            if resp.status != 200:
                raise RuntimeError(f"mesh control {method} {path}: HTTP {resp.status}: {await resp.text()}")
            return await (resp.json() if path != "/_bed/healthz" else resp.text())

    async def healthy(self) -> bool:
        try:
            await self._call("GET", "/_bed/healthz")
            return True
        except (aiohttp.ClientError, TimeoutError, RuntimeError):
            return False

    async def proxy_port(self, namespace: str | None = None) -> int:
        """The proxy port whose bare names resolve in ``namespace`` (None: the default proxy, qualified
        names only); opened on first use, the same port afterwards."""
        return int((await self._call("POST", "/_bed/proxy", {"namespace": namespace or ""}))["port"])

    async def proxy(self, namespace: str | None = None) -> str:
        """The same as a URL for ``HTTP_PROXY`` / aiohttp's ``proxy=``: ``http://127.0.0.1:N``."""
        return f"http://127.0.0.1:{await self.proxy_port(namespace)}"

    async def register(self, namespace: str, service: str, target: str) -> None:
        """Put a real local process (``127.0.0.1:NNNN``) behind Service ``service.namespace`` (any port)."""
        await self._call(
            "POST", "/_bed/register", {"namespace": namespace, "service": service, "target": target}
        )

    async def unregister(self, namespace: str, service: str) -> None:
        await self._call("POST", "/_bed/unregister", {"namespace": namespace, "service": service})

    async def background(self, namespace: str, host: str, rps: float) -> None:
        """Set the background rate for ``host`` (a Service name or VirtualService host) seen from
        ``namespace``; 0 stops it."""
        await self._call("POST", "/_bed/background", {"namespace": namespace, "host": host, "rps": rps})

    async def routes(self) -> dict[str, list[list[Any]]]:
        """``{"<vs>.<ns>": [[destination host, weight], …]}`` as the simulator currently routes."""
        data: dict[str, list[list[Any]]] = await self._call("GET", "/_bed/routes")
        return data

    async def status(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("GET", "/_bed/status")
        return data
