"""Process wiring for ``canaryd run``: client → informers → cache → supervisor → tasks, plus the HTTP
endpoints; stops cleanly on SIGTERM/SIGINT (tasks cancelled between steps)."""

from __future__ import annotations

import asyncio
import base64
import logging
import signal
from typing import Any

import aiohttp

from canaryd.actuators.events import EventRecorder
from canaryd.analysis.checks import default_registry
from canaryd.analysis.outbound import outbound_session
from canaryd.analysis.urls import display_url
from canaryd.cache.index import CanaryIndex
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.crd_check import StartError, check_canary_crd
from canaryd.kube.errors import NotFound
from canaryd.notify.destinations import GlobalNotifier
from canaryd.notify.notifier import Notifier
from canaryd.runtime import heapdump
from canaryd.runtime.c_heap import CHeap, CHeapSizes, keep_trimmed
from canaryd.runtime.clock import REAL_CLOCK, Clock
from canaryd.runtime.config_data import ConfigData
from canaryd.runtime.context import Context
from canaryd.runtime.crash import CrashPoints, parse_crash_points
from canaryd.runtime.gc_freeze import freeze_start
from canaryd.runtime.gc_pauses import GcPauses
from canaryd.runtime.http import build_app, start_http
from canaryd.runtime.leader import Leadership
from canaryd.runtime.metrics import Metrics
from canaryd.runtime.scope import NamespaceScope
from canaryd.runtime.supervisor import Supervisor
from canaryd.settings import Settings


class Runtime:
    """The operator's parts wired as ``canaryd run`` wires them: informers → cache → supervisor → tasks,
    under leadership, with alerts. :func:`run` adds the client, signals and HTTP endpoints around it;
    tests/box runs the same object against an API server fake, with a faster clock."""

    def __init__(self, settings: Settings, client: KubeClient, metrics: Metrics, logger: logging.Logger,
                 http: aiohttp.ClientSession, *, clock: Clock = REAL_CLOCK,
                 crash: CrashPoints | None = None) -> None:
        self.store = store = Store()
        index = CanaryIndex(store)  # the first subscriber: up to date before the supervisor looks things up
        # watching every namespace: the kinds clusters hold by the thousand only where Canaries are
        # (runtime/scope.py); watching one namespace (--namespace): every kind there
        scoped = not settings.namespace  # None, or an empty --namespace: every namespace
        self.informers = Informers(
            client,
            store,
            resources=list(r.CLUSTER_WIDE if scoped else r.WATCHED),
            namespace=settings.namespace,
            registry=metrics.registry,
            logger=logger,
            on_relist=lambda kind: self.supervisor.on_relist(kind),
            metadata_only=r.METADATA_ONLY,
        )
        self.scope: NamespaceScope | None = None
        if scoped:
            self.scope = NamespaceScope(
                client, store, restarts=self.informers.restarts, logger=logger,
                on_synced=lambda ns: self.supervisor.on_namespace_synced(ns),
                on_relist=lambda kind: self.supervisor.on_relist(kind),
                metadata_only=r.METADATA_ONLY,
            )
            store.subscribe(self.scope.on_change)  # before the supervisor: it asks scope.ready
        self.leadership = Leadership(settings, client, logger, metrics.leader, clock=clock)
        self.notifier = _notifier(settings, store, client, http, logger, metrics)
        self.ctx = Context(
            settings=settings,
            client=client,
            store=store,
            index=index,
            metrics=metrics,
            logger=logger,
            crash=crash if crash is not None else CrashPoints(parse_crash_points(settings.crash_points)),
            http=http,
            events=EventRecorder(client, logger, component=settings.event_source_component),
            checks=default_registry(
                templates=lambda ns, name: store.get(r.METRIC_TEMPLATE.kind, ns, name),
                secrets=_secret_reader(client),
                kube=client,
            ),
            notifier=self.notifier,
            may_act=self.leadership.may_act,
            clock=clock,
            scope_ready=self.scope.ready if self.scope is not None else lambda _namespace: True,
            config_data=ConfigData(client, store, logger, kinds=r.METADATA_ONLY),
        )
        self.supervisor = Supervisor(self.ctx)
        self._synced = False
        store.subscribe(self.supervisor.on_change)
        # per-canary gauges from the cache, only while this replica may drive canaries
        metrics.watch(lambda: store.items(r.CANARY.kind), store.counts, self.leadership.may_act)
        metrics.sizes.event_entries = self.ctx.events.size

    def ready(self) -> tuple[bool, str]:
        """/readyz: caches synced (those of the namespaces holding Canaries at start included), and leader
        or standby."""
        return self.leadership.ready() if self._synced else (False, "caches not synced")

    async def start(self, sync_timeout: float) -> None:
        """Fill the caches, then start canary work (at once, or when the lease is won). ``TimeoutError``
        when the caches did not sync in time (then everything started here is stopped again)."""
        self.notifier.start()
        if self.scope is not None:
            self.scope.start()  # follows the Canaries as the cluster-wide list brings them
        await self.informers.start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + sync_timeout
        try:
            await self.informers.wait_synced(timeout=sync_timeout)
            if self.scope is not None:  # the namespaces of the Canaries listed just now
                await self.scope.wait_synced(timeout=max(0.1, deadline - loop.time()))
        except TimeoutError:
            await self.informers.stop()
            if self.scope is not None:
                await self.scope.stop()
            await self.notifier.stop()
            raise
        self._synced = True
        self.leadership.start(self.supervisor.start, self.supervisor.stop)

    async def stop(self) -> None:
        """Canary tasks finish their pass (or are cancelled), the lease is released, then the rest ends."""
        await self.leadership.stop()
        if self.ctx.config_data is not None:
            await self.ctx.config_data.stop()
        await self.notifier.stop()
        await self.informers.stop()
        if self.scope is not None:
            await self.scope.stop()


