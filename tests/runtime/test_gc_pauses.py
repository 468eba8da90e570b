"""The collector's pauses reach /metrics (canaryd/runtime/gc_pauses.py): a real collection of each
generation is observed under its own label, and closing removes the hook."""

from __future__ import annotations

import gc

from prometheus_client import CollectorRegistry

from canaryd.runtime.gc_pauses import GcPauses


def _count(registry: CollectorRegistry, generation: int) -> float:
    return registry.get_sample_value("canaryd_gc_pause_seconds_count", {"generation": str(generation)}) or 0.0


def test_each_collection_is_observed_under_its_generation() -> None:
    registry = CollectorRegistry()
    pauses = GcPauses(registry)
    try:
        before = [_count(registry, g) for g in range(3)]
        gc.collect(2)
        gc.collect(0)
        after = [_count(registry, g) for g in range(3)]
        assert after[2] >= before[2] + 1 and after[0] >= before[0] + 1
        total = registry.get_sample_value("canaryd_gc_pause_seconds_sum", {"generation": "2"}) or 0.0
        assert total > 0.0
    finally:
        pauses.close()
    gc.collect(2)
    assert _count(registry, 2) == after[2]  # unhooked: nothing more observed
