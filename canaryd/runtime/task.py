"""One task per Canary: read the cache, ask the pure engine what to do, write status, carry out the
actions, then sleep until a dependency changes or the next deadline comes.

Status is written before any action, so a crash at any line leaves a status from which the next process
derives the same routes and continues without repeating or skipping a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from canaryd.engine.decide import decide_invalid
from canaryd.engine.driver import Answers, Drive, TooManyRounds
from canaryd.engine.status import status_from_dict, status_to_dict
from canaryd.engine.types import CanaryStatus, Decision, Emit, HookResult, Snapshot
from canaryd.kube import conflicts
from canaryd.model.spec import CanarySpec, SpecError
from canaryd.runtime.backoff import FINALIZERS, TASKS, Failures, delay, failed, succeeded
from canaryd.runtime.clock import wait_event
from canaryd.runtime.context import Context
from canaryd.runtime.effects import ActionFailed, Effects, Stale
from canaryd.runtime.finalizing import Finalization, deleting, holds_finalizer
from canaryd.runtime.logs import canary_logger
from canaryd.runtime.snapshot import Derived, build_snapshot
from canaryd.runtime.spec_cache import SpecCache

# A task never sleeps longer than this without looking again (a safety net, not a poll: nothing is read
# from the API server when it wakes, only the cache).
MAX_SLEEP = 60.0
# a status write that met a newer object (409): decide again from it as many times as the one 409 policy
# allows (kube/conflicts.py), then back off
CONFLICT_ROUNDS = conflicts.ATTEMPTS

T = TypeVar("T")


@dataclass
class TaskState:
    """What the task keeps between wake-ups: its consecutive failures (runtime/backoff.py) with what the
    Canary looked like when the last pass began. (Its own status writes, and the object read after a
    409, reach the cache at once: ``Effects.write_status``.)"""

    failures: Failures = field(default_factory=Failures)
    mark: tuple[Any, Any] | None = None  # the Canary's (generation, deletionTimestamp) at the last pass


class Moot(Exception):
    """A pending check or hook was cancelled: the Canary changed so that its answer no longer matters
    (suspended, being deleted, a new revision of the target)."""


def _mark(canary: dict[str, Any] | None) -> tuple[Any, Any]:
    meta = (canary or {}).get("metadata") or {}
    return meta.get("generation"), meta.get("deletionTimestamp")


class CanaryTask:
    """Drives one Canary; ``wake()`` is called by the supervisor when a dependency changes."""

    def __init__(self, ctx: Context, namespace: str, name: str) -> None:
        self.ctx = ctx
        self.namespace = namespace
        self.name = name
        self.key = f"{name}.{namespace}"
        self._event = asyncio.Event()
        self._changed = asyncio.Event()  # set by every wake-up: what a pending check is raced against
        self._finishing = False
        self._urgent = False  # a wake-up since the pass began that ends a backoff
        self._state = TaskState()
        self._log = canary_logger(ctx.logger, self.key)
        self._effects = Effects(ctx, self._log)
        self._finalization = Finalization(ctx, self._log, self._write_then_act)
        self._derived = Derived()  # template hashes of the target and primary, reused between passes
        self._specs = SpecCache(ctx.settings)  # parsed again only when the spec may have changed

    def wake(self, kind: str = "") -> None:
        """A dependency changed (``kind``: "Canary" for the Canary itself). While backing off after a
        failure, only a change that may end it wakes the task early: any object of the canary's other
        than the Canary, or the Canary's spec or deletion (not its own status writes)."""
        self._changed.set()
        if kind == "Canary" and self._state.mark == _mark(self._current()):
            if self._state.failures.count:
                return
        else:
            self._urgent = True
        self._event.set()

    @property
    def backing_off(self) -> bool:
        """The last pass failed: waiting for the backoff (or a change that ends it)."""
        return self._state.failures.count > 0

    def finish(self) -> None:
        """End after the current pass (graceful shutdown); wakes a sleeping task so it ends now."""
        self._finishing = True
        self._event.set()

    def _current(self) -> dict[str, Any] | None:
        return self.ctx.store.get("Canary", self.namespace, self.name)

    async def run(self) -> None:
        """Loop until the Canary disappears from the cache (the supervisor then cancels us anyway)."""
        while True:
            self._event.clear()
            if self._finishing or not self.ctx.may_act():
                return  # shutting down, or the lease may be another replica's by now
            self.ctx.metrics.wakeups.labels(cause="wake").inc()
            mark = _mark(self._current())
            if self._state.mark is not None and mark[1] != self._state.mark[1]:
                self._state.failures = succeeded()  # a deletion began: the finalizer counts its own
            self._urgent, self._state.mark = False, mark
            self._changed.clear()
            try:
                wake_at = await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as err:  # one canary's bug must never stop the others
                if not self.ctx.may_act():
                    return  # writes fenced off: leadership ended, the supervisor is stopping us
                wake_at = await self._failed(err)
                if not self._urgent and not self._finishing:
                    self._event.clear()  # only our own status writes since the pass began: back off
            else:
                self._state.failures = succeeded()
            if wake_at is None and self._current() is None:
                return
            now = self.ctx.clock.now()
            cap = float("inf") if self._state.failures.count else MAX_SLEEP  # a backoff may exceed it
            timeout = MAX_SLEEP if wake_at is None else min(cap, max(0.0, wake_at - now))
            if not await wait_event(self.ctx.clock, self._event, timeout):
                self.ctx.metrics.wakeups.labels(cause="deadline").inc()

    async def reconcile(self) -> float | None:
        """One pass; returns the wall-clock time of the next deadline (or None). A status write that
        met a newer object (409) is not retried as it was: the pass runs again on the fresh object, so
        nothing decided from older data (another writer's ``Failed``, say) is written over it."""
        fresh: dict[str, Any] | None = None
        for _ in range(CONFLICT_ROUNDS):
            try:
                return await self._pass(fresh)
            except Stale as stale:
                if stale.fresh is None:
                    return None  # deleted meanwhile: the watch tells the supervisor
                fresh = stale.fresh
                rv = (stale.fresh.get("metadata") or {}).get("resourceVersion")
                self._log.info(f"the Canary changed while deciding (resourceVersion {rv}); deciding again")
            except Moot as moot:
                self._log.info(f"pending check cancelled: {moot}")
                return self.ctx.clock.now()  # look again at once, at the changed Canary
        raise RuntimeError(f"status write conflicted {CONFLICT_ROUNDS} times in a row")

    async def _failed(self, err: Exception) -> float:
        """Count a failed pass; report it (a Warning Event the first time and when the reason changes,
        a log line each time) and return when to retry (runtime/backoff.py)."""
        canary = self._current()
        finalizing = canary is not None and deleting(canary) and holds_finalizer(canary)
        reason = str(err) or type(err).__name__
        self._state.failures, warn = failed(self._state.failures, reason)
        count = self._state.failures.count
        wait = delay(FINALIZERS if finalizing else TASKS, count, random.random())
        what = "finalizing failed" if finalizing else "reconcile failed"
        self._log.error(f"{what} (attempt {count}), retrying in {wait:.3g}s: {reason}",
                        exc_info=err if warn and not isinstance(err, ActionFailed) else None)
        if warn and isinstance(err, ActionFailed) and canary is not None:
            with contextlib.suppress(Exception):  # reporting must not take the task down
                await self._effects.event(canary, reason, warning=True, spec=err.spec)
        return self.ctx.clock.now() + wait

    async def _pass(self, fresh: dict[str, Any] | None) -> float | None:
        canary = fresh or self._current()
        if canary is None:
            return None
        if deleting(canary) and not holds_finalizer(canary):
            return None  # nothing of ours holds it: the garbage collector removes what it owns
        parsed = self._specs.parse(canary)
        if isinstance(parsed, SpecError):
            if deleting(canary):
                await self._finalization.sync(canary, None)
            else:
                status = status_from_dict(canary.get("status") or {})
                invalid = decide_invalid(status, parsed.message, self.ctx.clock.now())
                await self._write_then_act(canary, None, invalid, status)
            return None
        spec: CanarySpec = parsed
        canary = await self._finalization.sync(canary, spec)
        if deleting(canary):
            if not holds_finalizer(canary):
                return None
            return await self._finalization.step(canary, spec, self._state.failures)
        if self._waiting_for_data(spec):
            return None  # the reads under way wake this task when their answers reach the cache
        status = status_from_dict(canary.get("status") or {})
        began = self.ctx.clock.now()
        snap = build_snapshot(self.ctx, spec, self._derived)
        decision = await self._decide(spec, status, snap)
        self._observe_lateness(began, status, decision)
        await self._write_then_act(canary, spec, decision, status)
        return decision.wake_at

    def _observe_lateness(self, began: float, status: CanaryStatus, decision: Decision) -> None:
        """A pass that took a due step (the decision moves ``nextStepAt`` on): how late it began."""
        due = status.next_step_at
        took = decision.status is not None and decision.status.next_step_at != due
        if due is not None and began >= due and took:
            self.ctx.metrics.step_lateness.observe(began - due)

    async def _decide(self, spec: CanarySpec, status: CanaryStatus, snap: Snapshot) -> Decision:
        """Ask the engine through its one driver (engine/driver.py); while it requests checks or hook
        results, run them and hand them back."""
        drive = Drive(spec, status, snap, self.ctx.clock.now())
        while (decision := drive.decision).is_request:
            started = self.ctx.clock.monotonic()
            # the run's start bounds the judge's range (a run never begins in the pass that analyses)
            run_checks = self._effects.run_checks(spec, status.run_started_at) if decision.analyse else None
            checks = await self._unless_moot(run_checks, spec, snap) if run_checks is not None else None
            hooks: dict[str, tuple[HookResult, ...]] = {}
            for request in decision.requests:
                hooks[request.hook_type] = await self._unless_moot(
                    self._effects.run_hooks(spec, request), spec, snap)
            if decision.analyse:
                self.ctx.metrics.duration.labels(name=spec.target.name, namespace=spec.namespace).observe(
                    self.ctx.clock.monotonic() - started
                )
            try:
                drive.answer(Answers(now=self.ctx.clock.now(), checks=checks, hooks=hooks))
            except TooManyRounds:
                self._log.error("the engine kept asking for more hook results; retrying later")
                return Decision(wake_at=self.ctx.clock.now() + 5.0)
        return decision

    async def _unless_moot(self, work: Awaitable[T], spec: CanarySpec, snap: Snapshot) -> T:
        """Await a check or hook call, cancelling it (:class:`Moot`) when a change makes its answer
        pointless: the Canary suspended, deleted or being deleted, or a new revision of its target."""
        job = asyncio.ensure_future(work)
        try:
            while True:
                if self._changed.is_set():  # something changed since the pass began (or last looked)
                    self._changed.clear()
                    reason = self._moot(spec, snap)
                    if reason:
                        raise Moot(reason)
                changed = asyncio.ensure_future(self._changed.wait())
                try:
                    await asyncio.wait({job, changed}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                if job.done():
                    return job.result()
        finally:
            if not job.done():
                job.cancel()
                # asyncio.wait, not ``await job`` under suppress(CancelledError): that also swallowed a
                # cancellation of this task arriving meanwhile (its Canary deleted), so it lived on
                await asyncio.wait({job})
                if not job.cancelled():
                    job.exception()  # retrieved: the abandoned call's error is of no interest

    def _waiting_for_data(self, spec: CanarySpec) -> bool:
        """Whether a referenced object's data is still being read (runtime/config_data.py): until then the
        cache knows only that it changed, not whether its data did, so no decision is taken."""
        loads = self.ctx.config_data
        if loads is None:
            return False
        waiting = loads.unloaded(spec, config_tracking=self.ctx.settings.config_tracking)
        if waiting:
            self._log.debug(f"waiting for the data of {', '.join(waiting)}")
        return bool(waiting)

    def _moot(self, spec: CanarySpec, snap: Snapshot) -> str:
        """Why a pending check no longer matters ("" when it still does)."""
        canary = self.ctx.store.get("Canary", self.namespace, self.name)
        if canary is None or deleting(canary):
            return f"canary {self.key} is being deleted"
        if (canary.get("spec") or {}).get("suspend") is True:
            return f"canary {self.key} was suspended"
        if self._waiting_for_data(spec):
            return ""  # a referenced Secret changed; whether its data did is known once it is read
        now = build_snapshot(self.ctx, spec, self._derived)
        before = (snap.target.template_hash if snap.target else None, snap.config_checksums)
        after = (now.target.template_hash if now.target else None, now.config_checksums)
        if after != before:
            return f"new revision of {spec.target.name}.{spec.namespace}"
        return ""

    async def _write_then_act(
        self, canary: dict[str, Any], spec: CanarySpec | None, decision: Decision, status: CanaryStatus
    ) -> None:
        """Write the decided status (first), then carry out the actions. ``spec`` is None for a Canary
        whose spec does not parse: its decision (``decide_invalid``) only writes status and emits."""
        for line in decision.log:
            self._log.info(line)
        if decision.status is not None:
            before = status.phase.value if status.phase else ""
            status = decision.status
            body = status_to_dict(status)  # cookie fields included: the engine decides them too
            written = await self._effects.write_status(canary, body)
            if written is not None:
                canary = written
            self.ctx.crash.hit("after-status-write")
            if spec is not None:  # flagger_canary_successes/failures_total (status gauges: canary_gauges.py)
                self.ctx.metrics.record_outcome(spec.target.name, spec.namespace, spec.strategy,
                                                spec.skip_analysis, before, body.get("phase", ""))
        for action in decision.actions:
            if spec is not None:
                await self._effects.carry_out(canary, spec, action)
            elif isinstance(action, Emit):
                await self._effects.event(canary, action.message, warning=action.warning,
                                          checksum=action.checksum)
