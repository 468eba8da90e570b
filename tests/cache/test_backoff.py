"""The reconnect schedule: exponential, capped, jittered within bounds, reset."""

from __future__ import annotations

import random

import pytest

from canaryd.cache.backoff import Backoff


def test_schedule_without_jitter() -> None:
    b = Backoff(initial=0.5, cap=30, factor=2, jitter=0)
    assert [b.next() for _ in range(10)] == [0.5, 1, 2, 4, 8, 16, 30, 30, 30, 30]
    b.reset()
    assert b.next() == 0.5


@pytest.mark.parametrize("seed", range(20))
def test_jitter_stays_within_half_to_full_ceiling(seed: int) -> None:
    b = Backoff(initial=1, cap=8, factor=2, jitter=0.5, rng=random.Random(seed))
    for attempt in range(8):
        ceiling = b.ceiling(attempt)
        delay = b.next()
        assert ceiling / 2 <= delay <= ceiling


def test_jitter_spreads_delays() -> None:
    delays = {Backoff(initial=1, jitter=0.5, rng=random.Random(s)).next() for s in range(10)}
    assert len(delays) == 10


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(initial=1, cap=5, jitter=0)
    b.attempt = 10_000
    assert b.next() == 5


@pytest.mark.parametrize(
    "kwargs", [{"initial": 0}, {"initial": 2, "cap": 1}, {"factor": 0.5}, {"jitter": 1.5}]
)
def test_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)
