"""Carries out what the engine decided for one canary: runs checks and hooks, writes status, carries out
actions through the actuators, records Events. Errors become Warning Events, never crashes."""

from __future__ import annotations

import logging
from typing import Any

from canaryd.actuators import revert, routing, workloads
from canaryd.actuators.traffic import router_for
from canaryd.actuators.writes import remember
from canaryd.analysis.base import check_timeout
from canaryd.analysis.checks import run_checks
from canaryd.analysis.webhooks import call_hooks
from canaryd.engine.desired import webhook_checksum
from canaryd.engine.finalize import FINALIZER
from canaryd.engine.messages import hook_events
from canaryd.engine.status import status_from_dict
from canaryd.engine.types import (
    Action,
    CheckResult,
    Emit,
    EnsurePrimary,
    EnsureServicesAndRouting,
    HookResult,
    Promote,
    RemoveFinalizer,
    RevertRouting,
    RunHooks,
    ScaleTarget,
    SetRoutes,
)
from canaryd.kube.errors import Conflict, NotFound
from canaryd.kube.resources import CANARY
from canaryd.model.objects import CanaryStatusBody
from canaryd.model.spec import CanarySpec
from canaryd.runtime.context import Context

Log = logging.LoggerAdapter[logging.Logger]

def _without_finalizer(finalizers: tuple[str, ...]) -> tuple[str, ...] | None:
    return tuple(f for f in finalizers if f != FINALIZER) if FINALIZER in finalizers else None


class Stale(Exception):
    """The status write met a newer object (409): what was decided came from older data. ``fresh`` is
    the object as the API server has it now (None: deleted)."""

    def __init__(self, fresh: dict[str, Any] | None) -> None:
        super().__init__("the Canary changed while deciding")
        self.fresh = fresh


class ActionFailed(Exception):
    """Carrying out an action failed; the task retries with backoff and reports it as a Warning Event
    (the first time and when the reason changes: runtime/backoff.py)."""

    def __init__(self, err: Exception, spec: CanarySpec | None) -> None:
        super().__init__(str(err) or type(err).__name__)
        self.spec = spec


