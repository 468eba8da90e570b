"""Carries out what the engine decided for one canary: runs checks and hooks, writes status, applies
actions through the actuators, records Events. Errors become Warning Events, never crashes."""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from dataclasses import replace
from typing import Any

import orjson

from canaryd.actuators import revert, routing, workloads
from canaryd.actuators.affinity import cookies_for
from canaryd.analysis.checks import run_checks
from canaryd.analysis.webhooks import call_hooks
from canaryd.engine.finalize import FINALIZER
from canaryd.engine.status import VALID, status_from_dict, status_to_dict, valid_condition
from canaryd.engine.types import (
    Action,
    CanaryStatus,
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
from canaryd.kube.resources import CANARY
from canaryd.kube.status import update_status_with_retry
from canaryd.model.spec import CanarySpec
from canaryd.runtime.context import Context

Log = logging.LoggerAdapter[logging.Logger]

# phase sent in the payload of each hook type (Flagger §6.1); None = the canary's current phase
_HOOK_PHASE: dict[str, str | None] = {
    "confirm-rollout": None,
    "pre-rollout": "Progressing",
    "rollout": "Progressing",
    "confirm-traffic-increase": "Progressing",
    "confirm-promotion": "Progressing",
    "rollback": None,
}


def _without_finalizer(finalizers: tuple[str, ...]) -> tuple[str, ...] | None:
    return tuple(f for f in finalizers if f != FINALIZER) if FINALIZER in finalizers else None


def webhook_checksum(status: CanaryStatus) -> str:
    """Identifies the revision under analysis (tracked configs + pod template hash), stable across
    restarts, so a load tester can de-duplicate per run."""
    raw = orjson.dumps(
        {"trackedConfigs": dict(status.tracked_configs), "lastAppliedSpec": status.last_applied_spec},
        option=orjson.OPT_SORT_KEYS,
    )
    return hashlib.sha256(raw).hexdigest()[:16]


class Effects:
    """The effectful half of one canary's task."""

    def __init__(self, ctx: Context, log: Log) -> None:
        self.ctx = ctx
        self.log = log

    # ---- analysis ----

    async def run_checks(self, spec: CanarySpec) -> tuple[CheckResult, ...]:
        timeout = max(1.0, spec.analysis.interval_seconds)
        started = time.monotonic()
        results = await run_checks(
            spec,
            session=self.ctx.http,
            metrics_server=self.ctx.settings.metrics_server,
            timeout=timeout,
            registry=self.ctx.checks,
        )
        self.ctx.metrics.check_latency.labels(check="step").observe(time.monotonic() - started)
        for metric, r in zip(spec.analysis.metrics, results, strict=False):
            if r.value is not None:
                # Flagger records request-duration in seconds; the check measures milliseconds
                value = r.value / 1000 if metric.builtin == "request-duration" else r.value
                self.ctx.metrics.metric_analysis.labels(
                    name=spec.target.name, namespace=spec.namespace, metric=r.name
                ).set(value)
        return results

    async def run_hooks(
        self, spec: CanarySpec, status: CanaryStatus, hook_type: str, phase: str | None = None
    ) -> tuple[HookResult, ...]:
        hooks = [h for h in spec.analysis.webhooks if h.type == hook_type]
        if not hooks:
            return ()
        sent_phase = phase or _HOOK_PHASE.get(hook_type) or (status.phase.value if status.phase else "")
        return await call_hooks(
            self.ctx.http,
            hooks,
            name=spec.name,
            namespace=spec.namespace,
            phase=sent_phase,
            checksum=webhook_checksum(status),
        )

    # ---- writes ----

    async def write_status(self, canary: dict[str, Any], status: dict[str, Any]) -> dict[str, Any] | None:
        """Write ``.status`` through the status subresource (409 → retried on fresh data)."""
        meta = canary["metadata"]

        def mutate(obj: dict[str, Any]) -> dict[str, Any] | None:
            if obj.get("status") == status:
                return None
            obj["status"] = status
            return obj

        return await update_status_with_retry(
            self.ctx.client, CANARY, meta["namespace"], meta["name"], mutate, current=canary
        )

    async def write_invalid(self, canary: dict[str, Any], message: str) -> None:
        """Record why a Canary cannot run (status message and a ``Valid=False`` condition)."""
        current = status_from_dict(canary.get("status") or {})
        now = time.time()
        valid = valid_condition(message, "InvalidSpec", now, current.conditions)
        others = tuple(c for c in current.conditions if c.get("type") != VALID)
        conditions = others + ((valid,) if valid else ())
        body = status_to_dict(replace(current, message=message, conditions=conditions))
        try:
            await self.write_status(canary, body)
        except Exception as err:  # reporting must not take the task down
            self.log.error(f"writing status failed: {err}")

    async def event(
        self, canary: dict[str, Any], message: str, *, warning: bool = False, spec: CanarySpec | None = None
    ) -> None:
        """Record the Event and forward it to event webhooks (in the background)."""
        await self.ctx.events.record(canary, message, warning=warning)
        checksum = webhook_checksum(status_from_dict(canary.get("status") or {}))
        self.ctx.notifier.event(canary, spec, message, warning=warning, checksum=checksum)

    async def apply(
        self, canary: dict[str, Any], spec: CanarySpec, status: CanaryStatus, action: Action
    ) -> None:
        """Carry out one action; errors are reported as Warning Events and re-raised so the task retries."""
        c = self.ctx
        try:
            if isinstance(action, EnsurePrimary):
                await workloads.ensure_primary(c.client, c.store, spec, c.settings, self.log)
            elif isinstance(action, EnsureServicesAndRouting):
                await routing.ensure_services(c.client, c.store, spec, c.settings, self.log, apex=action.apex)
                await workloads.ensure_primary_hpa(c.client, c.store, spec, c.settings, self.log)
                if action.apex:
                    canary_w = status.canary_weight
                    await routing.ensure_routing(
                        c.client, c.store, spec, 100 - canary_w, canary_w, status.mirrored, log=self.log,
                        cookies=cookies_for(spec, status, canary_w),
                    )
            elif isinstance(action, ScaleTarget):
                await workloads.scale(c.client, c.store, spec.namespace, spec.target.name, action.replicas)
            elif isinstance(action, SetRoutes):
                await routing.set_routes(
                    c.client, c.store, spec, action.primary, action.canary, action.mirror, log=self.log,
                    cookies=cookies_for(spec, status, action.canary),
                )
                c.crash.hit("after-route-write")
                c.metrics.set_weights(spec.target.name, spec.namespace, action.primary, action.canary)
            elif isinstance(action, Promote):
                run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{spec.uid}/{status.last_applied_spec}")
                await workloads.promote(c.client, c.store, spec, c.settings, self.log, flagger_id=str(run_id))
            elif isinstance(action, Emit):
                await self.event(canary, action.message, warning=action.warning, spec=spec)
                if action.alert:
                    self.ctx.notifier.alert(spec, action.alert, action.alert_message or action.message)
            elif isinstance(action, RevertRouting):
                await revert.revert_routing(c.client, c.store, spec, action.selector_label,
                                            action.selector_value, self.log)
                c.crash.hit("after-revert-routing")
            elif isinstance(action, RemoveFinalizer):
                await revert.set_finalizers(c.client, c.store, canary, _without_finalizer)
                self.log.info(f"finalizer {FINALIZER} removed")
            elif isinstance(action, RunHooks):
                phase = status.phase.value if status.phase else ""
                for result in await self.run_hooks(spec, status, action.hook_type, phase=phase):
                    if result.passed:
                        await self.event(canary, f"Post-rollout check {result.name} passed", spec=spec)
                    else:
                        await self.event(
                            canary, f"Post-rollout hook {result.name} failed {result.message}", warning=True,
                            spec=spec,
                        )
        except Exception as err:
            await self.event(canary, str(err), warning=True, spec=spec)
            raise
