"""The runtime half of ``revertOnDeletion`` for one canary task: keeps the finalizer in line with the
spec, and drives a Canary being deleted through :func:`canaryd.engine.finalize.decide_finalize`. Failed
steps are retried by the task with the one backoff policy (runtime/backoff.py), which also keeps the
failure count the engine is given.

Nothing is kept in memory but the failure count (by the task): the progress of a finalization is in the
cache (target replicas, the routing objects) and the Canary's status, so a new process picks it up."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from canaryd.actuators import revert
from canaryd.engine.finalize import FINALIZER, decide_finalize, finalizers_after
from canaryd.engine.status import status_from_dict
from canaryd.engine.types import CanaryStatus, Decision
from canaryd.model.spec import CanarySpec
from canaryd.runtime.backoff import Failures
from canaryd.runtime.context import Context
from canaryd.runtime.snapshot import build_snapshot

WriteThenAct = Callable[[dict[str, Any], CanarySpec | None, Decision, CanaryStatus], Awaitable[None]]


def deleting(canary: dict[str, Any]) -> bool:
    return bool((canary.get("metadata") or {}).get("deletionTimestamp"))


def holds_finalizer(canary: dict[str, Any]) -> bool:
    return FINALIZER in ((canary.get("metadata") or {}).get("finalizers") or ())


class Finalization:
    """One canary's finalizer bookkeeping; ``write_then_act`` is the task's "write status, then carry out
    the actions" step."""

    def __init__(self, ctx: Context, log: logging.LoggerAdapter[logging.Logger],
                 write_then_act: WriteThenAct) -> None:
        self.ctx = ctx
        self.log = log
        self._write_then_act = write_then_act

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

    async def step(self, canary: dict[str, Any], spec: CanarySpec, failures: Failures) -> float | None:
        """One pass over a Canary being deleted that holds the finalizer; returns when to look again. A
        failure propagates: the task retries it with runtime/backoff.py's ``FINALIZERS`` policy and passes
        the count back in ``failures`` (after ``MAX_FAILURES`` the engine removes the finalizer anyway)."""
        status = status_from_dict(canary.get("status") or {})
        snap = build_snapshot(self.ctx, spec)
        decision = decide_finalize(spec, status, snap, self.ctx.clock.now(), failures=failures.count,
                                   last_error=failures.reason)
        await self._write_then_act(canary, spec, decision, status)
        return decision.wake_at
