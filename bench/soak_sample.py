"""One soak sample of the operator process: from /proc (RSS, open fds, threads) and from its /metrics
(Python heap blocks, glibc's heap in use and held free, asyncio tasks, cache objects, Event aggregation
entries, the number of series, and which canary names the per-canary series still carry)."""

from __future__ import annotations

import os
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench import procstat

# Flagger's per-canary gauges: a deleted Canary's name must be gone from them at once (its counters and
# duration histogram stay an hour, canaryd/runtime/metrics.py GoneTargets, so they are not looked at here)
PER_CANARY = ("flagger_canary_status", "flagger_canary_weight", "flagger_canary_metric_analysis")


@dataclass
class Sample:
    t: float  # seconds since the soak started
    runs: int  # runs ended (promoted + rolled back) so far, from the benchmark's watch
    promoted: int
    failed: int
    live: int  # Canaries in the namespace (invalid ones included)
    rss_kib: int
    fds: int
    threads: int
    heap_blocks: int | None = None
    tasks: int | None = None
    cache_objects: int | None = None
    event_entries: int | None = None
    series: int | None = None
    c_heap_in_use_kib: int | None = None  # glibc's heap (canaryd_c_heap_bytes): a leak below Python...
    c_heap_free_kib: int | None = None  # ...or fragmentation, held free between trims
    stale_names: list[str] = field(default_factory=list)
    task_kinds: dict[str, int] = field(default_factory=dict)  # asyncio tasks by coroutine


def fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def threads(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def take(pid: int, metrics_text: str | None, *, t: float, runs: tuple[int, int], live: AbstractSet[str],
         grace: AbstractSet[str] = frozenset()) -> Sample:
    """``runs``: (promoted, rolled back); ``live``: names of live Canaries and of their targets; ``grace``:
    those of the previous sample (a deletion the benchmark saw may not have reached the scrape yet)."""
    s = Sample(t=round(t, 1), runs=sum(runs), promoted=runs[0], failed=runs[1],
               live=len([x for x in live if not x.endswith("-missing")]),
               rss_kib=int(procstat.rss_mib(pid) * 1024), fds=fds(pid), threads=threads(pid))
    if metrics_text is None:
        return s
    s.series = sum(1 for line in metrics_text.splitlines() if line and not line.startswith("#"))
    stale: set[str] = set()
    cache = 0
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == "canaryd_python_heap_blocks":
                s.heap_blocks = int(sample.value)
            elif sample.name == "canaryd_asyncio_tasks":
                s.tasks = (s.tasks or 0) + int(sample.value)
                kind = sample.labels.get("coroutine", "?")
                s.task_kinds[kind] = s.task_kinds.get(kind, 0) + int(sample.value)
            elif sample.name == "canaryd_c_heap_bytes" and sample.labels.get("state") == "in_use":
                s.c_heap_in_use_kib = int(sample.value) // 1024
            elif sample.name == "canaryd_c_heap_bytes" and sample.labels.get("state") == "free":
                s.c_heap_free_kib = int(sample.value) // 1024
            elif sample.name == "canaryd_event_aggregation_entries":
                s.event_entries = int(sample.value)
            elif sample.name == "canaryd_cache_objects":
                cache += int(sample.value)
            elif sample.name in PER_CANARY and "name" in sample.labels:
                if sample.labels["name"] not in live and sample.labels["name"] not in grace:
                    stale.add(sample.labels["name"])
    s.cache_objects = cache
    s.stale_names = sorted(stale)
    return s
