"""Informers: keep one kind of object in the ``Store`` in step with the API server.

Each informer lists (in pages), then watches from the list's resourceVersion with bookmarks, moving
its resourceVersion forward on every event and bookmark. When the server ends the stream it watches
again from where it was; on 410 Gone it lists again and replaces the kind's contents (so objects
deleted while it was not watching are dropped and subscribers told); on errors it reconnects after an
exponential, capped, jittered delay, reset once a watch has been healthy."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter

from canaryd.cache.backoff import Backoff
from canaryd.cache.slim import keep_loaded, slim, slim_metadata
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError, Gone
from canaryd.kube.resources import Resource

log = logging.getLogger(__name__)

class Informer:
    """List+watch of one resource (optionally one namespace) into ``store``."""

    def __init__(
        self,
        client: KubeClient,
        store: Store,
        res: Resource,
        *,
        restarts: Counter,
        namespace: str | None = None,
        watch_timeout: int = 300,
        healthy_after: float = 10.0,
        backoff: Backoff | None = None,
        page_size: int = 500,
        logger: logging.Logger | None = None,
        on_relist: Callable[[str], None] | None = None,
        list_gate: asyncio.Semaphore | None = None,
        metadata_only: bool = False,
    ) -> None:
        """``on_relist(kind)`` is called after every list but the first: the API server answers again
        after an outage (the runtime retries failed canaries at once instead of waiting their backoff).
        ``list_gate`` bounds how many informers sharing it list at once (each list holds a pooled
        connection, and each connection a TLS buffer, while it lasts). ``metadata_only``: list and watch
        the objects' metadata alone (cache/slim.py: an entry whose data was read since, at the same
        version, is kept)."""
        self.client, self.store, self.res = client, store, res
        self.on_relist = on_relist
        self.log = logger or log
        self.namespace = namespace if res.namespaced else None
        self.watch_timeout = watch_timeout
        self.healthy_after = healthy_after
        self.backoff = backoff or Backoff()
        self.page_size = page_size
        self._list_gate = list_gate
        self.metadata_only = metadata_only
        self.resource_version: str | None = None
        self.synced = asyncio.Event()
        self.lists = 0  # completed lists (1 after start, +1 per relist)
        self.bookmarks = 0
        self.events = 0
        self.last_error: str | None = None
        self._restarts = restarts
        self._task: asyncio.Task[None] | None = None
        self._cycle: asyncio.Task[None] | None = None
        self._requested: tuple[str | None] | None = None
        self._wake = asyncio.Event()
        self._cycle_events = 0

    @property
    def kind(self) -> str:
        return self.res.kind

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"informer-{self.res.plural}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def halt(self) -> asyncio.Task[None] | None:
        """Stop now, synchronously: no event is applied to the store after this call (the watch cycle is
        cancelled too, not only the loop around it). Returns the task to await, if any."""
        task, self._task = self._task, None
        for t in (task, self._cycle):
            if t is not None:
                t.cancel()
        return task

    def restart(self, resource_version: str | None = None) -> None:
        """Drop the current watch and continue from ``resource_version`` (None: list again). For
        operators (a forced resync) and tests (resume from a version the server has compacted)."""
        self._requested = (resource_version,)
        self._wake.set()
        if self._cycle is not None and not self._cycle.done():
            self._cycle.cancel()

    async def _run(self) -> None:
        while True:
            if self._requested is not None:
                self.resource_version, self._requested = self._requested[0], None
            started = time.monotonic()
            listed_first = self.resource_version is None
            self._cycle_events = 0
            cycle = self._cycle = asyncio.create_task(self._list_and_watch())
            try:
                await asyncio.wait({cycle})
            except asyncio.CancelledError:
                cycle.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await cycle
                raise
            healthy = self._cycle_events > 0 or time.monotonic() - started >= self.healthy_after
            if healthy:
                self.backoff.reset()
            delay = 0.0
            if cycle.cancelled():
                reason = "requested"
            else:
                exc = cycle.exception()
                if exc is None:
                    reason = "expired"  # the server ended the stream (at timeoutSeconds, normally)
                    delay = 0.0 if healthy else self.backoff.next()  # no hot loop on instant closes
                elif isinstance(exc, Gone):
                    # the server answered: it is back, and only a list can catch up, so list at once
                    # (after an outage the backoff has grown to its cap); a 410 right after a fresh
                    # list is not expected and waits, so nothing can loop hot
                    reason = "gone"
                    self.resource_version = None
                    if listed_first and not healthy:
                        delay = self.backoff.next()
                    else:
                        self.backoff.reset()
                else:
                    reason = "error"
                    self.last_error = _describe(exc)
                    delay = self.backoff.next()
                    self.log.warning("watch of %s failed (%s); reconnecting in %.1fs",
                                     self.res.plural, self.last_error, delay)
            self._restarts.labels(resource=self.res.plural, reason=reason).inc()
            if delay and self._requested is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)  # restart() cuts the wait short

    async def _list_and_watch(self) -> None:
        if self.resource_version is None:
            await self._relist()
        timeout = int(self.watch_timeout * random.uniform(1.0, 1.2))
        events = self.client.watch(self.res, self.namespace, self.resource_version, timeout_seconds=timeout,
                                   metadata_only=self.metadata_only)
        async with contextlib.aclosing(events):
            async for kind, obj in events:
                self._cycle_events += 1
                self._apply(kind, obj)

    def _apply(self, kind: str, obj: dict[str, Any]) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if kind == "BOOKMARK":
            self.bookmarks += 1
        elif kind in ("ADDED", "MODIFIED"):
            self.events += 1
            self.store.upsert(self.kind, self._slim(obj))
        elif kind == "DELETED":
            self.events += 1
            meta = obj.get("metadata") or {}
            self.store.delete(self.kind, meta.get("namespace"), str(meta.get("name") or ""))
        if rv:
            self.resource_version = str(rv)

    def _slim(self, obj: dict[str, Any]) -> dict[str, Any]:
        if self.metadata_only:  # the object is a PartialObjectMetadata, cached as this kind
            fresh = slim_metadata(self.res.kind, self.res.api_version, obj)
            meta = fresh["metadata"]
            current = self.store.get(self.res.kind, meta.get("namespace"), str(meta.get("name") or ""))
            return keep_loaded(current, fresh)
        obj.setdefault("apiVersion", self.res.api_version)
        obj.setdefault("kind", self.res.kind)
        return slim(self.res.kind, obj)

    async def _relist(self) -> None:
        objs: list[dict[str, Any]] = []
        rv = ""
        async with self._list_gate or contextlib.nullcontext():
            async for page, page_rv in self.client.list_pages(self.res, self.namespace, limit=self.page_size,
                                                              metadata_only=self.metadata_only):
                objs.extend(self._slim(o) for o in page)  # slim per page: full objects never pile up
                rv = page_rv
        self.store.replace(self.kind, objs, namespace=self.namespace)
        self.resource_version = rv
        self.lists += 1
        self.synced.set()
        if self.lists > 1 and self.on_relist is not None:
            self.on_relist(self.kind)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class Informers:
    """One informer per resource kind, sharing a store and a ``canaryd_watch_restarts_total`` counter
    (registered in ``registry``, by default the client's)."""

    def __init__(
        self,
        client: KubeClient,
        store: Store,
        resources: Iterable[Resource] = r.WATCHED,
        namespace: str | None = None,
        *,
        registry: CollectorRegistry | None = None,
        watch_timeout: int = 300,
        healthy_after: float = 10.0,
        backoff: Callable[[], Backoff] = Backoff,
        logger: logging.Logger | None = None,
        on_relist: Callable[[str], None] | None = None,
        metadata_only: frozenset[str] = frozenset(),
    ) -> None:
        """``metadata_only``: the kinds listed and watched as metadata alone (``Informer``)."""
        self.store = store
        self.restarts = Counter(
            "canaryd_watch_restarts_total",
            "Watch streams re-opened, by resource and reason (expired, gone, error, requested)",
            ["resource", "reason"],
            registry=registry if registry is not None else client.registry,
        )
        self.by_kind: dict[str, Informer] = {
            res.kind: Informer(
                client, store, res, restarts=self.restarts, namespace=namespace, watch_timeout=watch_timeout,
                healthy_after=healthy_after, backoff=backoff(), logger=logger, on_relist=on_relist,
                metadata_only=res.kind in metadata_only,
            )
            for res in resources
        }

    def __getitem__(self, kind: str) -> Informer:
        return self.by_kind[kind]

    @property
    def informers(self) -> Sequence[Informer]:
        return tuple(self.by_kind.values())

    async def start(self) -> None:
        for inf in self.informers:
            inf.start()

    @property
    def synced(self) -> bool:
        return all(inf.synced.is_set() for inf in self.informers)

    async def wait_synced(self, timeout: float) -> None:  # noqa: ASYNC109 (the contract's signature)
        """Until every informer has listed once; ``TimeoutError`` names the ones that have not (and why)."""
        try:
            async with asyncio.timeout(timeout):
                for inf in self.informers:
                    await inf.synced.wait()
        except TimeoutError:
            pending = [f"{i.res.plural} ({i.last_error or 'no answer yet'})" for i in self.informers
                       if not i.synced.is_set()]
            raise TimeoutError(f"caches not synced after {timeout:g}s: {', '.join(pending)}") from None

    def counts(self) -> dict[str, int]:
        """Objects cached per kind (for the ``canaryd_cache_objects`` gauge)."""
        return {inf.kind: self.store.count(inf.kind) for inf in self.informers}

    async def stop(self) -> None:
        await asyncio.gather(*(inf.stop() for inf in self.informers))
