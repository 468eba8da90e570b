"""Event webhooks: every Kubernetes Event canaryd records on a Canary is also POSTed, with Flagger's
webhook payload, to the Canary's ``event`` webhooks or, when it has none, to ``--event-webhook``. Pure."""

from __future__ import annotations

from typing import Any

from canaryd.analysis.webhooks import payload
from canaryd.model.spec import WebhookSpec

GLOBAL_HOOK_NAME = "events"  # Flagger's name for the --event-webhook hook


def event_hooks(webhooks: tuple[WebhookSpec, ...], global_url: str) -> list[WebhookSpec]:
    """The Canary's ``event`` hooks, else the global one (if configured)."""
    own = [w for w in webhooks if w.type == "event"]
    if own:
        return own
    return [WebhookSpec(name=GLOBAL_HOOK_NAME, url=global_url, type="event")] if global_url else []


def event_body(
    hook: WebhookSpec,
    *,
    name: str,
    namespace: str,
    phase: str,
    checksum: str,
    message: str,
    warning: bool,
    timestamp_ms: int,
) -> dict[str, Any]:
    """The payload with ``eventMessage``, ``eventType`` and ``timestamp`` (unix ms, a string) in
    ``metadata``; the hook's own metadata keys are added where they do not collide."""
    meta: dict[str, Any] = {
        "eventMessage": message,
        "eventType": "Warning" if warning else "Normal",
        "timestamp": str(timestamp_ms),
    }
    for key, value in hook.metadata.items():
        meta.setdefault(str(key), value)
    return payload(name=name, namespace=namespace, phase=phase, checksum=checksum, metadata=meta)
