"""aiohttp trace hooks of the API client's request pool: the leader-election fence, checked once a request
holds a connection, and the time it waited for one (``canaryd_api_connection_wait_seconds``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass
class Asked:
    """One request's trace context: its leader-election fence, and when it asked for a slot (its wait for a
    connection is observed into ``waited`` once it has one)."""

    fence: Callable[[], None] | None
    asked: float | None
    waited: Any


def fence_trace() -> aiohttp.TraceConfig:
    """Checks a request's fence once it has a connection, right before the headers are written with no
    event-loop turn in between: a process paused while waiting for a connection does not send a write when
    it wakes if its lease went stale meanwhile."""

    async def check(_: aiohttp.ClientSession, ctx: Any, __: Any) -> None:
        asked = getattr(ctx, "trace_request_ctx", None)
        if isinstance(asked, Asked) and asked.fence is not None:
            asked.fence()

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(check)
    trace.on_connection_create_end.append(check)
    return trace


def wait_trace() -> aiohttp.TraceConfig:
    """Observes how long each request took from asking for a slot (kube/slots.py) to holding a connection
    (a pooled one reused, or a new one connected)."""

    async def got(_: aiohttp.ClientSession, ctx: Any, __: Any) -> None:
        asked = getattr(ctx, "trace_request_ctx", None)
        if isinstance(asked, Asked) and asked.asked is not None:
            asked.waited.observe(time.monotonic() - asked.asked)
            asked.asked = None  # once per request, whichever signal came first

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(got)
    trace.on_connection_create_end.append(got)
    return trace
