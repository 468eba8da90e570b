"""glibc's heap, seen and tidied from inside the process.

A long-running canaryd frees many short-lived C allocations (API-server JSON bodies, TLS buffers, Python
objects over 512 bytes) and glibc keeps the freed pages inside its heap, so RSS creeps up although
nothing is in use: the soak (bench/soak.py, docs/operations.md) measured that creep at about 1.7 KiB per
canary run. ``malloc_trim(0)`` hands every whole free page back to the kernel, and ``mallinfo2`` says how
much of the heap is in use and how much is held free, so an operator (and the soak) can tell a leak from
fragmentation on a dashboard. Outside glibc (musl, macOS) both are absent and nothing is done."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

_FIELDS = ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
           "keepcost")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS]


@dataclass(frozen=True)
class HeapUsage:
    in_use: int  # bytes handed out from the arenas (uordblks)
    free: int  # bytes the arenas hold free (fordblks): fragmentation when it grows
    mmapped: int  # bytes in chunks mmap'd on their own (hblkhd); returned to the kernel when freed


class CHeap:
    """glibc's ``mallinfo2`` and ``malloc_trim`` through ctypes; :meth:`load` returns None elsewhere."""

    def __init__(self, libc: ctypes.CDLL) -> None:
        self._mallinfo2 = libc.mallinfo2
        self._mallinfo2.restype = _MallInfo2
        self._mallinfo2.argtypes = []
        self._trim = libc.malloc_trim
        self._trim.restype = ctypes.c_int
        self._trim.argtypes = [ctypes.c_size_t]
        self.trims = 0
        self.released = 0  # trims that gave memory back (malloc_trim returned 1)
        self.trim_seconds = 0.0

    @classmethod
    def load(cls) -> CHeap | None:
        try:
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            return None
        if not (hasattr(libc, "mallinfo2") and hasattr(libc, "malloc_trim")):  # glibc < 2.33, or not glibc
            return None
        return cls(libc)

    def usage(self) -> HeapUsage:
        info = self._mallinfo2()
        return HeapUsage(in_use=info.uordblks, free=info.fordblks, mmapped=info.hblkhd)

    def trim(self) -> bool:
        """Returns every whole free page of every arena to the kernel; True when some memory went back."""
        started = time.perf_counter()
        gave_back = bool(self._trim(0))
        self.trim_seconds += time.perf_counter() - started
        self.trims += 1
        self.released += gave_back
        return gave_back


async def keep_trimmed(heap: CHeap, every: float, logger: logging.Logger,
                       sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
    """Trims the heap every ``every`` seconds until cancelled. A trim of canaryd's heap (tens of MB) takes
    about a millisecond, so it runs on the loop: no thread, no arena of its own."""
    while True:
        await sleep(every)
        if heap.trim():
            logger.debug("malloc_trim gave freed heap pages back to the kernel")


class CHeapSizes(Collector):
    """``canaryd_c_heap_bytes{state}`` and ``canaryd_c_heap_trims_total``, read at scrape time."""

    def __init__(self, heap: CHeap) -> None:
        self._heap = heap

    def describe(self) -> list[GaugeMetricFamily]:
        return []

    def collect(self) -> Iterable[GaugeMetricFamily | CounterMetricFamily]:
        usage = self._heap.usage()
        sizes = GaugeMetricFamily("canaryd_c_heap_bytes", "glibc heap bytes by state (mallinfo2)",
                                  labels=["state"])
        sizes.add_metric(["in_use"], usage.in_use)
        sizes.add_metric(["free"], usage.free)
        sizes.add_metric(["mmapped"], usage.mmapped)
        trims = CounterMetricFamily("canaryd_c_heap_trims", "malloc_trim calls (--heap-trim-interval)",
                                    labels=["released"])
        trims.add_metric(["true"], self._heap.released)
        trims.add_metric(["false"], self._heap.trims - self._heap.released)
        return [sizes, trims]
