"""Background delivery of alerts and event webhooks.

Callers never wait on a receiver: ``alert()`` and ``event()`` put a job on the destination's lane (a
bounded queue with one worker task) and return. Each destination has its own lane, so its messages
arrive in the order they were produced and a receiver that never answers holds up only itself. Lanes
are capped (``max_lanes``); past the cap new destinations share the existing lanes by hash, so the
number of tasks never grows without bound. When a lane is full the job is dropped and logged.
Failures are logged with the destination's ``scheme://host`` only, never its path (where chat
services keep the credential) or token.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from canaryd.analysis.bounded import ANSWER_LIMIT
from canaryd.analysis.webhooks import call_webhook
from canaryd.model.spec import AlertSpec, CanarySpec
from canaryd.notify import payloads
from canaryd.notify.destinations import (
    Destination,
    GlobalNotifier,
    ProviderLookup,
    ResolveError,
    SecretLookup,
    resolve,
    subscribed,
)
from canaryd.notify.event_webhooks import event_body, event_hooks
from canaryd.notify.rules import alert_fields
from canaryd.notify.sender import post_json, safe_url, scrub

Job = Callable[[], Awaitable[None]]

MAX_LANES = 64
QUEUE_SIZE = 500
JOB_TIMEOUT = 60.0  # a job's own timeouts are shorter; this only guards against a stuck lane


class Notifier:
    """Sends alerts and event webhooks for all canaries of the process."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        logger: logging.Logger,
        *,
        providers: ProviderLookup,
        secrets: SecretLookup,
        global_notifier: GlobalNotifier | None = None,
        event_webhook: str = "",
        cluster_name: str = "",
        registry: CollectorRegistry | None = None,
        max_lanes: int = MAX_LANES,
        queue_size: int = QUEUE_SIZE,
        max_answer_bytes: int = ANSWER_LIMIT,
    ) -> None:
        self._session = session
        self._log = logger
        self._providers = providers
        self._secrets = secrets
        self._global = (global_notifier or GlobalNotifier()).destination()
        self._event_webhook = event_webhook
        self._cluster = cluster_name
        self._max_lanes = max(1, max_lanes)
        self._queue_size = queue_size
        self._max_answer = max_answer_bytes  # receivers' answers are read up to this many bytes
        self._lanes: dict[str, asyncio.Queue[Job]] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._started = False
        self._pending = 0
        self.sent = Counter(
            "canaryd_notifications",
            "Alerts and event webhooks by kind (alert, event) and result (sent, failed, dropped)",
            ["kind", "result"],
            registry=registry or CollectorRegistry(),
        )

    # ---- lifecycle ----

    def start(self) -> None:
        if not self._started:
            self._started = True
            for queue in self._lanes.values():
                self._spawn(queue)

    def _spawn(self, queue: asyncio.Queue[Job]) -> None:
        self._workers.append(asyncio.create_task(self._work(queue), name=f"notify-{len(self._workers)}"))

    def _lane(self, key: str) -> asyncio.Queue[Job]:
        queue = self._lanes.get(key)
        if queue is not None:
            return queue
        if len(self._lanes) >= self._max_lanes:
            lanes = list(self._lanes.values())
            return lanes[zlib.crc32(key.encode()) % len(lanes)]
        queue = asyncio.Queue(maxsize=self._queue_size)
        self._lanes[key] = queue
        if self._started:
            self._spawn(queue)
        return queue

    async def stop(self, drain_seconds: float = 2.0) -> None:
        """Give queued messages a moment to go out, then stop the workers."""
        if self._workers:
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(q.join() for q in self._lanes.values())), drain_seconds
                )
            except TimeoutError:
                self._log.warning("stopping with notifications still queued")
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        self._started = False

    def idle(self) -> bool:
        """No job queued or running (for tests)."""
        return self._pending == 0

    # ---- producers (never block) ----

    def alert(self, spec: CanarySpec, severity: str, message: str) -> None:
        """Send ``message`` to the Canary's subscribed AlertProviders, or to the global notifier when
        the Canary lists no alerts."""
        if not severity or not message:
            return
        alert = payloads.Alert(spec.key, message, severity, alert_fields(spec, message, self._cluster))
        if not spec.analysis.alerts:
            if self._global is not None:
                dest = self._global
                self._put("alert", dest.label, spec.key, lambda: self._send(alert, dest))
            return
        for entry in subscribed(spec, severity):
            ns = entry.provider_namespace or spec.namespace
            self._put(
                "alert",
                f"provider/{ns}/{entry.provider_name}",
                spec.key,
                self._provider_job(entry, spec.namespace, alert),
            )

    def event(
        self,
        canary: dict[str, Any],
        spec: CanarySpec | None,
        message: str,
        *,
        warning: bool,
        checksum: str,
    ) -> None:
        """Forward a recorded Event to the Canary's ``event`` webhooks (or the global one)."""
        hooks = event_hooks(spec.analysis.webhooks if spec else (), self._event_webhook)
        if not hooks:
            return
        meta = canary.get("metadata") or {}
        name, namespace = str(meta.get("name", "")), str(meta.get("namespace", ""))
        phase = str((canary.get("status") or {}).get("phase") or "")
        now_ms = int(time.time() * 1000)
        for hook in hooks:
            body = event_body(
                hook,
                name=name,
                namespace=namespace,
                phase=phase,
                checksum=checksum,
                message=message,
                warning=warning,
                timestamp_ms=now_ms,
            )

            async def job(hook: Any = hook, body: dict[str, Any] = body) -> None:
                result = await call_webhook(self._session, hook, body, max_answer_bytes=self._max_answer)
                if result.passed:
                    self.sent.labels(kind="event", result="sent").inc()
                    return
                self.sent.labels(kind="event", result="failed").inc()
                self._log.error(
                    f"error sending event to webhook: {scrub(result.message, hook.url)}",
                    extra={"canary": f"{name}.{namespace}", "webhook": hook.name, "url": safe_url(hook.url)},
                )

            self._put("event", f"hook/{hook.url}", f"{name}.{namespace}", job)

    # ---- internals ----

    def _put(self, kind: str, lane_key: str, canary: str, job: Job) -> None:
        queue = self._lane(lane_key)
        try:
            queue.put_nowait(self._counted(kind, canary, job))
            self._pending += 1
        except asyncio.QueueFull:
            self.sent.labels(kind=kind, result="dropped").inc()
            self._log.warning(f"notification queue full, dropping {kind}", extra={"canary": canary})

    def _counted(self, kind: str, canary: str, job: Job) -> Job:
        """``job`` bounded by JOB_TIMEOUT, and counted as failed (and logged) when it raises or times out:
        every notification ends as sent, failed or dropped in ``canaryd_notifications``."""

        async def counted() -> None:
            try:
                async with asyncio.timeout(JOB_TIMEOUT):
                    await job()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # incl. TimeoutError; the message may hold a URL: the type only
                self.sent.labels(kind=kind, result="failed").inc()
                self._log.error(f"{kind} not sent: {type(err).__name__}", extra={"canary": canary})

        return counted

    def _provider_job(self, entry: AlertSpec, namespace: str, alert: payloads.Alert) -> Job:
        async def job() -> None:
            try:
                dest = await resolve(entry, namespace, self._providers, self._secrets)
            except ResolveError as err:
                self.sent.labels(kind="alert", result="failed").inc()
                self._log.error(
                    f"alert {entry.name or entry.provider_name} not sent: {err}",
                    extra={"canary": alert.canary},
                )
                return
            await self._send(alert, dest)

        return job

    async def _send(self, alert: payloads.Alert, dest: Destination) -> None:
        body = payloads.body(dest.provider, alert, channel=dest.channel, username=dest.username)
        url = payloads.endpoint(dest.provider, dest.address)
        error = await post_json(self._session, url, body, token=dest.token, proxy=dest.proxy,
                                max_answer_bytes=self._max_answer)
        if error is None:
            self.sent.labels(kind="alert", result="sent").inc()
            return
        self.sent.labels(kind="alert", result="failed").inc()
        self._log.error(error, extra={"canary": alert.canary, "notifier": dest.label, "url": safe_url(url)})

    async def _work(self, queue: asyncio.Queue[Job]) -> None:
        while True:
            job = await queue.get()
            try:
                await job()  # bounded and counted by _counted
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a lane must outlive any one message
                self._log.error(f"notification failed: {type(err).__name__}")
            finally:
                self._pending -= 1
                queue.task_done()
