"""Leader election with a ``coordination.k8s.io/v1`` Lease, so that of several replicas exactly one drives
canaries while the others keep warm caches.

Why it is safe (no split brain, Argo Rollouts #2117): a standby takes the lease only after it has seen
the same lease record unchanged for ``lease_duration`` on its *own* monotonic clock (no trust in other
machines' clocks), while the leader gives up all canary work as soon as it has gone ``renew_deadline``
(< ``lease_duration``) without a successful renewal. Writes use the lease's resourceVersion, so of two
replicas racing for it the API server lets exactly one win (the other gets 409).

The decisions are pure functions (``judge``, ``renewal_lost``, ``lease_body`` in ``lease``) tested with
tables; the ``LeaderElector`` here only does the I/O and the timing around them, and ``Leadership``
decides whether this process elects at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from prometheus_client import Gauge

from canaryd.kube import resources as r
from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError, Conflict, NotFound
from canaryd.runtime.backoff import Failures, Policy, delay, failed, succeeded
from canaryd.runtime.clock import REAL_CLOCK, Clock
from canaryd.runtime.lease import (
    ElectionConfig,
    LeaseRecord,
    Verdict,
    default_identity,
    judge,
    lease_body,
    observed_since,
    released_body,
    renewal_lost,
)
from canaryd.settings import Settings

RELEASE_TIMEOUT = 5.0
SHUTDOWN = "shutting down"
SHUTDOWN_GRACE = 10.0  # SIGTERM: canary tasks finish their current pass within this
# unexpected errors in a row (a bug, an answer of a shape never seen) before the elector gives up and
# /healthz fails, so the kubelet restarts the pod; with the backoff below that is several minutes
MAX_CRASHES = 10


class LeaderElector:
    """Campaigns for the lease, calls ``on_start`` when it wins and awaits ``on_stop`` the moment it loses
    (renew deadline passed or another holder seen), then campaigns again. ``stop()`` gives up for good:
    canary work is stopped first, then the lease is released."""

    def __init__(self, client: KubeClient, config: ElectionConfig, logger: logging.Logger, *,
                 on_start: Callable[[], None], on_stop: Callable[[float], Awaitable[None]],
                 on_state: Callable[[bool], None] | None = None,
                 clock: Clock = REAL_CLOCK, max_crashes: int = MAX_CRASHES) -> None:
        self.client = client
        self.config = config
        self._log = logger
        self._on_start = on_start
        self._on_stop = on_stop
        self._on_state = on_state
        self._clock = clock
        self._lease: dict[str, Any] | None = None  # the last lease object we wrote or read
        self._observed: tuple[LeaseRecord, float] | None = None
        self._leading = False
        self._renewed_at = 0.0  # monotonic time of the last successful acquire or renew
        self._task: asyncio.Task[None] | None = None
        self._max_crashes = max_crashes
        self._crashes = Failures()  # unexpected errors in a row (runtime/backoff.py)
        self.state = "starting"  # starting | standby | leader | stopped | failed

    @property
    def leading(self) -> bool:
        return self._leading

    def holds_lease(self) -> bool:
        """True while leading and the last renewal is younger than the renew deadline. Checked by canary
        tasks when they wake: after the process was paused (GC, SIGSTOP, a frozen VM) a task's timer can
        fire before the elector's, and it must not act on a lease another replica may hold by now."""
        return self._leading and not renewal_lost(self._renewed_at, self._clock.monotonic(),
                                                  self.config.renew_deadline)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="leader election")

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """SIGTERM: canary tasks finish their current pass (the lease is still renewed meanwhile), then
        campaigning stops and the lease is released if we hold it."""
        if self._leading:
            await self._on_stop(grace)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._leading:
            await self._step_down(SHUTDOWN)
        await self._on_stop(0.0)  # idempotent; covers a stop that interrupted a step-down
        await self._release()
        self.state = "stopped"

    def healthy(self) -> tuple[bool, str]:
        """For ``/healthz``: False once the elector gave up (or its task ended unexpectedly), so the kubelet
        restarts the pod instead of leaving a replica that never campaigns again."""
        if self.state == "failed":
            return False, "leader election failed"
        if self._task is not None and self._task.done() and self.state != "stopped":
            return False, "leader election ended"
        return True, ""

    async def _run(self) -> None:
        """Campaign, lead, step down, campaign again: forever. An unexpected error steps down at once
        and campaigns again after a backoff; only ``max_crashes`` of them in a row give up."""
        while True:
            try:
                await self._campaign()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # a bug here must not leave a leader acting without a lease
                reason = f"{type(err).__name__}: {err}"
                if self._leading:
                    await self._step_down(f"leader election failed: {reason}")
                self._crashes, _ = failed(self._crashes, reason)
                if self._crashes.count >= self._max_crashes:
                    self._log.exception(f"leader election failed {self._crashes.count} times in a row, "
                                        f"giving up (/healthz fails): {reason}")
                    self.state = "failed"
                    return
                policy = Policy(first=self.config.retry_period, cap=max(self.config.lease_duration, 30.0))
                wait = delay(policy, self._crashes.count, random.random())
                self._log.exception(f"leader election failed (attempt {self._crashes.count}), campaigning "
                                    f"again in {wait:.3g}s: {reason}")
                self.state = "standby"
                await self._clock.sleep(wait)

    async def _campaign(self) -> None:
        while True:
            await self._acquire()
            self._leading = True
            self.state = "leader"
            if self._on_state:
                self._on_state(True)
            self._log.info(f"became leader: lease {self._where()} held by {self.config.identity}",
                           extra={"identity": self.config.identity})
            self._on_start()
            reason = await self._hold()
            await self._step_down(reason)

    async def _step_down(self, reason: str) -> None:
        """Stop all canary work at once (tasks cancelled), then become a standby."""
        if not self._leading:
            return
        self._leading = False
        self.state = "standby"
        if self._on_state:
            self._on_state(False)
        level = logging.INFO if reason == SHUTDOWN else logging.WARNING
        self._log.log(level, f"leadership ended ({reason}): stopping all canary work",
                      extra={"identity": self.config.identity})
        await self._on_stop(0.0)  # at once: every task cancelled

    async def _acquire(self) -> None:
        """Try every retry period until this replica holds the lease."""
        self.state = "standby"
        announced = ""
        while True:
            try:
                async with asyncio.timeout(self.config.renew_deadline):
                    took = await self._attempt()
                self._crashes = succeeded()  # an answer we understood: the elector works again
                if took:
                    return
            except (ApiError, aiohttp.ClientError, TimeoutError) as err:
                self._log.warning(f"cannot read or take lease {self._where()}: {err or 'timed out'}")
            holder = LeaseRecord.of(self._lease).holder if self._lease else ""
            if holder and holder != announced:
                self._log.info(f"standby: lease {self._where()} held by {holder}",
                               extra={"identity": self.config.identity})
                announced = holder
            await self._clock.sleep(self.config.retry_period)

    async def _hold(self) -> str:
        """Renew every retry period; returns why leadership ended."""
        last = self._renewed_at
        while True:
            await self._clock.sleep(self.config.retry_period)
            while True:
                now = self._clock.monotonic()
                if renewal_lost(last, now, self.config.renew_deadline):
                    return f"could not renew lease {self._where()} within {self.config.renew_deadline:g}s"
                remaining = last + self.config.renew_deadline - now
                try:
                    async with asyncio.timeout(remaining):
                        held = await self._attempt()
                except TimeoutError:
                    return f"could not renew lease {self._where()} within {self.config.renew_deadline:g}s"
                except (ApiError, aiohttp.ClientError) as err:
                    self._log.warning(f"renewing lease {self._where()} failed: {err}")
                    left = last + self.config.renew_deadline - self._clock.monotonic()
                    await self._clock.sleep(min(self.config.retry_period, max(0.0, left)))
                    continue
                if not held:
                    holder = LeaseRecord.of(self._lease).holder if self._lease else "nobody"
                    return f"lease {self._where()} now held by {holder or 'nobody'}"
                last = self._renewed_at
                break

    async def _attempt(self) -> bool:
        """One acquire-or-renew round; True when this replica holds the lease afterwards. On success
        ``_renewed_at`` is the time the round *started*: never later than any other replica could have
        seen the new record, so this replica's deadline always runs out before their lease duration."""
        started = self._clock.monotonic()
        if self._leading and self._lease is not None:
            try:  # the common case: one PUT with the version we wrote last
                self._lease = await self.client.replace(
                    r.LEASE, self.config.namespace, self.config.name,
                    lease_body(self.config, self._lease, self._stamp()))
                self._renewed_at = started
                return True
            except Conflict:
                pass  # someone wrote it: read it and judge below
        try:
            current: dict[str, Any] | None = await self.client.get(r.LEASE, self.config.namespace,
                                                                     self.config.name)
        except NotFound:
            current = None
        self._lease = current
        now = self._clock.monotonic()
        record = LeaseRecord.of(current) if current is not None else None
        observed_at = now
        if record is not None:
            observed_at = observed_since(self._observed, record, now)
            self._observed = (record, observed_at)
        verdict = judge(record, identity=self.config.identity, observed_at=observed_at, now=now,
                        default_duration=self.config.lease_duration)
        if verdict is Verdict.WAIT:
            return False
        body = lease_body(self.config, current, self._stamp())
        try:
            if current is None:
                self._lease = await self.client.create(r.LEASE, self.config.namespace, body)
            else:
                self._lease = await self.client.replace(r.LEASE, self.config.namespace,
                                                        self.config.name, body)
        except Conflict:
            return False  # another replica won the race (409 on the resourceVersion or on create)
        self._renewed_at = started
        return True

    async def _release(self) -> None:
        """Clear the holder (if it is still us) so a standby takes over on its next attempt."""
        if self._lease is None or LeaseRecord.of(self._lease).holder != self.config.identity:
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT):
                await self.client.replace(r.LEASE, self.config.namespace, self.config.name,
                                          released_body(self._lease, self._stamp()))
            self._log.info(f"released lease {self._where()}", extra={"identity": self.config.identity})
        except (ApiError, aiohttp.ClientError, TimeoutError) as err:
            self._log.warning(f"could not release lease {self._where()} ({err or 'timed out'}); "
                              f"another replica takes over when it expires")

    def _stamp(self) -> datetime:
        """The time written into the lease (``renewTime``, ``acquireTime``): informative only, nobody's
        decision depends on another machine's wall clock."""
        return datetime.fromtimestamp(self._clock.now(), UTC)

    def _where(self) -> str:
        return f"{self.config.namespace}/{self.config.name}"


