"""One task per Canary: read the cache, ask the pure engine what to do, write status, carry out the
actions, then sleep until a dependency changes or the next deadline comes.

Status is written before any action, so a crash at any line leaves a status from which the next process
derives the same routes and continues without repeating or skipping a step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from canaryd.actuators.affinity import status_fields
from canaryd.engine.decide import decide
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, Decision, Inputs, Snapshot
from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError
from canaryd.runtime.context import Context
from canaryd.runtime.effects import Effects
from canaryd.runtime.finalizing import Finalization, deleting, holds_finalizer
from canaryd.runtime.snapshot import build_snapshot

# A task never sleeps longer than this without looking again (a safety net, not a poll: nothing is read
# from the API server when it wakes, only the cache).
MAX_SLEEP = 60.0
MAX_ROUNDS = 4


def _rv(obj: dict[str, Any] | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion", "0"))
    except ValueError:
        return 0


@dataclass
class TaskState:
    """What the task keeps between wake-ups: the newest Canary object it knows (its own writes may be
    newer than the cache for a few milliseconds) and the last invalid-spec message it reported."""

    written: dict[str, Any] | None = None
    reported_error: str = ""


class CanaryTask:
    """Drives one Canary; ``wake()`` is called by the supervisor when a dependency changes."""

    def __init__(self, ctx: Context, namespace: str, name: str) -> None:
        self.ctx = ctx
        self.namespace = namespace
        self.name = name
        self.key = f"{name}.{namespace}"
        self._event = asyncio.Event()
        self._finishing = False
        self._state = TaskState()
        self._log = logging.LoggerAdapter(ctx.logger, {"canary": self.key})
        self._effects = Effects(ctx, self._log)
        self._finalization = Finalization(ctx, self._log, self._apply)

    def wake(self) -> None:
        self._event.set()

    def finish(self) -> None:
        """End after the current pass (graceful shutdown); wakes a sleeping task so it ends now."""
        self._finishing = True
        self._event.set()

    def _current(self) -> dict[str, Any] | None:
        cached = self.ctx.store.get("Canary", self.namespace, self.name)
        written = self._state.written
        if cached is None:
            return None
        if written is not None and _rv(written) > _rv(cached):
            return written
        self._state.written = None
        return cached

    async def run(self) -> None:
        """Loop until the Canary disappears from the cache (the supervisor then cancels us anyway)."""
        while True:
            self._event.clear()
            if self._finishing or not self.ctx.may_act():
                return  # shutting down, or the lease may be another replica's by now
            self.ctx.metrics.wakeups.labels(cause="wake").inc()
            try:
                wake_at = await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one canary's bug must never stop the others
                if not self.ctx.may_act():
                    return  # writes fenced off: leadership ended, the supervisor is stopping us
                self._log.exception(f"reconcile failed: {str(err) or type(err).__name__}")
                wake_at = time.time() + 5.0
            if wake_at is None and self._current() is None:
                return
            timeout = MAX_SLEEP if wake_at is None else min(MAX_SLEEP, max(0.0, wake_at - time.time()))
            try:
                await asyncio.wait_for(self._event.wait(), timeout=timeout)
            except TimeoutError:
                self.ctx.metrics.wakeups.labels(cause="deadline").inc()

    async def reconcile(self) -> float | None:
        """One pass; returns the wall-clock time of the next deadline (or None)."""
        canary = self._current()
        if canary is None:
            return None
        if deleting(canary) and not holds_finalizer(canary):
            return None  # nothing of ours holds it: the garbage collector removes what it owns
        parsed = parse_canary(canary, selector_labels=self.ctx.settings.selector_labels)
        if isinstance(parsed, SpecError):
            if deleting(canary):
                await self._finalization.sync(canary, None)
            else:
                await self._report_invalid(canary, parsed.message)
            return None
        spec: CanarySpec = parsed
        canary = await self._finalization.sync(canary, spec)
        if deleting(canary):
            return await self._finalization.step(canary, spec) if holds_finalizer(canary) else None
        status = status_from_dict(canary.get("status") or {})
        began = time.time()
        snap = build_snapshot(self.ctx, spec)
        decision = await self._decide(spec, status, snap)
        self._observe_lateness(began, status, decision)
        await self._apply(canary, spec, decision, status)
        self._state.reported_error = ""
        return decision.wake_at

    def _observe_lateness(self, began: float, status: CanaryStatus, decision: Decision) -> None:
        """A pass that took a due step (the decision moves ``nextStepAt`` on): how late it began."""
        due = status.next_step_at
        took = decision.status is not None and decision.status.next_step_at != due
        if due is not None and began >= due and took:
            self.ctx.metrics.step_lateness.observe(began - due)

    async def _decide(self, spec: CanarySpec, status: CanaryStatus, snap: Snapshot) -> Decision:
        """Ask the engine; while it requests checks or hook results, run them and ask again
        (``RunHooks`` protocol in engine/types.py). Bounded: a step needs at most two rounds."""
        inputs = Inputs(now=time.time())
        for _ in range(MAX_ROUNDS):
            decision = decide(spec, status, snap, inputs)
            if not decision.is_request:
                return decision
            started = time.monotonic()
            checks = await self._effects.run_checks(spec) if decision.analyse else None
            hooks = dict(inputs.hooks or {})
            for request in decision.requests:
                hooks[request.hook_type] = await self._effects.run_hooks(spec, status, request.hook_type)
            if decision.analyse:
                self.ctx.metrics.duration.labels(name=spec.target.name, namespace=spec.namespace).observe(
                    time.monotonic() - started
                )
            inputs = Inputs(now=time.time(), checks=checks or inputs.checks, hooks=hooks)
        self._log.error("the engine kept asking for more hook results; retrying later")
        return Decision(wake_at=time.time() + 5.0)

    async def _apply(
        self, canary: dict[str, Any], spec: CanarySpec, decision: Decision, status: CanaryStatus
    ) -> None:
        for line in decision.log:
            self._log.info(line)
        if decision.status is not None:
            status = decision.status
            body = {**status_to_dict(status), **status_fields(spec, status)}  # + Flagger's cookie fields
            written = await self._effects.write_status(canary, body)
            if written is not None:
                self._state.written = written
                canary = written
            self.ctx.crash.hit("after-status-write")
            self.ctx.metrics.set_status(spec.target.name, spec.namespace, body.get("phase", ""))
        for action in decision.actions:
            await self._effects.apply(canary, spec, status, action)

    async def _report_invalid(self, canary: dict[str, Any], message: str) -> None:
        """An invalid spec: a Warning Event and a status condition, once per distinct message."""
        if message == self._state.reported_error:
            return
        status = dict(canary.get("status") or {})
        if status.get("message") != message:
            await self._effects.write_invalid(canary, message)
            await self._effects.event(canary, message, warning=True)
        self._state.reported_error = message
