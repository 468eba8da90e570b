"""runtime.backoff: the one retry policy of tasks and finalizers, as plain tables."""

from __future__ import annotations

import pytest

from canaryd.engine.finalize import MAX_FAILURES
from canaryd.runtime.backoff import FINALIZERS, TASKS, Failures, Policy, delay, failed, succeeded

# (failures, rand, expected seconds) with the task policy: 5 s doubling to 5 min, up to 10 % shorter
TASK_DELAYS = [
    (0, 0.0, 0.0),
    (1, 0.0, 5.0),
    (1, 0.999999, 4.5),
    (2, 0.0, 10.0),
    (3, 0.5, 19.0),
    (6, 0.0, 160.0),
    (7, 0.0, 300.0),  # 320 capped
    (7, 1.0, 270.0),
    (50, 0.0, 300.0),
    (10_000, 0.0, 300.0),  # no overflow however long the outage
]


@pytest.mark.parametrize(("failures", "rand", "want"), TASK_DELAYS)
def test_task_delays(failures: int, rand: float, want: float) -> None:
    assert delay(TASKS, failures, rand) == pytest.approx(want, abs=1e-5)


def test_delay_stays_within_first_and_cap_for_any_draw() -> None:
    for failures in range(1, 40):
        for rand in (0.0, 0.25, 0.5, 0.75, 0.999):
            d = delay(TASKS, failures, rand)
            assert 0.9 * TASKS.first <= d <= TASKS.cap


def test_jitter_spreads_retries() -> None:
    assert len({delay(TASKS, 3, r / 10) for r in range(10)}) == 10


def test_finalizers_give_up_within_minutes() -> None:
    """Same shape, shorter: the finalizer is removed anyway after MAX_FAILURES attempts."""
    total = sum(delay(FINALIZERS, n, 0.0) for n in range(1, MAX_FAILURES))
    assert 60 <= total <= 180
    assert delay(FINALIZERS, 1, 0.0) == 1.0 and delay(FINALIZERS, 20, 0.0) == 30.0


def test_policy_is_a_plain_value() -> None:
    assert delay(Policy(first=1, cap=8, factor=3, jitter=0), 3, 0.5) == 8.0


# (state before, reason, expected state after, expected warn)
FAILED = [
    (Failures(), "boom", Failures(1, "boom"), True),  # first failure: reported
    (Failures(1, "boom"), "boom", Failures(2, "boom"), False),  # the same again: quiet
    (Failures(7, "boom"), "boom", Failures(8, "boom"), False),
    (Failures(2, "boom"), "bang", Failures(3, "bang"), True),  # a new reason: reported
    (Failures(3, "bang"), "boom", Failures(4, "boom"), True),
]


@pytest.mark.parametrize(("before", "reason", "after", "warn"), FAILED)
def test_failed(before: Failures, reason: str, after: Failures, warn: bool) -> None:
    assert failed(before, reason) == (after, warn)


def test_success_resets() -> None:
    state, _ = failed(Failures(5, "boom"), "boom")
    reset = succeeded(state)
    assert reset == Failures()
    assert failed(reset, "boom") == (Failures(1, "boom"), True)
    assert delay(TASKS, failed(reset, "boom")[0].count, 0.0) == TASKS.first
