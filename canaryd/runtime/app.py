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
from canaryd.cache.index import CanaryIndex
from canaryd.cache.informer import Informers
from canaryd.cache.store import Store
from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import NotFound
from canaryd.notify.destinations import GlobalNotifier
from canaryd.notify.notifier import Notifier
from canaryd.runtime.context import Context
from canaryd.runtime.crash import CrashPoints, parse_crash_points
from canaryd.runtime.http import build_app, start_http
from canaryd.runtime.leader import Leadership
from canaryd.runtime.metrics import Metrics
from canaryd.runtime.supervisor import Supervisor
from canaryd.settings import Settings

WATCHED = (
    r.CANARY,
    r.DEPLOYMENT,
    r.HPA,
    r.SERVICE,
    r.CONFIGMAP,
    r.SECRET,
    r.VIRTUAL_SERVICE,
    r.DESTINATION_RULE,
    r.METRIC_TEMPLATE,
    r.ALERT_PROVIDER,
)


async def run(settings: Settings, logger: logging.Logger) -> int:
    """Run the operator until a stop signal; returns the process exit code."""
    metrics = Metrics()
    client = await KubeClient.from_config(
        settings.kubeconfig, user_agent=settings.user_agent, registry=metrics.registry
    )
    store = Store()
    index = CanaryIndex(store)  # the first subscriber: up to date before the supervisor looks things up
    informers = Informers(
        client,
        store,
        resources=list(WATCHED),
        namespace=settings.namespace,
        registry=metrics.registry,
        logger=logger,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    leadership = Leadership(settings, client, logger, metrics.leader)

    def ready() -> tuple[bool, str]:
        # /readyz: caches synced, and leader or standby
        return leadership.ready() if informers.synced else (False, "caches not synced")

    runner = await start_http(build_app(metrics.registry, ready), settings.host, settings.port)
    logger.info(f"Starting canaryd on port {settings.port}, metrics server {settings.metrics_server}")
    async with aiohttp.ClientSession(trust_env=True) as http:
        notifier = _notifier(settings, store, client, http, logger, metrics)
        ctx = Context(
            settings=settings,
            client=client,
            store=store,
            index=index,
            metrics=metrics,
            logger=logger,
            crash=CrashPoints(parse_crash_points(settings.crash_points)),
            http=http,
            events=EventRecorder(client, logger),
            checks=default_registry(
                templates=lambda ns, name: store.get(r.METRIC_TEMPLATE.kind, ns, name),
                secrets=_secret_reader(client),
            ),
            notifier=notifier,
            may_act=leadership.may_act,
        )
        notifier.start()
        supervisor = Supervisor(ctx)
        store.subscribe(supervisor.on_change)
        await informers.start()
        try:
            await informers.wait_synced(timeout=120)
        except TimeoutError:
            logger.error("caches did not sync within 120s")
            await informers.stop()
            await notifier.stop()
            await client.close()
            await runner.cleanup()
            return 1
        logger.info("caches synced, starting canary tasks")
        leadership.start(supervisor.start, supervisor.stop)  # at once, or when the lease is won
        await stop.wait()
        logger.info("stopping: cancelling canary tasks")
        await leadership.stop()  # tasks cancelled, then the lease released
        await notifier.stop()
        await informers.stop()
    await client.close()
    await runner.cleanup()
    return 0


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
