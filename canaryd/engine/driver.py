"""The one loop around :func:`canaryd.engine.decide.decide`, used by the runtime and by every test.

``decide`` may answer with a *request* (``Decision.is_request``: run these hooks, and the step's checks
when ``analyse``) instead of a decision. The caller runs them and hands the results back with
:meth:`Drive.answer`; the results of earlier rounds of the same step are kept, and ``decide`` is asked
again with the same status and snapshot. A step needs at most two rounds (rollout/rollback hooks +
checks, then a confirm-* gate)::

    drive = Drive(spec, status, snap, now)
    while drive.decision.is_request:
        drive.answer(Answers(now=..., checks=..., hooks=...))   # run what drive.decision asks for
    write drive.decision.status; carry out drive.decision.actions

Pure: who runs the hooks and checks (and how, sync or async) is the caller's business.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from canaryd.engine.decide import decide
from canaryd.engine.types import CanaryStatus, CheckResult, Decision, HookResult, Inputs, Snapshot
from canaryd.model.spec import CanarySpec

# a step needs two rounds; more means the engine keeps asking (a bug): the caller gives up and retries
MAX_ROUNDS = 4


class TooManyRounds(RuntimeError):
    """``decide`` kept asking for results beyond :data:`MAX_ROUNDS`."""


@dataclass(frozen=True)
class Answers:
    """The results of one request: the step's checks (None when not asked for), hook type -> results."""

    now: float
    checks: tuple[CheckResult, ...] | None = None
    hooks: dict[str, tuple[HookResult, ...]] = field(default_factory=dict)


class Drive:
    """One decision of one Canary, request by request; ``decision`` is the latest answer of ``decide``."""

    def __init__(self, spec: CanarySpec, status: CanaryStatus, snap: Snapshot, now: float) -> None:
        self.spec, self.status, self.snap = spec, status, snap
        self.inputs = Inputs(now=now)
        self.rounds = 1
        self.decision = decide(spec, status, snap, self.inputs)

    def answer(self, answers: Answers) -> Decision:
        """Feed the results of the current request back; returns the next decision (or request)."""
        if not self.decision.is_request:
            raise ValueError("the decision is final: nothing was asked")
        if self.rounds >= MAX_ROUNDS:
            raise TooManyRounds(f"the engine asked {self.rounds} times for hook or check results")
        prior = self.inputs
        checks = answers.checks if answers.checks is not None else prior.checks
        self.inputs = Inputs(now=answers.now, checks=checks, hooks={**(prior.hooks or {}), **answers.hooks})
        self.rounds += 1
        self.decision = decide(self.spec, self.status, self.snap, self.inputs)
        return self.decision


def drive(spec: CanarySpec, status: CanaryStatus, snap: Snapshot, now: float,
          run: Callable[[Decision], Answers]) -> Decision:
    """The whole loop for a synchronous ``run`` (tests, tools): the final decision."""
    d = Drive(spec, status, snap, now)
    while d.decision.is_request:
        d.answer(run(d.decision))
    return d.decision
