"""glibc's heap from inside the process (canaryd/runtime/c_heap.py): freed pages held in the middle of the
heap go back to the kernel on a trim, the sizes reach /metrics, and ``--heap-trim-interval`` starts (or,
at 0, does not start) the trimming task."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from canaryd.cli import build_parser, settings_from_args
from canaryd.runtime.app import _heap_trimmer
from canaryd.runtime.c_heap import CHeap, CHeapSizes, keep_trimmed
from canaryd.runtime.metrics import Metrics
from canaryd.settings import Settings
from tests.box.harness import eventually

HEAP = CHeap.load()
glibc = pytest.mark.skipif(HEAP is None, reason="glibc's mallinfo2/malloc_trim are not in this libc")

# in a process of its own, so pytest's own heap cannot blur the figures: 96 MiB in 32 KiB chunks (under
# glibc's mmap threshold, so from the heap), every page touched, all freed but the last chunk, which keeps
# the freed space from being the heap's top (which glibc returns by itself)
FRAGMENT = textwrap.dedent("""
    import ctypes, json
    from canaryd.runtime.c_heap import CHeap
    def rss():
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    heap = CHeap.load()
    chunks = [libc.malloc(32 * 1024) for _ in range(3072)]
    for c in chunks:
        ctypes.memset(c, 1, 32 * 1024)
    for c in chunks[:-1]:
        libc.free(c)
    held, free = rss(), heap.usage().free
    released = heap.trim()
    print(json.dumps({"held": held, "free": free, "trimmed": rss(), "released": released,
                      "trims": heap.trims}))
""")


@glibc
def test_a_trim_gives_the_free_pages_inside_the_heap_back() -> None:
    out = subprocess.run([sys.executable, "-c", FRAGMENT], capture_output=True, text=True, timeout=60,
                         check=True)
    figures = json.loads(out.stdout)
    assert figures["free"] >= 90 * 2**20, figures  # glibc holds the freed 96 MiB...
    assert figures["released"] is True and figures["trims"] == 1
    assert figures["held"] - figures["trimmed"] >= 80 * 2**20, figures  # ...until the trim returns it


@glibc
def test_heap_sizes_and_trims_reach_the_metrics() -> None:
    assert HEAP is not None
    metrics = Metrics()
    metrics.registry.register(CHeapSizes(HEAP))
    HEAP.trim()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())
              for s in f.samples if s.name.startswith("canaryd_c_heap")}
    assert values[("canaryd_c_heap_bytes", (("state", "in_use"),))] > 0
    assert ("canaryd_c_heap_bytes", (("state", "free"),)) in values
    trims = sum(v for (name, _), v in values.items() if name == "canaryd_c_heap_trims_total")
    assert trims == HEAP.trims >= 1


@glibc
async def test_keep_trimmed_trims_once_per_interval_until_cancelled() -> None:
    heap = CHeap.load()
    assert heap is not None
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) > 3:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await keep_trimmed(heap, 42.0, logging.getLogger("test"), sleep=sleep)
    assert slept == [42.0] * 4 and heap.trims == 3


@glibc
@pytest.mark.parametrize(("flag", "trims"), [("0", False), ("50ms", True)])
async def test_the_flag_starts_the_trimming_or_not(flag: str, trims: bool) -> None:
    args = build_parser().parse_args(["run", "--heap-trim-interval", flag])
    settings = settings_from_args(args)
    metrics = Metrics()
    task = _heap_trimmer(settings, metrics, logging.getLogger("test"))
    try:
        assert (task is not None) is trims

        def count() -> float:
            text = generate_latest(metrics.registry).decode()
            return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
                       if s.name == "canaryd_c_heap_trims_total")

        if trims:
            await eventually(lambda: count() >= 2, 10, "two trims")
        else:
            assert count() == 0  # sizes are shown, nothing trims
    finally:
        if task is not None:
            task.cancel()


@pytest.mark.parametrize(("flag", "seconds"), [(None, 60.0), ("0", 0.0), ("5m", 300.0)])
def test_heap_trim_interval_flag(flag: str | None, seconds: float) -> None:
    argv = ["run"] + (["--heap-trim-interval", flag] if flag else [])
    assert settings_from_args(build_parser().parse_args(argv)).heap_trim_interval == seconds
    assert Settings().heap_trim_interval == 60.0


def test_a_negative_heap_trim_interval_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "--heap-trim-interval=-1s"])
    assert "must be a duration of 0 or more" in capsys.readouterr().err
