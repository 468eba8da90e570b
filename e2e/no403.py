"""Least privilege over a whole e2e run: no request a canaryd process sent was refused with 403 (the API
server's audit log). Per test, ``e2e.tutorial.forbidden(bed, ns)`` checks one namespace's canaryd; this
module checks every canaryd of the run at once, from the controlling pytest process after all xdist
workers are done (``conftest.pytest_sessionfinish``), so it runs once however many workers shared the bed.

Requests are a canaryd process's when they carry canaryd's identity *and* a ``canaryd/`` user agent:
``kubectl`` under canaryd's token (``test_rbac``'s deliberate refusals) is not canaryd."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from e2e.bed.audit import AuditEvent
from e2e.operator import IDENTITY

USER_AGENT_PREFIX = "canaryd/"


def received(e: AuditEvent) -> float:
    """When the API server received the request (epoch seconds)."""
    raw = str(e.raw.get("requestReceivedTimestamp") or e.timestamp)
    return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()


def refused(bed: Any, *, user_agent_prefix: str = USER_AGENT_PREFIX) -> list[tuple[float, str]]:
    """(when received, what) of the requests of canaryd processes the API server refused with 403."""
    events = bed.audit_events(username=IDENTITY, user_agent_prefix=user_agent_prefix)
    return [(received(e), f"{e.user_agent} {e.verb} {e.resource}/{e.subresource} {e.namespace}/{e.name}")
            for e in events if e.code == 403]


def run_report(bed: Any, since: float) -> tuple[int, list[str]]:
    """(requests of canaryd processes since ``since``, the refused ones) for the end of a run."""
    events = [e for e in bed.audit_events(username=IDENTITY, user_agent_prefix=USER_AGENT_PREFIX)
              if received(e) >= since]
    return len(events), [what for when, what in refused(bed) if when >= since]
