"""A small list+watch client of the simulator's own: keeps one resource kind (all namespaces) in memory.

It relists on 410 Gone (HTTP or ERROR event), re-watches when the server ends a stream, and retries with a
capped backoff while the API server is away, so the simulator survives the API server being stopped and
restarted. Objects are kept slim (only what routing needs) to stay cheap on a shared 2-core machine."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson

from e2e.mesh.kubeconfig import ApiAccess

JSON = dict[str, Any]
Key = tuple[str, str]  # (namespace, name)


class Gone(Exception):
    """The resourceVersion is too old: relist."""


class ApiStatusError(Exception):
    """The API server answered something other than 200 (or sent an ERROR event that is not 410)."""


def _meta(obj: JSON) -> JSON:
    m = obj.get("metadata") or {}
    return {k: m[k] for k in ("name", "namespace", "resourceVersion", "generation") if k in m}


def slim_deployment(obj: JSON) -> JSON:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    containers = [
        {k: c[k] for k in ("name", "image", "env") if k in c}
        for c in ((template.get("spec") or {}).get("containers") or [])[:1]
    ]
    return {
        "metadata": _meta(obj),
        "spec": {
            "selector": spec.get("selector") or {},
            "template": {
                "metadata": {"labels": (template.get("metadata") or {}).get("labels") or {}},
                "spec": {"containers": containers},
            },
        },
        "status": {"availableReplicas": (obj.get("status") or {}).get("availableReplicas") or 0},
    }


def slim_service(obj: JSON) -> JSON:
    return {"metadata": _meta(obj), "spec": {"selector": (obj.get("spec") or {}).get("selector") or {}}}


def slim_virtual_service(obj: JSON) -> JSON:
    return {"metadata": _meta(obj), "spec": obj.get("spec") or {}}


class Watcher:
    """``objects`` mirrors one collection (e.g. ``/apis/apps/v1/deployments``); ``on_change`` is called
    after every change; ``synced`` is set after the first complete list."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        access: ApiAccess,
        path: str,
        slim: Callable[[JSON], JSON],
        on_change: Callable[[], None],
        *,
        watch_timeout: int = 290,
        page: int = 500,
    ) -> None:
        self.session = session
        self.access = access
        self.path = path
        self.slim = slim
        self.on_change = on_change
        self.watch_timeout = watch_timeout
        self.page = page
        self.objects: dict[Key, JSON] = {}
        self.synced = asyncio.Event()
        self.relists = 0
        self.errors = 0
        self.log = logging.getLogger(f"e2e.mesh.watch{path.rsplit('/', 1)[-1]}")

    def _key(self, obj: JSON) -> Key:
        m = obj.get("metadata") or {}
        return str(m.get("namespace", "")), str(m.get("name", ""))

    async def run(self) -> None:
        """Forever: list, then watch from the list's resourceVersion; relist on 410, back off on errors."""
        rv: str | None = None
        backoff = 0.25
        while True:
            try:
                if rv is None:
                    rv = await self._list()
                    self.relists += 1
                    self.synced.set()
                rv, healthy = await self._watch(rv)
                if healthy:
                    backoff = 0.25
                    continue
            except Gone:
                self.log.info("%s: resourceVersion %s gone, relisting", self.path, rv)
                rv = None
                continue
            except (aiohttp.ClientError, TimeoutError, OSError, ApiStatusError, ValueError) as err:
                self.errors += 1
                self.log.warning("%s: %s: %s (retrying)", self.path, type(err).__name__, err)
            backoff = min(backoff * 2, 4.0)
            await asyncio.sleep(backoff * random.uniform(0.5, 1.0))

    async def _get(self, query: dict[str, str], limits: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        url = f"{self.access.server}{self.path}?{urlencode(query)}"
        resp = await self.session.get(url, headers=self.access.headers, ssl=self.access.ssl, timeout=limits)
        if resp.status == 410:
            resp.release()
            raise Gone()
        if resp.status != 200:
            text = (await resp.text())[:300]
            resp.release()
            raise ApiStatusError(f"HTTP {resp.status}: {text}")
        return resp

    async def _list(self) -> str:
        """One consistent paged list; replaces every object (what vanished meanwhile is dropped)."""
        fresh: dict[Key, JSON] = {}
        token = ""
        timeout = aiohttp.ClientTimeout(total=60)
        while True:
            query = {"limit": str(self.page)}
            if token:
                query["continue"] = token
            resp = await self._get(query, timeout)
            async with resp:
                body = orjson.loads(await resp.read())
            for item in body.get("items") or []:
                fresh[self._key(item)] = self.slim(item)
            meta = body.get("metadata") or {}
            token = str(meta.get("continue") or "")
            if not token:
                self.objects = fresh
                self.on_change()
                return str(meta.get("resourceVersion", ""))

    async def _watch(self, rv: str) -> tuple[str, bool]:
        """One watch stream until the server ends it; returns (latest resourceVersion, was it healthy)."""
        query = {
            "watch": "1",
            "resourceVersion": rv,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(self.watch_timeout),
        }
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=self.watch_timeout + 30)
        events = 0
        resp = await self._get(query, timeout)
        async with resp:
            buffer = b""
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        rv = self._apply(orjson.loads(line), rv)
                        events += 1
        return rv, events > 0

    def _apply(self, event: JSON, rv: str) -> str:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            if obj.get("code") == 410:
                raise Gone()
            raise ApiStatusError(f"watch ERROR event: {obj.get('message', obj)}")
        new_rv = str((obj.get("metadata") or {}).get("resourceVersion") or rv)
        if kind == "BOOKMARK":
            return new_rv
        key = self._key(obj)
        if kind == "DELETED":
            self.objects.pop(key, None)
        elif kind in ("ADDED", "MODIFIED"):
            self.objects[key] = self.slim(obj)
        else:
            return rv
        self.on_change()
        return new_rv