async def run(settings: Settings, logger: logging.Logger) -> int:
    """Run the operator until a stop signal; returns the process exit code."""
    metrics = Metrics()
    client = await KubeClient.from_config(
        settings.kubeconfig, user_agent=settings.user_agent, registry=metrics.registry,
        context=settings.context, master=settings.master,
    )
    try:  # before anything starts: no API server, or a CRD that would prune canaryd's status, stops it
        await check_canary_crd(client)
    except StartError:
        await client.close()
        raise
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    heapdump.install(loop, logger)  # CANARYD_TRACEMALLOC: SIGUSR2 dumps allocation snapshots
    trimmer = _heap_trimmer(settings, metrics, logger)
    pauses = GcPauses(metrics.registry)  # canaryd_gc_pause_seconds: the collector's stops of the event loop

    async with outbound_session() as http:  # SSL_CERT_FILE honoured; proxies: analysis/outbound.proxy_for
        runtime = Runtime(settings, client, metrics, logger, http)
        app = build_app(metrics.registry, runtime.ready, runtime.leadership.healthy)
        runner = await start_http(app, settings.host, settings.port)
        shown = display_url(settings.metrics_server)  # never its user info or query
        logger.info(f"Starting canaryd on port {settings.port}, metrics server {shown}")
        try:
            await runtime.start(sync_timeout=120)
        except TimeoutError:
            logger.error("caches did not sync within 120s")
            if trimmer is not None:
                trimmer.cancel()
            pauses.close()
            await client.close()
            await runner.cleanup()
            return 1
        logger.info("caches synced, starting canary tasks")
        freeze_start(logger)  # full collections walk only what is made from now on (runtime/gc_freeze.py)
        await stop.wait()
        logger.info("stopping: cancelling canary tasks")
        await runtime.stop()  # tasks cancelled, then the lease released
    if trimmer is not None:
        trimmer.cancel()
    pauses.close()
    await client.close()
    await runner.cleanup()
    return 0


def _heap_trimmer(settings: Settings, metrics: Metrics, logger: logging.Logger) -> asyncio.Task[None] | None:
    """glibc's heap sizes on /metrics, and freed pages handed back every ``--heap-trim-interval``."""
    heap = CHeap.load()
    if heap is None:
        logger.info("not on glibc: no C-heap sizes, no malloc_trim")
        return None
    metrics.registry.register(CHeapSizes(heap))
    if settings.heap_trim_interval <= 0:
        return None
    return asyncio.create_task(keep_trimmed(heap, settings.heap_trim_interval, logger), name="heap-trim")


def _notifier(
    settings: Settings,
    store: Store,
    client: KubeClient,
    http: aiohttp.ClientSession,
    logger: logging.Logger,
    metrics: Metrics,
) -> Notifier:
    """Alerts go to AlertProviders from the cache (their Secrets read on demand) or the global flags."""
    return Notifier(
        http,
        logger,
        providers=lambda ns, name: store.get(r.ALERT_PROVIDER.kind, ns, name),
        secrets=_secret_reader(client),
        global_notifier=GlobalNotifier(
            slack_url=settings.slack_url,
            slack_token=settings.slack_token,
            slack_proxy=settings.slack_proxy_url,
            slack_user=settings.slack_user,
            slack_channel=settings.slack_channel,
            msteams_url=settings.msteams_url,
            msteams_proxy=settings.msteams_proxy_url,
        ),
        event_webhook=settings.event_webhook,
        cluster_name=settings.cluster_name,
        registry=metrics.registry,
        max_answer_bytes=settings.max_webhook_answer_bytes,
    )


def _secret_reader(client: KubeClient) -> Any:
    """Reads a Secret's decoded data on demand (the cache keeps only checksums of Secrets)."""

    async def read(namespace: str, name: str) -> dict[str, str] | None:
        try:
            secret = await client.get(r.SECRET, namespace, name)
        except NotFound:
            return None
        data = secret.get("data") or {}
        return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in data.items()}

    return read
