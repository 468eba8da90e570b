"""Reads the data of the Secrets a Canary references while every other Secret is known by its metadata only.

Secrets are listed and watched as metadata alone (``kube.resources.METADATA_ONLY``): most Secrets of a
namespace are nothing to canaryd (Helm's release records of 100 KB and more, service-account tokens, TLS
keys) and their data must never reach it. A Canary's task does need the data of a few
(``model/data_refs.py``: the Secrets its target's pods use, their ``-primary`` copies, its
MetricTemplates' credentials). Before each pass it asks :meth:`ConfigData.unloaded`: the ones it needs
whose cached entry is metadata alone are named, and one GET each is started (never two for the same
object at once). The answer is cached as a full watch would have cached it (checksum, key names, type:
``cache/slim.py``) and the cache's subscribers told, which wakes the task for its pass. A change reported
by the watch puts the object's metadata alone back in the cache, so it is read again once, by the next
pass that needs it. Steps read nothing; an unreferenced Secret is never read."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp

from canaryd.cache.backoff import Backoff
from canaryd.cache.slim import data_loaded, slim
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError, NotFound
from canaryd.model.data_refs import data_needed
from canaryd.model.spec import CanarySpec

_RESOURCES = {res.kind: res for res in (r.CONFIGMAP, r.SECRET)}


class ConfigData:
    """On-demand reads of referenced objects of the ``kinds`` watched as metadata alone."""

    def __init__(self, client: KubeClient, store: Store, logger: logging.Logger, *,
                 kinds: frozenset[str] = r.METADATA_ONLY,
                 backoff: type[Backoff] = Backoff) -> None:
        self.client, self.store, self.log = client, store, logger
        self.kinds = kinds
        self._backoff = backoff
        self._loading: dict[tuple[str, str, str], asyncio.Task[None]] = {}

    def unloaded(self, spec: CanarySpec, *, config_tracking: bool) -> list[str]:
        """``Kind namespace/name`` of each object ``spec``'s pass needs the data of that the cache holds as
        metadata only (a read of each is under way); empty when the pass can go ahead. An object not in the
        cache at all is not waited for: the pass reports it missing (or skips it, when optional)."""
        needed = data_needed(spec, lambda ns, n: self.store.get(r.DEPLOYMENT.kind, ns, n),
                             lambda ns, n: self.store.get(r.METRIC_TEMPLATE.kind, ns, n),
                             config_tracking=config_tracking)
        waiting: list[str] = []
        for kind, namespace, name in needed:
            if kind not in self.kinds:
                continue
            cached = self.store.get(kind, namespace, name)
            if cached is None or data_loaded(cached):
                continue
            self._start(kind, namespace, name)
            waiting.append(f"{kind} {namespace}/{name}")
        return waiting

    def _start(self, kind: str, namespace: str, name: str) -> None:
        key = (kind, namespace, name)
        if key not in self._loading:
            task = asyncio.get_running_loop().create_task(self._load(key),
                                                          name=f"read-{kind}-{namespace}-{name}")
            self._loading[key] = task
            task.add_done_callback(lambda _t: self._loading.pop(key, None))

    async def _load(self, key: tuple[str, str, str]) -> None:
        """GET until the cached entry holds the data (or the object is gone). An error is logged and
        retried after a growing delay; the task waiting for it stays waiting (its status unchanged)."""
        kind, namespace, name = key
        res = _RESOURCES[kind]
        backoff = self._backoff(initial=0.5, cap=30.0)
        while True:
            cached = self.store.get(kind, namespace, name)
            if cached is None or data_loaded(cached):
                return
            try:
                full = await self.client.get(res, namespace, name)
            except NotFound:
                return  # deleted meanwhile: the watch drops it, and the pass reports it missing
            except (ApiError, aiohttp.ClientError, TimeoutError) as err:
                wait = backoff.next()
                self.log.warning(f"reading {kind} {namespace}/{name} failed ({err}); retrying in {wait:.3g}s")
                await asyncio.sleep(wait)
                continue
            # the same version as the watch's, or a newer one (the watch event for it follows and keeps
            # this entry: keep_loaded in cache/slim.py); an older one than the cache's is ignored (a change
            # raced the GET), and read again after a pause
            self.store.upsert(kind, slim(kind, {**full, "kind": kind}), announce=True)
            after = self.store.get(kind, namespace, name)
            if after is not None and not data_loaded(after):
                await asyncio.sleep(backoff.next())

    async def stop(self) -> None:
        tasks = list(self._loading.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

