"""Allocation tracing for hunting a slow leak (bench/soak.py): with ``CANARYD_TRACEMALLOC=<frames>`` the
process traces its allocations, and each SIGUSR2 writes a tracemalloc snapshot to
``$CANARYD_TRACEMALLOC_DIR`` (default: the temp dir) as ``canaryd-<pid>-<ns>.tracemalloc``; two snapshots
diffed (``Snapshot.load(...).compare_to(...)``) name the sites that grew. Off by default: tracing costs
memory and CPU."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import tempfile
import time
import tracemalloc
from collections.abc import Mapping
from pathlib import Path

ENV_FRAMES = "CANARYD_TRACEMALLOC"
ENV_DIR = "CANARYD_TRACEMALLOC_DIR"


def install(loop: asyncio.AbstractEventLoop, logger: logging.Logger,
            env: Mapping[str, str] = os.environ) -> Path | None:
    """Starts tracing and the SIGUSR2 handler when ``CANARYD_TRACEMALLOC`` is set; returns the dump dir."""
    frames = env.get(ENV_FRAMES, "").strip()
    if not frames:
        return None
    tracemalloc.start(max(1, int(frames)))
    out = Path(env.get(ENV_DIR) or tempfile.gettempdir())
    loop.add_signal_handler(signal.SIGUSR2, dump, out, logger)
    logger.info(f"tracemalloc on ({frames} frames): SIGUSR2 writes a snapshot to {out}")
    return out


def dump(out: Path, logger: logging.Logger) -> Path:
    """One snapshot file (named by pid and a monotonic stamp, so successive dumps sort in order)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"canaryd-{os.getpid()}-{time.monotonic_ns()}.tracemalloc"
    tracemalloc.take_snapshot().dump(str(path))
    logger.info(f"tracemalloc snapshot written to {path}")
    return path
