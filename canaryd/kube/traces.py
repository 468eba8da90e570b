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


def connection_trace() -> aiohttp.TraceConfig:
    """Once a request holds a connection (a pooled one reused, or a new one connected): observe how long it
    waited since asking for a slot (kube/slots.py), then check its fence right before the headers are
    written with no event-loop turn in between — a process paused while waiting for a connection does not
    send a write when it wakes if its lease went stale meanwhile. One hook for both: aiohttp builds a
    context and awaits a callback per trace config and signal on every request."""

    async def got(_: aiohttp.ClientSession, ctx: Any, __: Any) -> None:
        asked = getattr(ctx, "trace_request_ctx", None)
        if not isinstance(asked, Asked):
            return
        if asked.asked is not None:
            asked.waited.observe(time.monotonic() - asked.asked)
            asked.asked = None  # once per request, whichever signal came first
        if asked.fence is not None:
            asked.fence()

    trace = aiohttp.TraceConfig()
    trace.on_connection_reuseconn.append(got)
    trace.on_connection_create_end.append(got)
    return trace
