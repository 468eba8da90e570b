"""How long Python's cyclic garbage collector stops the event loop.

A collection of the oldest generation walks every tracked container of the process (the cache's objects
and what start built are kept out of it: cache/untracked.py, runtime/gc_freeze.py), and while the collector
walks them no step, watch event or request moves. The pauses are
one candidate for a step that begins late although nothing else was due (``canaryd_step_lateness_seconds``);
this histogram lets an operator, and the benchmark, tell them from the rest."""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

PAUSE_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class GcPauses:
    """``canaryd_gc_pause_seconds{generation}`` through ``gc.callbacks``; :meth:`close` removes the hook."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.pauses = Histogram("canaryd_gc_pause_seconds",
                                "Seconds one collection of Python's cyclic garbage collector took",
                                ["generation"], buckets=PAUSE_BUCKETS, registry=registry)
        self._by_generation = [self.pauses.labels(generation=str(g)) for g in range(3)]
        self._started = 0.0
        gc.callbacks.append(self._observe)

    def _observe(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            took = time.perf_counter() - self._started
            self._by_generation[int(info.get("generation", 2)) % 3].observe(took)
            self._started = 0.0

    def close(self) -> None:
        if self._observe in gc.callbacks:
            gc.callbacks.remove(self._observe)
