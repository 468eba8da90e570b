"""Kubernetes Events on a Canary (reason ``Synced``, as Flagger), each also logged as a JSON line.

Repeats of the same message on the same Canary are aggregated into one Event whose ``count`` and
``lastTimestamp`` grow (as client-go's correlator does), instead of piling up new objects."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import EVENT

COMPONENT = "canaryd"


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Writes Events; remembers (per process) which Event holds each repeated message."""

    def __init__(self, client: KubeClient, logger: logging.Logger, *, max_remembered: int = 10_000) -> None:
        self._client = client
        self._logger = logger
        self._seen: dict[tuple[str, str, str], tuple[str, int]] = {}
        self._max = max_remembered

    async def record(self, canary: dict[str, Any], message: str, *, warning: bool = False) -> None:
        """Log the message and write (or bump) its Event; API errors are logged, never raised."""
        meta = canary.get("metadata", {})
        name, namespace, uid = meta.get("name", ""), meta.get("namespace", ""), meta.get("uid", "")
        level = logging.WARNING if warning else logging.INFO
        self._logger.log(level, message, extra={"canary": f"{name}.{namespace}"})
        etype = "Warning" if warning else "Normal"
        key = (uid, etype, message)
        now = _now_rfc3339()
        try:
            seen = self._seen.get(key)
            if seen is not None:
                event_name, count = seen
                patch = {"count": count + 1, "lastTimestamp": now}
                try:
                    await self._client.patch(EVENT, namespace, event_name, patch)
                    self._seen[key] = (event_name, count + 1)
                    return
                except ApiError as err:
                    if err.status != 404:
                        raise
            event_name = f"{name}.{secrets.token_hex(8)}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": namespace},
                "involvedObject": {
                    "apiVersion": canary.get("apiVersion", "flagger.app/v1beta1"),
                    "kind": "Canary",
                    "name": name,
                    "namespace": namespace,
                    "uid": uid,
                    "resourceVersion": meta.get("resourceVersion", ""),
                },
                "reason": "Synced",
                "message": message,
                "type": etype,
                "count": 1,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": COMPONENT},
                "reportingComponent": COMPONENT,
            }
            await self._client.create(EVENT, namespace, body)
            if len(self._seen) >= self._max:
                self._seen.pop(next(iter(self._seen)))
            self._seen[key] = (event_name, 1)
        except ApiError as err:
            self._logger.error(f"writing event failed: {err}", extra={"canary": f"{name}.{namespace}"})