class Effects:
    """The effectful half of one canary's task."""

    def __init__(self, ctx: Context, log: Log) -> None:
        self.ctx = ctx
        self.log = log

    # ---- analysis ----

    async def run_checks(self, spec: CanarySpec,
                         run_started_at: float | None = None) -> tuple[CheckResult, ...]:
        """The step's checks; ``run_started_at`` (``status.runStartedAt``) bounds the judge's range."""
        timeout = check_timeout(spec.analysis.interval_seconds, self.ctx.settings.metrics_query_timeout)
        started = self.ctx.clock.monotonic()
        results = await run_checks(
            spec,
            session=self.ctx.http,
            metrics_server=self.ctx.settings.metrics_server,
            timeout=timeout,
            registry=self.ctx.checks,
            max_answer_bytes=self.ctx.settings.max_metrics_answer_bytes,
            run_started_at=run_started_at,
        )
        self.ctx.metrics.check_latency.labels(check="step").observe(self.ctx.clock.monotonic() - started)
        for metric, r in zip(spec.analysis.metrics, results, strict=False):
            value = r.value
            if value is not None and metric.builtin == "request-duration":
                value /= 1000  # Flagger records request-duration in seconds; the check measures milliseconds
            self.ctx.metrics.set_analysis(spec.target.name, spec.namespace, r.name, value)
        for r in results[len(spec.analysis.metrics):]:  # the judge (analysis.judge): its score
            self.ctx.metrics.set_analysis(spec.target.name, spec.namespace, r.name, r.value)
        return results

    async def run_hooks(self, spec: CanarySpec, request: RunHooks) -> tuple[HookResult, ...]:
        """The hooks of the request's type, with the payload's phase and checksum the engine gave."""
        hooks = [h for h in spec.analysis.webhooks if h.type == request.hook_type]
        if not hooks:
            return ()
        return await call_hooks(
            self.ctx.http,
            hooks,
            name=spec.name,
            namespace=spec.namespace,
            phase=request.phase,
            checksum=request.checksum,
            max_answer_bytes=self.ctx.settings.max_webhook_answer_bytes,
        )

    # ---- writes ----

    async def write_status(self, canary: dict[str, Any], status: CanaryStatusBody) -> dict[str, Any] | None:
        """Write ``.status`` through the status subresource, on the condition that the object is still
        the one the status was decided from (its resourceVersion). A 409 raises :class:`Stale` with the
        fresh object: the caller decides again from it, never writes this status over another writer's."""
        if canary.get("status") == status:
            return None
        meta = canary["metadata"]
        ns, name = meta["namespace"], meta["name"]
        body = {**canary, "status": status}
        try:
            written: dict[str, Any] = await self.ctx.client.replace(CANARY, ns, name, body,
                                                                    subresource="status")
        except Conflict:
            try:
                fresh: dict[str, Any] | None = await self.ctx.client.get(CANARY, ns, name)
            except NotFound:
                fresh = None
            if fresh is not None:
                self._remember(fresh)
            raise Stale(fresh) from None
        return self._remember(written)

    def _remember(self, canary: dict[str, Any]) -> dict[str, Any]:
        """The one way a write is visible before the watch shows it: the API server's answer goes into
        the cache at once (``actuators.writes.remember``, which every writer uses; the store ignores an
        older version arriving later). Only while the Canary is cached: never bring a deleted one back."""
        meta = canary.get("metadata") or {}
        if self.ctx.store.get(CANARY.kind, meta.get("namespace"), str(meta.get("name") or "")) is not None:
            remember(self.ctx.store, CANARY, canary)
        return canary

    async def event(
        self, canary: dict[str, Any], message: str, *, warning: bool = False, spec: CanarySpec | None = None,
        checksum: str = "",
    ) -> None:
        """Record the Event and forward it to event webhooks (in the background). ``checksum``: the one
        the engine gave with the Event; "" (a failure report, not a decision) = the Canary status's."""
        await self.ctx.events.record(canary, message, warning=warning)
        checksum = checksum or webhook_checksum(status_from_dict(canary.get("status") or {}))
        self.ctx.notifier.event(canary, spec, message, warning=warning, checksum=checksum)

    async def carry_out(self, canary: dict[str, Any], spec: CanarySpec, action: Action) -> None:
        """Carry out one action from what it carries (the engine decided it all); an error is raised as
        :class:`ActionFailed` (the task retries, reports)."""
        c = self.ctx
        try:
            if isinstance(action, EnsurePrimary):
                await workloads.ensure_primary(c.client, c.store, spec, c.settings, self.log)
            elif isinstance(action, EnsureServicesAndRouting):
                await routing.ensure_services(c.client, c.store, spec, c.settings, self.log, apex=action.apex)
                await workloads.ensure_primary_hpa(c.client, c.store, spec, c.settings, self.log)
                if action.routes is not None:
                    await router_for(spec).ensure_routes(c.client, c.store, spec, action.routes, self.log)
            elif isinstance(action, ScaleTarget):
                await workloads.scale(c.client, c.store, spec.namespace, spec.target.name, action.replicas)
            elif isinstance(action, SetRoutes):
                await router_for(spec).set_routes(c.client, c.store, spec, action.routes, self.log)
                c.crash.hit("after-route-write")
            elif isinstance(action, Promote):
                await workloads.promote(c.client, c.store, spec, c.settings, self.log,
                                        flagger_id=action.promotion_id)
            elif isinstance(action, Emit):
                await self.event(canary, action.message, warning=action.warning, spec=spec,
                                 checksum=action.checksum)
                if action.alert:
                    self.ctx.notifier.alert(spec, action.alert, action.alert_message or action.message)
            elif isinstance(action, RevertRouting):
                await router_for(spec).revert(c.client, c.store, spec, action.selector_label,
                                              action.selector_value, self.log)
                c.crash.hit("after-revert-routing")
            elif isinstance(action, RemoveFinalizer):
                await revert.set_finalizers(c.client, c.store, canary, _without_finalizer)
                self.log.info(f"finalizer {FINALIZER} removed")
            elif isinstance(action, RunHooks):  # fire and forget (post-rollout): the engine's texts
                for emit in hook_events(action.hook_type, await self.run_hooks(spec, action)):
                    await self.event(canary, emit.message, warning=emit.warning, spec=spec,
                                     checksum=action.checksum)
        except Exception as err:
            raise ActionFailed(err, spec) from err
