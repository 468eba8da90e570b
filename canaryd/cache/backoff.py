"""Reconnect delays for watches: exponential, capped, jittered (so many informers, or many canaryd
replicas, do not hammer a recovering API server in lockstep), and reset after a healthy watch."""

from __future__ import annotations

import random


class Backoff:
    """Delay n (from 0) is ``min(cap, initial * factor**n)`` scaled by a random factor in
    ``[1 - jitter, 1]``; ``reset()`` starts over."""

    def __init__(
        self,
        initial: float = 0.5,
        cap: float = 10.0,  # a recovered API server is noticed within 5-10 s
        factor: float = 2.0,
        jitter: float = 0.5,
        rng: random.Random | None = None,
    ) -> None:
        if not (initial > 0 and cap >= initial and factor >= 1 and 0 <= jitter <= 1):
            raise ValueError("backoff needs initial > 0, cap >= initial, factor >= 1, 0 <= jitter <= 1")
        self.initial, self.cap, self.factor, self.jitter = initial, cap, factor, jitter
        self._rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self, attempt: int) -> float:
        """The un-jittered delay of ``attempt``."""
        return min(self.cap, self.initial * self.factor ** min(attempt, 64))

    def next(self) -> float:
        delay = self.ceiling(self.attempt) * (1 - self.jitter * self._rng.random())
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
