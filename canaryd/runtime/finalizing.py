"""The runtime half of ``revertOnDeletion`` for one canary task: keeps the finalizer in line with the
spec, and drives a Canary being deleted through :func:`canaryd.engine.finalize.decide_finalize`, retrying
failed steps with backoff (each failure is logged and already a Warning Event, from ``Effects.apply``).

Nothing here is kept across restarts but the failure count: the progress of a finalization is in the
cache (target replicas, the routing objects) and the Canary's status, so a new process picks it up."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from canaryd.actuators import revert
from canaryd.engine.finalize import FINALIZER, decide_finalize, finalizers_after, retry_delay
from canaryd.engine.status import status_from_dict
from canaryd.engine.types import CanaryStatus, Decision
from canaryd.model.spec import CanarySpec
from canaryd.runtime.context import Context
from canaryd.runtime.snapshot import build_snapshot

Apply = Callable[[dict[str, Any], CanarySpec, Decision, CanaryStatus], Awaitable[None]]


def deleting(canary: dict[str, Any]) -> bool:
    return bool((canary.get("metadata") or {}).get("deletionTimestamp"))


def holds_finalizer(canary: dict[str, Any]) -> bool:
    return FINALIZER in ((canary.get("metadata") or {}).get("finalizers") or ())


class Finalization:
    """One canary's finalizer bookkeeping; ``apply`` is the task's "write status, then carry out the
    actions" step."""

    def __init__(self, ctx: Context, log: logging.LoggerAdapter[logging.Logger], apply: Apply) -> None:
        self.ctx = ctx
        self.log = log
        self._apply = apply
        self.failures = 0
        self.last_error = ""
        self._next_try = 0.0

    async def sync(self, canary: dict[str, Any], spec: CanarySpec | None) -> dict[str, Any]:
        """Add the finalizer to a live Canary with ``revertOnDeletion``; remove it when the field is off
        (or the spec no longer parses while the Canary is being deleted). Returns the newest object."""
        meta = canary["metadata"]
        wanted = finalizers_after(tuple(meta.get("finalizers") or ()),
                                  spec.revert_on_deletion if spec is not None else False, deleting(canary))
        if wanted is None:
            return canary
        if FINALIZER not in wanted:
            self.log.info(f"{meta['name']}.{meta['namespace']} opting out, deleting finalizers")

        def change(current: tuple[str, ...]) -> tuple[str, ...] | None:
            return finalizers_after(current, spec.revert_on_deletion if spec is not None else False,
                                    deleting(canary))

        written = await revert.set_finalizers(self.ctx.client, self.ctx.store, canary, change)
        return written if written is not None and FINALIZER in wanted else canary

    async def step(self, canary: dict[str, Any], spec: CanarySpec) -> float | None:
        """One pass over a Canary being deleted that holds the finalizer; returns when to look again."""
        now = time.time()
        if now < self._next_try:
            return self._next_try  # backing off after a failure (a cache change must not bypass it)
        status = status_from_dict(canary.get("status") or {})
        snap = build_snapshot(self.ctx, spec)
        decision = decide_finalize(spec, status, snap, now, failures=self.failures,
                                   last_error=self.last_error)
        try:
            await self._apply(canary, spec, decision, status)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if not self.ctx.may_act():
                raise
            self.failures += 1
            self.last_error = str(err)
            self._next_try = time.time() + retry_delay(self.failures)
            self.log.error(f"finalizing failed (attempt {self.failures}), retrying in "
                           f"{retry_delay(self.failures):g}s: {err}")
            return self._next_try
        self.failures, self.last_error, self._next_try = 0, "", 0.0
        return decision.wake_at
