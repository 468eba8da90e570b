"""The sizes a soak run watches (bench/soak.py) are exported at scrape time: Python heap blocks, asyncio
tasks of the scraping loop, Event aggregation entries once wired; and CANARYD_TRACEMALLOC's SIGUSR2 dump
writes a snapshot that tracemalloc can load back."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tracemalloc
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from canaryd.runtime import heapdump
from canaryd.runtime.metrics import Metrics


def values(metrics: Metrics) -> dict[str, float]:
    text = generate_latest(metrics.registry).decode()
    out: dict[str, float] = {}
    for f in text_string_to_metric_families(text):
        for s in f.samples:
            if s.name.startswith(("canaryd_python", "canaryd_asyncio", "canaryd_event")):
                out[s.name] = out.get(s.name, 0.0) + s.value  # tasks: summed over coroutines
    return out


async def test_sizes_are_read_at_scrape_time() -> None:
    metrics = Metrics()
    entries = [3]
    metrics.sizes.event_entries = lambda: entries[0]
    before = values(metrics)
    assert before["canaryd_python_heap_blocks"] > 0
    assert before["canaryd_event_aggregation_entries"] == 3
    extra = [asyncio.get_running_loop().create_task(asyncio.sleep(30)) for _ in range(5)]
    entries[0] = 7
    after = values(metrics)
    for t in extra:
        t.cancel()
    assert after["canaryd_asyncio_tasks"] == before["canaryd_asyncio_tasks"] + 5
    text = generate_latest(metrics.registry).decode()
    assert 'canaryd_asyncio_tasks{coroutine="sleep"} 5.0' in text  # which code holds them
    assert after["canaryd_event_aggregation_entries"] == 7


def test_no_task_count_outside_a_loop() -> None:
    got = values(Metrics())
    assert "canaryd_asyncio_tasks" not in got and "canaryd_event_aggregation_entries" not in got


class Written(logging.Handler):
    """Sets ``done`` when the dump logs its file (the handler runs on the loop after the signal)."""

    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "snapshot written" in record.getMessage():
            self.done.set()


async def test_sigusr2_writes_a_loadable_snapshot(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    logger = logging.getLogger("canaryd.test.heapdump")
    written = Written()
    logger.addHandler(written)
    logger.setLevel(logging.INFO)
    assert heapdump.install(loop, logger, env={}) is None
    was_tracing = tracemalloc.is_tracing()
    out = heapdump.install(loop, logger, env={heapdump.ENV_FRAMES: "2", heapdump.ENV_DIR: str(tmp_path)})
    try:
        assert out == tmp_path
        os.kill(os.getpid(), signal.SIGUSR2)
        await asyncio.wait_for(written.done.wait(), timeout=10)
        (path,) = sorted(os.listdir(tmp_path))
        assert path.endswith(".tracemalloc")
        assert tracemalloc.Snapshot.load(str(tmp_path / path)).traces
    finally:
        logger.removeHandler(written)
        loop.remove_signal_handler(signal.SIGUSR2)
        if not was_tracing:
            tracemalloc.stop()