class Leadership:
    """Who runs the canary supervisor in this process: the Lease's holder with ``--leader-elect``, else
    always this process. Also the ``canaryd_leader`` gauge and the leadership half of ``/readyz``."""

    def __init__(self, settings: Settings, client: KubeClient, logger: logging.Logger, gauge: Gauge, *,
                 clock: Clock = REAL_CLOCK) -> None:
        self._settings = settings
        self._client = client
        self._log = logger
        self._gauge = gauge
        self._clock = clock
        self._elector: LeaderElector | None = None
        self._on_stop: Callable[[float], Awaitable[None]] | None = None
        self._state = "starting"
        gauge.set(0)

    def start(self, on_start: Callable[[], None], on_stop: Callable[[float], Awaitable[None]]) -> None:
        """Begin: start canary work now (no election) or when the lease is won."""
        self._on_stop = on_stop
        s = self._settings
        if not s.leader_elect:
            self._state = "leader"
            self._gauge.set(1)
            on_start()
            return
        config = ElectionConfig(namespace=s.leader_election_namespace,
                                identity=s.leader_identity or default_identity(),
                                lease_duration=s.lease_duration, renew_deadline=s.renew_deadline,
                                retry_period=s.retry_period)
        self._log.info(f"leader election on: lease {config.namespace}/{config.name} as {config.identity}",
                       extra={"identity": config.identity})
        # the fence: once the lease is stale no write but the lease's own leaves this process, even from
        # a task that was half-way through a step when the process was paused
        self._client.write_guard = lambda res: res == r.LEASE or self.may_act()
        self._elector = LeaderElector(self._client, config, self._log, on_start=on_start, on_stop=on_stop,
                                      on_state=lambda leading: self._gauge.set(1 if leading else 0),
                                      clock=self._clock)
        self._elector.start()

    async def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """SIGTERM: canary tasks finish their pass (up to ``grace``), then the lease is released."""
        if self._elector is not None:
            await self._elector.stop(grace)
        elif self._on_stop is not None:
            await self._on_stop(grace)
        self._state = "stopped"
        self._gauge.set(0)

    @property
    def state(self) -> str:
        return self._elector.state if self._elector is not None else self._state

    def may_act(self) -> bool:
        """May canary tasks write now? Always without election; with it, only on a fresh lease."""
        if self._elector is not None:
            return self._elector.holds_lease()
        return self._state == "leader"

    def healthy(self) -> tuple[bool, str]:
        """``/healthz``: fails once leader election gave up (the kubelet then restarts the pod)."""
        return self._elector.healthy() if self._elector is not None else (True, "")

    def ready(self) -> tuple[bool, str]:
        """Ready when leading or a healthy standby (not while starting, after a failure or stopped)."""
        state = self.state
        return (state in ("leader", "standby"), state)
