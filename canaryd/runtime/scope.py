"""Watches that follow the canaries, not the cluster (docs/architecture.md, "What is watched").

The kinds a cluster holds by the thousand (``kube.resources.PER_NAMESPACE``: Deployments, Services,
ConfigMaps, Secrets) are list+watched only in the namespaces that need them: one informer per kind and
namespace, started when the first Canary appears in a namespace (for Secrets, also the first
MetricTemplate or AlertProvider: a secretRef names a Secret of its namespace, checked from the cache)
and stopped when the last one goes, that namespace's objects then dropped from the cache. A Canary's
task starts only once its namespace is synced (``ready``), so no decision is ever taken on a namespace
not yet listed.

Each informer holds one watch connection; past ``max_namespaces`` namespaces a kind is watched
cluster-wide instead (one watch, not hundreds), and stays so for the life of the process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from prometheus_client import Counter

from canaryd.cache.backoff import Backoff
from canaryd.cache.informer import Informer
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.resources import Resource

# 4 kinds × 32 namespaces = 128 watch connections at most before the kinds go cluster-wide; each costs
# about 0.3 MiB (its TLS buffers), so the worst case is ~40 MiB, against the hundreds of MiB a crowded
# cluster's Secrets cost when watched cluster-wide (bench/results/2026-12-06-crowd.md)
MAX_NAMESPACES = 32
_FOLLOWED = frozenset({r.CANARY.kind, r.METRIC_TEMPLATE.kind, r.ALERT_PROVIDER.kind})
_SECRET_HOLDERS = (r.METRIC_TEMPLATE.kind, r.ALERT_PROVIDER.kind)  # their secretRef names a Secret here
_RECHECK = 1.0  # seconds: how often a waiter looks again at informers that may have been replaced
# lists at once: each holds a pooled connection (and its TLS buffer, ~0.3 MiB) while it lasts, and a
# pooled connection stays open a while after; 20 namespaces' 80 lists at once left 80 idle connections
LISTS_AT_ONCE = 8


class NamespaceScope:
    """Per-namespace informers of ``kinds`` for the namespaces holding Canaries (and MetricTemplates or
    AlertProviders, for Secrets). ``on_change`` is a store subscriber; ``on_synced(namespace)`` is
    called once a namespace's informers have all listed (the supervisor then starts its tasks)."""

    def __init__(
        self,
        client: KubeClient,
        store: Store,
        *,
        restarts: Counter,
        kinds: Iterable[Resource] = r.PER_NAMESPACE,
        max_namespaces: int = MAX_NAMESPACES,
        on_synced: Callable[[str], None] | None = None,
        on_relist: Callable[[str], None] | None = None,
        logger: logging.Logger | None = None,
        watch_timeout: int = 300,
        healthy_after: float = 10.0,
        backoff: Callable[[], Backoff] = Backoff,
        metadata_only: frozenset[str] = frozenset(),
    ) -> None:
        """``metadata_only``: the kinds listed and watched as metadata alone (cache/informer.py)."""
        self.client, self.store = client, store
        self.metadata_only = metadata_only
        self.kinds = tuple(kinds)
        self.max_namespaces = max_namespaces
        self.on_synced = on_synced
        self.on_relist = on_relist
        self.log = logger or logging.getLogger(__name__)
        self._restarts = restarts
        self._watch_timeout = watch_timeout
        self._healthy_after = healthy_after
        self._backoff = backoff
        self._informers: dict[tuple[str, str], Informer] = {}  # (kind, namespace)
        self._wide: dict[str, Informer] = {}  # kinds watched cluster-wide past max_namespaces
        self._waiters: dict[str, asyncio.Task[None]] = {}  # namespace → announces it once synced
        self._background: set[asyncio.Task[None]] = set()
        self._running = False
        self._list_gate = asyncio.Semaphore(LISTS_AT_ONCE)

    # --- following the store ----------------------------------------------------------------------

    def start(self) -> None:
        """Follow the store from now on (and for what it already holds)."""
        self._running = True
        for kind in _FOLLOWED:
            for ns in {str(o["metadata"].get("namespace") or "") for o in self.store.items(kind)}:
                self._follow(ns)

    def on_change(self, kind: str, namespace: str, name: str) -> None:
        if self._running and kind in _FOLLOWED:
            self._follow(namespace)

    def _wants(self, kind: str, namespace: str) -> bool:
        if self.store.items(r.CANARY.kind, namespace):
            return True
        return kind == r.SECRET.kind and any(self.store.items(k, namespace) for k in _SECRET_HOLDERS)

    def _follow(self, namespace: str) -> None:
        """Start or stop ``namespace``'s informers as its Canaries (MetricTemplates) came or went."""
        started = False
        for res in self.kinds:
            key = (res.kind, namespace)
            if res.kind in self._wide:
                continue
            want = self._wants(res.kind, namespace)
            if want and key not in self._informers:
                if sum(1 for k in self._informers if k[0] == res.kind) >= self.max_namespaces:
                    self._widen(res)
                    started = True
                    continue
                self.log.debug("watching %s in namespace %s", res.plural, namespace)
                self._informers[key] = inf = self._informer(res, namespace)
                inf.start()
                started = True
            elif not want and key in self._informers:
                self.log.debug("no longer watching %s in namespace %s", res.plural, namespace)
                self._retire(key)
        if started and namespace not in self._waiters:
            self._waiters[namespace] = asyncio.get_running_loop().create_task(
                self._announce(namespace), name=f"scope-{namespace}")

    def _informer(self, res: Resource, namespace: str | None) -> Informer:
        return Informer(self.client, self.store, res, restarts=self._restarts, namespace=namespace,
                        watch_timeout=self._watch_timeout, healthy_after=self._healthy_after,
                        backoff=self._backoff(), logger=self.log, on_relist=self.on_relist,
                        list_gate=self._list_gate, metadata_only=res.kind in self.metadata_only)

    def _retire(self, key: tuple[str, str]) -> None:
        """Stop at once and drop the namespace's objects of that kind (subscribers are told)."""
        self._park(self._informers.pop(key).halt())
        self.store.replace(key[0], [], namespace=key[1])

    def _widen(self, res: Resource) -> None:
        self.log.info("watching %s cluster-wide: more than %d namespaces hold Canaries",
                      res.plural, self.max_namespaces)
        self._wide[res.kind] = wide = self._informer(res, None)
        wide.start()
        self._park(asyncio.get_running_loop().create_task(self._narrow_informers_off(res.kind, wide)))

    async def _narrow_informers_off(self, kind: str, wide: Informer) -> None:
        """Once the cluster-wide informer has listed (replacing the kind's whole cache), the
        per-namespace ones of that kind stop; their objects stay, now the wide informer's."""
        await wide.synced.wait()
        for key in [k for k in self._informers if k[0] == kind]:
            self._park(self._informers.pop(key).halt())

    def _park(self, task: asyncio.Task[None] | None) -> None:
        if task is not None:
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    # --- readiness ----------------------------------------------------------------------------------

    def _serving(self, kind: str, namespace: str) -> Informer | None:
        """The informer that fills ``kind`` in ``namespace``: the cluster-wide one once it has listed,
        else the namespace's own (which keeps serving while a cluster-wide one lists)."""
        wide = self._wide.get(kind)
        if wide is not None and wide.synced.is_set():
            return wide
        return self._informers.get((kind, namespace)) or wide

    def ready(self, namespace: str) -> bool:
        """Every kind of ``namespace`` listed: a Canary's task may decide from the cache."""
        for res in self.kinds:
            inf = self._serving(res.kind, namespace)
            if inf is None or not inf.synced.is_set():
                return False
        return True

    async def _announce(self, namespace: str) -> None:
        """Tell ``on_synced`` once the namespace has listed (nothing if it is dropped meanwhile)."""
        try:
            while pending := [inf for res in self.kinds if (inf := self._serving(res.kind, namespace))
                              is not None and not inf.synced.is_set()]:
                with contextlib.suppress(TimeoutError):  # informers may be retired or replaced meanwhile
                    await asyncio.wait_for(pending[0].synced.wait(), _RECHECK)
        finally:
            self._waiters.pop(namespace, None)
        if self.ready(namespace) and self.on_synced is not None:
            self.on_synced(namespace)

    @property
    def informers(self) -> list[Informer]:
        return [*self._informers.values(), *self._wide.values()]

    def namespaces(self, kind: str) -> list[str]:
        """Where ``kind`` is watched (``["*"]`` once cluster-wide)."""
        if kind in self._wide:
            return ["*"]
        return sorted(ns for k, ns in self._informers if k == kind)

    async def wait_synced(self, timeout: float) -> None:  # noqa: ASYNC109 (as Informers.wait_synced)
        """Until every informer started so far has listed; ``TimeoutError`` names those that have not."""
        try:
            async with asyncio.timeout(timeout):
                while pending := [inf for inf in self.informers if not inf.synced.is_set()]:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(pending[0].synced.wait(), _RECHECK)
        except TimeoutError:
            names = [f"{i.res.plural} in {i.namespace or 'all namespaces'} "
                     f"({i.last_error or 'no answer yet'})" for i in self.informers if not i.synced.is_set()]
            raise TimeoutError(f"caches not synced after {timeout:g}s: {', '.join(names)}") from None

    async def stop(self) -> None:
        self._running = False
        for waiter in list(self._waiters.values()):
            waiter.cancel()
        tasks = [t for inf in self.informers if (t := inf.halt()) is not None]
        self._informers.clear()
        self._wide.clear()
        tasks += [*self._background, *self._waiters.values()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
