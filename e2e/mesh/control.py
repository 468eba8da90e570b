"""A small async client of the simulator's control API, for tests and the bed."""

from __future__ import annotations

from typing import Any

import aiohttp


class MeshControl:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        async with aiohttp.ClientSession() as s, s.post(f"{self.base_url}{path}", json=body) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def proxy(self, namespace: str | None = None) -> str:
        """The proxy URL whose bare names resolve in ``namespace`` (qualified names only when None)."""
        port = (await self._post("/_bed/proxy", {"namespace": namespace or ""}))["port"]
        return f"http://127.0.0.1:{port}"

    async def register(self, namespace: str, service: str, target: str) -> None:
        await self._post("/_bed/register", {"namespace": namespace, "service": service, "target": target})

    async def background(self, namespace: str, host: str, rps: float) -> None:
        await self._post("/_bed/background", {"namespace": namespace, "host": host, "rps": rps})

    async def routes(self) -> dict[str, list[list[Any]]]:
        async with aiohttp.ClientSession() as s, s.get(f"{self.base_url}/_bed/routes") as resp:
            resp.raise_for_status()
            data: dict[str, list[list[Any]]] = await resp.json()
            return data
