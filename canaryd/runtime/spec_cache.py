"""A task's last parse of its Canary, reused while the spec cannot have changed.

The API server moves ``metadata.generation`` with every change of a Canary's spec (and only then, the
status being a subresource), while a run updates the Canary many times through its own status writes,
each followed by a pass of the task. Parsing reads nothing but the object and the process settings, so
the parse of (apiVersion, uid, generation, name, namespace) stands until one of them moves; an object
without a uid or generation is parsed every time."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from canaryd.model.parse import parse_canary
from canaryd.model.spec import CanarySpec, SpecError
from canaryd.settings import Settings


def object_version(obj: Mapping[str, Any]) -> tuple[str, int] | None:
    """(uid, generation) of an object the API server versions; None when either is missing (never reused)."""
    meta = obj.get("metadata") or {}
    uid, generation = str(meta.get("uid") or ""), int(meta.get("generation") or 0)
    return (uid, generation) if uid and generation else None


class SpecCache:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._last: tuple[tuple[Any, ...], CanarySpec | SpecError] | None = None
        self.parses = 0  # how many times the object was actually parsed

    def parse(self, canary: dict[str, Any]) -> CanarySpec | SpecError:
        meta = canary.get("metadata") or {}
        version = object_version(canary)
        key = (canary.get("apiVersion"), version, meta.get("name"), meta.get("namespace"))
        if self._last is not None and version is not None and self._last[0] == key:
            return self._last[1]
        self.parses += 1
        parsed = parse_canary(canary, selector_labels=self._settings.selector_labels,
                              cross_namespace_refs=not self._settings.no_cross_namespace_refs)
        self._last = (key, parsed)
        return parsed
