"""Kubernetes Events on a Canary (reason ``Synced``, as Flagger), each also logged as a JSON line.

Repeats of the same message on the same Canary are aggregated into one Event whose ``count`` and
``lastTimestamp`` grow (as client-go's correlator does), instead of piling up new objects. The map that
remembers which Event holds a message is bounded by the live Canaries, not by the runs ever made: at most
``per_canary`` messages per Canary (least recently used dropped first), a deleted Canary's entries dropped
(:meth:`EventRecorder.forget`), and ``max_remembered`` in all."""

from __future__ import annotations

import logging
import secrets
from datetime import UTC, datetime
from typing import Any

from canaryd.kube.client import KubeClient
from canaryd.kube.errors import ApiError
from canaryd.kube.resources import EVENT
from canaryd.model import defaults

COMPONENT = defaults.EVENT_SOURCE_COMPONENT


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    """Writes Events; remembers (per process) which Event holds each repeated message."""

    def __init__(self, client: KubeClient, logger: logging.Logger, *, max_remembered: int = 10_000,
                 per_canary: int = 64, component: str = COMPONENT) -> None:
        self._client = client
        self._component = component  # source.component: Flagger's "flagger" unless --event-source-component
        self._logger = logger
        # (namespace, name) → (uid, type, message) → (Event name, count); both levels in least-recent order
        self._seen: dict[tuple[str, str], dict[tuple[str, str, str], tuple[str, int]]] = {}
        self._max = max_remembered
        self._per_canary = per_canary
        self._size = 0  # messages in _seen, kept in step: counting them per Event was O(Canaries)

    def size(self) -> int:
        """Messages remembered, all Canaries together (``canaryd_event_aggregation_entries``)."""
        return self._size

    def forget(self, namespace: str, name: str) -> None:
        """The Canary is gone: its Events will never be bumped again."""
        self._size -= len(self._seen.pop((namespace, name), {}))

    def _remember(self, canary: tuple[str, str], key: tuple[str, str, str], value: tuple[str, int]) -> None:
        msgs = self._seen.pop(canary, {})
        if msgs.pop(key, None) is None:
            self._size += 1
        msgs[key] = value
        while len(msgs) > self._per_canary:
            msgs.pop(next(iter(msgs)))
            self._size -= 1
        self._seen[canary] = msgs  # most recently used last, at both levels
        while self._size > self._max and self._seen:
            oldest = next(iter(self._seen.values()))
            oldest.pop(next(iter(oldest)))
            self._size -= 1
            if not oldest:
                self._seen.pop(next(iter(self._seen)))

    async def record(self, canary: dict[str, Any], message: str, *, warning: bool = False) -> None:
        """Log the message and write (or bump) its Event; API errors are logged, never raised."""
        meta = canary.get("metadata", {})
        name, namespace, uid = meta.get("name", ""), meta.get("namespace", ""), meta.get("uid", "")
        level = logging.WARNING if warning else logging.INFO
        self._logger.log(level, message, extra={"canary": f"{name}.{namespace}"})
        etype = "Warning" if warning else "Normal"
        key = (uid, etype, message)
        owner = (namespace, name)
        now = _now_rfc3339()
        try:
            seen = self._seen.get(owner, {}).get(key)
            if seen is not None:
                event_name, count = seen
                patch = {"count": count + 1, "lastTimestamp": now}
                try:
                    await self._client.patch(EVENT, namespace, event_name, patch)
                    self._remember(owner, key, (event_name, count + 1))
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
                "source": {"component": self._component},
                "reportingComponent": self._component,
            }
            await self._client.create(EVENT, namespace, body)
            self._remember(owner, key, (event_name, 1))
        except ApiError as err:
            self._logger.error(f"writing event failed: {err}", extra={"canary": f"{name}.{namespace}"})
