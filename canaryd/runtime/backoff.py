"""The one retry policy of canary tasks and finalizers, as pure functions: how long to wait after the
n-th consecutive failure (exponential, capped, with jitter so that many canaries failing on the same
outage do not retry in step) and whether a failure deserves a Warning Event (the first one, and when the
reason changes; never each retry). A success resets it.

The caller keeps the :class:`Failures` value, draws the random number and reads the clock: nothing here
does I/O, so the policy is tested with tables (tests/runtime/test_backoff.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    """``first`` seconds after the first failure, times ``factor`` per further failure, never above
    ``cap``; ``jitter`` is the fraction the wait may be shortened by (0.1: between 90 % and 100 %)."""

    first: float = 5.0
    cap: float = 300.0
    factor: float = 2.0
    jitter: float = 0.1


TASKS = Policy()  # a canary task's pass: 5 s doubling to 5 min
# a deletion's revert: the same shape, shorter, because the finalizer is removed anyway after
# engine/finalize.py's MAX_FAILURES attempts (a deletion must not hang for many minutes)
FINALIZERS = Policy(first=1.0, cap=30.0)


@dataclass(frozen=True)
class Failures:
    """Consecutive failures so far and the reason of the last one ("" after a success)."""

    count: int = 0
    reason: str = ""


def delay(policy: Policy, failures: int, rand: float) -> float:
    """Seconds to wait after ``failures`` consecutive failures (0 for none); ``rand`` in [0, 1)."""
    if failures <= 0:
        return 0.0
    exponent = min(failures - 1, 64)  # 2**64 × 5 s is far past any cap; avoids float overflow
    nominal = min(policy.cap, policy.first * policy.factor**exponent)
    return nominal * (1.0 - policy.jitter * min(max(rand, 0.0), 1.0))


def failed(state: Failures, reason: str) -> tuple[Failures, bool]:
    """The state after one more failure, and whether it is worth a Warning Event (first, or new reason)."""
    warn = state.count == 0 or reason != state.reason
    return Failures(count=state.count + 1, reason=reason), warn


def succeeded(_: Failures | None = None) -> Failures:
    """A success resets the count: the next failure waits ``first`` again and is reported."""
    return Failures()
