"""Reads the API server's JSON-lines audit log into small records, so tests can count requests per client."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class AuditEvent:
    """One request as the API server saw it (Metadata level: who, with what, on which object, result)."""

    username: str
    user_agent: str
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str
    api_group: str
    api_version: str
    code: int | None
    uri: str
    stage: str
    timestamp: str
    raw: dict[str, Any]


def parse_event(raw: dict[str, Any]) -> AuditEvent:
    ref = raw.get("objectRef") or {}
    status = raw.get("responseStatus") or {}
    return AuditEvent(
        username=(raw.get("user") or {}).get("username", ""),
        user_agent=raw.get("userAgent", ""),
        verb=raw.get("verb", ""),
        resource=ref.get("resource", ""),
        namespace=ref.get("namespace", ""),
        name=ref.get("name", ""),
        subresource=ref.get("subresource", ""),
        api_group=ref.get("apiGroup", ""),
        api_version=ref.get("apiVersion", ""),
        code=status.get("code"),
        uri=raw.get("requestURI", ""),
        stage=raw.get("stage", ""),
        timestamp=raw.get("stageTimestamp") or raw.get("requestReceivedTimestamp", ""),
        raw=raw,
    )


def read_events(path: Path, *, username: str | None = None, user_agent_prefix: str | None = None,
                stage: str | None = "ResponseComplete") -> list[AuditEvent]:
    """Events of the log in order, filtered by user name, user-agent prefix and stage (None = any).

    A half-written last line (the server is still writing) is skipped."""
    events: list[AuditEvent] = []
    try:
        text = path.read_text()
    except FileNotFoundError:
        return events
    for line in text.splitlines():
        try:
            ev = parse_event(json.loads(line))
        except (json.JSONDecodeError, AttributeError):
            continue
        if username is not None and ev.username != username:
            continue
        if user_agent_prefix is not None and not ev.user_agent.startswith(user_agent_prefix):
            continue
        if stage is not None and ev.stage != stage:
            continue
        events.append(ev)
    return events
